// The one place lib/ reaches for WebCrypto: globalThis.crypto exists in browsers, workers and Node 20.
import { CryptoError } from '../errors';

function webcrypto(): Crypto {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (!c?.subtle) throw new CryptoError('no-webcrypto', 'WebCrypto is not available (a secure context is required)');
  return c;
}

export function subtle(): SubtleCrypto {
  return webcrypto().subtle;
}

/** Cryptographically random bytes; getRandomValues is limited to 65536 bytes per call. */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  const c = webcrypto();
  for (let off = 0; off < n; off += 65536) c.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}
