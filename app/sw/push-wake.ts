// A wake-up from the push watcher (bridge/README.md, "Push watcher"): its Web Push says only that this device has
// something waiting at the courier. When a page of the app holds the session, that page's own connection gets the
// messages and nothing happens here. Otherwise the worker takes the session lock, fetches and decrypts what the
// courier held (fetch-waiting.ts), closes its courier connection, and only then tells the watcher it drained — in
// the other order the watcher would reconnect while messages are still unacked and wake the device again. The
// notifications are shown last, after the lock is released, so a click on one opens a page that gets the session.
import { ContactBook } from '../../lib/client/contacts';
import { CeruleanError } from '../../lib/errors';
import { parseWake } from '../../lib/push/wake';
import { drained } from '../../lib/push/watcher-client';
import { openIndexedDbStore } from '../../lib/store/indexeddb';
import { SESSION_LOCK_NAME } from '../session/tab-lock';
import { fetchWaitingMessages } from './fetch-waiting';
import { messageNotifications, shownLines, type MessageNotification } from './message-notifications';
import { readPushConfig } from './push-config';

export type WakeOutcome =
  /** The push was not a wake-up (or not for this device's enrollment). */
  | 'ignored'
  /** A page holds the session and receives the messages itself. */
  | 'page-open'
  /** Fetched, acked and reported drained. */
  | 'fetched'
  /** The courier could not be reached: the watcher returns after its own timeout and wakes the device again. */
  | 'unreachable'
  /** A page took the session over halfway: it carries on, and keeps the watcher paused. */
  | 'taken-over';

/** Shown when the courier cannot be reached: a wake-up the user would otherwise never learn of. */
const WAITING_NOTIFICATION: MessageNotification = {
  title: 'New messages',
  options: {
    body: 'Messages are waiting for you. Open Cerulean to receive them.',
    tag: 'waiting',
    icon: '/icons/icon-192.png',
    data: { url: '/', lines: [] },
  },
};

let running: Promise<WakeOutcome> | undefined;

/**
 * Handles one push's text. One run at a time: the watcher stays away until told the device drained, so a push
 * arriving during a run repeats the wake-up being handled and waits for it.
 */
export function handleWake(text: string, registration: ServiceWorkerRegistration): Promise<WakeOutcome> {
  running ??= run(text, registration).finally(() => (running = undefined));
  return running;
}

interface Drain {
  outcome: WakeOutcome;
  notifications: MessageNotification[];
}

async function run(text: string, registration: ServiceWorkerRegistration): Promise<WakeOutcome> {
  let enrollment: string;
  try {
    enrollment = parseWake(text).enrollment;
  } catch {
    return 'ignored';
  }
  const drain = await withSessionLock((takenOver) => drainCourier(enrollment, registration, takenOver));
  if (!drain) return 'page-open';
  for (const n of drain.notifications) await registration.showNotification(n.title, n.options);
  return drain.outcome;
}

async function drainCourier(enrollment: string, registration: ServiceWorkerRegistration, takenOver: AbortSignal): Promise<Drain> {
  const store = await openIndexedDbStore();
  try {
    const config = await readPushConfig(store);
    if (!config || config.enrollment.id !== enrollment) return { outcome: 'ignored', notifications: [] };
    const { received, connected } = await fetchWaitingMessages(store, config, { signal: takenOver });
    if (takenOver.aborted) return { outcome: 'taken-over', notifications: [] };
    if (!connected) return { outcome: 'unreachable', notifications: [WAITING_NOTIFICATION] };
    const notifications = await messageNotifications(received, new ContactBook(store), shownLines(registration));
    // The client is closed (its courier connection with it): the watcher may come back now. Still under the lock,
    // so a page opening next pauses the watcher after this, not before.
    const { url, id, secret } = config.enrollment;
    await drained(url, id, secret).catch((e: unknown) => {
      // Unreported, the watcher returns after its drain timeout: later, but nothing is lost.
      console.warn('push: could not report drained', e instanceof CeruleanError ? e.code : e);
    });
    return { outcome: 'fetched', notifications };
  } finally {
    await store.close();
  }
}

/**
 * Runs `work` holding the page's session lock, or returns undefined when a page holds it. A page that takes the
 * lock over (steal) aborts the signal; `work` is expected to stop soon after.
 */
async function withSessionLock<T>(work: (takenOver: AbortSignal) => Promise<T>): Promise<T | undefined> {
  const takeOver = new AbortController();
  // Browsers without Web Locks have no tab lock either (app/session/tab-lock.ts).
  if (typeof navigator === 'undefined' || !navigator.locks) return work(takeOver.signal);
  let result: Promise<T> | undefined;
  try {
    await navigator.locks.request(SESSION_LOCK_NAME, { ifAvailable: true }, (lock) => (lock ? (result = work(takeOver.signal)) : undefined));
  } catch (e) {
    // A stolen lock rejects the request while `work` still runs; any other failure is `work`'s own.
    if (result === undefined) throw e;
    takeOver.abort();
  }
  return result;
}
