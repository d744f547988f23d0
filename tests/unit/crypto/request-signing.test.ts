import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, fromBase64, fromHex, toBase64, toHex, utf8 } from '../../../lib/codec/bytes';
import { CryptoError, DecodeError, EncodeError } from '../../../lib/errors';
import {
  type IdsSignedFields,
  courierNonce,
  idsNonce,
  idsSignedPreimage,
  parseNonce,
  signCourierNonce,
  signIdsRequest,
  verifyCourierNonce,
  verifyIdsSignature,
} from '../../../lib/crypto/request-signing';
import { subtle } from '../../../lib/crypto/subtle';
import vectors from '../../vectors';

const v = vectors.ids_signature;
const RSA_SHA1: RsaHashedImportParams = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' };
const pkcs8 = fromBase64(v.rsa_private_pkcs8) as Uint8Array<ArrayBuffer>;
let privateKey: CryptoKey;
let publicKey: CryptoKey;

const vectorFields: IdsSignedFields = {
  nonce: fromHex(v.nonce),
  bagKey: v.bag_key,
  query: v.query_string,
  body: fromHex(v.body),
  pushToken: fromHex(v.push_token),
};

beforeAll(async () => {
  privateKey = await subtle().importKey('pkcs8', pkcs8, RSA_SHA1, false, ['sign']);
  const jwk = await subtle().exportKey('jwk', await subtle().importKey('pkcs8', pkcs8, RSA_SHA1, true, ['sign']));
  publicKey = await subtle().importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, RSA_SHA1, true, ['verify']);
});

