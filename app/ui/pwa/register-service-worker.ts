// Registers the service worker (out/sw.js, built by scripts/build-sw.mjs) that precaches the app shell. Call from
// the shell in production builds: `next dev` serves no sw.js.
import { Workbox } from 'workbox-window';

export const SERVICE_WORKER_URL = '/sw.js';

let registration: Promise<void> | undefined;

/**
 * Registers the worker (once per page, however often it is called) and, when a newer build's worker is waiting,
 * lets it take over. The open page keeps the code it loaded (no reload here, so nothing being typed is lost); the
 * next start runs the new build. Waits for the page's load event, resolves once the registration exists and
 * rejects if the browser refuses it; does nothing where service workers are unavailable.
 */
export function registerServiceWorker(): Promise<void> {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return Promise.resolve();
  registration ??= (async () => {
    const wb = new Workbox(SERVICE_WORKER_URL, { scope: '/' });
    wb.addEventListener('waiting', () => wb.messageSkipWaiting());
    await wb.register();
  })().catch((e: unknown) => {
    // A failed fetch of sw.js may be passing: a later call tries again.
    registration = undefined;
    throw e;
  });
  return registration;
}
