'use client';
// One message in the conversation: the bubble (blue and right for own messages, grey and left for others), the
// sender's name in groups, a quoted preview of what it replies to, tapback badges, "Edited", the unsent notice,
// the delivery status, the action menu and the inline editor.
import { useEffect, useState, type ReactNode } from 'react';
import type { ThreadOrigin } from '../../../lib/imessage/message';
import type { TapbackReaction } from '../../../lib/imessage/tapback';
import type { MessageRecord, MessageStatus } from '../../../lib/store/types';
import { useClient } from '../../session/session';
import { MessageActions } from './message-actions';
import { isOwnHandle, messageText, partText, replyOrigin, tapbackEmoji, TAPBACKS } from './message-text';

const STATUS_TEXT: Record<MessageStatus, string> = {
  sending: 'Sending',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
  failed: 'Failed',
};

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]'"]/g;

/** Text with its web links clickable (React escapes the rest). */
function linkify(text: string, fromMe: boolean): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_PATTERN)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(
      <a key={m.index} href={m[0]} target="_blank" rel="noopener noreferrer" className={`underline ${fromMe ? 'text-white' : 'text-accent-ink dark:text-sky-400'}`}>
        {m[0]}
      </a>,
    );
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export interface MessageItemProps {
  message: MessageRecord;
  ownHandles: readonly string[];
  nameFor(handle: string): string;
  /** Show the sender's name above the bubble (others' messages in a group, first of a run). */
  showSender: boolean;
  /** Show the delivery status under the bubble (the newest own message). */
  showStatus: boolean;
  /** Not connected: a message still sending waits for the connection. */
  offline: boolean;
  /** The loaded message a reply points at, when it is loaded. */
  findLoaded(uuid: string): MessageRecord | undefined;
  editing: boolean;
  onStartEdit(): void;
  onCancelEdit(): void;
  onSaveEdit(text: string): void;
  onReply(): void;
  onTapback(reaction: TapbackReaction, remove: boolean): void;
  onUnsend(): void;
  onSendAgain(): void;
  onJumpTo(uuid: string): void;
}

export function MessageItem(props: MessageItemProps) {
  const m = props.message;
  const fromMe = m.fromMe;
  const senderName = fromMe ? 'You' : props.nameFor(m.sender);
  const origin = replyOrigin(m);
  const text = messageText(m);
  const mine = m.tapbacks.find((t) => isOwnHandle(props.ownHandles, t.sender));
  const myReaction = mine && TAPBACKS.some((t) => t.reaction === mine.reaction) ? mine.reaction : undefined;

  return (
    <li
      data-testid="message"
      data-uuid={m.uuid}
      data-from-me={fromMe ? 'true' : 'false'}
      data-status={m.status}
      className={`flex flex-col px-3 ${fromMe ? 'items-end' : 'items-start'}`}
    >
      {props.showSender ? (
        <p className="mb-0.5 ml-3 text-xs text-neutral-600 dark:text-neutral-400">{senderName}</p>
      ) : (
        <span className="sr-only">{senderName}: </span>
      )}
      {origin ? (
        <ReplyQuote origin={origin} known={props.findLoaded(origin.uuid)} fromMe={fromMe} ownHandles={props.ownHandles} nameFor={props.nameFor} onJumpTo={props.onJumpTo} />
      ) : null}
      {m.unsent ? (
        <p data-testid="message-unsent" className="px-3 py-1 text-sm italic text-neutral-600 dark:text-neutral-400">
          {fromMe ? 'You unsent a message' : `${senderName} unsent a message`}
        </p>
      ) : props.editing ? (
        <EditForm initial={partText(m, 0)} onSave={props.onSaveEdit} onCancel={props.onCancelEdit} />
      ) : (
        <div className={`flex max-w-full items-start gap-1 ${fromMe ? 'flex-row-reverse' : ''}`}>
          <div className={`relative max-w-[min(75vw,32rem)] ${m.tapbacks.length > 0 ? 'mt-4' : ''}`}>
            <p
              data-testid="message-text"
              className={`whitespace-pre-wrap break-words rounded-2xl px-3.5 py-2 text-[15px] leading-snug ${
                fromMe ? 'rounded-br-md bg-accent text-white' : 'rounded-bl-md bg-neutral-200 text-neutral-900 dark:bg-neutral-800 dark:text-neutral-100'
              } ${m.status === 'failed' ? 'opacity-70' : ''}`}
            >
              {linkify(text, fromMe)}
            </p>
            {m.tapbacks.length > 0 ? <Tapbacks message={m} ownHandles={props.ownHandles} nameFor={props.nameFor} /> : null}
          </div>
          <MessageActions
            fromMe={fromMe}
            myReaction={myReaction}
            canEdit={fromMe && m.status !== 'failed'}
            canUnsend={fromMe}
            onTapback={props.onTapback}
            onReply={props.onReply}
            onEdit={props.onStartEdit}
            onUnsend={props.onUnsend}
          />
        </div>
      )}
      {m.edits.length > 0 && !m.unsent ? (
        <p data-testid="message-edited" className="mx-3 mt-0.5 text-xs text-neutral-600 dark:text-neutral-400">
          Edited
        </p>
      ) : null}
      {fromMe && m.status === 'failed' ? (
        <p className="mx-3 mt-0.5 text-xs text-red-600 dark:text-red-400" title={m.error}>
          <span data-testid="message-status">{STATUS_TEXT.failed}</span>
          <span> · Not delivered. </span>
          <button type="button" onClick={props.onSendAgain} className="font-medium underline focus-visible:outline-2 focus-visible:outline-accent">
            Send again
          </button>
        </p>
      ) : fromMe && props.showStatus && !m.unsent ? (
        <p className="mx-3 mt-0.5 text-xs text-neutral-600 dark:text-neutral-400">
          <span data-testid="message-status">{STATUS_TEXT[m.status]}</span>
          {m.status === 'sending' && props.offline ? <span> · waiting for a connection</span> : null}
        </p>
      ) : null}
    </li>
  );
}

