// The notifications for messages the service worker fetched: one per chat, titled with the sender's name from the
// local contacts (else the handle), the text as the body, tagged by chat so a newer one replaces the older one
// (keeping its last lines), and opening the conversation when clicked. Everything here is computed on the device.
import type { ContactBook } from '../../lib/client/contacts';
import { displayHandle } from '../ui/chats/handles';
import type { ReceivedMessage } from './fetch-waiting';

export interface MessageNotification {
  title: string;
  options: NotificationOptions & { tag: string; data: NotificationData };
}

export interface NotificationData {
  /** The screen a click opens (see the notificationclick handler). */
  url: string;
  /** The body's lines, so the next notification of the chat can keep them. */
  lines: string[];
}

const MAX_LINES = 4;
const MAX_LINE_CHARS = 180;

export function chatTag(chatId: string): string {
  return `chat:${chatId}`;
}

/** The app's hash route to a conversation (app/ui/shell/router.ts: '#/chat/<encodeURIComponent(id)>'). */
export function chatUrl(chatId: string): string {
  return `/#/chat/${encodeURIComponent(chatId)}`;
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > MAX_LINE_CHARS ? `${one.slice(0, MAX_LINE_CHARS - 1)}…` : one;
}

function textOf(m: ReceivedMessage['message']): string {
  return m.text !== undefined && m.text.trim() !== '' ? clip(m.text) : 'Sent an attachment';
}

/**
 * The notifications for `received` (arrival order), one per chat. `previous` gives the lines a still-shown
 * notification of the chat holds, which the new one continues.
 */
export async function messageNotifications(
  received: readonly ReceivedMessage[],
  contacts: Pick<ContactBook, 'forHandle'>,
  previous: (tag: string) => Promise<string[]>,
): Promise<MessageNotification[]> {
  const byChat = new Map<string, ReceivedMessage[]>();
  for (const r of received) byChat.set(r.chat.id, [...(byChat.get(r.chat.id) ?? []), r]);
  const names = new Map<string, string>();
  const nameOf = async (handle: string): Promise<string> => {
    let name = names.get(handle);
    if (name === undefined) {
      name = (await contacts.forHandle(handle).catch(() => undefined))?.name ?? displayHandle(handle);
      names.set(handle, name);
    }
    return name;
  };
  const out: MessageNotification[] = [];
  for (const [chatId, items] of byChat) {
    const last = items[items.length - 1]!;
    const chat = last.chat;
    const tag = chatTag(chatId);
    const fresh: string[] = [];
    // In a group every line says who wrote it; in a 1:1 chat the title does.
    for (const { message } of items) fresh.push(chat.isGroup ? `${await nameOf(message.sender)}: ${textOf(message)}` : textOf(message));
    const lines = [...(await previous(tag)), ...fresh].slice(-MAX_LINES);
    const title = chat.isGroup ? (chat.name ?? `${await nameOf(last.message.sender)} in a group`) : await nameOf(last.message.sender);
    out.push({
      title,
      options: {
        body: lines.join('\n'),
        tag,
        icon: '/icons/icon-192.png',
        data: { url: chatUrl(chatId), lines },
      },
    });
  }
  return out;
}

/** The lines the notification with `tag` shows now, if it is still shown: what the next one of the chat continues. */
export function shownLines(registration: ServiceWorkerRegistration): (tag: string) => Promise<string[]> {
  return async (tag) => {
    const [shown] = await registration.getNotifications({ tag });
    const lines = (shown?.data as Partial<NotificationData> | null | undefined)?.lines;
    return Array.isArray(lines) ? lines.filter((l): l is string => typeof l === 'string') : [];
  };
}
