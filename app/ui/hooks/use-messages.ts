// A chat's messages, paginated: the newest page first, earlier pages on request. New messages are appended from the
// client's `message` events and changed ones (status, tapback, edit, unsend) replaced in place from `update` and
// `status` events, so the list never re-reads what it already holds.
import { useCallback, useEffect, useRef, useState } from 'react';
import type { MessageRecord } from '../../../lib/store/types';
import { useClient } from '../../session/session';

export const PAGE_SIZE = 50;

export interface ChatMessages {
  /** Oldest first. */
  messages: MessageRecord[];
  /** False until the first page is in. */
  loaded: boolean;
  /** The store may hold older messages than the ones shown. */
  hasEarlier: boolean;
  loadingEarlier: boolean;
  error: unknown;
  loadEarlier(): void;
}

const key = (uuid: string) => uuid.toUpperCase();

function byTime(a: MessageRecord, b: MessageRecord): number {
  return a.time - b.time || (key(a.uuid) < key(b.uuid) ? -1 : key(a.uuid) > key(b.uuid) ? 1 : 0);
}

/** Adds or replaces by UUID; `onlyKnown` replaces but never adds. */
function merge(list: MessageRecord[], incoming: MessageRecord[], onlyKnown = false): MessageRecord[] {
  const map = new Map(list.map((m) => [key(m.uuid), m]));
  let changed = false;
  for (const m of incoming) {
    if (onlyKnown && !map.has(key(m.uuid))) continue;
    map.set(key(m.uuid), m);
    changed = true;
  }
  return changed ? [...map.values()].sort(byTime) : list;
}

export function useMessages(chatId: string): ChatMessages {
  const client = useClient();
  const [messages, setMessages] = useState<MessageRecord[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [hasEarlier, setHasEarlier] = useState(false);
  const [loadingEarlier, setLoadingEarlier] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  // Which chat the async results belong to; a result for an earlier chat is dropped.
  const current = useRef(chatId);
  current.current = chatId;
  const listRef = useRef(messages);
  listRef.current = messages;

  useEffect(() => {
    setMessages([]);
    setLoaded(false);
    setHasEarlier(false);
    setLoadingEarlier(false);
    setError(undefined);
    // Listen before reading, so a message stored while the first page loads is not missed.
    const offs = [
      client.on('message', (e) => {
        if (e.message.chatId === chatId) setMessages((list) => merge(list, [e.message]));
      }),
      client.on('update', (e) => {
        if (e.message.chatId === chatId) setMessages((list) => merge(list, [e.message], true));
      }),
      client.on('status', (e) => {
        if (e.message.chatId === chatId) setMessages((list) => merge(list, [e.message], true));
      }),
    ];
    client.messages(chatId, { limit: PAGE_SIZE }).then(
      (page) => {
        if (current.current !== chatId) return;
        setMessages((list) => merge(list, page));
        setHasEarlier(page.length === PAGE_SIZE);
        setLoaded(true);
      },
      (e: unknown) => {
        if (current.current !== chatId) return;
        setError(e);
        setLoaded(true);
      },
    );
    return () => {
      for (const off of offs) off();
    };
  }, [client, chatId]);

  const loadEarlier = useCallback(() => {
    const oldest = listRef.current[0];
    if (!oldest || loadingEarlier) return;
    setLoadingEarlier(true);
    client.messages(chatId, { limit: PAGE_SIZE, before: { time: oldest.time, uuid: oldest.uuid } }).then(
      (page) => {
        if (current.current !== chatId) return;
        setMessages((list) => merge(list, page));
        setHasEarlier(page.length === PAGE_SIZE);
        setLoadingEarlier(false);
      },
      (e: unknown) => {
        if (current.current !== chatId) return;
        setError(e);
        setLoadingEarlier(false);
      },
    );
  }, [client, chatId, loadingEarlier]);

  return { messages, loaded, hasEarlier, loadingEarlier, error, loadEarlier };
}
