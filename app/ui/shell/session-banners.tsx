'use client';
import { useSession } from '../../session/session';
import { Button } from '../common/button';
import { describeError } from '../errors';

/** Registration trouble the person should know about: a renewal that needs them, or one that failed. */
export function SessionBanners() {
  const session = useSession();
  const r = session.registration;
  if (session.needsSignIn) {
    return (
      <div
        role="alert"
        className="flex flex-wrap items-center justify-between gap-2 bg-amber-50 px-4 py-2 text-sm text-amber-900 dark:bg-amber-950/50 dark:text-amber-100"
      >
        <span>Your iMessage registration needs you to sign in again, or this device will stop receiving messages.</span>
        <Button variant="secondary" onClick={session.beginSignIn} data-testid="signin-again">
          Sign in again
        </Button>
      </div>
    );
  }
  if (r?.status === 'failed') {
    const d = describeError(r.error, { mode: session.settings.mode });
    return (
      <div role="status" className="bg-neutral-100 px-4 py-2 text-sm text-neutral-700 dark:bg-neutral-900 dark:text-neutral-300">
        Renewing the registration failed ({d.title.toLowerCase()}). Cerulean tries again by itself.
      </div>
    );
  }
  return null;
}
