import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, fromBase64, fromHex, toHex, u16be } from '../../../lib/codec/bytes';
import { CryptoError, DecodeError, EncodeError } from '../../../lib/errors';
import { ecdsaDerToRaw, ecdsaRawToDer } from '../../../lib/crypto/ecdsa-der';
import {
  type LegacyIdentity,
  type LegacyPublicIdentity,
  generateLegacyIdentity,
  importLegacyIdentity,
  parsePublicIdentity,
} from '../../../lib/crypto/identity-legacy';
import { pairDecrypt, pairEncrypt, parsePairFrame } from '../../../lib/crypto/pair';
import { subtle } from '../../../lib/crypto/subtle';
import vectors from '../../vectors';

const { alice: aliceVec, bob: bobVec } = vectors.legacy;
let alice: LegacyIdentity;
let bob: LegacyIdentity;
let carol: LegacyIdentity;
let alicePub: LegacyPublicIdentity;
let bobPub: LegacyPublicIdentity;

beforeAll(async () => {
  [alice, bob, carol] = await Promise.all([
    importLegacyIdentity(fromBase64(aliceVec.signing_private_pkcs8), fromBase64(aliceVec.encryption_private_pkcs8)),
    importLegacyIdentity(fromBase64(bobVec.signing_private_pkcs8), fromBase64(bobVec.encryption_private_pkcs8)),
    generateLegacyIdentity(),
  ]);
  [alicePub, bobPub] = await Promise.all([
    parsePublicIdentity(fromHex(aliceVec.public_message_identity_key)),
    parsePublicIdentity(fromHex(bobVec.public_message_identity_key)),
  ]);
});

const buf = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>;

/** Test-side AES-CTR keystream from single AES blocks (CBC with a zero IV), counter 00…01 counting up. */
async function keystream(key: Uint8Array, length: number): Promise<Uint8Array> {
  const k = await subtle().importKey('raw', buf(key), 'AES-CBC', false, ['encrypt']);
  const out = new Uint8Array(Math.ceil(length / 16) * 16);
  for (let i = 0; i * 16 < length; i++) {
    const counter = new Uint8Array(16);
    new DataView(counter.buffer).setUint32(12, i + 1);
    const block = await subtle().encrypt({ name: 'AES-CBC', iv: new Uint8Array(16) }, k, counter);
    out.set(new Uint8Array(block, 0, 16), i * 16);
  }
  return out.subarray(0, length);
}

const xor = (a: Uint8Array, b: Uint8Array) => a.map((v, i) => v ^ b[i]!);

async function expectTypedRejection(p: Promise<unknown>, type?: typeof CryptoError | typeof DecodeError, code?: string) {
  const e = await p.then(
    (v) => ({ resolved: v }),
    (err: unknown) => err,
  );
  expect(e instanceof CryptoError || e instanceof DecodeError, `got ${String(e)}`).toBe(true);
  if (type) expect(e).toBeInstanceOf(type);
  if (code) expect((e as CryptoError).code).toBe(code);
}

/** Frames a body signed by `signer`, as a sender would. */
async function frame(body: Uint8Array, signer: LegacyIdentity): Promise<Uint8Array> {
  const raw = new Uint8Array(await subtle().sign({ name: 'ECDSA', hash: 'SHA-1' }, signer.signing.privateKey, buf(body)));
  const sig = ecdsaRawToDer(raw);
  return concat(new Uint8Array([2]), u16be(body.length), body, new Uint8Array([sig.length]), sig);
}

describe('pair vectors', () => {
  it('verifies and decrypts all four alice→bob payloads to exactly the plaintext', async () => {
    expect(vectors.legacy.pair.length).toBe(4);
    for (const v of vectors.legacy.pair) {
      const plain = await pairDecrypt(fromHex(v.payload), bob, alicePub);
      expect(toHex(plain)).toBe(v.plaintext);
    }
  });

  it('rejects the tampered vector with CryptoError', async () => {
    await expectTypedRejection(pairDecrypt(fromHex(vectors.legacy.pair_tampered), bob, alicePub), CryptoError, 'bad-signature');
  });

  it('rejects the wrong sender or recipient', async () => {
    const payload = fromHex(vectors.legacy.pair[0]!.payload);
    await expectTypedRejection(pairDecrypt(payload, bob, bobPub), CryptoError, 'bad-signature');
    await expectTypedRejection(pairDecrypt(payload, alice, alicePub), CryptoError, 'bad-rsa-ciphertext');
  });
});

