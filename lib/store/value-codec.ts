// Stored values as JSON, for storage that is text (the file store's snapshot and journal). Bytes and keys become
// one-key tagged objects: {"$b": base64} and {"$k": <the key's stored form>}. A plain object that itself has a key
// starting with "$" is wrapped as {"$o": {...}}, so no stored object is ever mistaken for a tag.
import { fromBase64, toBase64 } from '../codec/bytes';
import { StoreError } from './errors';
import { isCryptoKey } from './storable';
import type { StorableValue } from './types';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const MAX_DEPTH = 64;

function corrupt(what: string): StoreError {
  return new StoreError('corrupt', `stored value: ${what}`);
}

/** Every CryptoKey inside a value. */
export function keysIn(value: unknown, out: CryptoKey[] = []): CryptoKey[] {
  if (isCryptoKey(value)) out.push(value);
  else if (Array.isArray(value)) for (const item of value) keysIn(item, out);
  else if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    for (const item of Object.values(value)) keysIn(item, out);
  }
  return out;
}

/** A storable value as JSON; `keyForm` gives each CryptoKey's stored form (it must already have one). */
export function encodeValue(value: unknown, keyForm: (key: CryptoKey) => Json, depth = 0): Json {
  if (depth > MAX_DEPTH) throw new StoreError('bad-input', 'value is nested too deeply');
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new StoreError('bad-input', 'value holds a non-finite number');
    return value;
  }
  if (value instanceof Uint8Array) return { $b: toBase64(value) };
  if (isCryptoKey(value)) return { $k: keyForm(value) };
  if (Array.isArray(value)) return value.map((item) => encodeValue(item, keyForm, depth + 1));
  if (typeof value === 'object') {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    // fromEntries: a "__proto__" key stays an own data property.
    const out = Object.fromEntries(entries.map(([k, item]) => [k, encodeValue(item, keyForm, depth + 1)])) as { [key: string]: Json };
    return entries.some(([k]) => k.startsWith('$')) ? { $o: out } : out;
  }
  throw new StoreError('bad-input', `value holds a ${typeof value}`);
}

/** The stored forms of every key inside an encoded value (to unwrap them all before decoding). */
export function storedKeysIn(json: unknown, out: Json[] = [], depth = 0): Json[] {
  if (depth > MAX_DEPTH || typeof json !== 'object' || json === null) return out;
  if (Array.isArray(json)) {
    for (const item of json) storedKeysIn(item, out, depth + 1);
    return out;
  }
  const entries = Object.entries(json);
  const [tag, inner] = entries.length === 1 ? entries[0]! : ['', undefined];
  if (tag === '$k') out.push(inner as Json);
  else if (tag === '$o' && typeof inner === 'object' && inner !== null) {
    for (const item of Object.values(inner)) storedKeysIn(item, out, depth + 1);
  } else if (tag !== '$b') for (const [, item] of entries) storedKeysIn(item, out, depth + 1);
  return out;
}

/** The value back from JSON; `keyOf` maps a stored key form (the very object storedKeysIn returned) to its CryptoKey. */
export function decodeValue(json: unknown, keyOf: (stored: Json) => CryptoKey, depth = 0): StorableValue {
  if (depth > MAX_DEPTH) throw corrupt('nested too deeply');
  if (json === null || typeof json === 'boolean' || typeof json === 'string') return json;
  if (typeof json === 'number') {
    if (!Number.isFinite(json)) throw corrupt('non-finite number');
    return json;
  }
  if (Array.isArray(json)) return json.map((item) => decodeValue(item, keyOf, depth + 1));
  if (typeof json !== 'object') throw corrupt(`unexpected ${typeof json}`);
  const entries = Object.entries(json as Record<string, unknown>);
  const [tag, inner] = entries.length === 1 ? entries[0]! : ['', undefined];
  if (tag === '$b') {
    if (typeof inner !== 'string') throw corrupt('bytes tag without base64');
    try {
      return fromBase64(inner).slice();
    } catch (e) {
      throw new StoreError('corrupt', 'stored value: bad base64', { cause: e });
    }
  }
  if (tag === '$k') return keyOf(inner as Json);
  const fields = tag === '$o' ? inner : json;
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw corrupt('object tag without an object');
  const props = Object.entries(fields as Record<string, unknown>);
  for (const [k] of props) if (tag !== '$o' && k.startsWith('$')) throw corrupt(`unknown tag ${k.slice(0, 16)}`);
  return Object.fromEntries(props.map(([k, item]) => [k, decodeValue(item, keyOf, depth + 1)]));
}
