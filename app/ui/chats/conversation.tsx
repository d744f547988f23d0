'use client';
// One conversation: header (title, details), the message timeline (day separators, bubbles, key-change notices,
// typing indicator), and the composer. It marks the chat read while visible, follows new messages to the bottom
// unless the user scrolled up, loads earlier pages at the top, and announces incoming messages to screen readers.
import { useCallback, useEffect, useId, useLayoutEffect, useMemo, useRef, useState } from 'react';
import type { TapbackReaction } from '../../../lib/imessage/tapback';
import type { MessageRecord } from '../../../lib/store/types';
import { useClient, useSession } from '../../session/session';
import { Spinner } from '../common/spinner';
import { formatDay, formatTime } from '../common/time';
import { notifyChanged } from '../hooks/local-changes';
import { useChat } from '../hooks/use-chats';
import { useContacts } from '../hooks/use-contacts';
import { useMessages } from '../hooks/use-messages';
import { useSecurityLog, type SecurityLogEntry } from '../hooks/use-security-log';
import { useTyping } from '../hooks/use-typing';
import { routeHref } from '../shell/router';
import { Avatar } from './avatar';
import { Composer } from './composer';
import { describeFailure } from './failure';
import { GroupInfo } from './group-info';
import { displayHandle, sameHandle } from './handles';
import { MessageItem } from './message-item';
import { chatTitle, isOwnHandle, messageText, otherParticipants, partText, replyOrigin } from './message-text';
import { TypingIndicator } from './typing-indicator';

/** A time heading goes above the first message of a day and after a pause this long. */
const TIME_GAP_MS = 60 * 60_000;
/** Within this distance of the bottom the view follows new messages. */
const NEAR_BOTTOM_PX = 120;
const NEAR_TOP_PX = 48;

type TimelineItem =
  | { kind: 'time'; key: string; at: number }
  | { kind: 'message'; key: string; message: MessageRecord; showSender: boolean }
  | { kind: 'key-change'; key: string; entry: SecurityLogEntry };

export function ConversationPane({ chatId }: { chatId: string }) {
  // A fresh instance per chat: no reply, edit or scroll state leaks from one chat into another.
  return <Conversation key={chatId} chatId={chatId} />;
}

