'use client';
// When this device's iMessage registration runs out, when it renews itself, and a button to register again now.
import { useEffect, useState } from 'react';
import type { RegistrationEvent } from '../../../lib/client/events';
import { useClient, useSession } from '../../session/session';
import { Button } from '../common/button';
import { Spinner } from '../common/spinner';
import { displayHandle } from '../chats/handles';
import { describeError } from '../errors';
import { when } from './describe-event';

const DAY_MS = 24 * 60 * 60 * 1000;

function outcome(e: RegistrationEvent): { ok: boolean; text: string } {
  if (e.status === 'registered') return { ok: true, text: `Registered again${e.expiresAt ? `; valid until ${when(e.expiresAt)}` : ''}.` };
  if (e.status === 'needs-sign-in') {
    return { ok: false, text: 'Registering needs you to sign in again (your Apple ID password, or a new text for a phone number).' };
  }
  const d = describeError(e.error ?? 'internal-error');
  return { ok: false, text: `${d.title}. ${d.detail} Cerulean keeps retrying in the background.` };
}

export function RegistrationSection({ headingId }: { headingId: string }) {
  const client = useClient();
  const session = useSession();
  const [info, setInfo] = useState(() => client.registrationInfo());
  const [renewing, setRenewing] = useState(false);
  const [result, setResult] = useState<RegistrationEvent>();

  useEffect(() => {
    setInfo(client.registrationInfo());
    return client.on('registration', (e) => {
      setInfo(client.registrationInfo());
      setResult(e);
    });
  }, [client]);

  const renew = () => {
    setRenewing(true);
    setResult(undefined);
    // renew() reports failures as registration events (above), not by rejecting.
    client.renew().then(
      () => setRenewing(false),
      (e: unknown) => {
        setRenewing(false);
        setResult({ status: 'failed', error: e instanceof Error && 'code' in e ? String((e as { code: unknown }).code) : 'internal-error' });
      },
    );
  };

  const expiresAt = info.expiresAt;
  const daysLeft = expiresAt !== undefined ? Math.floor((expiresAt - Date.now()) / DAY_MS) : undefined;
  const done = result ? outcome(result) : undefined;

  return (
    <section aria-labelledby={headingId} className="flex flex-col gap-2">
      <h3 id={headingId} className="text-lg font-semibold">
        Registration
      </h3>
      <p className="text-sm text-neutral-600 dark:text-neutral-400">
        Registered addresses: {info.handles.length > 0 ? info.handles.map(displayHandle).join(', ') : 'none'}
      </p>
      <p data-testid="registration-expiry" className="text-sm">
        {expiresAt === undefined
          ? 'The registration’s expiry is not known.'
          : expiresAt <= Date.now()
            ? `The registration expired ${when(expiresAt)}.`
            : `Registered until ${when(expiresAt)}${daysLeft !== undefined && daysLeft < 60 ? ` (${daysLeft === 0 ? 'less than a day' : `${daysLeft} day${daysLeft === 1 ? '' : 's'}`} left)` : ''}.`}
      </p>
      {info.renewAt !== undefined ? (
        <p className="text-sm text-neutral-600 dark:text-neutral-400">Cerulean registers again by itself around {when(info.renewAt)}.</p>
      ) : null}
      <div className="flex flex-wrap items-center gap-3">
        <Button data-testid="reregister" variant="secondary" onClick={renew} disabled={renewing}>
          {renewing ? 'Registering…' : 'Register again now'}
        </Button>
        {session.needsSignIn ? (
          <Button variant="ghost" onClick={() => session.beginSignIn()}>
            Sign in again
          </Button>
        ) : null}
      </div>
      <div aria-live="polite" className="text-sm">
        {renewing ? <Spinner label={session.connection === 'connected' ? 'Registering' : 'Waiting for the connection to register'} className="h-4 w-4" /> : null}
        {done ? <p className={done.ok ? 'text-green-700 dark:text-green-400' : 'text-red-600 dark:text-red-400'}>{done.text}</p> : null}
      </div>
    </section>
  );
}
