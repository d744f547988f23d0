// Packed APNs courier framing (ALPN `apns-pack-v1`), protocol notes apns.md §2.2.
//
//   frame     = cmd u8 | T(8) body length | attribute*
//   attribute = tag [key] value      tag 0x80 value is a table reference, 0x40 value is added to the table,
//                                    0x20 key from the key table, 0x10 new key literal, else key = tag & 0x0f
//   T(w)      = a number in the low w bits of a tag byte; all ones means "mask + LEB128 that follows"
//
// Each direction of a connection keeps a key table (32 keys, FIFO) and a value table (byte budget, an entry costs
// its encoded length + 32, oldest evicted first). The receiver must replay the sender's table changes exactly, so a
// PackedEncoder / PackedDecoder pair exists per direction and a decoder refuses further use after any error.
import { CeruleanError, DecodeError, EncodeError } from '../errors';
import { itemSpecOf, type ApnsDirection, type ItemSpec } from './apns-commands';
import { ChunkQueue, checkLimit, DEFAULT_MAX_FRAME_LENGTH, type ApnsFrame, type ApnsItem } from './apns-frame';
import { equalBytes, fromUtf8, utf8 } from './bytes';
import { PlistReal, PlistUID, type PlistDict, type PlistValue } from './plist';

/** One-byte keys (legacy item ids) are numbers; longer keys and all dictionary keys are UTF-8 strings. */
export type PackedKey = number | string;

export interface PackedAttribute {
  key: PackedKey;
  value: PackedValue;
  /** Encoding: keep the value in the value table (reference it if already there). Decoding: it was. */
  cached?: boolean;
}

/** A packed dictionary: ordered attributes with string keys (duplicates are kept as sent). */
export class PackedDict {
  constructor(readonly entries: PackedAttribute[]) {}
}

/** data | string | integer (number when safe, else bigint) | bool | array | dict */
export type PackedValue = Uint8Array | string | number | bigint | boolean | PackedValue[] | PackedDict;

export interface PackedFrame {
  command: number;
  attributes: PackedAttribute[];
}

export const PACKED_ALPN = 'apns-pack-v1';
export const LEGACY_ALPN = 'apns-security-v3';
export const DEFAULT_TABLE_BUDGET = 4096;
/** Far above apsd's 4096 default; a larger advertised budget is treated as hostile. */
const MAX_TABLE_BUDGET = 1 << 24;
const KEY_TABLE_SIZE = 32;
const ENTRY_OVERHEAD = 32;
/** Decoded data and strings per frame, counting each table reference again: caps 2-byte references to big entries. */
export const DEFAULT_MAX_DECODED_BYTES = 1 << 20;
/** Entries over budget are kept uncounted and would otherwise pile up without bound. */
const MAX_UNCOUNTED_BYTES = 1 << 20;
const MAX_DEPTH = 64;
/** 8 groups of 7 bits cover every length a frame could hold. */
const MAX_VARINT_BYTES = 8;

const V_REF = 0x80;
const V_ADD = 0x40;
const K_REF = 0x20;
const K_NEW = 0x10;

// ---------------------------------------------------------------------------------------------------------------
// ALPN

/** Value-table budgets of the two directions. */
export interface PackedBudgets {
  toServer: number;
  toClient: number;
}

/**
 * Budgets for a negotiated ALPN protocol: `apns-pack-v1` → 4096 both ways, `apns-pack-v1:E:D` → E for
 * client→server, D for server→client. Any other protocol is not packed (undefined).
 */
export function packedBudgets(alpn: string): PackedBudgets | undefined {
  if (alpn === PACKED_ALPN) return { toServer: DEFAULT_TABLE_BUDGET, toClient: DEFAULT_TABLE_BUDGET };
  if (!alpn.startsWith(`${PACKED_ALPN}:`)) return undefined;
  const m = /^apns-pack-v1:(\d{1,9}):(\d{1,9})$/.exec(alpn);
  const toServer = Number(m?.[1]);
  const toClient = Number(m?.[2]);
  if (!m || toServer > MAX_TABLE_BUDGET || toClient > MAX_TABLE_BUDGET) {
    throw new DecodeError('bad-alpn', `unusable packed ALPN "${alpn.slice(0, 40)}"`);
  }
  return { toServer, toClient };
}

