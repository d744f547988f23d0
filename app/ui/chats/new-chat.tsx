'use client';
// A new conversation: addresses typed (or picked from contacts as they are typed), looked up to show who is on
// iMessage, then a 1:1 chat or a group (optionally named) is opened.
import { useId, useMemo, useState, type FormEvent, type KeyboardEvent } from 'react';
import { useClient } from '../../session/session';
import { Button } from '../common/button';
import { notifyChanged } from '../hooks/local-changes';
import { useContacts } from '../hooks/use-contacts';
import { navigate } from '../shell/router';
import { Avatar } from './avatar';
import { describeFailure } from './failure';
import { displayHandle, handleId, splitHandles, toHandleUri } from './handles';

const MAX_SUGGESTIONS = 6;

const inputClass =
  'w-full rounded-lg border border-neutral-300 bg-white px-3 py-2 text-base text-neutral-900 placeholder:text-neutral-400 focus:border-accent focus:outline-2 focus:outline-accent/40 dark:border-neutral-700 dark:bg-neutral-900 dark:text-neutral-100';

export function NewChatPane() {
  const client = useClient();
  const contacts = useContacts();
  const ids = useId();
  const [text, setText] = useState('');
  const [groupName, setGroupName] = useState('');
  const [results, setResults] = useState<Map<string, boolean>>(() => new Map());
  const [busy, setBusy] = useState<'lookup' | 'start'>();
  const [error, setError] = useState<string>();
  const [active, setActive] = useState(-1);
  const [suggestOpen, setSuggestOpen] = useState(false);

  // Set on blur: until then the address being typed is not called invalid, only the finished ones.
  const [touched, setTouched] = useState(false);

  const typed = splitHandles(text);
  const invalid = typed.filter((t) => toHandleUri(t) === undefined);
  const finished = touched || /[\s,;]$/.test(text) ? typed : typed.slice(0, -1);
  const shownInvalid = finished.filter((t) => toHandleUri(t) === undefined);
  const handles = useMemo(() => {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const t of splitHandles(text)) {
      const uri = toHandleUri(t);
      if (uri && !seen.has(handleId(uri))) {
        seen.add(handleId(uri));
        out.push(uri);
      }
    }
    return out;
  }, [text]);
  const known = handles.filter((h) => results.has(h));
  const unreachable = known.filter((h) => results.get(h) === false);

  // Contacts whose name or address starts a word with what is being typed (the text after the last separator).
  const token = /[^\s,;]*$/.exec(text)?.[0] ?? '';
  const suggestions = useMemo(() => {
    const q = token.toLowerCase();
    if (q.length === 0) return [];
    const out: { key: string; name: string; handle: string; photo: string | undefined }[] = [];
    for (const c of contacts.contacts ?? []) {
      const nameHit = c.name.toLowerCase().split(/\s+/).some((w) => w.startsWith(q));
      for (const h of c.handles) {
        if (!nameHit && !displayHandle(h).toLowerCase().startsWith(q)) continue;
        if (handles.some((x) => handleId(x) === handleId(h))) continue;
        out.push({ key: `${c.id}|${h}`, name: c.name, handle: h, photo: contacts.photoOf(c) });
        if (out.length >= MAX_SUGGESTIONS) return out;
      }
    }
    return out;
  }, [token, contacts, handles]);
  const showSuggestions = suggestOpen && suggestions.length > 0;

  const pick = (handle: string) => {
    setText(`${text.slice(0, text.length - token.length)}${displayHandle(handle)}, `);
    setActive(-1);
  };

  const lookup = async () => {
    if (handles.length === 0 || invalid.length > 0) return;
    setBusy('lookup');
    setError(undefined);
    try {
      const found = await client.reachable(handles);
      setResults((old) => {
        const next = new Map(old);
        for (const h of handles) next.set(h, found.get(h) ?? false);
        return next;
      });
    } catch (e) {
      setError(describeFailure(e));
    } finally {
      setBusy(undefined);
    }
  };

  const start = async () => {
    if (handles.length === 0 || invalid.length > 0) return;
    if (unreachable.length > 0) {
      setError(`Not on iMessage: ${unreachable.map(displayHandle).join(', ')}. Remove them to start the conversation.`);
      return;
    }
    setBusy('start');
    setError(undefined);
    try {
      const name = groupName.trim();
      let chatId: string;
      if (handles.length === 1) {
        chatId = (await client.chatWith(handles[0]!)).id;
      } else {
        // An unnamed group with exactly these people is the existing one, as on Apple's devices.
        const wanted = new Set([...handles, ...client.handles.slice(0, 1)].map(handleId));
        const existing = name
          ? undefined
          : (await client.chats()).find(
              (c) => c.isGroup && c.participants.length === wanted.size && c.participants.every((p) => wanted.has(handleId(p))),
            );
        chatId = (existing ?? (await client.createGroup(handles, name || undefined))).id;
      }
      notifyChanged('chats');
      navigate({ name: 'chat', chatId });
    } catch (e) {
      setError(describeFailure(e));
      setBusy(undefined);
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (!showSuggestions) return;
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setActive((a) => (a + 1) % suggestions.length);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => (a <= 0 ? suggestions.length - 1 : a - 1));
    } else if (e.key === 'Enter' && active >= 0 && suggestions[active]) {
      e.preventDefault();
      pick(suggestions[active].handle);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      setSuggestOpen(false);
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void lookup();
  };

  return (
    <section aria-labelledby={`${ids}-title`} className="flex h-full min-h-0 flex-col overflow-y-auto">
      <header className="border-b border-neutral-200 px-4 py-3 dark:border-neutral-800">
        <h2 id={`${ids}-title`} className="text-xl font-semibold">
          New message
        </h2>
      </header>
      <form onSubmit={onSubmit} className="flex max-w-xl flex-col gap-4 p-4">
        <div className="relative flex flex-col gap-1">
          <label htmlFor={`${ids}-handles`} className="text-sm font-medium">
            To
          </label>
          <input
            id={`${ids}-handles`}
            data-testid="new-chat-handles"
            role="combobox"
            aria-expanded={showSuggestions}
            aria-controls={`${ids}-suggestions`}
            aria-autocomplete="list"
            aria-activedescendant={showSuggestions && active >= 0 ? `${ids}-s${active}` : undefined}
            aria-describedby={`${ids}-hint${shownInvalid.length > 0 ? ` ${ids}-invalid` : ''}`}
            aria-invalid={shownInvalid.length > 0 || undefined}
            autoComplete="off"
            autoFocus
            value={text}
            placeholder="name@example.com, +1 555 123 4567"
            onChange={(e) => {
              setText(e.target.value);
              setActive(-1);
              setSuggestOpen(true);
              setTouched(false);
              setError(undefined);
            }}
            onKeyDown={onKeyDown}
            onBlur={() => {
              setSuggestOpen(false);
              setTouched(true);
            }}
            className={inputClass}
          />
          <p id={`${ids}-hint`} className="text-xs text-neutral-600 dark:text-neutral-400">
            E-mail addresses or phone numbers with their country code, separated by commas or spaces.
          </p>
          {shownInvalid.length > 0 ? (
            <p id={`${ids}-invalid`} className="text-xs text-red-600 dark:text-red-400">
              Not an e-mail address or phone number: {shownInvalid.join(', ')}
            </p>
          ) : null}
          <ul
            id={`${ids}-suggestions`}
            role="listbox"
            aria-label="Contacts"
            hidden={!showSuggestions}
            className="absolute top-[4.5rem] z-10 w-full overflow-hidden rounded-lg border border-neutral-200 bg-white shadow-lg dark:border-neutral-700 dark:bg-neutral-900"
          >
            {suggestions.map((s, i) => (
              <li
                key={s.key}
                id={`${ids}-s${i}`}
                role="option"
                aria-selected={i === active}
                // Chosen on mousedown so the input keeps focus (a click would blur it and close the list first).
                onMouseDown={(e) => {
                  e.preventDefault();
                  pick(s.handle);
                }}
                className="flex cursor-pointer items-center gap-2 px-3 py-2 text-sm aria-selected:bg-accent/15 hover:bg-neutral-100 dark:hover:bg-neutral-800"
              >
                <Avatar name={s.name} photo={s.photo} className="h-7 w-7 text-xs" />
                <span className="font-medium">{s.name}</span>
                <span className="truncate text-neutral-600 dark:text-neutral-400">{displayHandle(s.handle)}</span>
              </li>
            ))}
          </ul>
        </div>
        <div className="flex gap-2">
          <Button type="submit" variant="secondary" data-testid="new-chat-lookup" disabled={busy !== undefined || handles.length === 0 || invalid.length > 0}>
            {busy === 'lookup' ? 'Looking up…' : 'Look up'}
          </Button>
        </div>
        {known.length > 0 ? (
          <ul aria-label="Who is on iMessage" className="flex flex-col divide-y divide-neutral-200 rounded-lg border border-neutral-200 dark:divide-neutral-800 dark:border-neutral-800">
            {known.map((h) => {
              const on = results.get(h) === true;
              return (
                <li key={h} data-testid="new-chat-reachable" data-handle={h} className="flex items-center gap-3 px-3 py-2 text-sm">
                  <Avatar name={contacts.nameFor(h)} photo={contacts.photoFor(h)} className="h-8 w-8 text-xs" />
                  <span className="min-w-0 flex-1">
                    <span className="block truncate font-medium">{contacts.nameFor(h)}</span>
                    {contacts.nameFor(h) !== displayHandle(h) ? (
                      <span className="block truncate text-xs text-neutral-600 dark:text-neutral-400">{displayHandle(h)}</span>
                    ) : null}
                  </span>
                  <span className={`shrink-0 text-xs font-medium ${on ? 'text-accent-ink dark:text-sky-400' : 'text-neutral-600 dark:text-neutral-400'}`}>
                    {on ? 'iMessage' : 'Not on iMessage'}
                  </span>
                </li>
              );
            })}
          </ul>
        ) : null}
        {handles.length >= 2 ? (
          <div className="flex flex-col gap-1">
            <label htmlFor={`${ids}-group`} className="text-sm font-medium">
              Group name (optional)
            </label>
            <input
              id={`${ids}-group`}
              data-testid="new-chat-group-name"
              value={groupName}
              maxLength={200}
              onChange={(e) => setGroupName(e.target.value)}
              className={inputClass}
            />
          </div>
        ) : null}
        <div aria-live="polite" className="text-sm">
          {error ? <p className="text-red-600 dark:text-red-400">{error}</p> : null}
        </div>
        <div>
          <Button data-testid="new-chat-start" disabled={busy !== undefined || handles.length === 0 || invalid.length > 0} onClick={() => void start()}>
            {busy === 'start' ? 'Starting…' : handles.length >= 2 ? 'Start group' : 'Start conversation'}
          </Button>
        </div>
      </form>
    </section>
  );
}
