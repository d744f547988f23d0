// CoreFoundation's binary property list, "bplist00":
//
//   "bplist00" | objects | offset table | trailer (32 bytes)
//
// Every object starts with a marker byte whose high nibble is the type and low nibble a size; size 0xF means
// the real size follows as an int object. Containers hold object references (indexes into the offset table) of
// objectRefSize bytes; the offset table gives each object's byte position in offsetIntSize bytes. Trailer:
// 5 unused bytes, sortVersion, offsetIntSize, objectRefSize, numObjects u64, topObject u64, offsetTableOffset u64.
//
// The encoder lays objects out as Python's plistlib does (itself following CFBinaryPList): depth-first from the
// top object, a dict's keys before its values, equal scalars written once; integers in the fewest of 1/2/4
// unsigned bytes, else 8 signed, else 16; minimal reference and offset sizes. So plistlib output re-encodes byte
// for byte. The decoder expands shared references into a tree, bounded by PlistLimits.maxObjects.
import { DecodeError, EncodeError } from '../errors';
import { toHex } from './bytes';
import {
  PlistReal,
  PlistUID,
  inPlistIntRange,
  narrowInteger,
  plistDateMs,
  plistInteger,
  plistKind,
  plistUidValue,
  resolvePlistLimits,
  setPlistKey,
  type PlistDict,
  type PlistLimits,
  type PlistValue,
} from './plist';

const MAGIC = 'bplist00';
const TRAILER_SIZE = 32;
// Apple dates count seconds from 2001-01-01T00:00:00Z.
const APPLE_EPOCH_MS = 978_307_200_000;
// JS Dates span ±8.64e15 ms around 1970.
const MAX_DATE_MS = 8.64e15;

// Marker bytes; the low nibble of Int, Real, Data, strings, Uid and containers carries a size.
const M = {
  False: 0x08,
  True: 0x09,
  Int: 0x10,
  Real: 0x20,
  Date: 0x33,
  Data: 0x40,
  Ascii: 0x50,
  Utf16: 0x60,
  Uid: 0x80,
  Array: 0xa0,
  Dict: 0xd0,
} as const;

// ---- Encoding -------------------------------------------------------------------------------------------------

type Entry =
  | { kind: 'scalar'; bytes: Uint8Array }
  | { kind: 'array'; refs: number[] }
  | { kind: 'dict'; keys: number[]; values: number[] };

/** Bytes needed to store values below `limit` (plistlib's and CF's rule for refs, offsets and counts). */
function widthFor(limit: number): 1 | 2 | 4 | 8 {
  if (limit < 0x100) return 1;
  if (limit < 0x10000) return 2;
  if (limit < 0x1_0000_0000) return 4;
  return 8;
}

function putUint(out: Uint8Array, at: number, width: number, value: number): void {
  for (let i = width - 1; i >= 0; i--) {
    out[at + i] = value % 256;
    value = Math.floor(value / 256);
  }
}

function intBytes(n: bigint): Uint8Array {
  // Below 2^32: 1, 2 or 4 unsigned bytes. Negatives and the rest below 2^63: 8 signed bytes. 2^63..2^64-1:
  // CF's 16-byte form, whose high half is zero.
  const width = n < 0n ? 8 : n < 0x1_0000_0000n ? widthFor(Number(n)) : n < 1n << 63n ? 8 : 16;
  const out = new Uint8Array(1 + width);
  out[0] = M.Int | Math.log2(width);
  if (width < 8) putUint(out, 1, width, Number(n));
  else new DataView(out.buffer).setBigUint64(width - 7, BigInt.asUintN(64, n));
  return out;
}

/** A marker with its count: in the low nibble when below 15, else 0xF and a following int object. */
function countHeader(marker: number, count: number): Uint8Array {
  if (count < 15) return Uint8Array.of(marker | count);
  const n = intBytes(BigInt(count));
  const out = new Uint8Array(1 + n.length);
  out[0] = marker | 0x0f;
  out.set(n, 1);
  return out;
}

