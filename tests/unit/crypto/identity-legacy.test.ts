import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, fromBase64, fromHex, toHex } from '../../../lib/codec/bytes';
import { CeruleanError, DecodeError, EncodeError } from '../../../lib/errors';
import { der, expectDer, unsignedInteger } from '../../../lib/codec/der';
import {
  type LegacyIdentity,
  encodePublicIdentity,
  generateLegacyIdentity,
  importLegacyIdentity,
  parsePublicIdentity,
  publicIdentityFromKeys,
} from '../../../lib/crypto/identity-legacy';
import { subtle } from '../../../lib/crypto/subtle';
import vectors from '../../vectors';

const { alice, bob } = vectors.legacy;

async function importVector(v: typeof alice): Promise<LegacyIdentity> {
  return importLegacyIdentity(fromBase64(v.signing_private_pkcs8), fromBase64(v.encryption_private_pkcs8));
}

async function expectDecodeRejection(p: Promise<unknown>, code?: string) {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DecodeError);
  if (code) expect((e as DecodeError).code).toBe(code);
}

async function expectNotExtractable(key: CryptoKey) {
  expect(key.extractable).toBe(false);
  await expect(subtle().exportKey('pkcs8', key)).rejects.toThrow();
  await expect(subtle().exportKey('jwk', key)).rejects.toThrow();
}

/** The PKCS#1 RSAPublicKey inside an SPKI (test-side, independent of the library's stripping). */
async function pkcs1Of(key: CryptoKey): Promise<Uint8Array> {
  const spki = new Uint8Array(await subtle().exportKey('spki', key));
  const seq = expectDer(spki, 0x30).content;
  const alg = expectDer(seq, 0x30);
  return expectDer(seq, 0x03, alg.end).content.subarray(1);
}

const blobA = fromHex(alice.public_message_identity_key);
const blobB = fromHex(bob.public_message_identity_key);

