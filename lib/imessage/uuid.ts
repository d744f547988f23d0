// Message UUIDs travel as 16 raw bytes in envelopes (`U`) and as upper-case hyphenated strings inside payloads
// (`r`, `emg`, `amk`, `gid`, …). These convert between the two forms.
import { fromHex, toHex } from '../codec/bytes';
import { randomBytes } from '../crypto/subtle';
import { DecodeError } from '../errors';

const UUID_PATTERN = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

export function isUuidString(s: string): boolean {
  return UUID_PATTERN.test(s);
}

/** `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, upper case, as Apple writes them. */
export function uuidToString(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new DecodeError('bad-uuid', 'a UUID is 16 bytes');
  const h = toHex(bytes).toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Accepts either case; GUIDs from peers are compared case-insensitively. */
export function uuidFromString(s: string): Uint8Array {
  if (!isUuidString(s)) throw new DecodeError('bad-uuid', 'not a hyphenated UUID string');
  return fromHex(s.replace(/-/g, ''));
}

/** A random (version 4) UUID as 16 bytes. */
export function randomUuid(): Uint8Array {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

export function randomUuidString(): string {
  return uuidToString(randomUuid());
}