function withHeader(marker: number, count: number, body: Uint8Array): Uint8Array {
  const head = countHeader(marker, count);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function float64(marker: number, x: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = marker;
  new DataView(out.buffer).setFloat64(1, x);
  return out;
}

function stringBytes(s: string): Uint8Array {
  let ascii = true;
  for (let i = 0; ascii && i < s.length; i++) ascii = s.charCodeAt(i) < 0x80;
  const body = new Uint8Array(ascii ? s.length : s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (ascii) body[i] = c;
    else {
      body[2 * i] = c >> 8;
      body[2 * i + 1] = c & 0xff;
    }
  }
  // UTF-16 counts code units; lone surrogates are kept as they are, as CFString does.
  return withHeader(ascii ? M.Ascii : M.Utf16, s.length, body);
}

function uidBytes(n: number): Uint8Array {
  const width = widthFor(n);
  const out = new Uint8Array(1 + width);
  out[0] = M.Uid | (width - 1);
  putUint(out, 1, width, n);
  return out;
}

class Flattener {
  readonly entries: Entry[] = [];
  // Scalars written once per distinct value, keyed by type and value as plistlib does (UIDs are not shared);
  // reals are keyed by their bits, so -0 stays apart from 0.
  private readonly scalars = new Map<string, number>();
  private readonly open = new Set<object>();
  private readonly maxDepth = resolvePlistLimits().maxDepth;

  add(value: PlistValue, depth: number): number {
    switch (plistKind(value)) {
      case 'array':
        return this.addContainer(value as PlistValue[], depth + 1);
      case 'dict':
        return this.addContainer(value as PlistDict, depth + 1);
      case 'string':
        return this.addScalar('s' + (value as string), () => stringBytes(value as string));
      case 'integer': {
        const n = plistInteger(value as number | bigint);
        return this.addScalar('i' + n.toString(), () => intBytes(n));
      }
      case 'real': {
        const bytes = float64(M.Real | 3, value instanceof PlistReal ? value.value : (value as number));
        return this.addScalar('r' + toHex(bytes), () => bytes);
      }
      case 'boolean':
        return this.addScalar(value ? 'T' : 'F', () => Uint8Array.of(value ? M.True : M.False));
      case 'date': {
        const ms = plistDateMs(value as Date);
        return this.addScalar('d' + ms, () => float64(M.Date, (ms - APPLE_EPOCH_MS) / 1000));
      }
      case 'data': {
        const data = value as Uint8Array;
        return this.addScalar('x' + toHex(data), () => withHeader(M.Data, data.length, data));
      }
      case 'uid': {
        const n = plistUidValue(value as PlistUID);
        return this.addScalar(undefined, () => uidBytes(n));
      }
    }
  }

  private addScalar(key: string | undefined, bytes: () => Uint8Array): number {
    if (key !== undefined) {
      const seen = this.scalars.get(key);
      if (seen !== undefined) return seen;
      this.scalars.set(key, this.entries.length);
    }
    this.entries.push({ kind: 'scalar', bytes: bytes() });
    return this.entries.length - 1;
  }

  private addContainer(value: PlistValue[] | PlistDict, depth: number): number {
    if (depth > this.maxDepth) throw new EncodeError('plist-too-deep', `nesting exceeds ${this.maxDepth}`);
    if (this.open.has(value)) throw new EncodeError('plist-cycle', 'value contains itself');
    this.open.add(value);
    const ref = this.entries.length;
    if (Array.isArray(value)) {
      const entry: Entry = { kind: 'array', refs: [] };
      this.entries.push(entry);
      for (const item of value) entry.refs.push(this.add(item, depth));
    } else {
      const names = Object.keys(value);
      const entry: Entry = { kind: 'dict', keys: [], values: [] };
      this.entries.push(entry);
      for (const name of names) entry.keys.push(this.add(name, depth));
      for (const name of names) entry.values.push(this.add(value[name] as PlistValue, depth));
    }
    this.open.delete(value);
    return ref;
  }
}

export function encodeBinaryPlist(value: PlistValue): Uint8Array {
  const flat = new Flattener();
  flat.add(value, 0);
  const { entries } = flat;
  const refSize = widthFor(entries.length);

  const parts = entries.map((e) => {
    if (e.kind === 'scalar') return e.bytes;
    const refs = e.kind === 'array' ? e.refs : [...e.keys, ...e.values];
    const head = countHeader(e.kind === 'array' ? M.Array : M.Dict, e.kind === 'array' ? refs.length : e.keys.length);
    const out = new Uint8Array(head.length + refs.length * refSize);
    out.set(head);
    refs.forEach((r, i) => putUint(out, head.length + i * refSize, refSize, r));
    return out;
  });

  const offsets: number[] = [];
  let pos = MAGIC.length;
  for (const p of parts) {
    offsets.push(pos);
    pos += p.length;
  }
  const tableOffset = pos;
  const offsetSize = widthFor(tableOffset);
  const out = new Uint8Array(tableOffset + offsets.length * offsetSize + TRAILER_SIZE);
  for (let i = 0; i < MAGIC.length; i++) out[i] = MAGIC.charCodeAt(i);
  parts.forEach((p, i) => out.set(p, offsets[i]!));
  offsets.forEach((o, i) => putUint(out, tableOffset + i * offsetSize, offsetSize, o));
  const trailer = out.length - TRAILER_SIZE;
  const view = new DataView(out.buffer);
  out[trailer + 6] = offsetSize;
  out[trailer + 7] = refSize;
  view.setBigUint64(trailer + 8, BigInt(entries.length));
  view.setBigUint64(trailer + 16, 0n); // the top object is always flattened first
  view.setBigUint64(trailer + 24, BigInt(tableOffset));
  return out;
}

// ---- Decoding -------------------------------------------------------------------------------------------------

function malformed(message: string): DecodeError {
  return new DecodeError('bplist-malformed', message);
}

class BinaryReader {
  private readonly view: DataView;
  private nodes = 0;
  // Objects on the current path (a reference back to one is a cycle).
  private readonly active: Uint8Array;
  // Scalars decoded once per object, so many references to one large string cost nothing extra; a data object
  // referenced twice yields one shared Uint8Array (Dates, being mutable, are copied).
  private readonly scalars = new Map<number, PlistValue>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly offsets: number[],
    private readonly refSize: number,
    // Objects live between the header and the offset table.
    private readonly end: number,
    private readonly limits: Required<PlistLimits>,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.active = new Uint8Array(offsets.length);
  }

  /** An unsigned big-endian value of 1..8 bytes; values past 2^53 come out inexact but still fail every bound. */
  private uint(at: number, width: number): number {
    let n = 0;
    for (let i = 0; i < width; i++) n = n * 256 + this.bytes[at + i]!;
    return n;
  }

  private need(at: number, length: number): void {
    if (length > this.end - at) throw malformed('object runs past the object area');
  }

  private ref(at: number): number {
    const r = this.uint(at, this.refSize);
    if (r >= this.offsets.length) throw malformed('object reference out of range');
    return r;
  }

  /** The count in a marker's low nibble, or in the int object after it; returns [count, body start]. */
  private count(at: number, unit: number): [number, number] {
    const nibble = this.bytes[at]! & 0x0f;
    let n = nibble;
    let body = at + 1;
    if (nibble === 0x0f) {
      this.need(at, 2);
      const m = this.bytes[at + 1]!;
      if (m >> 4 !== 1 || (m & 0x0f) > 3) throw malformed('bad count marker');
      const width = 1 << (m & 0x0f);
      this.need(at + 2, width);
      n = this.uint(at + 2, width);
      body = at + 2 + width;
    }
    // Checked before anything is allocated: a hostile count cannot exceed the bytes actually present.
    if (n > (this.end - body) / unit) throw malformed('count exceeds the available bytes');
    return [n, body];
  }

  value(ref: number, depth: number): PlistValue {
    if (++this.nodes > this.limits.maxObjects) {
      throw new DecodeError('plist-too-many-objects', `more than ${this.limits.maxObjects} objects`);
    }
    const cached = this.scalars.get(ref);
    if (cached !== undefined) return cached instanceof Date ? new Date(cached.getTime()) : cached;
    const at = this.offsets[ref]!;
    const marker = this.bytes[at]!;
    if (marker >> 4 === M.Array >> 4 || marker >> 4 === M.Dict >> 4) return this.container(ref, at, depth + 1);
    const v = this.scalar(at, marker);
    this.scalars.set(ref, v);
    return v;
  }

  private scalar(at: number, marker: number): PlistValue {
    const nibble = marker & 0x0f;
    switch (marker >> 4) {
      case 0x0:
        if (marker === M.False) return false;
        if (marker === M.True) return true;
        break;
      case M.Int >> 4: {
        if (nibble > 4) throw malformed('integer size must be 1, 2, 4, 8 or 16 bytes');
        const width = 1 << nibble;
        this.need(at + 1, width);
        if (width < 8) return this.uint(at + 1, width);
        const low = this.view.getBigUint64(at + width - 7);
        // 8-byte ints are signed; 16-byte ints are signed 128-bit and must still fit the 64-bit model.
        const n = width === 8 ? BigInt.asIntN(64, low) : (this.view.getBigInt64(at + 1) << 64n) + low;
        if (!inPlistIntRange(n)) throw new DecodeError('plist-int-range', 'integer does not fit in 64 bits');
        return narrowInteger(n);
      }
      case M.Real >> 4: {
        if (nibble !== 2 && nibble !== 3) throw malformed('real size must be 4 or 8 bytes');
        this.need(at + 1, 1 << nibble);
        const x = nibble === 2 ? this.view.getFloat32(at + 1) : this.view.getFloat64(at + 1);
        return Number.isInteger(x) ? new PlistReal(x) : x;
      }
      case M.Date >> 4: {
        if (marker !== M.Date) break;
        this.need(at + 1, 8);
        const ms = Math.round(this.view.getFloat64(at + 1) * 1000) + APPLE_EPOCH_MS;
        if (!(Math.abs(ms) <= MAX_DATE_MS)) throw new DecodeError('plist-bad-date', 'date out of range');
        return new Date(ms);
      }
      case M.Data >> 4: {
        const [n, body] = this.count(at, 1);
        return this.bytes.slice(body, body + n);
      }
      case M.Ascii >> 4: {
        const [n, body] = this.count(at, 1);
        return this.text(n, (i) => {
          const c = this.bytes[body + i]!;
          if (c >= 0x80) throw malformed('non-ASCII byte in an ASCII string');
          return c;
        });
      }
      case M.Utf16 >> 4: {
        const [n, body] = this.count(at, 2);
        return this.text(n, (i) => this.view.getUint16(body + 2 * i));
      }
      case M.Uid >> 4: {
        const width = nibble + 1;
        if (width > 8) throw malformed('UID wider than 8 bytes');
        this.need(at + 1, width);
        const n = this.uint(at + 1, width);
        if (!Number.isSafeInteger(n)) throw malformed('UID beyond the safe-integer range');
        return new PlistUID(n);
      }
    }
    throw new DecodeError('bplist-unsupported', `unsupported object marker 0x${marker.toString(16).padStart(2, '0')}`);
  }

  private text(units: number, unit: (i: number) => number): string {
    const chunk = new Uint16Array(Math.min(units, 4096));
    let s = '';
    for (let i = 0; i < units; i += chunk.length) {
      const n = Math.min(chunk.length, units - i);
      for (let j = 0; j < n; j++) chunk[j] = unit(i + j);
      s += String.fromCharCode(...chunk.subarray(0, n));
    }
    return s;
  }

  private container(ref: number, at: number, depth: number): PlistValue {
    if (depth > this.limits.maxDepth) {
      throw new DecodeError('plist-too-deep', `nesting exceeds ${this.limits.maxDepth}`);
    }
    if (this.active[ref]) throw new DecodeError('plist-cycle', 'object contains itself');
    this.active[ref] = 1;
    let result: PlistValue;
    if (this.bytes[at]! >> 4 === M.Array >> 4) {
      const [n, body] = this.count(at, this.refSize);
      const items: PlistValue[] = [];
      for (let i = 0; i < n; i++) items.push(this.value(this.ref(body + i * this.refSize), depth));
      result = items;
    } else {
      const [n, body] = this.count(at, 2 * this.refSize);
      const dict: PlistDict = {};
      for (let i = 0; i < n; i++) {
        const key = this.value(this.ref(body + i * this.refSize), depth);
        if (typeof key !== 'string') throw malformed('dict key is not a string');
        if (Object.prototype.hasOwnProperty.call(dict, key)) {
          throw new DecodeError('plist-duplicate-key', 'dict has a repeated key');
        }
        setPlistKey(dict, key, this.value(this.ref(body + (n + i) * this.refSize), depth));
      }
      result = dict;
    }
    this.active[ref] = 0;
    return result;
  }
}

