// Push wake-ups, the page's side. Turning push on subscribes this browser to Web Push with the watcher's VAPID key
// and enrolls the device at the watcher with its push credentials (push key, certificate, token — never an identity
// key), then writes what the service worker needs to fetch messages alone into the client store (push-config.ts).
// While a page is open it holds the courier connection itself, and the courier keeps one connection per token, so
// the page keeps the watcher paused and lets it return when the page goes.
import { useEffect, useRef } from 'react';
import { equalBytes } from '../../lib/codec/bytes';
import { CeruleanError } from '../../lib/errors';
import { enroll, pause, status, unenroll, vapidPublicKey, WatcherError, type WatcherStatus } from '../../lib/push/watcher-client';
import type { ClientStore } from '../../lib/store/types';
import { clearPushConfig, readPushConfig, writePushConfig, type PushConfig, type PushEnrollment } from '../sw/push-config';
import { useSession } from './session';
import type { AppSettings } from './settings';
import { loadTrustedRoots } from './trust';

/** How long the watcher stays away per pause while a page is open… */
export const PAUSE_SECONDS = 600;
/** …renewed well before that runs out (a hidden tab's timers may run only once a minute). */
const RENEW_MS = 4 * 60_000;
/** A page that goes lets the watcher back after this: long enough for the page's own connection to close first. */
const LEAVE_PAUSE_SECONDS = 2;
const SERVICE_WORKER_TIMEOUT_MS = 10_000;

export type PushSupport = 'supported' | 'unsupported' | 'blocked';

/** Whether this browser can do push at all, and whether the user blocked notifications for the site. */
export function pushSupport(): PushSupport {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator) || typeof PushManager === 'undefined' || typeof Notification === 'undefined') {
    return 'unsupported';
  }
  return Notification.permission === 'denied' ? 'blocked' : 'supported';
}

