// The service worker: keeps the app shell (the static export: HTML, JS, CSS, icons, manifest) in a precache so the
// app opens without a network, and answers page navigations with that shell (routing is in the URL hash). When the
// push watcher wakes it while no page is open, it fetches and decrypts the waiting messages itself, with the keys
// in IndexedDB, and shows them as notifications (push-wake.ts): on the device, like the page would.
// Bundled to out/sw.js by scripts/build-sw.mjs, which also injects the precache list into `self.__WB_MANIFEST`.
import { clientsClaim } from 'workbox-core';
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute, type PrecacheEntry } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { handleWake } from './push-wake';

// The project compiles against the DOM library only (the worker library conflicts with it), so the parts of the
// service worker global scope used here are declared by hand.
interface ExtendableEventLike extends Event {
  waitUntil(work: Promise<unknown>): void;
}
interface NotificationEventLike extends ExtendableEventLike {
  readonly notification: Notification;
}
interface PushEventLike extends ExtendableEventLike {
  readonly data: { text(): string } | null;
}
interface WindowClientLike {
  readonly url: string;
  focus(): Promise<WindowClientLike>;
  navigate(url: string): Promise<WindowClientLike | null>;
}
interface ServiceWorkerScope {
  readonly __WB_MANIFEST: Array<PrecacheEntry | string>;
  readonly location: Location;
  readonly registration: ServiceWorkerRegistration;
  readonly clients: {
    matchAll(options: { type: 'window'; includeUncontrolled: boolean }): Promise<WindowClientLike[]>;
    openWindow(url: string): Promise<WindowClientLike | null>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'message', listener: (event: ExtendableEventLike & MessageEvent) => void): void;
  addEventListener(type: 'notificationclick', listener: (event: NotificationEventLike) => void): void;
  addEventListener(type: 'push', listener: (event: PushEventLike) => void): void;
}
declare const self: ServiceWorkerScope;

/** The message the page's workbox-window sends (`messageSkipWaiting()`) to activate an updated worker at once. */
const SKIP_WAITING = 'SKIP_WAITING';
/** The sandbox root CA is served beside the app but is not a build file: kept from the network for offline starts. */
const SANDBOX_CA_PATH = '/sandbox-ca.pem';
const RUNTIME_CACHE = 'cerulean-runtime';

// ---- app shell ------------------------------------------------------------------------------------------------

precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
// Opening a file itself (the CA to install it, an icon) is not a page of the app: those go to the network.
registerRoute(new NavigationRoute(createHandlerBoundToURL('/index.html'), { denylist: [/\.(?!html$)[a-z0-9]+$/i] }));

// ---- runtime files ----------------------------------------------------------------------------------------------

// Network first, so a restarted sandbox's new CA wins; the cached copy lets the app open its store offline.
registerRoute(
  ({ url, sameOrigin }) => sameOrigin && url.pathname === SANDBOX_CA_PATH,
  async ({ request }) => {
    const cache = await caches.open(RUNTIME_CACHE);
    try {
      const response = await fetch(request);
      if (response.ok) await cache.put(request, response.clone());
      return response;
    } catch (e) {
      const cached = await cache.match(request);
      if (cached) return cached;
      throw e;
    }
  },
);

// ---- push wake-ups ----------------------------------------------------------------------------------------------

self.addEventListener('push', (event) => {
  event.waitUntil(
    handleWake(event.data?.text() ?? '', self.registration).catch((e: unknown) => {
      // Only the failure's kind: nothing about messages reaches a log.
      console.warn('push: wake-up failed', (e as { code?: unknown } | null)?.code ?? (e as Error | null)?.name);
    }),
  );
});

// ---- notifications ----------------------------------------------------------------------------------------------

// Notifications (a new device from the page, messages from push-wake.ts) carry the screen to open as `data.url`
// (e.g. '/#/security'). A click brings the app's window forward on that screen, or opens one.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const wanted = (event.notification.data as { url?: unknown } | null)?.url;
  const target = new URL(typeof wanted === 'string' ? wanted : '/', self.location.origin);
  if (target.origin !== self.location.origin) return;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const open = windows[0];
      if (!open) return void (await self.clients.openWindow(target.href));
      await open.focus();
      if (open.url !== target.href) await open.navigate(target.href);
    })(),
  );
});

// ---- lifecycle --------------------------------------------------------------------------------------------------

// A first install takes over the open page right away, so it works offline without a reload; an update waits until
// the page asks (workbox-window does when it sees the waiting worker).
clientsClaim();
self.addEventListener('message', (event) => {
  if ((event.data as { type?: unknown } | null)?.type === SKIP_WAITING) event.waitUntil(self.skipWaiting());
});