function Tapbacks({ message, ownHandles, nameFor }: { message: MessageRecord; ownHandles: readonly string[]; nameFor(h: string): string }) {
  const groups = new Map<string, { emoji: string; label: string; who: string[]; mine: boolean }>();
  for (const t of message.tapbacks) {
    const emoji = tapbackEmoji(t.reaction, t.emoji);
    const mine = isOwnHandle(ownHandles, t.sender);
    const g = groups.get(emoji) ?? { emoji, label: TAPBACKS.find((x) => x.reaction === t.reaction)?.verb ?? 'Reacted', who: [], mine: false };
    g.who.push(mine ? 'you' : nameFor(t.sender));
    g.mine ||= mine;
    groups.set(emoji, g);
  }
  const description = [...groups.values()].map((g) => `${g.label} by ${g.who.join(', ')}`).join('; ');
  return (
    <p
      data-testid="message-tapbacks"
      className={`absolute -top-4 flex gap-0.5 ${message.fromMe ? '-left-3' : '-right-3'}`}
    >
      {[...groups.values()].map((g) => (
        <span
          key={g.emoji}
          title={`${g.label} by ${g.who.join(', ')}`}
          className={`flex items-center rounded-full border-2 border-white px-1.5 text-xs leading-5 shadow-sm dark:border-neutral-950 ${
            g.mine ? 'bg-accent text-white' : 'bg-neutral-200 dark:bg-neutral-700'
          }`}
        >
          <span aria-hidden="true">{g.emoji}</span>
          {g.who.length > 1 ? <span aria-hidden="true" className="ml-0.5">{g.who.length}</span> : null}
        </span>
      ))}
      <span className="sr-only">{description}</span>
    </p>
  );
}

function ReplyQuote(props: {
  origin: ThreadOrigin;
  known: MessageRecord | undefined;
  fromMe: boolean;
  ownHandles: readonly string[];
  nameFor(h: string): string;
  onJumpTo(uuid: string): void;
}) {
  const client = useClient();
  const [fetched, setFetched] = useState<MessageRecord | null | undefined>(undefined);
  const { known, origin } = props;
  useEffect(() => {
    if (known) return;
    let live = true;
    client.message(origin.uuid).then(
      (m) => live && setFetched(m ?? null),
      () => live && setFetched(null),
    );
    return () => {
      live = false;
    };
  }, [client, known, origin.uuid]);
  const original = known ?? fetched ?? undefined;
  const who = original ? (original.fromMe || isOwnHandle(props.ownHandles, original.sender) ? 'You' : props.nameFor(original.sender)) : undefined;
  const quoted = original ? (original.unsent ? 'Unsent message' : partText(original, origin.part)) : fetched === null ? 'Original message not on this device' : '…';
  return (
    <button
      type="button"
      data-testid="reply-preview"
      disabled={!known}
      onClick={() => props.onJumpTo(origin.uuid)}
      aria-label={`Reply to ${who ?? 'a message'}: ${quoted}`}
      className={`mb-1 max-w-[min(70vw,28rem)] truncate rounded-xl border-l-4 border-neutral-300 bg-neutral-100 px-3 py-1 text-left text-xs text-neutral-600 focus-visible:outline-2 focus-visible:outline-accent enabled:hover:bg-neutral-200 dark:border-neutral-600 dark:bg-neutral-900 dark:text-neutral-300 dark:enabled:hover:bg-neutral-800 ${
        props.fromMe ? 'mr-8' : 'ml-0'
      }`}
    >
      {who ? <span className="font-medium">{who}: </span> : null}
      {quoted}
    </button>
  );
}

function EditForm({ initial, onSave, onCancel }: { initial: string; onSave(text: string): void; onCancel(): void }) {
  const [text, setText] = useState(initial);
  const changed = text.trim() !== '' && text !== initial;
  return (
    <form
      className="flex w-full max-w-[min(75vw,32rem)] flex-col gap-1"
      onSubmit={(e) => {
        e.preventDefault();
        if (changed) onSave(text);
      }}
    >
      <label className="sr-only" htmlFor="edit-input">
        Edit message
      </label>
      <textarea
        id="edit-input"
        data-testid="edit-input"
        autoFocus
        rows={Math.min(6, text.split('\n').length)}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.preventDefault();
            onCancel();
          } else if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            if (changed) onSave(text);
          }
        }}
        className="w-full resize-none rounded-2xl border-2 border-accent bg-white px-3.5 py-2 text-[15px] text-neutral-900 focus:outline-none dark:bg-neutral-900 dark:text-neutral-100"
      />
      <div className="flex justify-end gap-2">
        <button type="button" onClick={onCancel} className="rounded-full px-3 py-1 text-xs font-medium text-neutral-600 hover:bg-neutral-100 focus-visible:outline-2 focus-visible:outline-accent dark:text-neutral-300 dark:hover:bg-neutral-800">
          Cancel
        </button>
        <button type="submit" data-testid="edit-save" disabled={!changed} className="rounded-full bg-accent px-3 py-1 text-xs font-medium text-white focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-accent disabled:opacity-50">
          Save
        </button>
      </div>
    </form>
  );
}