describe('legacy identity blob', () => {
  it('rebuilds alice and bob blobs and hashes byte for byte from their private keys', async () => {
    for (const v of [alice, bob]) {
      const id = await importVector(v);
      expect(toHex(id.publicKey.blob)).toBe(v.public_message_identity_key);
      expect(toHex(id.publicKey.hash)).toBe(v.identity_hash);
    }
  });

  it('has the fixed layout of ids.md §6.1 and the documented hash input', () => {
    for (const [blob, hash] of [[blobA, alice.identity_hash], [blobB, bob.identity_hash]] as const) {
      expect(blob.length).toBe(249);
      const hex = toHex(blob);
      expect(hex.slice(0, 16)).toBe('3081f68143004104');
      expect(hex.slice(2 * 72, 2 * 84)).toBe('8281ae00ac3081a90281a100');
      expect(hex.slice(-10)).toBe('0203010001');
      // SHA-256 of both inner fields with their u16 prefixes, computed with an independent hash.
      expect(toHex(sha256(concat(blob.subarray(5, 72), blob.subarray(75))))).toBe(hash);
    }
  });

  it('parses the vector blobs back into working keys', async () => {
    const [a, b] = await Promise.all([importVector(alice), importVector(bob)]);
    const parsedA = await parsePublicIdentity(blobA);
    const parsedB = await parsePublicIdentity(blobB);
    expect(toHex(parsedA.hash)).toBe(alice.identity_hash);
    expect(toHex(parsedB.hash)).toBe(bob.identity_hash);
    expect(toHex(parsedA.blob)).toBe(alice.public_message_identity_key);
    const data = new Uint8Array([5, 6, 7]);
    const sig = await subtle().sign({ name: 'ECDSA', hash: 'SHA-1' }, a.signing.privateKey, data);
    expect(await subtle().verify({ name: 'ECDSA', hash: 'SHA-1' }, parsedA.signingKey, sig, data)).toBe(true);
    expect(await subtle().verify({ name: 'ECDSA', hash: 'SHA-1' }, parsedB.signingKey, sig, data)).toBe(false);
    const sealed = await subtle().encrypt({ name: 'RSA-OAEP' }, parsedB.encryptionKey, data);
    expect(new Uint8Array(sealed).length).toBe(160);
    expect(new Uint8Array(await subtle().decrypt({ name: 'RSA-OAEP' }, b.encryption.privateKey, sealed))).toEqual(data);
  });

  it('parses generically: a 2048-bit RSA key takes the long length forms', async () => {
    const rsa = await subtle().importKey(
      'pkcs8',
      fromBase64(vectors.ids_signature.rsa_private_pkcs8) as Uint8Array<ArrayBuffer>,
      { name: 'RSA-OAEP', hash: 'SHA-1' },
      true,
      ['decrypt'],
    );
    const jwk = await subtle().exportKey('jwk', rsa);
    const pub = await subtle().importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, { name: 'RSA-OAEP', hash: 'SHA-1' }, true, ['encrypt']);
    const blob = encodePublicIdentity(blobA.subarray(7, 72), await pkcs1Of(pub));
    expect(toHex(blob.subarray(0, 4))).toBe('30820159');
    expect(toHex(blob.subarray(73, 83))).toBe('82820110010e3082010a');
    const parsed = await parsePublicIdentity(blob);
    expect((parsed.encryptionKey.algorithm as RsaHashedKeyAlgorithm).modulusLength).toBe(2048);
    expect(toHex((await publicIdentityFromKeys(parsed.signingKey, parsed.encryptionKey)).blob)).toBe(toHex(blob));
  });

  it('rejects malformed blobs with DecodeError', async () => {
    const hex = alice.public_message_identity_key;
    const point = hex.slice(14, 144);
    const pkcs1 = hex.slice(2 * 77);
    const field1 = '8143' + '0041' + point;
    const field2 = '8281ae' + '00ac' + pkcs1;
    const seq = (inner: string) => toHex(der(0x30, fromHex(inner)));
    const rsaKey = (n: Uint8Array, e: Uint8Array) => toHex(der(0x30, unsignedInteger(n), unsignedInteger(e)));
    const withRsa = (pk: string) => seq(field1 + toHex(der(0x82, fromHex((pk.length / 2).toString(16).padStart(4, '0') + pk))));
    const modulus = fromHex(pkcs1.slice(14, 14 + 320));
    expect(seq(field1 + field2)).toBe(hex);
    expect(withRsa(pkcs1)).toBe(hex);
    expect(rsaKey(modulus, fromHex('010001'))).toBe(pkcs1);
    const cases: [string, string][] = [
      ['', 'der-truncated'],
      [hex.slice(0, -2), 'der-truncated'],
      [hex + '00', 'der-trailing-bytes'],
      ['3181' + hex.slice(4), 'der-unexpected-tag'],
      ['308200f6' + hex.slice(6), 'der-bad-length'],
      [seq(field2 + field1), 'der-unexpected-tag'],
      [seq(field1), 'der-truncated'],
      [seq(field1 + field2 + '0500'), 'der-trailing-bytes'],
      [seq('8143' + '0042' + point + field2), 'bad-identity-key'],
      [seq('8101' + '00' + field2), 'bad-identity-key'],
      [seq('8143' + '0041' + '02' + point.slice(2) + field2), 'bad-identity-key'],
      [seq('8122' + '0020' + point.slice(2, 66) + field2), 'bad-identity-key'],
      [seq('8143' + '0041' + point.slice(0, -2) + ((parseInt(point.slice(-2), 16) ^ 1).toString(16).padStart(2, '0')) + field2), 'bad-identity-key'],
      [seq(field1 + '8281ae' + '00ab' + pkcs1), 'bad-identity-key'],
      [withRsa(rsaKey(modulus.subarray(32), fromHex('010001'))), 'bad-identity-key'],
      [withRsa(rsaKey(modulus, fromHex('010000'))), 'bad-identity-key'],
      [withRsa(rsaKey(modulus, fromHex(''))), 'bad-identity-key'],
      [withRsa(rsaKey(concat(modulus, modulus, modulus, modulus), fromHex('03'))), 'bad-identity-key'],
      [withRsa(pkcs1.replace('0281a100', '0281a180')), 'der-negative-integer'],
      [withRsa(pkcs1 + '00'), 'der-trailing-bytes'],
      [withRsa('3003020101'), 'der-truncated'],
    ];
    for (const [input, code] of cases) await expectDecodeRejection(parsePublicIdentity(fromHex(input)), code);
  });

  it('random and mutated blobs give DecodeError or a canonical identity', async () => {
    const check = async (input: Uint8Array) => {
      let parsed;
      try {
        parsed = await parsePublicIdentity(input);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        return;
      }
      // Anything accepted is a valid key pair that re-encodes to exactly the input.
      expect(toHex((await publicIdentityFromKeys(parsed.signingKey, parsed.encryptionKey)).blob)).toBe(toHex(input));
      expect(toHex(parsed.hash)).toBe(toHex(sha256(concat(input.subarray(5, 72), input.subarray(75)))));
    };
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 100 });
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: blobA.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const m = blobA.slice();
        m[at]! ^= x;
        await check(m);
      }),
      { numRuns: 200 },
    );
  });
});