describe('pair encrypt', () => {
  it('round-trips in both directions across the RSA/tail boundary', async () => {
    for (const n of [0, 1, 99, 100, 101, 1000, 4096]) {
      const m = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      const ab = await pairEncrypt(m, alice, bobPub);
      const bodyLength = 160 + Math.max(0, n - 100);
      expect(toHex(ab.subarray(0, 3))).toBe('02' + toHex(u16be(bodyLength)));
      expect(ab.length).toBe(3 + bodyLength + 1 + ab[3 + bodyLength]!);
      expect(await pairDecrypt(ab, bob, alicePub)).toEqual(m);
      const ba = await pairEncrypt(m, bob, alicePub);
      expect(await pairDecrypt(ba, alice, bobPub)).toEqual(m);
    }
    const fresh = await generateLegacyIdentity();
    const m = new Uint8Array([1, 2, 3]);
    expect(await pairDecrypt(await pairEncrypt(m, fresh, bobPub), bob, fresh.publicKey)).toEqual(m);
    expect(await pairDecrypt(await pairEncrypt(m, bob, fresh.publicKey), fresh, bobPub)).toEqual(m);
  });

  // 300 bytes takes the JS HMAC path, 5000 the WebCrypto one; both are checked against an independent HMAC.
  it.each([300, 5000])('has the documented layout for a fixed seed (%i bytes)', async (n) => {
    const seed = fromHex('000102030405060708090a');
    const m = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
    const mac = hmac(sha256, seed, concat(m, new Uint8Array([2]), alicePub.hash, bobPub.hash));
    const key = concat(seed, mac.subarray(0, 5));
    const c = xor(m, await keystream(key, m.length));

    const payload = await pairEncrypt(m, alice, bobPub, { seed });
    const bodyLength = 160 + n - 100;
    expect(payload[0]).toBe(0x02);
    expect(toHex(payload.subarray(1, 3))).toBe(toHex(u16be(bodyLength)));
    const s = payload[3 + bodyLength]!;
    expect(s).toBeGreaterThanOrEqual(70);
    expect(s).toBeLessThanOrEqual(72);
    expect(payload.length).toBe(3 + bodyLength + 1 + s);
    const body = payload.subarray(3, 3 + bodyLength);
    expect(toHex(body.subarray(160))).toBe(toHex(c.subarray(100)));
    const r = await subtle().decrypt({ name: 'RSA-OAEP' }, bob.encryption.privateKey, buf(body.slice(0, 160)));
    expect(toHex(new Uint8Array(r))).toBe(toHex(concat(key, c.subarray(0, 100))));
    // The signature is DER ECDSA over SHA-1(body), checked with an independent implementation.
    const sig = payload.subarray(4 + bodyLength);
    const point = alicePub.blob.subarray(7, 72);
    expect(p256.verify(sig, sha1(body), point, { prehash: false, lowS: false, format: 'der' })).toBe(true);

    // Same seed again: identical AES part, fresh OAEP padding and signature.
    const again = await pairEncrypt(m, alice, bobPub, { seed });
    expect(toHex(again.subarray(3 + 160, 3 + bodyLength))).toBe(toHex(body.subarray(160)));
    expect(toHex(again.subarray(3, 3 + 160))).not.toBe(toHex(body.subarray(0, 160)));
    expect(await pairDecrypt(again, bob, alicePub)).toEqual(m);
  });

  it('keeps short messages entirely inside the RSA block', async () => {
    const seed = fromHex('ffeeddccbbaa9988776655');
    const m = fromHex('68656c6c6f');
    const mac = hmac(sha256, seed, concat(m, new Uint8Array([2]), alicePub.hash, bobPub.hash));
    const key = concat(seed, mac.subarray(0, 5));
    const payload = await pairEncrypt(m, alice, bobPub, { seed });
    expect(toHex(payload.subarray(0, 3))).toBe('0200a0');
    const r = await subtle().decrypt({ name: 'RSA-OAEP' }, bob.encryption.privateKey, buf(payload.slice(3, 163)));
    expect(toHex(new Uint8Array(r))).toBe(toHex(concat(key, xor(m, await keystream(key, 5)))));
  });

  it('refuses bad seeds, oversized messages and unusable keys', async () => {
    await expect(pairEncrypt(new Uint8Array(1), alice, bobPub, { seed: new Uint8Array(10) })).rejects.toThrow(EncodeError);
    const max = 0xffff - 160 + 100;
    await expect(pairEncrypt(new Uint8Array(max + 1), alice, bobPub)).rejects.toThrow(EncodeError);
    const big = await pairEncrypt(new Uint8Array(max), alice, bobPub);
    expect(toHex(big.subarray(0, 3))).toBe('02ffff');
    expect((await pairDecrypt(big, bob, alicePub)).length).toBe(max);
    const wrongKeys = { ...bobPub, encryptionKey: bob.encryption.privateKey };
    await expectTypedRejection(pairEncrypt(new Uint8Array(3), alice, wrongKeys), CryptoError);
    const wrongType = { ...bobPub, encryptionKey: alice.signing.publicKey };
    await expectTypedRejection(pairEncrypt(new Uint8Array(3), alice, wrongType), CryptoError, 'bad-key');
  });
});

