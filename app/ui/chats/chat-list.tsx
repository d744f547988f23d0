'use client';
// The chat list: newest first, each row a link to its conversation with picture, name, last message, time and
// unread count. Arrow keys move between rows (Home/End to the ends); Tab leaves the list.
import type { KeyboardEvent } from 'react';
import { formatListTime } from '../common/time';
import { Spinner } from '../common/spinner';
import { useChats, useLastMessages } from '../hooks/use-chats';
import { useContacts } from '../hooks/use-contacts';
import { routeHref, useRoute } from '../shell/router';
import { useClient } from '../../session/session';
import { Avatar } from './avatar';
import { chatTitle, isOwnHandle, messageText, otherParticipants } from './message-text';

function moveFocus(e: KeyboardEvent<HTMLUListElement>): void {
  const rows = [...e.currentTarget.querySelectorAll<HTMLAnchorElement>('a[data-testid="chat-row"]')];
  const at = rows.indexOf(document.activeElement as HTMLAnchorElement);
  const target =
    e.key === 'ArrowDown' ? rows[Math.min(at + 1, rows.length - 1)]
    : e.key === 'ArrowUp' ? rows[Math.max(at - 1, 0)]
    : e.key === 'Home' ? rows[0]
    : e.key === 'End' ? rows[rows.length - 1]
    : undefined;
  if (!target) return;
  e.preventDefault();
  target.focus();
}

export function ChatListPane() {
  const client = useClient();
  const { data: chats, error } = useChats();
  const contacts = useContacts();
  const latest = useLastMessages(chats);
  const route = useRoute();
  const own = client.handles;
  const selected = route.name === 'chat' ? route.chatId : undefined;

  return (
    <section aria-labelledby="chat-list-title" className="flex h-full min-h-0 flex-col">
      <header className="flex items-center justify-between border-b border-neutral-200 px-4 py-3 dark:border-neutral-800">
        <h2 id="chat-list-title" className="text-xl font-semibold">
          Messages
        </h2>
        <a
          href={routeHref({ name: 'new-chat' })}
          className="rounded-full px-3 py-1 text-sm font-medium text-accent-ink hover:bg-neutral-100 focus-visible:outline-2 focus-visible:outline-accent dark:text-sky-400 dark:hover:bg-neutral-800"
        >
          New message
        </a>
      </header>
      {error !== undefined && chats === undefined ? (
        <p role="alert" className="p-4 text-sm text-red-600 dark:text-red-400">
          The chats could not be read from this device's storage.
        </p>
      ) : chats === undefined ? (
        <div className="flex justify-center p-6">
          <Spinner label="Loading chats" />
        </div>
      ) : chats.length === 0 ? (
        <div className="flex flex-col items-center gap-2 p-8 text-center text-sm text-neutral-600 dark:text-neutral-400">
          <p>No conversations yet.</p>
          <a href={routeHref({ name: 'new-chat' })} className="font-medium text-accent-ink underline dark:text-sky-400">
            Start one
          </a>
        </div>
      ) : (
        <ul aria-label="Chats" onKeyDown={moveFocus} className="min-h-0 flex-1 overflow-y-auto">
          {chats.map((chat) => {
            const title = chatTitle(chat, own, contacts.nameFor);
            const others = otherParticipants(chat, own);
            const photo = !chat.isGroup && others[0] ? contacts.photoFor(others[0]) : undefined;
            const last = chat.lastMessage;
            const current = last ? latest.get(last.uuid.toUpperCase()) : undefined;
            const lastFromMe = last ? isOwnHandle(own, last.sender) : false;
            const from = last && chat.isGroup && !lastFromMe && !current?.unsent ? `${contacts.nameFor(last.sender)}: ` : '';
            const preview = current?.unsent
              ? `${lastFromMe ? 'You' : contacts.nameFor(current.sender)} unsent a message`
              : current && current.edits.length > 0
                ? messageText(current)
                : (last?.preview ?? '');
            const unread = chat.unreadCount > 0;
            return (
              <li key={chat.id}>
                <a
                  href={routeHref({ name: 'chat', chatId: chat.id })}
                  data-testid="chat-row"
                  data-chat-id={chat.id}
                  aria-current={chat.id === selected ? 'page' : undefined}
                  className="flex items-center gap-3 border-b border-neutral-100 px-4 py-3 hover:bg-neutral-50 focus-visible:outline-2 focus-visible:-outline-offset-2 focus-visible:outline-accent aria-[current=page]:bg-accent/10 dark:border-neutral-900 dark:hover:bg-neutral-900 dark:aria-[current=page]:bg-accent/20"
                >
                  <Avatar name={title} photo={photo} className="h-12 w-12 text-base" />
                  <span className="flex min-w-0 flex-1 flex-col">
                    <span className="flex items-baseline justify-between gap-2">
                      <span data-testid="chat-row-name" className={`truncate ${unread ? 'font-semibold' : 'font-medium'}`}>
                        {title}
                      </span>
                      {last ? (
                        <time dateTime={new Date(last.time).toISOString()} className="shrink-0 text-xs text-neutral-600 dark:text-neutral-400">
                          {formatListTime(last.time)}
                        </time>
                      ) : null}
                    </span>
                    <span className="flex items-center justify-between gap-2">
                      <span className="truncate text-sm text-neutral-600 dark:text-neutral-400">
                        {from}
                        <span data-testid="chat-row-preview" className={current?.unsent ? 'italic' : undefined}>
                          {preview}
                        </span>
                      </span>
                      {unread ? (
                        <>
                          <span
                            data-testid="chat-row-unread"
                            aria-hidden="true"
                            className="shrink-0 rounded-full bg-accent px-2 py-0.5 text-xs font-semibold text-white"
                          >
                            {chat.unreadCount}
                          </span>
                          <span className="sr-only">{chat.unreadCount} unread</span>
                        </>
                      ) : null}
                    </span>
                  </span>
                </a>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
