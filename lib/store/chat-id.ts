// A 1:1 chat has no gid, so its id comes from its participants: the same set of handles, in any order and any
// e-mail case, always names the same chat.
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex, utf8 } from '../codec/bytes';
import { StoreError } from './errors';
import { handles } from './validate';

export function directChatId(participants: readonly string[]): string {
  const sorted = [...new Set(handles(participants, 'participants'))].sort();
  if (sorted.length === 0) throw new StoreError('bad-input', 'a chat needs at least one participant');
  // Handles cannot contain a line break (validate.id), so the joined form is unambiguous.
  return `direct:${toHex(sha256(utf8(sorted.join('\n'))))}`;
}