describe('legacy identity keys', () => {
  it('generates non-extractable private keys that sign with SHA-1 and decrypt RSA-OAEP-SHA1', async () => {
    const id = await generateLegacyIdentity();
    await expectNotExtractable(id.signing.privateKey);
    await expectNotExtractable(id.encryption.privateKey);
    expect(id.signing.privateKey.usages).toEqual(['sign']);
    expect(id.encryption.privateKey.usages).toEqual(['decrypt']);
    expect(id.encryption.privateKey.algorithm).toMatchObject({ name: 'RSA-OAEP', modulusLength: 1280, hash: { name: 'SHA-1' } });
    expect(id.publicKey.blob.length).toBe(249);
    expect(toHex(id.publicKey.blob.subarray(0, 8))).toBe('3081f68143004104');
    expect(toHex(id.publicKey.blob.subarray(-5))).toBe('0203010001');
    const parsed = await parsePublicIdentity(id.publicKey.blob);
    expect(toHex(parsed.hash)).toBe(toHex(id.publicKey.hash));
    const data = new Uint8Array([9, 9]);
    const sig = await subtle().sign({ name: 'ECDSA', hash: 'SHA-1' }, id.signing.privateKey, data);
    expect(await subtle().verify({ name: 'ECDSA', hash: 'SHA-1' }, parsed.signingKey, sig, data)).toBe(true);
    const sealed = await subtle().encrypt({ name: 'RSA-OAEP' }, parsed.encryptionKey, data);
    expect(new Uint8Array(await subtle().decrypt({ name: 'RSA-OAEP' }, id.encryption.privateKey, sealed))).toEqual(data);
  });

  it('imports non-extractable by default and extractable only on request', async () => {
    const a = await importVector(alice);
    await expectNotExtractable(a.signing.privateKey);
    await expectNotExtractable(a.encryption.privateKey);
    const x = await importLegacyIdentity(fromBase64(alice.signing_private_pkcs8), fromBase64(alice.encryption_private_pkcs8), {
      extractable: true,
    });
    const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', x.encryption.privateKey));
    expect(pkcs8).toEqual(fromBase64(alice.encryption_private_pkcs8));
    expect(toHex(x.publicKey.blob)).toBe(alice.public_message_identity_key);
  });

  it('rejects bad private keys with DecodeError', async () => {
    const ec = fromBase64(alice.signing_private_pkcs8);
    const rsa = fromBase64(alice.encryption_private_pkcs8);
    await expectDecodeRejection(importLegacyIdentity(rsa, rsa), 'bad-private-key');
    await expectDecodeRejection(importLegacyIdentity(ec, ec), 'bad-private-key');
    await expectDecodeRejection(importLegacyIdentity(ec.subarray(0, 40), rsa), 'bad-private-key');
    await expectDecodeRejection(importLegacyIdentity(new Uint8Array(0), rsa), 'bad-private-key');
  });

  it('refuses to encode a blob from a malformed point', () => {
    expect(() => encodePublicIdentity(new Uint8Array(33), fromHex('3000'))).toThrow(EncodeError);
    expect(() => encodePublicIdentity(new Uint8Array(65), fromHex('3000'))).toThrow(CeruleanError);
  });
});
