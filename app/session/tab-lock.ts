// One connected tab per browser profile: two tabs would share the push certificate and knock each other off the
// courier, and race on the same store. A Web Lock held for the page's life says who owns the session; another tab
// can take it over (`steal`), and the tab that loses it is told so. The service worker takes the same lock while it
// fetches messages after a push wake-up, and leaves them to the page when a page holds it.
export const SESSION_LOCK_NAME = 'cerulean-session';

export interface TabLock {
  release(): void;
}

export interface TabLockOptions {
  /** Take the lock even if another tab holds it. */
  steal: boolean;
  /** Called when another tab takes the lock over. */
  onLost(): void;
}

/** The lock, or undefined when another tab holds it. Browsers without Web Locks get a lock that guards nothing. */
export function acquireTabLock(options: TabLockOptions): Promise<TabLock | undefined> {
  if (typeof navigator === 'undefined' || !navigator.locks) return Promise.resolve({ release: () => undefined });
  return new Promise((resolve) => {
    let granted = false;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    navigator.locks
      .request(SESSION_LOCK_NAME, options.steal ? { steal: true } : { ifAvailable: true }, async (lock) => {
        if (!lock) {
          resolve(undefined);
          return;
        }
        granted = true;
        resolve({ release });
        await held;
      })
      .catch(() => {
        // A stolen lock rejects the holder's request.
        if (granted) options.onLost();
        else resolve(undefined);
      });
  });
}
