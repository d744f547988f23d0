// Canonical copies of stored values. Both back ends get exactly the same data: byte views become standalone
// Uint8Arrays (so IndexedDB never clones a whole underlying buffer, and Node's Buffer is stored as plain bytes),
// undefined properties are dropped, and anything neither structured clone nor JSON carries faithfully is refused.
import { StoreError } from './errors';
import type { StorableValue } from './types';

const MAX_DEPTH = 64;

export function isCryptoKey(v: unknown): v is CryptoKey {
  return typeof CryptoKey !== 'undefined' && v instanceof CryptoKey;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A checked deep copy of `value`; CryptoKeys are kept by reference (they are immutable). */
export function toStorable(value: unknown, what: string, depth = 0): StorableValue {
  if (depth > MAX_DEPTH) throw new StoreError('bad-input', `${what} is nested too deeply (or cyclic)`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new StoreError('bad-input', `${what} holds a non-finite number`);
    // JSON (the file store) has no -0; every engine stores 0 so they all read back the same value.
    return Object.is(value, -0) ? 0 : value;
  }
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (isCryptoKey(value)) return value;
  if (Array.isArray(value)) {
    return Array.from(value as unknown[], (item) => {
      if (item === undefined) throw new StoreError('bad-input', `${what} holds undefined in an array`);
      return toStorable(item, what, depth + 1);
    });
  }
  if (typeof value === 'object' && isPlainObject(value)) {
    // fromEntries defines own properties, so a key named "__proto__" stays data instead of setting the prototype.
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toStorable(v, what, depth + 1)]),
    );
  }
  throw new StoreError('bad-input', `${what} holds a value the store cannot keep (${describe(value)})`);
}

function describe(v: unknown): string {
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'object';
}
