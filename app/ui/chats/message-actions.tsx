'use client';
// The per-message menu: tapbacks, reply, edit, unsend. A menu button (aria-haspopup) opening a role="menu" whose
// items take arrow keys, Home/End and Escape; focus goes into the menu on open and back to the button on close.
import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';
import type { TapbackReaction } from '../../../lib/imessage/tapback';
import { TAPBACKS } from './message-text';

export interface MessageActionsProps {
  fromMe: boolean;
  /** The reaction this account has on the message, if any (choosing it again removes it). */
  myReaction: TapbackReaction | undefined;
  canEdit: boolean;
  canUnsend: boolean;
  onTapback(reaction: TapbackReaction, remove: boolean): void;
  onReply(): void;
  onEdit(): void;
  onUnsend(): void;
}

const itemClass =
  'rounded-md px-3 py-1.5 text-left text-sm hover:bg-neutral-100 focus-visible:bg-neutral-100 focus-visible:outline-2 focus-visible:outline-accent dark:hover:bg-neutral-800 dark:focus-visible:bg-neutral-800';

export function MessageActions(props: MessageActionsProps) {
  const [open, setOpen] = useState(false);
  // Opens upwards in the lower half of the screen so the menu stays in view.
  const [upwards, setUpwards] = useState(false);
  const menuId = useId();
  const buttonRef = useRef<HTMLButtonElement>(null);
  const menuRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    menuRef.current?.querySelector<HTMLElement>('[role^="menuitem"]')?.focus();
    const outside = (e: PointerEvent) => {
      const t = e.target as Node;
      if (!menuRef.current?.contains(t) && !buttonRef.current?.contains(t)) setOpen(false);
    };
    document.addEventListener('pointerdown', outside);
    return () => document.removeEventListener('pointerdown', outside);
  }, [open]);

  const close = (refocus: boolean) => {
    setOpen(false);
    if (refocus) buttonRef.current?.focus();
  };
  const run = (action: () => void) => () => {
    close(true);
    action();
  };

  const onMenuKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const items = [...e.currentTarget.querySelectorAll<HTMLElement>('[role^="menuitem"]')];
    const at = items.indexOf(document.activeElement as HTMLElement);
    let next: HTMLElement | undefined;
    if (e.key === 'ArrowDown' || e.key === 'ArrowRight') next = items[(at + 1) % items.length];
    else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') next = items[(at - 1 + items.length) % items.length];
    else if (e.key === 'Home') next = items[0];
    else if (e.key === 'End') next = items[items.length - 1];
    else if (e.key === 'Escape') {
      e.preventDefault();
      close(true);
      return;
    } else if (e.key === 'Tab') {
      setOpen(false);
      return;
    }
    if (next) {
      e.preventDefault();
      next.focus();
    }
  };

  return (
    <div className="relative self-center">
      <button
        ref={buttonRef}
        type="button"
        data-testid="message-actions"
        aria-label="Message actions"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? menuId : undefined}
        onClick={(e) => {
          setUpwards(e.currentTarget.getBoundingClientRect().top > window.innerHeight / 2);
          setOpen((o) => !o);
        }}
        className="flex h-7 w-7 items-center justify-center rounded-full text-neutral-600 hover:bg-neutral-100 hover:text-neutral-800 focus-visible:outline-2 focus-visible:outline-accent dark:text-neutral-400 dark:hover:bg-neutral-800 dark:hover:text-neutral-100"
      >
        <svg aria-hidden="true" viewBox="0 0 20 20" className="h-4 w-4" fill="currentColor">
          <circle cx="4" cy="10" r="1.6" />
          <circle cx="10" cy="10" r="1.6" />
          <circle cx="16" cy="10" r="1.6" />
        </svg>
      </button>
      {open ? (
        <div
          ref={menuRef}
          id={menuId}
          role="menu"
          aria-label="Message actions"
          onKeyDown={onMenuKey}
          className={`absolute z-20 ${upwards ? 'bottom-8' : 'top-8'} flex w-56 flex-col gap-1 rounded-xl border border-neutral-200 bg-white p-2 shadow-lg dark:border-neutral-700 dark:bg-neutral-900 ${props.fromMe ? 'right-0' : 'left-0'}`}
        >
          <div role="group" aria-label="Tapbacks" className="flex justify-between">
            {TAPBACKS.map((t) => {
              const chosen = props.myReaction === t.reaction;
              return (
                <button
                  key={t.reaction}
                  type="button"
                  role="menuitemcheckbox"
                  aria-checked={chosen}
                  aria-label={t.label}
                  title={t.label}
                  data-testid={`action-tapback-${t.reaction}`}
                  onClick={run(() => props.onTapback(t.reaction, chosen))}
                  className={`flex h-8 w-8 items-center justify-center rounded-full text-base hover:bg-neutral-100 focus-visible:outline-2 focus-visible:outline-accent dark:hover:bg-neutral-800 ${chosen ? 'bg-accent/20' : ''}`}
                >
                  <span aria-hidden="true">{t.emoji}</span>
                </button>
              );
            })}
          </div>
          <button type="button" role="menuitem" data-testid="action-reply" onClick={run(props.onReply)} className={itemClass}>
            Reply
          </button>
          {props.canEdit ? (
            <button type="button" role="menuitem" data-testid="action-edit" onClick={run(props.onEdit)} className={itemClass}>
              Edit
            </button>
          ) : null}
          {props.canUnsend ? (
            <button
              type="button"
              role="menuitem"
              data-testid="action-unsend"
              onClick={run(props.onUnsend)}
              className={`${itemClass} text-red-600 dark:text-red-400`}
            >
              Undo send
            </button>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
