'use client';
// Chat details under the conversation header. For a group: rename, its members (each removable) and adding
// members by address; for a 1:1 chat: who it is with and where to compare security codes.
import { useState, type FormEvent } from 'react';
import type { ChatRecord } from '../../../lib/store/types';
import { useClient } from '../../session/session';
import { Button } from '../common/button';
import { notifyChanged } from '../hooks/local-changes';
import { routeHref } from '../shell/router';
import { describeFailure } from './failure';
import { displayHandle, splitHandles, toHandleUri } from './handles';
import { isOwnHandle } from './message-text';

export interface GroupInfoProps {
  id: string;
  chat: ChatRecord;
  ownHandles: readonly string[];
  nameFor(handle: string): string;
}

const inputClass =
  'min-w-0 flex-1 rounded-lg border border-neutral-300 bg-white px-3 py-1.5 text-sm text-neutral-900 focus:border-accent focus:outline-2 focus:outline-accent/40 dark:border-neutral-700 dark:bg-neutral-900 dark:text-neutral-100';

export function GroupInfo({ id, chat, ownHandles, nameFor }: GroupInfoProps) {
  const client = useClient();
  const [name, setName] = useState(chat.name ?? '');
  const [adding, setAdding] = useState('');
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();

  const act = async (label: string, action: () => Promise<string | undefined>) => {
    setBusy(label);
    setError(undefined);
    setNotice(undefined);
    try {
      const done = await action();
      if (done) setNotice(done);
      notifyChanged('chats');
    } catch (e) {
      setError(describeFailure(e));
    } finally {
      setBusy(undefined);
    }
  };

  const rename = (e: FormEvent) => {
    e.preventDefault();
    const next = name.trim();
    if (next === '' || next === chat.name) return;
    void act('rename', async () => {
      await client.renameGroup(chat.id, next);
      return `Renamed to “${next}”.`;
    });
  };

  const add = (e: FormEvent) => {
    e.preventDefault();
    const typed = splitHandles(adding);
    const uris = typed.map(toHandleUri);
    const bad = typed.filter((_, i) => uris[i] === undefined);
    if (bad.length > 0 || typed.length === 0) {
      setError(bad.length > 0 ? `Not an e-mail address or phone number: ${bad.join(', ')}` : 'Type an e-mail address or phone number.');
      return;
    }
    void act('add', async () => {
      const handles = uris as string[];
      const reachable = await client.reachable(handles);
      const off = handles.filter((h) => !reachable.get(h));
      if (off.length > 0) {
        setError(`Not on iMessage: ${off.map(displayHandle).join(', ')}`);
        return undefined;
      }
      await client.addMembers(chat.id, handles);
      setAdding('');
      return `Added ${handles.map(nameFor).join(', ')}.`;
    });
  };

  // As when a group is created: at least two people besides this account.
  const canRemove = chat.participants.length > 3;

  const remove = (handle: string) =>
    void act(`remove:${handle}`, async () => {
      await client.removeMembers(chat.id, [handle]);
      return `Removed ${nameFor(handle)}.`;
    });

  return (
    <section id={id} aria-label="Chat details" className="flex max-h-[50vh] flex-col gap-4 overflow-y-auto border-b border-neutral-200 bg-neutral-50 p-4 dark:border-neutral-800 dark:bg-neutral-900/60">
      {chat.isGroup ? (
        <form onSubmit={rename} className="flex flex-col gap-1">
          <label htmlFor={`${id}-name`} className="text-sm font-medium">
            Group name
          </label>
          <div className="flex gap-2">
            <input id={`${id}-name`} data-testid="group-name-input" value={name} onChange={(e) => setName(e.target.value)} maxLength={200} className={inputClass} />
            <Button type="submit" data-testid="group-rename-save" disabled={busy !== undefined || name.trim() === '' || name.trim() === chat.name}>
              Rename
            </Button>
          </div>
        </form>
      ) : null}
      <div>
        <h3 className="mb-1 text-sm font-medium">{chat.isGroup ? `Members (${chat.participants.length})` : 'With'}</h3>
        <ul className="flex flex-col divide-y divide-neutral-200 rounded-lg border border-neutral-200 bg-white dark:divide-neutral-800 dark:border-neutral-800 dark:bg-neutral-950">
          {chat.participants.map((handle) => {
            const own = isOwnHandle(ownHandles, handle);
            return (
              <li key={handle} data-testid="group-member" data-handle={handle} className="flex items-center gap-2 px-3 py-2 text-sm">
                <span className="min-w-0 flex-1">
                  <span className="block truncate font-medium">{own ? 'You' : nameFor(handle)}</span>
                  {own || nameFor(handle) !== displayHandle(handle) ? (
                    <span className="block truncate text-xs text-neutral-600 dark:text-neutral-400">{displayHandle(handle)}</span>
                  ) : null}
                </span>
                {chat.isGroup && !own ? (
                  <Button
                    variant="ghost"
                    data-testid="group-member-remove"
                    aria-label={`Remove ${nameFor(handle)}`}
                    disabled={busy !== undefined || !canRemove}
                    onClick={() => remove(handle)}
                    className="!px-2 !py-1 text-red-600 dark:text-red-400"
                  >
                    Remove
                  </Button>
                ) : null}
              </li>
            );
          })}
        </ul>
        {chat.isGroup && !canRemove ? (
          <p className="mt-1 text-xs text-neutral-600 dark:text-neutral-400">A group keeps at least two people besides you; add someone before removing a member.</p>
        ) : null}
      </div>
      {chat.isGroup ? (
        <form onSubmit={add} className="flex flex-col gap-1">
          <label htmlFor={`${id}-add`} className="text-sm font-medium">
            Add people
          </label>
          <div className="flex gap-2">
            <input
              id={`${id}-add`}
              data-testid="group-add-input"
              value={adding}
              onChange={(e) => setAdding(e.target.value)}
              placeholder="name@example.com, +1 555 123 4567"
              autoComplete="off"
              className={inputClass}
            />
            <Button type="submit" data-testid="group-add-save" disabled={busy !== undefined || adding.trim() === ''}>
              Add
            </Button>
          </div>
        </form>
      ) : (
        <p className="text-sm text-neutral-600 dark:text-neutral-400">
          To make sure nobody else reads along, compare security codes on the{' '}
          <a href={routeHref({ name: 'security' })} className="font-medium text-accent-ink underline dark:text-sky-400">
            Security
          </a>{' '}
          screen.
        </p>
      )}
      <div aria-live="polite" className="text-sm">
        {busy ? <p className="text-neutral-600 dark:text-neutral-400">Working…</p> : null}
        {notice ? <p className="text-green-700 dark:text-green-400">{notice}</p> : null}
      </div>
      {error ? (
        <p role="alert" className="text-sm text-red-600 dark:text-red-400">
          {error}
        </p>
      ) : null}
    </section>
  );
}
