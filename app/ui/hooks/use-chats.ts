// Chats as the store has them, kept current by the client's events.
import { useEffect, useState } from 'react';
import type { ChatRecord, MessageRecord } from '../../../lib/store/types';
import { useClient } from '../../session/session';
import { useReload, type Reloaded } from './use-reload';

const CHAT_EVENTS = ['message', 'chat', 'update'] as const;

/** Every chat, newest first. */
export function useChats(): Reloaded<ChatRecord[]> {
  const client = useClient();
  return useReload(client, (c) => c.chats(), { events: CHAT_EVENTS, topics: ['chats'] });
}

/** One chat; `data` is null when there is no such chat. */
export function useChat(chatId: string): Reloaded<ChatRecord | null> {
  const client = useClient();
  return useReload(client, async (c) => (await c.chat(chatId)) ?? null, { events: CHAT_EVENTS, topics: ['chats'], deps: [chatId] });
}

/**
 * The current state of each chat's last message, by upper-case UUID: the chat record keeps the preview as first
 * stored, so an edit or an unsend would otherwise leave the old text in the list.
 */
export function useLastMessages(chats: ChatRecord[] | undefined): Map<string, MessageRecord> {
  const client = useClient();
  const [latest, setLatest] = useState<Map<string, MessageRecord>>(() => new Map());
  useEffect(() => {
    let live = true;
    const uuids = (chats ?? []).flatMap((c) => (c.lastMessage ? [c.lastMessage.uuid] : []));
    Promise.all(uuids.map((u) => client.message(u))).then(
      (found) => {
        if (live) setLatest(new Map(found.flatMap((m) => (m ? [[m.uuid.toUpperCase(), m] as const] : []))));
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [client, chats]);
  return latest;
}
