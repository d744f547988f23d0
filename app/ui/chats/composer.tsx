'use client';
// The message composer: Enter sends, Shift+Enter breaks the line. The draft is saved per chat as it is typed
// (drafts.ts), so a reload loses nothing. Typing indicators go out when typing starts and stop after 5 s idle, on
// send, when the text is cleared or when the conversation closes.
import { useEffect, useRef, useState, type RefObject } from 'react';
import { useClient } from '../../session/session';
import { readDraft, writeDraft } from './drafts';

const TYPING_IDLE_MS = 5_000;
/** Long typing is announced again now and then, inside the receiver's expiry of a "typing" that never stopped. */
const TYPING_REFRESH_MS = 30_000;

export interface ComposerProps {
  chatId: string;
  /** Shown above the input while replying. */
  replyingTo: { name: string; text: string } | undefined;
  onCancelReply(): void;
  /** Sends; rejects if the message could not even be queued. */
  onSend(text: string): Promise<void>;
  inputRef: RefObject<HTMLTextAreaElement | null>;
}

export function Composer({ chatId, replyingTo, onCancelReply, onSend, inputRef }: ComposerProps) {
  const client = useClient();
  const [text, setText] = useState(() => readDraft(chatId));
  const [error, setError] = useState<string>();
  const typing = useRef({ on: false, sentAt: 0, timer: undefined as ReturnType<typeof setTimeout> | undefined });

  const setTypingState = (on: boolean) => {
    const t = typing.current;
    clearTimeout(t.timer);
    t.timer = on ? setTimeout(() => setTypingState(false), TYPING_IDLE_MS) : undefined;
    if (t.on === on && !(on && Date.now() - t.sentAt > TYPING_REFRESH_MS)) return;
    t.on = on;
    t.sentAt = Date.now();
    // Best effort: typing indicators are dropped when offline and never worth an error.
    client.setTyping(chatId, on).catch(() => undefined);
  };

  useEffect(() => {
    setText(readDraft(chatId));
    setError(undefined);
    const t = typing.current;
    const stop = () => {
      clearTimeout(t.timer);
      if (t.on) {
        t.on = false;
        client.setTyping(chatId, false).catch(() => undefined);
      }
    };
    // Leaving or reloading the page runs no React cleanup; try to withdraw the indicator as the page goes.
    window.addEventListener('pagehide', stop);
    return () => {
      window.removeEventListener('pagehide', stop);
      stop();
    };
  }, [client, chatId]);

  // The textarea grows with its text up to a few lines.
  useEffect(() => {
    const el = inputRef.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }, [text, inputRef]);

  const update = (value: string) => {
    setText(value);
    writeDraft(chatId, value);
    setTypingState(value.trim() !== '');
  };

  const send = () => {
    const body = text.trim();
    if (body === '') return;
    setTypingState(false);
    setText('');
    writeDraft(chatId, '');
    setError(undefined);
    onSend(body).catch(() => {
      // Nothing was queued: give the text back.
      setText(body);
      writeDraft(chatId, body);
      setError('The message could not be saved for sending. Try again.');
    });
  };

  return (
    <form
      className="border-t border-neutral-200 bg-white px-3 py-2 dark:border-neutral-800 dark:bg-neutral-950"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      {replyingTo ? (
        <div data-testid="composer-reply" className="mb-2 flex items-center gap-2 rounded-lg bg-neutral-100 px-3 py-1.5 text-xs dark:bg-neutral-900">
          <p className="min-w-0 flex-1 truncate">
            <span className="font-medium">Replying to {replyingTo.name}: </span>
            <span className="text-neutral-600 dark:text-neutral-400">{replyingTo.text}</span>
          </p>
          <button
            type="button"
            onClick={onCancelReply}
            aria-label="Cancel reply"
            className="rounded-full px-2 py-0.5 text-neutral-600 hover:bg-neutral-200 focus-visible:outline-2 focus-visible:outline-accent dark:text-neutral-300 dark:hover:bg-neutral-800"
          >
            ✕
          </button>
        </div>
      ) : null}
      {error ? (
        <p role="alert" className="mb-1 text-xs text-red-600 dark:text-red-400">
          {error}
        </p>
      ) : null}
      <div className="flex items-end gap-2">
        <label htmlFor="composer-input" className="sr-only">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={inputRef}
          data-testid="composer-input"
          rows={1}
          value={text}
          placeholder="iMessage"
          onChange={(e) => update(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              send();
            } else if (e.key === 'Escape' && replyingTo) {
              e.preventDefault();
              onCancelReply();
            }
          }}
          onBlur={() => setTypingState(false)}
          className="max-h-40 min-h-10 flex-1 resize-none rounded-2xl border border-neutral-300 bg-white px-3.5 py-2 text-[15px] leading-snug text-neutral-900 placeholder:text-neutral-400 focus:border-accent focus:outline-2 focus:outline-accent/40 dark:border-neutral-700 dark:bg-neutral-900 dark:text-neutral-100"
        />
        <button
          type="submit"
          data-testid="composer-send"
          disabled={text.trim() === ''}
          aria-label="Send"
          className="flex h-10 w-10 shrink-0 items-center justify-center rounded-full bg-accent text-white focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-accent disabled:opacity-40"
        >
          <svg aria-hidden="true" viewBox="0 0 20 20" className="h-5 w-5" fill="currentColor">
            <path d="M10 3.5a1 1 0 0 1 .7.3l5 5a1 1 0 1 1-1.4 1.4L11 6.9V16a1 1 0 1 1-2 0V6.9l-3.3 3.3a1 1 0 0 1-1.4-1.4l5-5a1 1 0 0 1 .7-.3Z" />
          </svg>
        </button>
      </div>
    </form>
  );
}