/** The ALPN string a server selects for these budgets (the bare name for the defaults). */
export function packedAlpn(budgets: PackedBudgets): string {
  checkBudget(budgets.toServer);
  checkBudget(budgets.toClient);
  return budgets.toServer === DEFAULT_TABLE_BUDGET && budgets.toClient === DEFAULT_TABLE_BUDGET
    ? PACKED_ALPN
    : `${PACKED_ALPN}:${budgets.toServer}:${budgets.toClient}`;
}

function checkBudget(n: number | undefined): number {
  const budget = n ?? DEFAULT_TABLE_BUDGET;
  if (!Number.isInteger(budget) || budget < 0 || budget > MAX_TABLE_BUDGET) {
    throw new CeruleanError('bad-option', `table budget must be an integer in 0…${MAX_TABLE_BUDGET}, got ${budget}`);
  }
  return budget;
}

// ---------------------------------------------------------------------------------------------------------------
// Tagged numbers and byte plumbing

class ByteWriter {
  private buf = new Uint8Array(64);
  length = 0;

  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
}

/** T(w): `bits` are the tag's other bits. */
function writeTagged(w: ByteWriter, bits: number, width: number, v: number): void {
  const mask = (1 << width) - 1;
  if (v < mask) {
    w.byte(bits | v);
    return;
  }
  w.byte(bits | mask);
  let rest = v - mask;
  do {
    const group = rest % 128;
    rest = Math.floor(rest / 128);
    w.byte(rest > 0 ? group | 0x80 : group);
  } while (rest > 0);
}

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  byte(): number {
    if (this.pos >= this.bytes.length) throw new DecodeError('truncated', 'packed frame ends early');
    return this.bytes[this.pos++]!;
  }

  take(n: number): Uint8Array {
    if (n > this.remaining) throw new DecodeError('truncated', 'packed frame ends early');
    return this.bytes.subarray(this.pos, (this.pos += n));
  }
}

function readVarint(r: Reader): number {
  let v = 0;
  let scale = 1;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    const b = r.byte();
    v += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      if (v > Number.MAX_SAFE_INTEGER) break;
      return v;
    }
    scale *= 128;
  }
  throw new DecodeError('packed-varint', 'tagged number is too long');
}

function readTagged(tag: number, width: number, r: Reader): number {
  const mask = (1 << width) - 1;
  const low = tag & mask;
  return low < mask ? low : mask + readVarint(r);
}

/**
 * Total length (header + body) of the packed frame starting `h`, or undefined while the header is incomplete.
 * Throws as soon as the length read so far exceeds `max`, before any body is buffered.
 */