export function decodeBinaryPlist(bytes: Uint8Array, limits?: PlistLimits): PlistValue {
  const lim = resolvePlistLimits(limits);
  if (bytes.length > lim.maxBytes) throw new DecodeError('plist-too-large', `input exceeds ${lim.maxBytes} bytes`);
  // Smallest possible: magic, a one-byte object, a one-byte offset table, the trailer.
  if (bytes.length < MAGIC.length + 2 + TRAILER_SIZE) throw malformed('too short for a binary plist');
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC.charCodeAt(i)) throw malformed('missing bplist00 magic');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const t = bytes.length - TRAILER_SIZE;
  const offsetSize = bytes[t + 6]!;
  const refSize = bytes[t + 7]!;
  const numObjects = view.getBigUint64(t + 8);
  const top = view.getBigUint64(t + 16);
  const tableOffset = view.getBigUint64(t + 24);
  if (offsetSize < 1 || offsetSize > 8) throw malformed('offset size must be 1..8');
  if (refSize < 1 || refSize > 8) throw malformed('object reference size must be 1..8');
  if (numObjects < 1n) throw malformed('no objects');
  if (Number(numObjects) > lim.maxObjects) {
    throw new DecodeError('plist-too-many-objects', `more than ${lim.maxObjects} objects`);
  }
  if (top >= numObjects) throw malformed('top object out of range');
  // All in bigint so hostile u64 fields cannot overflow: the table must sit between the objects and the trailer.
  if (tableOffset <= BigInt(MAGIC.length) || tableOffset + numObjects * BigInt(offsetSize) > BigInt(t)) {
    throw malformed('offset table out of bounds');
  }
  const count = Number(numObjects);
  const end = Number(tableOffset);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    let o = 0;
    for (let j = 0; j < offsetSize; j++) o = o * 256 + bytes[end + i * offsetSize + j]!;
    if (o < MAGIC.length || o >= end) throw malformed('object offset out of bounds');
    offsets.push(o);
  }
  return new BinaryReader(bytes, offsets, refSize, end, lim).value(Number(top), 0);
}
