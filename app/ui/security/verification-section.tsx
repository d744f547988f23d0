'use client';
// A security code per person: derived from both sides' device keys, so two people who read out the same digits
// know that no extra device is listening in on their conversation.
import { useEffect, useId, useMemo, useState } from 'react';
import { useClient } from '../../session/session';
import { Button } from '../common/button';
import { Spinner } from '../common/spinner';
import { describeFailure } from '../chats/failure';
import { displayHandle, handleId } from '../chats/handles';
import { isOwnHandle } from '../chats/message-text';
import { useChats } from '../hooks/use-chats';
import { useContacts } from '../hooks/use-contacts';

const GROUP = 5;

/** 60 digits → 12 groups of 5; anything else is grouped the same way as it is. */
function groups(code: string): string[] {
  const digits = code.replace(/\s+/g, '');
  const out: string[] = [];
  for (let i = 0; i < digits.length; i += GROUP) out.push(digits.slice(i, i + GROUP));
  return out;
}

type CodeState =
  | { kind: 'loading' }
  | { kind: 'none' }
  | { kind: 'error'; message: string }
  | { kind: 'code'; code: string; ownDevices: number; theirDevices: number };

export function VerificationSection({ headingId }: { headingId: string }) {
  const client = useClient();
  const { data: chats } = useChats();
  const contacts = useContacts();
  const selectId = useId();
  const [handle, setHandle] = useState('');
  const [state, setState] = useState<CodeState>();
  const [round, setRound] = useState(0);

  // Everyone the user chats with or has as a contact, once each, by name.
  const people = useMemo(() => {
    const own = client.handles;
    const seen = new Map<string, string>();
    for (const c of chats ?? []) for (const p of c.participants) if (!isOwnHandle(own, p) && !seen.has(handleId(p))) seen.set(handleId(p), p);
    for (const c of contacts.contacts ?? []) for (const h of c.handles) if (!isOwnHandle(own, h) && !seen.has(handleId(h))) seen.set(handleId(h), h);
    return [...seen.values()]
      .map((h) => ({ handle: h, label: `${contacts.nameFor(h)} (${displayHandle(h)})` }))
      .sort((a, b) => a.label.localeCompare(b.label));
  }, [client, chats, contacts]);

  useEffect(() => {
    if (!handle) {
      setState(undefined);
      return;
    }
    let live = true;
    setState({ kind: 'loading' });
    client.verificationCode(handle).then(
      (r) => live && setState(r ? { kind: 'code', ...r } : { kind: 'none' }),
      (e: unknown) => live && setState({ kind: 'error', message: describeFailure(e) }),
    );
    return () => {
      live = false;
    };
  }, [client, handle, round]);

  const lookUp = () => {
    setState({ kind: 'loading' });
    client.reachable([handle]).then(
      () => setRound((r) => r + 1),
      (e: unknown) => setState({ kind: 'error', message: describeFailure(e) }),
    );
  };

  const name = handle ? contacts.nameFor(handle) : '';

  return (
    <section aria-labelledby={headingId} className="flex flex-col gap-2">
      <h3 id={headingId} className="text-lg font-semibold">
        Verify a contact
      </h3>
      <div className="flex flex-col gap-1">
        <label htmlFor={selectId} className="text-sm font-medium">
          Person
        </label>
        <select
          id={selectId}
          value={handle}
          onChange={(e) => setHandle(e.target.value)}
          className="max-w-md rounded-lg border border-neutral-300 bg-white px-3 py-2 text-sm focus:border-accent focus:outline-2 focus:outline-accent/40 dark:border-neutral-700 dark:bg-neutral-900"
        >
          <option value="">Choose someone…</option>
          {people.map((p) => (
            <option key={p.handle} value={p.handle}>
              {p.label}
            </option>
          ))}
        </select>
      </div>
      <div aria-live="polite">
        {state?.kind === 'loading' ? <Spinner label="Computing the code" /> : null}
        {state?.kind === 'error' ? <p className="text-sm text-red-600 dark:text-red-400">{state.message}</p> : null}
        {state?.kind === 'none' ? (
          <div className="flex flex-wrap items-center gap-2 text-sm">
            <p>No keys for {name} are known on this device yet.</p>
            <Button variant="secondary" onClick={lookUp}>
              Look up their keys
            </Button>
          </div>
        ) : null}
        {state?.kind === 'code' ? (
          <div className="flex flex-col gap-2">
            <p
              data-testid="verification-code"
              aria-label={`Security code with ${name}: ${groups(state.code).join(', ')}`}
              className="grid max-w-md grid-cols-4 gap-x-4 gap-y-1 rounded-lg bg-neutral-100 p-4 font-mono text-lg tracking-wider dark:bg-neutral-900"
            >
              {groups(state.code).map((g, i) => (
                <span key={i}>{g} </span>
              ))}
            </p>
            <p className="max-w-prose text-sm text-neutral-600 dark:text-neutral-400">
              Compare this code with the one {name}’s device shows for you, in person or on a call you trust. If all 60
              digits match, your messages reach only your devices and theirs. The code covers your {state.ownDevices}{' '}
              device{state.ownDevices === 1 ? '' : 's'} and their {state.theirDevices}; it changes whenever either of you
              adds a device or a device gets new keys.
            </p>
          </div>
        ) : null}
      </div>
    </section>
  );
}