function packedFrameLength(h: Uint8Array, max: number): number | undefined {
  if (h.length < 2) return undefined;
  let v = h[1]!;
  const tooLarge = () =>
    new DecodeError('frame-too-large', `packed frame declares at least ${v} bytes; the limit is ${max}`);
  if (v > max) throw tooLarge();
  if (v < 0xff) return 2 + v;
  let scale = 1;
  for (let i = 2; i < h.length; i++) {
    const b = h[i]!;
    v += (b & 0x7f) * scale;
    if (v > max) throw tooLarge();
    if ((b & 0x80) === 0) return i + 1 + v;
    scale *= 128;
  }
  if (h.length >= 2 + MAX_VARINT_BYTES) throw new DecodeError('packed-varint', 'frame length is too long');
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Tables

/** FIFO whose removals only move `head`, so a failed encode can roll back by restoring two numbers. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  shift(): T {
    return this.items[this.head++]!;
  }

  /** Index 0 = newest. */
  get(i: number): T | undefined {
    return i < this.size ? this.items[this.items.length - 1 - i] : undefined;
  }

  findNewest(match: (x: T) => boolean): number {
    for (let i = 0; i < this.size; i++) if (match(this.items[this.items.length - 1 - i]!)) return i;
    return -1;
  }

  mark(): [number, number] {
    return [this.head, this.items.length];
  }

  restore([head, length]: [number, number]): void {
    this.items.length = length;
    this.head = head;
  }

  /** Only between frames, never inside a mark/restore span. */
  compact(): void {
    if (this.head > 0 && this.head >= this.items.length / 2) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

class KeyTable {
  private readonly fifo = new Fifo<Uint8Array>();

  add(key: Uint8Array): void {
    if (this.fifo.size >= KEY_TABLE_SIZE) this.fifo.shift();
    this.fifo.push(key);
  }

  get(i: number): Uint8Array | undefined {
    return this.fifo.get(i);
  }

  find(key: Uint8Array): number {
    return this.fifo.findNewest((k) => equalBytes(k, key));
  }

  mark(): [number, number] {
    return this.fifo.mark();
  }

  restore(m: [number, number]): void {
    this.fifo.restore(m);
  }

  compact(): void {
    this.fifo.compact();
  }
}

interface ValueEntry {
  bytes: Uint8Array;
  counted: boolean;
}

class ValueTable {
  private readonly fifo = new Fifo<ValueEntry>();
  private total = 0;
  private uncounted = 0;

  constructor(readonly budget: number) {}

  fits(bytes: Uint8Array): boolean {
    return bytes.length + ENTRY_OVERHEAD <= this.budget;
  }

  add(bytes: Uint8Array): void {
    const counted = this.fits(bytes);
    if (counted) {
      this.total += bytes.length + ENTRY_OVERHEAD;
      while (this.total > this.budget) this.evict();
    } else {
      // [RP] keeps an over-budget entry without counting it; it leaves when eviction reaches it.
      this.uncounted += bytes.length;
      if (this.uncounted > MAX_UNCOUNTED_BYTES) {
        throw new DecodeError('packed-table-overflow', 'too many over-budget value-table entries');
      }
    }
    this.fifo.push({ bytes, counted });
  }

  private evict(): void {
    const e = this.fifo.shift();
    if (e.counted) this.total -= e.bytes.length + ENTRY_OVERHEAD;
    else this.uncounted -= e.bytes.length;
  }

  get(i: number): Uint8Array | undefined {
    return this.fifo.get(i)?.bytes;
  }

  find(bytes: Uint8Array): number {
    return this.fifo.findNewest((e) => equalBytes(e.bytes, bytes));
  }

  mark(): [[number, number], number, number] {
    return [this.fifo.mark(), this.total, this.uncounted];
  }

  restore([m, total, uncounted]: [[number, number], number, number]): void {
    this.fifo.restore(m);
    this.total = total;
    this.uncounted = uncounted;
  }

  compact(): void {
    this.fifo.compact();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Encoder

function keyBytes(key: PackedKey): Uint8Array {
  if (typeof key === 'number') {
    if (!Number.isInteger(key) || key < 0 || key > 0xff) {
      throw new EncodeError('packed-bad-key', `key ${key} is not a byte`);
    }
    return Uint8Array.of(key);
  }
  const b = utf8(key);
  if (b.length === 0) throw new EncodeError('packed-bad-key', 'keys cannot be empty');
  return b;
}

/** A value that holds a dictionary would replay key/value table changes when referenced; never cached. */
function containsDict(v: PackedValue, depth: number): boolean {
  if (depth > MAX_DEPTH) throw new EncodeError('packed-too-deep', `values nest deeper than ${MAX_DEPTH}`);
  return v instanceof PackedDict || (Array.isArray(v) && v.some((e) => containsDict(e, depth + 1)));
}

const U64_MAX = 0xffffffffffffffffn;

function writeInteger(w: ByteWriter, v: number | bigint): void {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) {
    throw new EncodeError('packed-bad-int', `${v} is not a safe integer; use a bigint`);
  }
  const n = BigInt(v);
  if (n >= 0n && n <= 31n) {
    w.byte(0x80 | Number(n));
    return;
  }
  let mag = n < 0n ? -n : n;
  if (mag > U64_MAX) throw new EncodeError('packed-int-range', 'integer magnitude exceeds 64 bits');
  const be: number[] = [];
  for (; mag > 0n; mag >>= 8n) be.unshift(Number(mag & 0xffn));
  w.byte(0xa0 | (n < 0n ? 0x08 : 0) | (be.length - 1));
  w.bytes(Uint8Array.from(be));
}

export class PackedEncoder {
  private readonly keys = new KeyTable();
  private readonly values: ValueTable;

  /** `tableBudget`: this direction's value-table budget (see packedBudgets). */
  constructor(opts: { tableBudget?: number } = {}) {
    this.values = new ValueTable(checkBudget(opts.tableBudget));
  }

  /** On EncodeError the tables are left as they were, so the encoder stays usable. */
  encode(frame: PackedFrame): Uint8Array {
    if (!Number.isInteger(frame.command) || frame.command < 0 || frame.command > 0xff) {
      throw new EncodeError('bad-frame', `command must be a byte, got ${frame.command}`);
    }
    this.keys.compact();
    this.values.compact();
    const keys = this.keys.mark();
    const values = this.values.mark();
    try {
      const body = new ByteWriter();
      for (const a of frame.attributes) this.writeAttribute(body, a, 0);
      const out = new ByteWriter();
      out.byte(frame.command);
      writeTagged(out, 0, 8, body.length);
      out.bytes(body.result());
      return out.result();
    } catch (e) {
      this.keys.restore(keys);
      this.values.restore(values);
      throw e;
    }
  }

  private writeAttribute(w: ByteWriter, a: PackedAttribute, depth: number): void {
    const key = keyBytes(a.key);
    let flags = 0;
    let encoded: Uint8Array | undefined;
    let ref = -1;
    if (a.cached && !containsDict(a.value, depth)) {
      const standalone = new ByteWriter();
      this.writeValue(standalone, a.value, depth);
      encoded = standalone.result();
      ref = this.values.find(encoded);
      if (ref >= 0) flags = V_REF;
      // An over-budget value goes inline: adding it would only create an uncounted entry nobody can rely on.
      else if (this.values.fits(encoded)) {
        flags = V_ADD;
        this.values.add(encoded);
      }
    }
    if (key.length === 1 && key[0]! < 0x10) {
      w.byte(flags | key[0]!);
    } else {
      const k = this.keys.find(key);
      if (k >= 0) {
        w.byte(flags | K_REF | k);
      } else {
        writeTagged(w, flags | K_NEW, 4, key.length - 1);
        w.bytes(key);
        this.keys.add(key);
      }
    }
    if (flags === V_REF) writeTagged(w, 0, 8, ref);
    else if (encoded) w.bytes(encoded);
    else this.writeValue(w, a.value, depth);
  }

  private writeValue(w: ByteWriter, v: PackedValue, depth: number): void {
    if (depth > MAX_DEPTH) throw new EncodeError('packed-too-deep', `values nest deeper than ${MAX_DEPTH}`);
    if (v instanceof Uint8Array) {
      writeTagged(w, 0x00, 6, v.length);
      w.bytes(v);
    } else if (typeof v === 'string') {
      const b = utf8(v);
      writeTagged(w, 0x40, 5, b.length);
      w.bytes(b);
    } else if (typeof v === 'number' || typeof v === 'bigint') {
      writeInteger(w, v);
    } else if (typeof v === 'boolean') {
      w.byte(v ? 0xe1 : 0xe0);
    } else if (Array.isArray(v)) {
      writeTagged(w, 0xd0, 4, v.length);
      for (const e of v) this.writeValue(w, e, depth + 1);
    } else if (v instanceof PackedDict) {
      writeTagged(w, 0xc0, 4, v.entries.length);
      for (const a of v.entries) this.writeAttribute(w, a, depth + 1);
    } else {
      throw new EncodeError('packed-bad-value', 'not a packed value');
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoder

export interface PackedDecoderOptions {
  /** This direction's value-table budget (see packedBudgets). */
  tableBudget?: number;
  maxFrameLength?: number;
  maxDecodedBytes?: number;
}

export class PackedDecoder {
  private readonly keys = new KeyTable();
  private readonly values: ValueTable;
  readonly maxFrameLength: number;
  private readonly maxDecoded: number;
  private left = 0;
  private failed = false;

  constructor(opts: PackedDecoderOptions = {}) {
    this.values = new ValueTable(checkBudget(opts.tableBudget));
    this.maxFrameLength = checkLimit('maxFrameLength', opts.maxFrameLength, DEFAULT_MAX_FRAME_LENGTH);
    this.maxDecoded = checkLimit('maxDecodedBytes', opts.maxDecodedBytes, DEFAULT_MAX_DECODED_BYTES);
  }

  /** Exactly one frame. After a DecodeError the tables no longer match the sender's and every later call fails. */
  decode(bytes: Uint8Array): PackedFrame {
    if (this.failed) throw new DecodeError('stream-failed', 'an earlier packed frame on this stream was malformed');
    try {
      this.keys.compact();
      this.values.compact();
      const r = new Reader(bytes);
      const command = r.byte();
      const length = readTagged(r.byte(), 8, r);
      if (length > this.maxFrameLength) {
        const limit = this.maxFrameLength;
        throw new DecodeError('frame-too-large', `packed frame declares ${length} bytes; the limit is ${limit}`);
      }
      if (length > r.remaining) {
        throw new DecodeError('truncated', `packed frame declares ${length} bytes, ${r.remaining} present`);
      }
      if (length < r.remaining) throw new DecodeError('trailing-bytes', 'bytes follow the packed frame');
      this.left = this.maxDecoded;
      const attributes: PackedAttribute[] = [];
      while (r.remaining > 0) attributes.push(this.readAttribute(r, false, 0));
      return { command, attributes };
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  private spend(n: number): void {
    this.left -= n + 1;
    if (this.left < 0) throw new DecodeError('packed-expansion', 'packed frame expands beyond the decoded-size limit');
  }

  private readAttribute(r: Reader, inDict: boolean, depth: number): PackedAttribute {
    const tag = r.byte();
    if ((tag & (V_REF | V_ADD)) === (V_REF | V_ADD)) {
      throw new DecodeError('packed-bad-attribute', 'attribute value is both referenced and added');
    }
    let key: Uint8Array;
    if (tag & K_REF) {
      const k = this.keys.get(tag & 0x1f);
      if (!k) throw new DecodeError('packed-bad-key-ref', `key reference ${tag & 0x1f} is not in the key table`);
      key = k;
    } else if (tag & K_NEW) {
      key = r.take(readTagged(tag, 4, r) + 1).slice();
      this.keys.add(key);
    } else {
      key = Uint8Array.of(tag & 0x0f);
    }
    this.spend(key.length);
    let value: PackedValue;
    if (tag & V_REF) {
      const i = readTagged(r.byte(), 8, r);
      const entry = this.values.get(i);
      if (!entry) throw new DecodeError('packed-bad-value-ref', `value reference ${i} is not in the value table`);
      value = this.readValue(new Reader(entry), depth, true);
    } else if (tag & V_ADD) {
      const start = r.pos;
      value = this.readValue(r, depth, true);
      this.values.add(r.bytes.slice(start, r.pos));
    } else {
      value = this.readValue(r, depth, false);
    }
    const decodedKey = !inDict && key.length === 1 ? key[0]! : fromUtf8(key);
    return { key: decodedKey, value, cached: (tag & (V_REF | V_ADD)) !== 0 };
  }

  private readValue(r: Reader, depth: number, inTable: boolean): PackedValue {
    if (depth > MAX_DEPTH) throw new DecodeError('packed-too-deep', `values nest deeper than ${MAX_DEPTH}`);
    const tag = r.byte();
    switch (tag >> 6) {
      case 0: {
        const n = readTagged(tag, 6, r);
        this.spend(n);
        return r.take(n).slice();
      }
      case 1: {
        if (tag & 0x20) throw new DecodeError('packed-bad-value', 'string tag has bit 5 set');
        const n = readTagged(tag, 5, r);
        this.spend(n);
        return fromUtf8(r.take(n));
      }
      case 2:
        return this.readInteger(r, tag);
      default: {
        if (tag & 0x20) {
          if ((tag & 0x1f) > 1) {
            throw new DecodeError('packed-bad-value', `bool tag ${tag.toString(16)} is neither false nor true`);
          }
          this.spend(0);
          return tag === 0xe1;
        }
        const count = readTagged(tag, 4, r);
        // Every element takes at least one byte: a count beyond the rest is a lie, whatever it claims.
        if (count > r.remaining) throw new DecodeError('truncated', `container claims ${count} elements`);
        this.spend(0);
        if (tag & 0x10) {
          const out: PackedValue[] = [];
          for (let i = 0; i < count; i++) out.push(this.readValue(r, depth + 1, inTable));
          return out;
        }
        if (inTable) throw new DecodeError('packed-cached-dict', 'a value-table entry holds a dictionary');
        const entries: PackedAttribute[] = [];
        for (let i = 0; i < count; i++) entries.push(this.readAttribute(r, true, depth + 1));
        return new PackedDict(entries);
      }
    }
  }

  private readInteger(r: Reader, tag: number): number | bigint {
    this.spend(8);
    if ((tag & 0x20) === 0) return tag & 0x1f;
    if (tag & 0x10) throw new DecodeError('packed-bad-value', 'integer tag has bit 4 set');
    let mag = 0n;
    for (const b of r.take((tag & 0x07) + 1)) mag = (mag << 8n) | BigInt(b);
    const v = tag & 0x08 ? -mag : mag;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
}

/** Splits a TLS byte stream into packed frames, with the same length guard and linear buffering as FrameDecoder. */
export class PackedFrameDecoder {
  private readonly decoder: PackedDecoder;
  private readonly queue = new ChunkQueue();
  private failed = false;

  constructor(opts: PackedDecoderOptions = {}) {
    this.decoder = new PackedDecoder(opts);
  }

  get bufferedLength(): number {
    return this.queue.length;
  }

  push(chunk: Uint8Array): PackedFrame[] {
    if (this.failed) throw new DecodeError('stream-failed', 'an earlier packed frame on this stream was malformed');
    try {
      this.queue.push(chunk);
      const frames: PackedFrame[] = [];
      for (;;) {
        const total = packedFrameLength(this.queue.peek(2 + MAX_VARINT_BYTES), this.decoder.maxFrameLength);
        if (total === undefined || this.queue.length < total) break;
        frames.push(this.decoder.decode(this.queue.take(total)));
      }
      this.queue.detach(chunk);
      return frames;
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Mapping to and from legacy frames

/** How a 0x0A payload crosses between legacy bytes (a binary plist) and a packed tree. */
export interface PayloadCodec {
  /** A packed tree for these payload bytes, or undefined to send them as data (non-plist payloads). */
  toPacked(payload: Uint8Array): PackedValue | undefined;
  /** Legacy payload bytes for a packed tree. */
  fromPacked(value: PackedValue): Uint8Array;
}

export interface PackedMappingOptions {
  payload?: PayloadCodec;
}

const INT_WIDTH: Partial<Record<ItemSpec['type'], number>> = { u8: 1, u16: 2, u32: 4, u64: 8 };

function legacyToPacked(spec: ItemSpec | undefined, b: Uint8Array, opts: PackedMappingOptions): PackedValue {
  if (!spec) return b;
  const width = INT_WIDTH[spec.type];
  if (width !== undefined) {
    // A wrong-width item goes across unchanged; the receiving parser reports it.
    if (b.length !== width) return b;
    let v = 0n;
    for (const x of b) v = (v << 8n) | BigInt(x);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (spec.type === 'string') {
    try {
      return fromUtf8(b);
    } catch {
      return b;
    }
  }
  if (spec.plist && opts.payload) return opts.payload.toPacked(b) ?? b;
  return b;
}

function fixedWidth(v: number | bigint, width: number, id: number): Uint8Array {
  const n = BigInt(v);
  if (n < 0n || n >= 1n << BigInt(width * 8)) {
    throw new DecodeError('packed-int-range', `item ${id}: ${n} does not fit ${width} bytes`);
  }
  const out = new Uint8Array(width);
  for (let i = width - 1, m = n; i >= 0; i--, m >>= 8n) out[i] = Number(m & 0xffn);
  return out;
}

/** Integers of items without a known width: the narrowest of 1/2/4/8 bytes, negatives as 64-bit two's complement. */
function narrowest(v: number | bigint, id: number): Uint8Array {
  const n = BigInt(v);
  if (n < 0n) return fixedWidth(BigInt.asUintN(64, n), 8, id);
  const width = n <= 0xffn ? 1 : n <= 0xffffn ? 2 : n <= 0xffffffffn ? 4 : 8;
  return fixedWidth(n, width, id);
}

function packedToLegacy(
  spec: ItemSpec | undefined,
  id: number,
  v: PackedValue,
  opts: PackedMappingOptions,
): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return utf8(v);
  if (typeof v === 'boolean') return Uint8Array.of(v ? 1 : 0);
  if (typeof v === 'number' || typeof v === 'bigint') {
    const width = spec && INT_WIDTH[spec.type];
    return width ? fixedWidth(v, width, id) : narrowest(v, id);
  }
  if (spec?.plist) {
    if (!opts.payload) {
      throw new DecodeError('packed-payload-tree', `item ${id} is a packed tree and no payload codec was given`);
    }
    return opts.payload.fromPacked(v);
  }
  // An unknown item holding a container has no legacy form; known items never hold one.
  if (!spec) return undefined;
  throw new DecodeError('packed-type', `item ${id} holds a container where a ${spec.type} belongs`);
}

/**
 * The packed form of a legacy frame: fixed-width integers become integers, strings strings, and items the command
 * tables mark indexable (tokens, topic hashes, keep-alive strings) are cached. Unknown items travel as data.
 */
export function apnsToPacked(frame: ApnsFrame, dir: ApnsDirection, opts: PackedMappingOptions = {}): PackedFrame {
  return {
    command: frame.command,
    attributes: frame.items.map((item) => {
      const spec = itemSpecOf(frame.command, dir, item.id);
      const value = legacyToPacked(spec, item.value, opts);
      return { key: item.id, value, cached: spec?.indexable === true && value instanceof Uint8Array };
    }),
  };
}

/**
 * The legacy form of a packed frame: integers take their item's legacy width (DecodeError if they do not fit).
 * Attributes with multi-byte keys, and unknown items holding containers, have no legacy form and are dropped.
 */
export function packedToApns(frame: PackedFrame, dir: ApnsDirection, opts: PackedMappingOptions = {}): ApnsFrame {
  const items: ApnsItem[] = [];
  for (const a of frame.attributes) {
    if (typeof a.key !== 'number') continue;
    const value = packedToLegacy(itemSpecOf(frame.command, dir, a.key), a.key, a.value, opts);
    if (value) items.push({ id: a.key, value });
  }
  return { command: frame.command, items };
}

// ---------------------------------------------------------------------------------------------------------------
// Property lists as packed trees

/** Payload keys whose scalar values [RP] caches (service, push topic, user agent, …). */
export const PAYLOAD_CACHE_KEYS: readonly string[] = ['sT', 'tP', 'ua', 't', 'sP', 'E', 'H', 'cT', 'sI'];

function isScalar(v: PackedValue): boolean {
  return !Array.isArray(v) && !(v instanceof PackedDict);
}

/**
 * A property list as a packed tree. Reals, dates and UIDs have no packed form (EncodeError). Dictionary values under
 * `cacheKeys` (default PAYLOAD_CACHE_KEYS) are marked for the value table when they are scalars.
 */
export function plistToPacked(v: PlistValue, opts: { cacheKeys?: readonly string[] } = {}): PackedValue {
  const cacheKeys = new Set(opts.cacheKeys ?? PAYLOAD_CACHE_KEYS);
  const convert = (x: PlistValue, depth: number): PackedValue => {
    if (depth > MAX_DEPTH) throw new EncodeError('packed-too-deep', `property list nests deeper than ${MAX_DEPTH}`);
    if (typeof x === 'string' || typeof x === 'boolean' || typeof x === 'bigint' || x instanceof Uint8Array) return x;
    if (typeof x === 'number') {
      if (!Number.isSafeInteger(x)) throw new EncodeError('packed-unsupported', 'reals have no packed form');
      return x;
    }
    if (x instanceof Date || x instanceof PlistReal || x instanceof PlistUID) {
      throw new EncodeError('packed-unsupported', `${x.constructor.name} has no packed form`);
    }
    if (Array.isArray(x)) return x.map((e) => convert(e, depth + 1));
    return new PackedDict(
      Object.entries(x).map(([key, e]) => {
        const value = convert(e, depth + 1);
        return { key, value, cached: cacheKeys.has(key) && isScalar(value) };
      }),
    );
  };
  return convert(v, 0);
}

/** A packed tree as a property list; a repeated dictionary key keeps its last value. */
export function packedToPlist(v: PackedValue): PlistValue {
  const convert = (x: PackedValue, depth: number): PlistValue => {
    if (depth > MAX_DEPTH) throw new DecodeError('packed-too-deep', `packed value nests deeper than ${MAX_DEPTH}`);
    if (Array.isArray(x)) return x.map((e) => convert(e, depth + 1));
    if (!(x instanceof PackedDict)) return x;
    const out: PlistDict = {};
    for (const { key, value } of x.entries) {
      const name = typeof key === 'number' ? fromUtf8(Uint8Array.of(key)) : key;
      // defineProperty: a key such as "__proto__" must stay a plain entry.
      const entry = convert(value, depth + 1);
      Object.defineProperty(out, name, { value: entry, enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  return convert(v, 0);
}