function Conversation({ chatId }: { chatId: string }) {
  const client = useClient();
  const { connection } = useSession();
  const { data: chat } = useChat(chatId);
  const { messages, loaded, hasEarlier, loadingEarlier, error, loadEarlier } = useMessages(chatId);
  const typing = useTyping(chatId);
  const contacts = useContacts();
  const { data: securityLog } = useSecurityLog();
  const own = client.handles;
  const { nameFor } = contacts;

  const [showInfo, setShowInfo] = useState(false);
  const [editing, setEditing] = useState<string>();
  const [replyTo, setReplyTo] = useState<MessageRecord>();
  const [actionError, setActionError] = useState<string>();
  const [announcement, setAnnouncement] = useState('');
  const infoId = useId();
  const scrollRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const infoButtonRef = useRef<HTMLButtonElement>(null);

  // ---- read state: mark read while the page is visible. Every re-read of the chat (a new message arrived, a
  // mark finished) checks again, so a message that came in while a mark was under way is not left unread.
  const marking = useRef(false);
  useEffect(() => {
    if (!chat || chat.unreadCount === 0) return;
    const mark = () => {
      if (document.visibilityState !== 'visible' || marking.current) return;
      marking.current = true;
      client.markRead(chatId).then(
        () => {
          marking.current = false;
          notifyChanged('chats');
        },
        () => {
          marking.current = false;
        },
      );
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [client, chatId, chat]);

  // ---- the timeline
  const keyChanges = useMemo(() => {
    if (!chat || !securityLog) return [];
    const seen = new Set<string>();
    return securityLog.filter((e) => {
      if (e.kind !== 'key-changed' || e.own || !chat.participants.some((p) => sameHandle(p, e.handle))) return false;
      // One notice per person per minute, however many of their devices changed keys at once.
      const k = `${e.handle}|${Math.floor(e.at / 60_000)}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }, [chat, securityLog]);

  const timeline = useMemo(() => {
    const oldest = messages[0]?.time ?? -Infinity;
    const notices = keyChanges.filter((e) => !hasEarlier || e.at >= oldest).sort((a, b) => a.at - b.at);
    const items: TimelineItem[] = [];
    let lastTime: number | undefined;
    let lastSender: string | undefined;
    let n = 0;
    const heading = (at: number) => {
      if (lastTime === undefined || at - lastTime > TIME_GAP_MS || new Date(at).toDateString() !== new Date(lastTime).toDateString()) {
        items.push({ kind: 'time', key: `t${at}`, at });
        lastSender = undefined;
      }
      lastTime = at;
    };
    for (const m of messages) {
      while (n < notices.length && notices[n]!.at <= m.time) {
        const entry = notices[n++]!;
        heading(entry.at);
        items.push({ kind: 'key-change', key: `k${entry.id}`, entry });
        lastSender = undefined;
      }
      heading(m.time);
      const sender = m.fromMe ? '' : m.sender;
      items.push({ kind: 'message', key: m.uuid, message: m, showSender: !!chat?.isGroup && !m.fromMe && lastSender !== sender });
      lastSender = sender;
    }
    for (; n < notices.length; n++) {
      const entry = notices[n]!;
      heading(entry.at);
      items.push({ kind: 'key-change', key: `k${entry.id}`, entry });
    }
    return items;
  }, [messages, keyChanges, hasEarlier, chat?.isGroup]);

  const lastOwn = useMemo(() => [...messages].reverse().find((m) => m.fromMe && !m.unsent)?.uuid, [messages]);
  const byUuid = useMemo(() => new Map(messages.map((m) => [m.uuid.toUpperCase(), m])), [messages]);
  const findLoaded = useCallback((uuid: string) => byUuid.get(uuid.toUpperCase()), [byUuid]);

  // ---- scrolling: start at the bottom, follow new messages, keep the place when earlier ones are prepended.
  const nearBottom = useRef(true);
  // A message arrived while the user was reading further up: offer a way down instead of yanking the view.
  const [newBelow, setNewBelow] = useState(false);
  const shape = useRef<{ first?: string; last?: string; height: number; initial: boolean }>({ height: 0, initial: true });
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el || !loaded) return;
    const s = shape.current;
    const first = messages[0]?.uuid;
    const last = messages[messages.length - 1];
    if (s.initial) {
      el.scrollTop = el.scrollHeight;
      s.initial = false;
    } else if (first !== s.first && last?.uuid === s.last) {
      el.scrollTop += el.scrollHeight - s.height;
    } else if (last && last.uuid !== s.last) {
      if (nearBottom.current || last.fromMe) el.scrollTop = el.scrollHeight;
      else setNewBelow(true);
    }
    s.first = first;
    s.last = last?.uuid;
    s.height = el.scrollHeight;
  }, [messages, loaded]);
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && nearBottom.current) el.scrollTop = el.scrollHeight;
    if (el) shape.current.height = el.scrollHeight;
  }, [typing.length, keyChanges.length]);

  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    nearBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
    if (nearBottom.current) setNewBelow(false);
    if (el.scrollTop < NEAR_TOP_PX && hasEarlier && !loadingEarlier) loadEarlier();
  };

  // ---- screen reader announcements of incoming messages (not of the history loaded on open or paged in).
  const announced = useRef<{ ready: boolean; newest: number; known: Set<string> }>({ ready: false, newest: -Infinity, known: new Set() });
  useEffect(() => {
    if (!loaded) return;
    const a = announced.current;
    const fresh: MessageRecord[] = [];
    for (const m of messages) {
      if (a.known.has(m.uuid)) continue;
      a.known.add(m.uuid);
      if (a.ready && !m.fromMe && m.time >= a.newest) fresh.push(m);
    }
    for (const m of messages) a.newest = Math.max(a.newest, m.time);
    a.ready = true;
    const latest = fresh[fresh.length - 1];
    if (latest) setAnnouncement(`${nameFor(latest.sender)}: ${messageText(latest)}`);
  }, [messages, loaded, nameFor]);

  // ---- actions
  const fail = (e: unknown) => setActionError(describeFailure(e));
  const send = async (text: string) => {
    const reply = replyTo;
    setReplyTo(undefined);
    nearBottom.current = true;
    try {
      await client.sendText(chatId, text, reply ? { replyTo: { uuid: reply.uuid, part: 0 } } : {});
    } catch (e) {
      setReplyTo(reply);
      throw e;
    }
  };
  const sendAgain = (m: MessageRecord) => {
    const origin = replyOrigin(m);
    client.sendText(chatId, messageText(m), origin ? { replyTo: { uuid: origin.uuid, part: origin.part } } : {}).catch(fail);
  };
  const tapback = (m: MessageRecord, reaction: TapbackReaction, remove: boolean) => {
    client.sendTapback(m.uuid, reaction, { part: 0, remove }).catch(fail);
  };
  const saveEdit = (m: MessageRecord, text: string) => {
    client.edit(m.uuid, text, 0).then(() => setEditing(undefined), fail);
  };
  const unsend = (m: MessageRecord) => {
    client.unsend(m.uuid).catch(fail);
  };
  const startReply = (m: MessageRecord) => {
    setReplyTo(m);
    inputRef.current?.focus();
  };
  const jumpTo = (uuid: string) => {
    const el = scrollRef.current?.querySelector(`[data-uuid="${CSS.escape(findLoaded(uuid)?.uuid ?? uuid)}"]`);
    el?.scrollIntoView({ block: 'center', behavior: 'smooth' });
  };

  if (chat === null) {
    return (
      <section className="flex h-full flex-col items-center justify-center gap-2 p-8 text-center">
        <p>This conversation is not on this device.</p>
        <a href={routeHref({ name: 'chats' })} className="font-medium text-accent-ink underline dark:text-sky-400">
          Back to chats
        </a>
      </section>
    );
  }

  const title = chat ? chatTitle(chat, own, nameFor) : '';
  const others = chat ? otherParticipants(chat, own) : [];
  const handleLine = others[0] ? displayHandle(others[0]) : '';
  const subtitle = !chat ? '' : chat.isGroup ? `${chat.participants.length} people` : handleLine !== title ? handleLine : '';
  const photo = chat && !chat.isGroup && others[0] ? contacts.photoFor(others[0]) : undefined;

  return (
    <section aria-labelledby={`${infoId}-title`} className="flex h-full min-h-0 flex-col">
      <header className="flex items-center gap-3 border-b border-neutral-200 px-3 py-2 dark:border-neutral-800">
        <a
          href={routeHref({ name: 'chats' })}
          className="rounded-full px-2 py-1 text-accent-ink hover:bg-neutral-100 focus-visible:outline-2 focus-visible:outline-accent md:hidden dark:text-sky-400 dark:hover:bg-neutral-800"
        >
          <span aria-hidden="true">‹ </span>Chats
        </a>
        <Avatar name={title || '…'} photo={photo} className="h-9 w-9 text-sm" />
        <div className="min-w-0 flex-1">
          <h2 id={`${infoId}-title`} data-testid="conversation-title" className="truncate font-semibold">
            {title}
          </h2>
          <p className="truncate text-xs text-neutral-600 dark:text-neutral-400">{subtitle}</p>
        </div>
        <button
          type="button"
          ref={infoButtonRef}
          data-testid="group-info"
          aria-expanded={showInfo}
          aria-controls={infoId}
          onClick={() => setShowInfo((s) => !s)}
          className="rounded-full px-3 py-1 text-sm font-medium text-accent-ink hover:bg-neutral-100 focus-visible:outline-2 focus-visible:outline-accent dark:text-sky-400 dark:hover:bg-neutral-800"
        >
          {chat?.isGroup ? 'Group info' : 'Details'}
        </button>
      </header>
      {showInfo && chat ? (
        // Escape closes the panel, like a menu, and hands focus back to the button that opened it.
        <div
          onKeyDown={(e) => {
            if (e.key !== 'Escape') return;
            e.stopPropagation();
            setShowInfo(false);
            infoButtonRef.current?.focus();
          }}
        >
          <GroupInfo id={infoId} chat={chat} ownHandles={own} nameFor={nameFor} />
        </div>
      ) : null}
      {actionError ? (
        <div role="alert" className="flex items-start gap-2 bg-red-50 px-4 py-2 text-sm text-red-700 dark:bg-red-950/50 dark:text-red-300">
          <p className="flex-1">{actionError}</p>
          <button type="button" onClick={() => setActionError(undefined)} className="font-medium underline focus-visible:outline-2 focus-visible:outline-accent">
            Dismiss
          </button>
        </div>
      ) : null}
      <div className="relative flex min-h-0 flex-1 flex-col">
        <div ref={scrollRef} onScroll={onScroll} className="min-h-0 flex-1 overflow-y-auto py-3">
          {!loaded ? (
            <div className="flex justify-center p-6">
              <Spinner label="Loading messages" />
            </div>
          ) : (
            <>
              {hasEarlier ? (
                <div className="flex justify-center pb-2">
                  <button
                    type="button"
                    onClick={loadEarlier}
                    disabled={loadingEarlier}
                    className="rounded-full px-3 py-1 text-xs font-medium text-accent-ink hover:bg-neutral-100 focus-visible:outline-2 focus-visible:outline-accent disabled:opacity-50 dark:text-sky-400 dark:hover:bg-neutral-800"
                  >
                    {loadingEarlier ? 'Loading…' : 'Load earlier messages'}
                  </button>
                </div>
              ) : null}
              {error !== undefined ? (
                <p role="alert" className="px-4 pb-2 text-center text-sm text-red-600 dark:text-red-400">
                  {describeFailure(error)}
                </p>
              ) : null}
              {timeline.length === 0 ? <p className="p-8 text-center text-sm text-neutral-600 dark:text-neutral-400">No messages yet.</p> : null}
              <ol aria-label="Messages" className="flex flex-col gap-1">
                {timeline.map((item) =>
                  item.kind === 'time' ? (
                    <li key={item.key} className="pb-1 pt-3 text-center text-xs text-neutral-600 dark:text-neutral-400">
                      <time dateTime={new Date(item.at).toISOString()}>
                        <span className="font-medium">{formatDay(item.at)}</span> {formatTime(item.at)}
                      </time>
                    </li>
                  ) : item.kind === 'key-change' ? (
                    <li key={item.key} data-testid="key-change-notice" className="px-6 py-1 text-center text-xs text-neutral-600 dark:text-neutral-400">
                        {nameFor(item.entry.handle)}’s security code changed.{' '}
                      <a href={routeHref({ name: 'security' })} className="font-medium text-accent-ink underline dark:text-sky-400">
                        Verify
                      </a>
                    </li>
                  ) : (
                    <MessageItem
                      key={item.key}
                      message={item.message}
                      ownHandles={own}
                      nameFor={nameFor}
                      showSender={item.showSender}
                      showStatus={item.message.uuid === lastOwn}
                      offline={connection !== 'connected'}
                      findLoaded={findLoaded}
                      editing={editing === item.message.uuid}
                      onStartEdit={() => setEditing(item.message.uuid)}
                      onCancelEdit={() => setEditing(undefined)}
                      onSaveEdit={(text) => saveEdit(item.message, text)}
                      onReply={() => startReply(item.message)}
                      onTapback={(reaction, remove) => tapback(item.message, reaction, remove)}
                      onUnsend={() => unsend(item.message)}
                      onSendAgain={() => sendAgain(item.message)}
                      onJumpTo={jumpTo}
                    />
                  ),
                )}
              </ol>
              {typing.length > 0 ? <TypingIndicator names={typing.map(nameFor)} /> : null}
            </>
          )}
        </div>
        {newBelow ? (
          <button
            type="button"
            onClick={() => {
              const el = scrollRef.current;
              if (el) el.scrollTo({ top: el.scrollHeight, behavior: 'smooth' });
              setNewBelow(false);
            }}
            className="absolute bottom-3 left-1/2 -translate-x-1/2 rounded-full bg-accent px-4 py-1.5 text-sm font-medium text-white shadow-lg focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-accent"
          >
            New messages <span aria-hidden="true">↓</span>
          </button>
        ) : null}
      </div>
      <div aria-live="polite" aria-atomic="true" className="sr-only">
        {announcement}
      </div>
      {chat && !chat.participants.some((p) => isOwnHandle(own, p)) ? (
        <p className="border-t border-neutral-200 px-4 py-3 text-center text-sm text-neutral-600 dark:border-neutral-800 dark:text-neutral-400">
          You are no longer in this conversation.
        </p>
      ) : (
        <Composer
          chatId={chatId}
          inputRef={inputRef}
          replyingTo={replyTo ? { name: replyTo.fromMe || isOwnHandle(own, replyTo.sender) ? 'yourself' : nameFor(replyTo.sender), text: partText(replyTo, 0) } : undefined}
          onCancelReply={() => setReplyTo(undefined)}
          onSend={send}
        />
      )}
    </section>
  );
}
