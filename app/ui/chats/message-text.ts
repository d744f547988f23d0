// What a message shows: its current text (edits applied, unsent parts gone) and short descriptions for previews,
// tapback badges and the chat title.
import { DecodeError } from '../../../lib/errors';
import { parseThreadOrigin, type ThreadOrigin } from '../../../lib/imessage/message';
import type { TapbackReaction } from '../../../lib/imessage/tapback';
import type { ChatRecord, MessageRecord } from '../../../lib/store/types';
import { sameHandle } from './handles';

const ATTACHMENT = 'Attachment';

function rawText(xml: string): string {
  const text = xml
    .replace(/<br\s*\/?>/g, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#13;/g, '\r')
    .replace(/&amp;/g, '&');
  return text.trim() === '' ? `[${ATTACHMENT}]` : text;
}

/** The current text of one part: its latest edit, else what was sent. */
export function partText(m: MessageRecord, part: number): string {
  for (let i = m.edits.length - 1; i >= 0; i--) if (m.edits[i]!.part === part) return m.edits[i]!.text;
  const p = m.parts?.find((x) => x.part === part);
  if (p) return p.kind === 'text' ? p.text : rawText(p.xml);
  return part === 0 ? (m.text ?? '') : '';
}

/** Every part still shown, in order, joined by line breaks. */
export function messageText(m: MessageRecord): string {
  if (!m.parts || m.parts.length === 0) return partText(m, 0);
  return m.parts
    .filter((p) => p.part === undefined || !m.unsentParts.includes(p.part))
    .map((p) => (p.part === undefined ? (p.kind === 'text' ? p.text : rawText(p.xml)) : partText(m, p.part)))
    .join('\n');
}

/** The message a reply points at, or undefined for a thread origin this app cannot read. */
export function replyOrigin(m: MessageRecord): ThreadOrigin | undefined {
  if (!m.replyTo) return undefined;
  try {
    return parseThreadOrigin(m.replyTo);
  } catch (e) {
    if (e instanceof DecodeError) return undefined;
    throw e;
  }
}

export const TAPBACKS: readonly { reaction: TapbackReaction; emoji: string; label: string; verb: string }[] = [
  { reaction: 'love', emoji: '❤️', label: 'Love', verb: 'Loved' },
  { reaction: 'like', emoji: '👍', label: 'Like', verb: 'Liked' },
  { reaction: 'dislike', emoji: '👎', label: 'Dislike', verb: 'Disliked' },
  { reaction: 'laugh', emoji: '😂', label: 'Ha ha', verb: 'Laughed at' },
  { reaction: 'emphasize', emoji: '‼️', label: 'Emphasize', verb: 'Emphasized' },
  { reaction: 'question', emoji: '❓', label: 'Question', verb: 'Questioned' },
];

export function tapbackEmoji(reaction: TapbackReaction, emoji?: string): string {
  if (reaction === 'emoji') return emoji ?? '🙂';
  if (reaction === 'sticker') return '🏷️';
  return TAPBACKS.find((t) => t.reaction === reaction)?.emoji ?? '•';
}

export function isOwnHandle(ownHandles: readonly string[], handle: string): boolean {
  return ownHandles.some((h) => sameHandle(h, handle));
}

/** Everyone in the chat but this account. */
export function otherParticipants(chat: ChatRecord, ownHandles: readonly string[]): string[] {
  return chat.participants.filter((p) => !isOwnHandle(ownHandles, p));
}

/** The group's name, else the other people's names. */
export function chatTitle(chat: ChatRecord, ownHandles: readonly string[], nameFor: (handle: string) => string): string {
  if (chat.name) return chat.name;
  const others = otherParticipants(chat, ownHandles);
  return others.length > 0 ? others.map(nameFor).join(', ') : 'Only you';
}