async function activeRegistration(): Promise<ServiceWorkerRegistration> {
  if (pushSupport() === 'unsupported') throw new CeruleanError('push-unsupported', 'this browser has no Web Push');
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CeruleanError('no-service-worker', 'the service worker is not running')), SERVICE_WORKER_TIMEOUT_MS);
  });
  try {
    return await Promise.race([navigator.serviceWorker.ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the service worker needs, from the page's current settings. */
async function pushConfigFor(settings: AppSettings, watcherUrl: string, enrollment: PushEnrollment): Promise<PushConfig> {
  return {
    bridgeUrl: settings.bridgeUrl,
    ...(settings.bridgeToken ? { bridgeToken: settings.bridgeToken } : {}),
    mode: settings.mode,
    trustedRoots: await loadTrustedRoots(settings, { preferCache: true }),
    deviceName: settings.deviceName,
    readReceipts: settings.readReceipts,
    watcherUrl,
    enrollment,
  };
}

/** This browser's subscription for `serverKey`: a subscription for another watcher's key is replaced. */
async function subscribe(registration: ServiceWorkerRegistration, serverKey: Uint8Array): Promise<PushSubscription> {
  const existing = await registration.pushManager.getSubscription();
  const existingKey = existing?.options.applicationServerKey;
  if (existing && existingKey && equalBytes(new Uint8Array(existingKey), serverKey)) return existing;
  await existing?.unsubscribe();
  return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: serverKey as Uint8Array<ArrayBuffer> });
}

/**
 * Turns push on: notification permission (ask from a click: browsers want a user gesture), the Web Push
 * subscription, the enrollment (paused at once: this page is open), and the service worker's config.
 */
export async function enablePush(store: ClientStore, settings: AppSettings): Promise<WatcherStatus> {
  if (pushSupport() === 'unsupported') throw new CeruleanError('push-unsupported', 'this browser has no Web Push');
  const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
  if (permission !== 'granted') throw new CeruleanError('notifications-blocked', 'notifications are not allowed for this site');
  const [account] = await store.accounts.list();
  const push = account?.push;
  if (!push?.token) throw new CeruleanError('not-registered', 'this device has no push token yet');
  const registration = await activeRegistration();
  const watcherUrl = settings.watcherUrl;
  const serverKey = await vapidPublicKey(watcherUrl);
  const subscription = await subscribe(registration, serverKey);
  let enrolled;
  try {
    enrolled = await enroll(watcherUrl, {
      push: { key: push.keyPair.privateKey, certificate: push.certificate, token: push.token },
      subscription,
      pauseSeconds: PAUSE_SECONDS,
    });
  } catch (e) {
    await subscription.unsubscribe().catch(() => undefined);
    throw e;
  }
  const previous = await readPushConfig(store);
  // Enrolled somewhere else before: that watcher forgets the device (the same one replaced it already).
  if (previous && previous.enrollment.url !== enrolled.url) {
    const { url, id, secret } = previous.enrollment;
    await unenroll(url, id, secret).catch(() => undefined);
  }
  await writePushConfig(store, await pushConfigFor(settings, watcherUrl, { id: enrolled.id, secret: enrolled.secret, url: enrolled.url }));
  return status(enrolled.url, enrolled.id, enrolled.secret);
}

/**
 * Turns push off: the watcher deletes everything it held, the subscription and the service worker's config go.
 * Done here even when the watcher cannot be reached ('watcher-not-told' afterwards): with the subscription gone,
 * the push service refuses the watcher's next wake-up, and the watcher then deletes the enrollment by itself.
 */
export async function disablePush(store: ClientStore): Promise<void> {
  const config = await readPushConfig(store);
  let failure: unknown;
  if (config) {
    const { url, id, secret } = config.enrollment;
    try {
      await unenroll(url, id, secret);
    } catch (e) {
      if (!(e instanceof WatcherError && e.code === 'unknown-enrollment')) failure = e;
    }
  }
  await clearPushConfig(store);
  if (typeof navigator !== 'undefined' && 'serviceWorker' in navigator) {
    const registration = await navigator.serviceWorker.getRegistration();
    await (await registration?.pushManager.getSubscription())?.unsubscribe();
  }
  if (failure !== undefined) throw new CeruleanError('watcher-not-told', 'push is off, but the watcher could not be told', { cause: failure });
}

export interface PushState {
  enrolled: boolean;
  /** The watcher's view, when it answered. */
  status?: WatcherStatus;
  /** Why it did not ('watcher-unreachable', 'unknown-enrollment', …). */
  error?: unknown;
}

export async function readPushState(store: ClientStore): Promise<PushState> {
  const config = await readPushConfig(store);
  if (!config) return { enrolled: false };
  const { url, id, secret } = config.enrollment;
  try {
    return { enrolled: true, status: await status(url, id, secret) };
  } catch (error) {
    return { enrolled: true, error };
  }
}

/** A request that still goes out while the page unloads. */
const keepaliveFetch: typeof fetch = (input, init) => fetch(input, { ...init, keepalive: true });

interface WatcherKeeper {
  /** Pause again now (the page's own connection was knocked off the courier: the watcher may be back on it). */
  renew(): void;
  stop(): void;
}

/** Keeps the watcher paused while this page is open. */
function keepWatcherAway({ url, id, secret }: PushEnrollment): WatcherKeeper {
  const renew = () => void pause(url, id, secret, PAUSE_SECONDS).catch(() => undefined);
  const leave = () => void pause(url, id, secret, LEAVE_PAUSE_SECONDS, { fetch: keepaliveFetch }).catch(() => undefined);
  // Back from the back/forward cache, or shown again after the timers were throttled in the background.
  const shown = (e: PageTransitionEvent) => e.persisted && renew();
  const visible = () => document.visibilityState === 'visible' && renew();
  renew();
  const timer = setInterval(renew, RENEW_MS);
  addEventListener('pagehide', leave);
  addEventListener('pageshow', shown);
  document.addEventListener('visibilitychange', visible);
  return {
    renew,
    stop() {
      clearInterval(timer);
      removeEventListener('pagehide', leave);
      removeEventListener('pageshow', shown);
      document.removeEventListener('visibilitychange', visible);
    },
  };
}

/**
 * For the app shell: while a registered session is open with push on, the watcher stays paused, and the service
 * worker's config follows the settings (a new bridge, a restarted sandbox's CA).
 */
export function usePushUpkeep(): void {
  const { phase, settings, getStore, connection } = useSession();
  const on = phase === 'ready' && settings.notifications;
  const keeper = useRef<WatcherKeeper | undefined>(undefined);
  useEffect(() => {
    if (!on) return;
    let stopped = false;
    void (async () => {
      const store = getStore();
      const config = await readPushConfig(store);
      if (!config || stopped) return;
      keeper.current = keepWatcherAway(config.enrollment);
      const fresh = await pushConfigFor(settings, config.watcherUrl, config.enrollment);
      if (!stopped && JSON.stringify(fresh) !== JSON.stringify(config)) await writePushConfig(store, fresh);
    })().catch((e: unknown) => console.warn('push: upkeep failed', e));
    return () => {
      stopped = true;
      keeper.current?.stop();
      keeper.current = undefined;
    };
  }, [on, settings, getStore]);
  // The courier keeps one connection per token: losing ours may mean the watcher came back (a pause that ran out,
  // or another page's goodbye landing after this page's hello).
  useEffect(() => {
    if (connection === 'disconnected') keeper.current?.renew();
  }, [connection]);
}