describe('nonces', () => {
  it('have the fixed 17-byte layout', () => {
    const ids = idsNonce(0x18bcfe56800);
    const courier = courierNonce(0x18bcfe56800);
    expect(ids.length).toBe(17);
    expect(toHex(ids.subarray(0, 9))).toBe('010000018bcfe56800');
    expect(toHex(courier.subarray(0, 9))).toBe('000000018bcfe56800');
    expect(toHex(idsNonce(0).subarray(0, 9))).toBe('010000000000000000');
    expect(toHex(idsNonce(0x18bcfe56800).subarray(9))).not.toBe(toHex(ids.subarray(9)));
    expect(parseNonce(fromHex(v.nonce))).toEqual({ kind: 'ids', timeMs: 0x193535687fb });
    expect(parseNonce(fromHex('000000018bcfe568000102030405060708'))).toEqual({ kind: 'courier', timeMs: 0x18bcfe56800 });
  });

  it('default to the current time', () => {
    const before = Date.now();
    const { kind, timeMs } = parseNonce(idsNonce());
    expect(kind).toBe('ids');
    expect(timeMs).toBeGreaterThanOrEqual(before);
    expect(timeMs).toBeLessThanOrEqual(Date.now());
    expect(parseNonce(courierNonce()).kind).toBe('courier');
  });

  it('reject bad times and malformed nonces', () => {
    for (const t of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) expect(() => idsNonce(t)).toThrow(EncodeError);
    const bad = ['', '01' + '00'.repeat(15), '01' + '00'.repeat(17), '02' + '00'.repeat(16), 'ff' + '00'.repeat(16), '01' + '0020000000000000' + '00'.repeat(8)];
    for (const hex of bad) expect(() => parseNonce(fromHex(hex))).toThrow(DecodeError);
    expect(parseNonce(fromHex('01' + '001fffffffffffff' + '00'.repeat(8))).timeMs).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('round-trip any time, and parse random bytes only into typed errors', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (t) => {
        expect(parseNonce(idsNonce(t))).toEqual({ kind: 'ids', timeMs: t });
        expect(parseNonce(courierNonce(t))).toEqual({ kind: 'courier', timeMs: t });
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (b) => {
        try {
          const { kind, timeMs } = parseNonce(b);
          expect(b.length).toBe(17);
          expect(b[0]).toBe(kind === 'ids' ? 1 : 0);
          expect(Number.isSafeInteger(timeMs)).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('IDS request signature', () => {
  it('rebuilds the vector preimage byte for byte', () => {
    expect(toHex(idsSignedPreimage(vectorFields))).toBe(v.preimage);
  });

  it('lays out the fields with u32 length prefixes', () => {
    const nonce = fromHex('01' + '0000018bcfe56800' + '0102030405060708');
    const token = fromHex('aa'.repeat(32));
    const pre = idsSignedPreimage({ nonce, bagKey: 'id-register', query: '', body: fromHex('c0ffee'), pushToken: token });
    expect(toHex(pre)).toBe(
      toHex(nonce) + '0000000b' + toHex(utf8('id-register')) + '00000000' + '00000003c0ffee' + '00000020' + 'aa'.repeat(32),
    );
    const get = idsSignedPreimage({ nonce, bagKey: 'id-get-handles', query: '', body: new Uint8Array(0), pushToken: token });
    expect(toHex(get.subarray(17 + 4 + 14))).toBe('00000000' + '00000000' + '00000020' + 'aa'.repeat(32));
    expect(() => idsSignedPreimage({ ...vectorFields, nonce: courierNonce(0) })).toThrow(EncodeError);
    expect(() => idsSignedPreimage({ ...vectorFields, nonce: new Uint8Array(16).fill(1) })).toThrow(EncodeError);
  });

  it('reproduces the vector signature (PKCS#1 v1.5 is deterministic) and verifies it', async () => {
    const { nonce, signature, headerValue } = await signIdsRequest(privateKey, vectorFields);
    expect(toHex(nonce)).toBe(v.nonce);
    expect(headerValue).toBe(v.signature_b64);
    expect(toHex(signature.subarray(0, 2))).toBe('0101');
    expect(signature.length).toBe(2 + 256);
    expect(toBase64(signature)).toBe(v.signature_b64);
    expect(await verifyIdsSignature(publicKey, vectorFields, fromBase64(v.signature_b64))).toBe(true);
  });

  it('makes a fresh IDS nonce when none is given', async () => {
    const { nonce, signature } = await signIdsRequest(privateKey, { ...vectorFields, nonce: undefined });
    expect(parseNonce(nonce).kind).toBe('ids');
    expect(await verifyIdsSignature(publicKey, { ...vectorFields, nonce }, signature)).toBe(true);
    expect(await verifyIdsSignature(publicKey, vectorFields, signature)).toBe(false);
  });

  it('fails verification for any changed field, prefix or signature byte', async () => {
    const sig = fromBase64(v.signature_b64);
    const changed: IdsSignedFields[] = [
      { ...vectorFields, bagKey: 'id-register' },
      { ...vectorFields, query: 'x' },
      { ...vectorFields, body: concat(vectorFields.body, new Uint8Array(1)) },
      { ...vectorFields, pushToken: new Uint8Array(32) },
      { ...vectorFields, nonce: fromHex(v.nonce.slice(0, -2) + '48') },
      { ...vectorFields, nonce: fromHex('00' + v.nonce.slice(2)) },
    ];
    for (const f of changed) expect(await verifyIdsSignature(publicKey, f, sig)).toBe(false);
    expect(await verifyIdsSignature(publicKey, vectorFields, concat(fromHex('0102'), sig.subarray(2)))).toBe(false);
    expect(await verifyIdsSignature(publicKey, vectorFields, sig.subarray(2))).toBe(false);
    expect(await verifyIdsSignature(publicKey, vectorFields, fromHex('0101'))).toBe(false);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: sig.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const m = sig.slice();
        m[at]! ^= x;
        expect(await verifyIdsSignature(publicKey, vectorFields, m)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses keys that are not RSASSA-PKCS1-v1_5 with SHA-1', async () => {
    const sha256Key = await subtle().importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
    const pssKey = await subtle().importKey('pkcs8', pkcs8, { name: 'RSA-PSS', hash: 'SHA-1' }, false, ['sign']);
    for (const key of [sha256Key, pssKey]) {
      await expect(signIdsRequest(key, vectorFields)).rejects.toThrow(CryptoError);
      await expect(signCourierNonce(key, courierNonce())).rejects.toThrow(CryptoError);
    }
    await expect(signIdsRequest(publicKey, vectorFields)).rejects.toThrow(CryptoError);
    await expect(verifyIdsSignature(privateKey, vectorFields, fromBase64(v.signature_b64))).rejects.toThrow(CryptoError);
  });
});

describe('courier nonce signature', () => {
  it('is 01 01 ‖ RSA-SHA1(nonce) and verifies', async () => {
    const nonce = fromHex('000000018bcfe568000102030405060708');
    const sig = await signCourierNonce(privateKey, nonce);
    const direct = new Uint8Array(await subtle().sign('RSASSA-PKCS1-v1_5', privateKey, nonce as Uint8Array<ArrayBuffer>));
    expect(toHex(sig)).toBe('0101' + toHex(direct));
    expect(await verifyCourierNonce(publicKey, nonce, sig)).toBe(true);
    const other = courierNonce();
    expect(await verifyCourierNonce(publicKey, other, sig)).toBe(false);
    expect(await verifyCourierNonce(publicKey, other, await signCourierNonce(privateKey, other))).toBe(true);
    expect(await verifyCourierNonce(publicKey, nonce, concat(fromHex('0100'), sig.subarray(2)))).toBe(false);
  });

  it('insists on a courier nonce', async () => {
    const ids = idsNonce();
    await expect(signCourierNonce(privateKey, ids)).rejects.toThrow(EncodeError);
    await expect(signCourierNonce(privateKey, new Uint8Array(16))).rejects.toThrow(EncodeError);
    const idsSig = concat(fromHex('0101'), new Uint8Array(await subtle().sign('RSASSA-PKCS1-v1_5', privateKey, ids as Uint8Array<ArrayBuffer>)));
    expect(await verifyCourierNonce(publicKey, ids, idsSig)).toBe(false);
  });
});
