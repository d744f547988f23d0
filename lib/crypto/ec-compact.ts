// Compact P-256 public keys (ids.md §6.2, imessage.md §5.1): only X goes on the wire, and the sign of Y is
// implied by the convention y ≤ p − y. WebCrypto cannot import a compressed point, so decompression uses
// @noble/curves; everything else stays in WebCrypto.
import { p256 } from '@noble/curves/nist.js';
import { CryptoError, DecodeError } from '../errors';
import { subtle } from './subtle';

const Fp = p256.Point.Fp;
/** (p − 1) / 2: y ≤ p − y exactly when y ≤ this, since p is odd. */
const HALF_P = (Fp.ORDER - 1n) >> 1n;
/** A generated key fails the y test with probability ½, so this many misses means a broken RNG. */
const MAX_KEYGEN_ATTEMPTS = 64;

export type CompactKeyUsage = 'ecdsa' | 'ecdh';

/** A WebCrypto key pair whose public point satisfies y ≤ p − y, with its 32-byte X. */
export interface CompactKeyPair {
  keyPair: CryptoKeyPair;
  compact: Uint8Array<ArrayBuffer>;
}

function bigintOf(b: Uint8Array): bigint {
  let n = 0n;
  for (const byte of b) n = (n << 8n) | BigInt(byte);
  return n;
}

/** Whether an uncompressed point `04 ‖ X ‖ Y` is in compact form (y ≤ p − y). */
export function isCompactable(point: Uint8Array): boolean {
  if (point.length !== 65 || point[0] !== 0x04) throw new DecodeError('bad-point', 'not an uncompressed P-256 point');
  return bigintOf(point.subarray(33)) <= HALF_P;
}

/** The uncompressed point `04 ‖ X ‖ min(y, p − y)` for a compact key. */
export function decompressCompact(x32: Uint8Array): Uint8Array<ArrayBuffer> {
  if (x32.length !== 32) throw new DecodeError('bad-compact-key', `compact key is ${x32.length} bytes, not 32`);
  const compressed = new Uint8Array(33);
  compressed[0] = 0x02;
  compressed.set(x32, 1);
  let y: bigint;
  try {
    y = p256.Point.fromBytes(compressed).toAffine().y;
  } catch (e) {
    throw new DecodeError('not-on-curve', 'compact key is not the X of a P-256 point', { cause: e });
  }
  const out = new Uint8Array(65);
  out[0] = 0x04;
  out.set(x32, 1);
  out.set(Fp.toBytes(y <= HALF_P ? y : Fp.ORDER - y), 33);
  return out;
}

/** X of a public key, i.e. its compact form (the caller knows the key is compactable). */
export async function compactOf(publicKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  const raw = new Uint8Array(await subtle().exportKey('raw', publicKey));
  return raw.slice(1, 33);
}

function algorithmFor(usage: CompactKeyUsage): EcKeyImportParams {
  return { name: usage === 'ecdsa' ? 'ECDSA' : 'ECDH', namedCurve: 'P-256' };
}

/** Imports an uncompressed `04 ‖ X ‖ Y` point as a public key (ECDSA: verify; ECDH: usable as `public`). */
export async function importRawPublicKey(point: Uint8Array<ArrayBuffer>, usage: CompactKeyUsage): Promise<CryptoKey> {
  try {
    return await subtle().importKey('raw', point, algorithmFor(usage), true, usage === 'ecdsa' ? ['verify'] : []);
  } catch (e) {
    throw new CryptoError('bad-key', 'P-256 public key rejected by WebCrypto', { cause: e });
  }
}

/** Imports a peer's compact key; the y choice matters for ECDSA verification, not for ECDH. */
export async function importCompactPublicKey(x32: Uint8Array, usage: CompactKeyUsage): Promise<CryptoKey> {
  return importRawPublicKey(decompressCompact(x32), usage);
}

/**
 * Generates a P-256 key pair in compact form, regenerating until y ≤ p − y (peers reconstruct y that way).
 * Private keys default to non-extractable, so the public point is checked through the always-exportable public key.
 */
export async function generateCompactKeyPair(usage: CompactKeyUsage, extractable = false): Promise<CompactKeyPair> {
  const usages: KeyUsage[] = usage === 'ecdsa' ? ['sign', 'verify'] : ['deriveBits'];
  for (let attempt = 0; attempt < MAX_KEYGEN_ATTEMPTS; attempt++) {
    const keyPair = await subtle().generateKey(algorithmFor(usage), extractable, usages);
    const raw = new Uint8Array(await subtle().exportKey('raw', keyPair.publicKey));
    if (isCompactable(raw)) return { keyPair, compact: raw.slice(1, 33) };
  }
  throw new CryptoError('keygen-failed', 'no compactable P-256 key after many attempts');
}
