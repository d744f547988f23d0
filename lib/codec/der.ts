// Strict DER for the few structures the legacy identity blob and ECDSA signatures use.
// Only single-byte tags and definite, minimal lengths are accepted: DER has exactly one encoding per value, so
// anything else is malformed (and a signature with two encodings would be malleable).
import { DecodeError, EncodeError } from '../errors';

export const DER_INTEGER = 0x02;
export const DER_BIT_STRING = 0x03;
export const DER_NULL = 0x05;
export const DER_OID = 0x06;
export const DER_SEQUENCE = 0x30;

/** One TLV: `content` is a view into the input; `end` is the offset just past it. */
export interface DerElement {
  tag: number;
  content: Uint8Array;
  end: number;
}

/** Reads the TLV at `offset`; its length must fit inside `input` (never allocates from the length field). */
export function readDer(input: Uint8Array, offset = 0): DerElement {
  if (offset + 2 > input.length) throw new DecodeError('der-truncated', 'DER element is truncated');
  const tag = input[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DecodeError('der-bad-tag', 'multi-byte DER tags are not used here');
  const first = input[offset + 1]!;
  let length: number;
  let pos = offset + 2;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    // 0x80 is BER's indefinite length; more than 3 length bytes would exceed anything this code parses.
    if (n === 0 || n > 3) throw new DecodeError('der-bad-length', 'unsupported DER length form');
    if (pos + n > input.length) throw new DecodeError('der-truncated', 'DER length is truncated');
    if (input[pos] === 0) throw new DecodeError('der-bad-length', 'DER length has a leading zero');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + input[pos + i]!;
    if (length < 0x80) throw new DecodeError('der-bad-length', 'DER length should use the short form');
    pos += n;
  }
  if (length > input.length - pos) throw new DecodeError('der-truncated', 'DER content runs past the input');
  return { tag, content: input.subarray(pos, pos + length), end: pos + length };
}

/** Reads the TLV at `offset` and requires it to carry `tag`. */
export function expectDer(input: Uint8Array, tag: number, offset = 0): DerElement {
  const el = readDer(input, offset);
  if (el.tag !== tag) throw new DecodeError('der-unexpected-tag', `expected DER tag 0x${tag.toString(16)}`);
  return el;
}

/** Reads exactly one TLV with `tag` spanning all of `input`. */
export function expectOnlyDer(input: Uint8Array, tag: number): Uint8Array {
  const el = expectDer(input, tag);
  if (el.end !== input.length) throw new DecodeError('der-trailing-bytes', 'bytes after the DER element');
  return el.content;
}

/** Encodes a TLV with a minimal length. */
export function der(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const p of parts) length += p.length;
  if (length > 0xffffff) throw new EncodeError('der-too-large', 'DER element too large');
  const lenBytes =
    length < 0x80 ? [length]
    : length <= 0xff ? [0x81, length]
    : length <= 0xffff ? [0x82, length >> 8, length & 0xff]
    : [0x83, length >> 16, (length >> 8) & 0xff, length & 0xff];
  const out = new Uint8Array(1 + lenBytes.length + length);
  out[0] = tag;
  out.set(lenBytes, 1);
  let off = 1 + lenBytes.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The magnitude of a non-negative DER INTEGER, without sign byte or leading zeros (empty for zero). */
export function readUnsignedInteger(content: Uint8Array): Uint8Array {
  if (content.length === 0) throw new DecodeError('der-bad-integer', 'empty DER INTEGER');
  const b0 = content[0]!;
  if (b0 & 0x80) throw new DecodeError('der-negative-integer', 'negative DER INTEGER');
  if (b0 === 0 && content.length > 1) {
    if (!(content[1]! & 0x80)) throw new DecodeError('der-bad-integer', 'DER INTEGER is not minimal');
    return content.subarray(1);
  }
  return b0 === 0 ? content.subarray(1) : content;
}

/** A DER INTEGER for an unsigned big-endian magnitude (leading zeros dropped, sign byte added when needed). */
export function unsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = magnitude.length === 0 ? new Uint8Array(1) : magnitude.subarray(start);
  return m[0]! & 0x80 ? der(DER_INTEGER, new Uint8Array(1), m) : der(DER_INTEGER, m);
}
