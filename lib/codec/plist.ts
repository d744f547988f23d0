// The value model shared by the binary and XML property-list codecs (plist-binary.ts, plist-xml.ts).
//
//   string            <string>, binary ASCII or UTF-16 strings
//   number            <integer> when Number.isInteger(n), else <real>
//   bigint            <integer> outside the safe-integer range (64-bit signed, or unsigned up to 2^64-1)
//   PlistReal         <real> with an integral value: keeps 1.0 a real across a round trip
//   boolean           <true/>, <false/>
//   Uint8Array        <data>
//   Date              <date>
//   PlistUID          UID (NSKeyedArchiver references; XML carries it as a CF$UID dict)
//   PlistValue[]      <array>
//   PlistDict         <dict>: a plain object, keys in document order
//
// Decoders return the narrowest form: integers as number when safe, else bigint; integral reals as PlistReal.

import { EncodeError } from '../errors';
import { decodeBinaryPlist } from './plist-binary';
import { decodeXmlPlist } from './plist-xml';

export class PlistReal {
  constructor(readonly value: number) {}
}

export class PlistUID {
  constructor(readonly value: number) {}
}

export type PlistValue =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | Date
  | PlistReal
  | PlistUID
  | PlistValue[]
  | PlistDict;

export interface PlistDict {
  [key: string]: PlistValue;
}

// ---- Shared by the two codecs: limits, validation, and format detection -------------------------------------

export { decodeBinaryPlist, encodeBinaryPlist } from './plist-binary';
export { decodeXmlPlist, encodeXmlPlist } from './plist-xml';

/** Bounds a decoder enforces on untrusted input; omitted fields take DEFAULT_PLIST_LIMITS. */
export interface PlistLimits {
  /** Values in the decoded tree, dict keys included; a binary object referenced twice counts twice. */
  maxObjects?: number;
  /** Nesting of arrays and dicts (a top-level container is depth 1). */
  maxDepth?: number;
  /** Size of the input (bytes; UTF-16 units for an XML string). */
  maxBytes?: number;
}

export const DEFAULT_PLIST_LIMITS: Readonly<Required<PlistLimits>> = Object.freeze({
  maxObjects: 1 << 20,
  maxDepth: 256,
  maxBytes: 64 * 1024 * 1024,
});

// The encoders and the binary decoder recurse once per level; beyond this the JS stack itself is at risk.
const DEPTH_CEILING = 1000;

export function resolvePlistLimits(limits: PlistLimits = {}): Required<PlistLimits> {
  return {
    maxObjects: limits.maxObjects ?? DEFAULT_PLIST_LIMITS.maxObjects,
    maxDepth: Math.min(limits.maxDepth ?? DEFAULT_PLIST_LIMITS.maxDepth, DEPTH_CEILING),
    maxBytes: limits.maxBytes ?? DEFAULT_PLIST_LIMITS.maxBytes,
  };
}

/** Binary if the input starts with the `bplist00` magic, XML otherwise. */
export function parsePlist(bytes: Uint8Array, limits?: PlistLimits): PlistValue {
  const magic = 'bplist00';
  let binary = bytes.length >= magic.length;
  for (let i = 0; binary && i < magic.length; i++) binary = bytes[i] === magic.charCodeAt(i);
  return binary ? decodeBinaryPlist(bytes, limits) : decodeXmlPlist(bytes, limits);
}

/** A plain object (the dict form); arrays, bytes, dates and the wrapper classes are not. */
export function isDict(v: unknown): v is PlistDict {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Adds a key without ever invoking the `__proto__` setter: decoded keys are untrusted. */
export function setPlistKey(dict: PlistDict, key: string, value: PlistValue): void {
  Object.defineProperty(dict, key, { value, enumerable: true, writable: true, configurable: true });
}

export type PlistKind = 'string' | 'integer' | 'real' | 'boolean' | 'data' | 'date' | 'uid' | 'array' | 'dict';

/** What an encoder should write for `v`; anything outside the value model is an EncodeError. */
export function plistKind(v: unknown): PlistKind {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'bigint':
      return 'integer';
    case 'number':
      return Number.isInteger(v) ? 'integer' : 'real';
    case 'object':
      if (v instanceof Uint8Array) return 'data';
      if (v instanceof Date) return 'date';
      if (v instanceof PlistReal) return 'real';
      if (v instanceof PlistUID) return 'uid';
      if (Array.isArray(v)) return 'array';
      if (isDict(v)) return 'dict';
      break;
  }
  const what = v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
  throw new EncodeError('plist-bad-type', `a property list cannot hold ${what}`);
}

// Both formats carry 64-bit signed integers, plus unsigned ones up to 2^64-1 (CoreFoundation's 128-bit form).
const INT_MIN = -(1n << 63n);
const INT_MAX = (1n << 64n) - 1n;

export function inPlistIntRange(n: bigint): boolean {
  return n >= INT_MIN && n <= INT_MAX;
}

/** The integer an encoder writes; integral numbers past 2^53 are taken at their exact double value. */
export function plistInteger(v: number | bigint): bigint {
  const n = BigInt(v);
  if (!inPlistIntRange(n)) throw new EncodeError('plist-int-range', 'integer does not fit in 64 bits');
  return n;
}

/** The decoders' narrowest form: a number when exact, else the bigint. */
export function narrowInteger(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** UIDs are object indexes: non-negative safe integers. */
export function plistUidValue(uid: PlistUID): number {
  const n = uid.value;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new EncodeError('plist-bad-uid', 'UID must be a non-negative safe integer');
  }
  return n;
}

export function plistDateMs(d: Date): number {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new EncodeError('plist-bad-date', 'invalid Date');
  return ms;
}
