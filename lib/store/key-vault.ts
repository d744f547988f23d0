// Where WebCrypto keys go when the storage cannot hold CryptoKey objects (the Node file store). A vault turns a key
// into bytes encrypted under a passphrase-derived key and back. This is weaker than the browser's guarantee: in
// IndexedDB a non-extractable key is stored as a key and nobody can read it, while a vault can only wrap keys it can
// export, so the headless client creates its private keys extractable, and the file store hands them back
// non-extractable after loading. What protects them on disk is the passphrase.
import { utf8 } from '../codec/bytes';
import { randomBytes, subtle } from '../crypto/subtle';
import { StoreError } from './errors';
import * as v from './validate';

/** What a key's import needs besides its bytes. */
export interface StoredAlgorithm {
  name: string;
  namedCurve?: string;
  hash?: string;
}

export interface WrappedKey {
  type: KeyType;
  algorithm: StoredAlgorithm;
  usages: KeyUsage[];
  /** Kept for public keys; private and secret keys come back non-extractable whatever they were. */
  extractable: boolean;
  /** PBKDF2-SHA256 parameters of the wrapping key. */
  salt: Uint8Array;
  iterations: number;
  /** AES-GCM nonce (12 bytes). */
  iv: Uint8Array;
  /** AES-GCM over PKCS#8 (private), SPKI (public) or raw (secret) bytes, with the fields above as associated data. */
  data: Uint8Array;
}

export interface KeyVault {
  wrap(key: CryptoKey): Promise<WrappedKey>;
  unwrap(wrapped: WrappedKey): Promise<CryptoKey>;
}

/** OWASP's 2023 figure for PBKDF2-HMAC-SHA256. */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;
// A stored iteration count outside this range is damage (or a file built to burn CPU), not a real setting.
const MIN_ITERATIONS = 1_000;
const MAX_ITERATIONS = 10_000_000;
const KEY_TYPES: readonly KeyType[] = ['private', 'public', 'secret'];
const FORMATS: Record<KeyType, 'pkcs8' | 'spki' | 'raw'> = { private: 'pkcs8', public: 'spki', secret: 'raw' };

function algorithmOf(key: CryptoKey): StoredAlgorithm {
  const a = key.algorithm as KeyAlgorithm & { namedCurve?: string; hash?: { name: string } };
  return { name: a.name, ...(a.namedCurve && { namedCurve: a.namedCurve }), ...(a.hash && { hash: a.hash.name }) };
}

/** Binds the metadata to the ciphertext: a key cannot be re-imported under another algorithm or with more usages. */
function associatedData(w: Pick<WrappedKey, 'type' | 'algorithm' | 'usages' | 'extractable'>): Uint8Array<ArrayBuffer> {
  const a = w.algorithm;
  const canonical = JSON.stringify([w.type, a.name, a.namedCurve ?? null, a.hash ?? null, [...w.usages].sort(), w.extractable]);
  return new Uint8Array(utf8(canonical));
}

/** Checks a wrapped key read back from storage. */
export function checkWrappedKey(x: unknown): WrappedKey {
  const r = v.record(x, 'wrapped key');
  const alg = v.record(r.algorithm, 'wrapped key.algorithm');
  const namedCurve = v.optional(alg.namedCurve, (c) => v.text(c, 'wrapped key.algorithm.namedCurve'));
  const hash = v.optional(alg.hash, (h) => v.text(h, 'wrapped key.algorithm.hash'));
  const iterations = v.count(r.iterations, 'wrapped key.iterations');
  if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new StoreError('bad-input', 'wrapped key.iterations is out of range');
  }
  return {
    type: v.oneOf(r.type, 'wrapped key.type', KEY_TYPES),
    algorithm: { name: v.text(alg.name, 'wrapped key.algorithm.name'), ...(namedCurve && { namedCurve }), ...(hash && { hash }) },
    usages: v.array(r.usages, 'wrapped key.usages').map((u, i) => v.text(u, `wrapped key.usages[${i}]`) as KeyUsage),
    extractable: v.bool(r.extractable, 'wrapped key.extractable'),
    salt: v.bytes(r.salt, 'wrapped key.salt'),
    iterations,
    iv: v.bytes(r.iv, 'wrapped key.iv', 12),
    data: v.bytes(r.data, 'wrapped key.data'),
  };
}

/**
 * A vault keyed by a passphrase: PBKDF2-SHA256 (one random salt per vault instance, `iterations` rounds) derives
 * an AES-256-GCM key that wraps each key with a fresh nonce. Each wrapped key records its own salt and iteration
 * count, so data written by earlier runs (or with other settings) still unwraps.
 */
export function passphraseKeyVault(passphrase: string, options: { iterations?: number } = {}): KeyVault {
  if (typeof passphrase !== 'string' || passphrase.length === 0) throw new StoreError('bad-input', 'passphrase must be a non-empty string');
  const iterations = options.iterations ?? DEFAULT_PBKDF2_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new StoreError('bad-input', `iterations must be between ${MIN_ITERATIONS} and ${MAX_ITERATIONS}`);
  }
  const salt = randomBytes(16);
  const derived = new Map<string, Promise<CryptoKey>>();

  function wrappingKey(s: Uint8Array, rounds: number): Promise<CryptoKey> {
    const id = `${rounds}:${Array.from(s).join(',')}`;
    let key = derived.get(id);
    if (!key) {
      key = (async () => {
        const base = await subtle().importKey('raw', new Uint8Array(utf8(passphrase)), 'PBKDF2', false, ['deriveKey']);
        return subtle().deriveKey(
          { name: 'PBKDF2', salt: new Uint8Array(s), iterations: rounds, hash: 'SHA-256' },
          base,
          { name: 'AES-GCM', length: 256 },
          false,
          ['wrapKey', 'unwrapKey'],
        );
      })();
      derived.set(id, key);
    }
    return key;
  }

  return {
    async wrap(key) {
      if (key.type !== 'public' && !key.extractable) {
        throw new StoreError('key-not-extractable', `a non-extractable ${key.type} key cannot be wrapped; create it extractable`);
      }
      const meta = { type: key.type, algorithm: algorithmOf(key), usages: [...key.usages], extractable: key.extractable };
      const iv = randomBytes(12);
      const data = await subtle().wrapKey(FORMATS[key.type], key, await wrappingKey(salt, iterations), {
        name: 'AES-GCM',
        iv,
        additionalData: associatedData(meta),
      });
      return { ...meta, salt: salt.slice(), iterations, iv, data: new Uint8Array(data) };
    },

    async unwrap(w) {
      const wrapped = checkWrappedKey(w);
      const { name, namedCurve, hash } = wrapped.algorithm;
      const algorithm = { name, ...(namedCurve && { namedCurve }), ...(hash && { hash }) };
      try {
        return await subtle().unwrapKey(
          FORMATS[wrapped.type],
          new Uint8Array(wrapped.data),
          await wrappingKey(wrapped.salt, wrapped.iterations),
          { name: 'AES-GCM', iv: new Uint8Array(wrapped.iv), additionalData: associatedData(wrapped) },
          algorithm,
          wrapped.type === 'public' && wrapped.extractable,
          wrapped.usages,
        );
      } catch (e) {
        throw new StoreError('key-unwrap-failed', 'a stored key did not decrypt (wrong passphrase or damaged data)', { cause: e });
      }
    },
  };
}
