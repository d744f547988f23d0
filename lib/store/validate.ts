// Input checks for the store's methods. Every public method runs its arguments through these before touching a
// transaction, so a wrong type surfaces as StoreError('bad-input') naming the field, never as a back-end exception.
import { StoreError } from './errors';
import { isCryptoKey } from './storable';

const MAX_ID_LENGTH = 1024;
const UUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
const URI_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

function bad(what: string, expected: string): StoreError {
  return new StoreError('bad-input', `${what} must be ${expected}`);
}

export function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what, 'an object');
  return v as Record<string, unknown>;
}

export function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(what, 'a string');
  return v;
}

/** A non-empty id usable as a key: at most 1024 characters, no line breaks or NULs. */
export function id(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_LENGTH || /[\n\r\0]/.test(v)) {
    throw bad(what, 'a non-empty id (at most 1024 characters, no line breaks)');
  }
  return v;
}

/** An IDS URI, normalised: scheme lower-cased; e-mail addresses lower-cased (Apple compares them that way). */
export function handle(v: unknown, what: string): string {
  const h = id(v, what);
  const m = URI_SCHEME.exec(h);
  if (!m) throw bad(what, 'a URI such as mailto:… or tel:…');
  const scheme = m[1]!.toLowerCase();
  const rest = h.slice(m[0].length);
  if (rest.length === 0) throw bad(what, 'a URI with an address');
  return scheme === 'mailto' ? `mailto:${rest.toLowerCase()}` : `${scheme}:${rest}`;
}

export function handles(v: unknown, what: string): string[] {
  return array(v, what).map((h, i) => handle(h, `${what}[${i}]`));
}

/** A hyphenated UUID, returned upper-case (message UUIDs are compared case-insensitively). */
export function uuid(v: unknown, what: string): string {
  if (typeof v !== 'string' || !UUID.test(v)) throw bad(what, 'a hyphenated UUID');
  return v.toUpperCase();
}

/** A time in unix milliseconds. */
export function time(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(what, 'a non-negative integer (ms)');
  return v;
}

export function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(what, 'a non-negative integer');
  return v;
}

export function finite(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(what, 'a finite number');
  return v;
}

export function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw bad(what, 'a boolean');
  return v;
}

/** A copy of the bytes (never a view of the caller's buffer). */
export function bytes(v: unknown, what: string, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw bad(what, 'a Uint8Array');
  if (length !== undefined && v.length !== length) throw bad(what, `${length} bytes`);
  return Uint8Array.from(v);
}

export function array(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw bad(what, 'an array');
  return v;
}

export function oneOf<T extends string>(v: unknown, what: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw bad(what, `one of ${allowed.join(', ')}`);
  return v as T;
}

export function cryptoKey(v: unknown, what: string, type?: KeyType): CryptoKey {
  if (!isCryptoKey(v)) throw bad(what, 'a CryptoKey');
  if (type && v.type !== type) throw bad(what, `a ${type} CryptoKey`);
  return v;
}

export function keyPair(v: unknown, what: string): CryptoKeyPair {
  const r = record(v, what);
  return {
    privateKey: cryptoKey(r.privateKey, `${what}.privateKey`, 'private'),
    publicKey: cryptoKey(r.publicKey, `${what}.publicKey`, 'public'),
  };
}

/** `check(v)` unless v is undefined. */
export function optional<T>(v: unknown, check: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : check(v);
}
