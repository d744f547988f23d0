// Which chat a message belongs to (imessage.md §8): a 1:1 chat is its participant set (so both sides, and every
// own device, name it the same), a group is its `gid`. Participants are compared as the store keeps them.
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex, utf8 } from '../codec/bytes';
import { handleKey } from '../imessage/ports';
import { isUuidString } from '../imessage/uuid';
import { directChatId } from '../store/chat-id';
import type { ChatInit, ChatRecord } from '../store/types';

/** A handle as the store keeps it: scheme lower-cased, e-mail addresses lower-cased. */
export function normalizeHandle(uri: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  if (!m) return uri;
  const scheme = m[1]!.toLowerCase();
  const rest = uri.slice(m[0].length);
  return scheme === 'mailto' ? `mailto:${rest.toLowerCase()}` : `${scheme}:${rest}`;
}

/** Every handle once, normalised, sorted. */
export function participantSet(uris: readonly string[]): string[] {
  return [...new Set(uris.map(normalizeHandle))].sort();
}

export function isSameHandle(a: string, b: string): boolean {
  return handleKey(normalizeHandle(a)) === handleKey(normalizeHandle(b));
}

/**
 * The chat for a conversation with these participants (sender and recipients together). More than two people make
 * a group keyed by its gid; a gid that is not a UUID is ignored, so no peer can name another chat's id.
 */
export function chatFor(participants: readonly string[], gid?: string, name?: string): ChatInit & { participants: string[] } {
  const set = participantSet(participants);
  if (set.length <= 2) return { id: directChatId(set), participants: set, isGroup: false };
  const id = gid !== undefined && isUuidString(gid) ? gid.toUpperCase() : directChatId(set);
  return { id, participants: set, isGroup: true, ...(name !== undefined ? { name } : {}) };
}

/**
 * The `gid` sent with a chat's messages: a group's own id; for a 1:1 chat a UUID derived from its id, so every
 * device of both people uses the same one without having to agree on it.
 */
export function conversationGid(chat: Pick<ChatRecord, 'id' | 'isGroup'>): string {
  if (chat.isGroup && isUuidString(chat.id)) return chat.id;
  const h = toHex(sha256(utf8(chat.id))).toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
