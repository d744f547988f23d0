import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toHex } from '../../../lib/codec/bytes';
import {
  compactOf,
  decompressCompact,
  generateCompactKeyPair,
  importCompactPublicKey,
  isCompactable,
} from '../../../lib/crypto/ec-compact';
import { subtle } from '../../../lib/crypto/subtle';
import { DecodeError } from '../../../lib/errors';
import vectors from '../../vectors';

// The P-256 generator G: its y is below p/2, so −G = (Gx, p − Gy) is the non-compact twin.
const GX = '6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296';
const GY = '4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5';
const NEG_GY = 'b01cbd1c01e58065711814b583f061e9d431cca994cea1313449bf97c840ae0a';
const P = 'ffffffff00000001000000000000000000000000ffffffffffffffffffffffff';
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' };

/** The uncompressed public point a PKCS#8 P-256 key carries at its end (BIT STRING 00 04 X Y). */
function publicPointOfPkcs8(pkcs8: Uint8Array): Uint8Array {
  return pkcs8.subarray(pkcs8.length - 65);
}

function expectDecodeError(f: () => unknown, code: string): void {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(DecodeError);
  expect((error as DecodeError).code).toBe(code);
}

async function nonCompactPair(usage: 'ecdsa' | 'ecdh'): Promise<{ keyPair: CryptoKeyPair; raw: Uint8Array }> {
  const algorithm = { name: usage === 'ecdsa' ? 'ECDSA' : 'ECDH', namedCurve: 'P-256' };
  const usages: KeyUsage[] = usage === 'ecdsa' ? ['sign', 'verify'] : ['deriveBits'];
  for (;;) {
    const keyPair = (await subtle().generateKey(algorithm, false, usages)) as CryptoKeyPair;
    const raw = new Uint8Array(await subtle().exportKey('raw', keyPair.publicKey));
    if (!isCompactable(raw)) return { keyPair, raw };
  }
}

describe('isCompactable', () => {
  it('accepts y ≤ p − y and refuses its negation', () => {
    expect(isCompactable(fromHex('04' + GX + GY))).toBe(true);
    expect(isCompactable(fromHex('04' + GX + NEG_GY))).toBe(false);
  });

  it('puts the boundary at (p − 1) / 2', () => {
    const half = '7fffffff80000000800000000000000000000000' + '7fffffffffffffffffffffff';
    const halfPlusOne = '7fffffff80000000800000000000000000000000' + '800000000000000000000000';
    expect(isCompactable(fromHex('04' + GX + half))).toBe(true);
    expect(isCompactable(fromHex('04' + GX + halfPlusOne))).toBe(false);
  });

  it('rejects anything but an uncompressed point', () => {
    expectDecodeError(() => isCompactable(fromHex('02' + GX)), 'bad-point');
    expectDecodeError(() => isCompactable(fromHex('05' + GX + GY)), 'bad-point');
    expectDecodeError(() => isCompactable(new Uint8Array(0)), 'bad-point');
  });
});

describe('decompressCompact', () => {
  it('restores G with the small y', () => {
    expect(toHex(decompressCompact(fromHex(GX)))).toBe('04' + GX + GY);
  });

  it('restores the vector keys to the points in their PKCS#8', () => {
    for (const who of [vectors.ngm.alice, vectors.ngm.bob]) {
      expect(toHex(decompressCompact(fromHex(who.device_public_compact)))).toBe(
        toHex(publicPointOfPkcs8(fromBase64(who.device_private_pkcs8))),
      );
      expect(toHex(decompressCompact(fromHex(who.prekey_public_compact)))).toBe(
        toHex(publicPointOfPkcs8(fromBase64(who.prekey_private_pkcs8))),
      );
    }
  });

  it('rejects wrong lengths, X off the curve and X ≥ p', () => {
    expectDecodeError(() => decompressCompact(new Uint8Array(31)), 'bad-compact-key');
    expectDecodeError(() => decompressCompact(new Uint8Array(33)), 'bad-compact-key');
    expectDecodeError(() => decompressCompact(fromHex('04' + GX + GY)), 'bad-compact-key');
    // x = 1: 1 − 3 + b is not a square mod p.
    expectDecodeError(() => decompressCompact(fromHex('00'.repeat(31) + '01')), 'not-on-curve');
    expectDecodeError(() => decompressCompact(fromHex(P)), 'not-on-curve');
    expectDecodeError(() => decompressCompact(new Uint8Array(32).fill(0xff)), 'not-on-curve');
  });

  it('maps random X to a compact point on the curve with the same X, or not-on-curve', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (x) => {
        let point: Uint8Array;
        try {
          point = decompressCompact(x);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
          expect((e as DecodeError).code).toBe('not-on-curve');
          return;
        }
        expect(point.length).toBe(65);
        expect(point.subarray(1, 33)).toEqual(x);
        expect(isCompactable(point)).toBe(true);
        expect(() => p256.Point.fromBytes(point)).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });

  it('gives only DecodeError for inputs of any length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (bytes) => {
        try {
          decompressCompact(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('generated and imported compact keys', () => {
  it('generates compact non-extractable key pairs whose compact form is the exported X', async () => {
    for (const usage of ['ecdsa', 'ecdh'] as const) {
      const { keyPair, compact } = await generateCompactKeyPair(usage);
      expect(keyPair.privateKey.extractable).toBe(false);
      expect(compact).toEqual(await compactOf(keyPair.publicKey));
      const raw = new Uint8Array(await subtle().exportKey('raw', keyPair.publicKey));
      expect(isCompactable(raw)).toBe(true);
      expect(decompressCompact(compact)).toEqual(raw);
    }
  });

  it('imports a compact ECDSA key that verifies what the private key signed', async () => {
    const { keyPair, compact } = await generateCompactKeyPair('ecdsa');
    const data = new Uint8Array([0, 1, 2, 3]);
    const signature = await subtle().sign(ECDSA_SHA256, keyPair.privateKey, data);
    const imported = await importCompactPublicKey(compact, 'ecdsa');
    expect(imported.usages).toEqual(['verify']);
    expect(await subtle().verify(ECDSA_SHA256, imported, signature, data)).toBe(true);
  });

  it('shows why compactness matters: a non-compact signer does not verify under its compact import', async () => {
    const { keyPair, raw } = await nonCompactPair('ecdsa');
    const data = new Uint8Array([0, 1, 2, 3]);
    const signature = await subtle().sign(ECDSA_SHA256, keyPair.privateKey, data);
    const imported = await importCompactPublicKey(raw.subarray(1, 33), 'ecdsa');
    expect(await subtle().verify(ECDSA_SHA256, imported, signature, data)).toBe(false);
  });

  it('ECDH agrees whatever the y choice', async () => {
    const mine = await generateCompactKeyPair('ecdh');
    const { keyPair, raw } = await nonCompactPair('ecdh');
    const theirs = await importCompactPublicKey(raw.subarray(1, 33), 'ecdh');
    const a = await subtle().deriveBits({ name: 'ECDH', public: theirs }, mine.keyPair.privateKey, 256);
    const b = await subtle().deriveBits({ name: 'ECDH', public: keyPair.publicKey }, mine.keyPair.privateKey, 256);
    expect(new Uint8Array(a)).toEqual(new Uint8Array(b));
  });

  it('reports bad compact keys as DecodeError on import', async () => {
    await expect(importCompactPublicKey(fromHex('00'.repeat(31) + '01'), 'ecdh')).rejects.toBeInstanceOf(DecodeError);
    await expect(importCompactPublicKey(new Uint8Array(5), 'ecdsa')).rejects.toBeInstanceOf(DecodeError);
  });
});