describe('pair decrypt rejects', () => {
  it('every single-byte flip of a small payload', async () => {
    const payload = await pairEncrypt(fromHex('0102030405'), alice, bobPub);
    for (let at = 0; at < payload.length; at++) {
      for (const x of [0x01, 0x80]) {
        const m = payload.slice();
        m[at]! ^= x;
        await expectTypedRejection(pairDecrypt(m, bob, alicePub));
      }
    }
  });

  it('sampled byte flips, truncations and extensions of a long vector payload', async () => {
    const payload = fromHex(vectors.legacy.pair[1]!.payload);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: payload.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const m = payload.slice();
        m[at]! ^= x;
        await expectTypedRejection(pairDecrypt(m, bob, alicePub));
      }),
      { numRuns: 150 },
    );
    for (const cut of [1, 70, 300, payload.length - 1]) {
      await expectTypedRejection(pairDecrypt(payload.subarray(0, payload.length - cut), bob, alicePub), DecodeError);
    }
    await expectTypedRejection(pairDecrypt(concat(payload, new Uint8Array(1)), bob, alicePub), DecodeError, 'pair-trailing-bytes');
  });

  it('random bytes and random frames with typed errors only', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (b) => {
        await expectTypedRejection(pairDecrypt(b, bob, alicePub));
      }),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 160, maxLength: 300 }), fc.uint8Array({ maxLength: 80 }), async (body, sig) => {
        const m = concat(new Uint8Array([2]), u16be(body.length), body, new Uint8Array([sig.length]), sig);
        await expectTypedRejection(pairDecrypt(m, bob, alicePub), CryptoError);
      }),
      { numRuns: 100 },
    );
  });

  it('a body re-signed by another identity: the MAC binds the real sender', async () => {
    const { body } = parsePairFrame(fromHex(vectors.legacy.pair[0]!.payload));
    const resigned = await frame(body, carol);
    await expectTypedRejection(pairDecrypt(resigned, bob, carol.publicKey), CryptoError, 'bad-mac');
  });

  it('a well-signed payload whose 40-bit MAC is wrong', async () => {
    const m = fromHex('00112233445566778899');
    const seed = fromHex('0102030405060708090a0b');
    const mac = hmac(sha256, seed, concat(m, new Uint8Array([2]), alicePub.hash, bobPub.hash));
    const key = concat(seed, mac.subarray(0, 5).map((v, i) => (i === 4 ? v ^ 1 : v)));
    const c = xor(m, await keystream(key, m.length));
    const r = new Uint8Array(await subtle().encrypt({ name: 'RSA-OAEP' }, bobPub.encryptionKey, buf(concat(key, c))));
    await expectTypedRejection(pairDecrypt(await frame(r, alice), bob, alicePub), CryptoError, 'bad-mac');
    // The same construction with the right MAC decrypts, so the failure above is the MAC alone.
    const good = concat(seed, mac.subarray(0, 5));
    const c2 = xor(m, await keystream(good, m.length));
    const r2 = new Uint8Array(await subtle().encrypt({ name: 'RSA-OAEP' }, bobPub.encryptionKey, buf(concat(good, c2))));
    expect(await pairDecrypt(await frame(r2, alice), bob, alicePub)).toEqual(m);
  });

  it('an RSA block that carries too little ciphertext before a tail, or no key', async () => {
    const key = new Uint8Array(16);
    const short = new Uint8Array(await subtle().encrypt({ name: 'RSA-OAEP' }, bobPub.encryptionKey, buf(concat(key, new Uint8Array(50)))));
    await expectTypedRejection(pairDecrypt(await frame(concat(short, new Uint8Array(10)), alice), bob, alicePub), CryptoError, 'bad-pair-layout');
    const noKey = new Uint8Array(await subtle().encrypt({ name: 'RSA-OAEP' }, bobPub.encryptionKey, new Uint8Array(15)));
    await expectTypedRejection(pairDecrypt(await frame(noKey, alice), bob, alicePub), CryptoError, 'bad-pair-layout');
  });

  it('malformed frames with DecodeError codes', async () => {
    const good = fromHex(vectors.legacy.pair[0]!.payload);
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'pair-truncated'],
      [fromHex('020000'), 'pair-truncated'],
      [concat(new Uint8Array([1]), good.subarray(1)), 'bad-pair-tag'],
      [fromHex('02000100'), 'pair-truncated'],
      [fromHex('0200010005aa'), 'pair-truncated'],
      [fromHex('020001000000'), 'pair-trailing-bytes'],
      [await frame(new Uint8Array(100), alice), 'pair-body-too-short'],
    ];
    for (const [input, code] of cases) await expectTypedRejection(pairDecrypt(input, bob, alicePub), DecodeError, code);
    expect(parsePairFrame(fromHex('0200010103aabbcc'))).toEqual({ body: fromHex('01'), signature: fromHex('aabbcc') });
  });

  it('a non-canonical DER signature as bad-signature', async () => {
    const { body, signature } = parsePairFrame(fromHex(vectors.legacy.pair[0]!.payload));
    const raw = ecdsaDerToRaw(signature);
    expect(raw.length).toBe(64);
    // Re-encode r with a redundant leading zero: same numbers, but not DER.
    const bad = concat(fromHex('30'), new Uint8Array([signature[1]! + 1]), fromHex('02'), new Uint8Array([signature[3]! + 1]), fromHex('00'), signature.subarray(4));
    const m = concat(new Uint8Array([2]), u16be(body.length), body, new Uint8Array([bad.length]), bad);
    await expectTypedRejection(pairDecrypt(m, bob, alicePub), CryptoError, 'bad-signature');
  });
});
