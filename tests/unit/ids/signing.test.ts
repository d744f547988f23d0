import { beforeAll, describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64 } from '../../../lib/codec/bytes';
import { EncodeError } from '../../../lib/errors';
import { parseNonce, verifyIdsSignature } from '../../../lib/crypto/request-signing';
import { authHeaders, idHeaders, pushAndAuthHeaders, pushHeaders } from '../../../lib/ids/signing';
import vectors from '../../vectors';

// pypush's signature over a lookup body (bag key id-query) with a fixed nonce.
const v = vectors.ids_signature;
const RSA_SHA1: RsaHashedImportParams = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' };
const TOKEN = fromHex(v.push_token);
const BODY = fromHex(v.body);
const CERT = fromHex('30820102');
let privateKey: CryptoKey;
let publicKey: CryptoKey;

beforeAll(async () => {
  const pkcs8 = fromBase64(v.rsa_private_pkcs8) as Uint8Array<ArrayBuffer>;
  privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, RSA_SHA1, false, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', await crypto.subtle.importKey('pkcs8', pkcs8, RSA_SHA1, true, ['sign']));
  publicKey = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, RSA_SHA1, true, ['verify']);
});

const fixedNonce = () => fromHex(v.nonce);

describe('IDS signature headers', () => {
  it('reproduce the pypush id-query vector', async () => {
    const h = await idHeaders({ certDer: CERT, privateKey }, TOKEN, v.bag_key, BODY, { nonce: fixedNonce });
    expect(h).toEqual({
      'x-push-token': toBase64(TOKEN),
      'x-id-cert': 'MIIBAg==',
      'x-id-nonce': toBase64(fromHex(v.nonce)),
      'x-id-sig': v.signature_b64,
    });
  });

  it('push and auth families sign the same preimage with their own keys', async () => {
    const push = await pushHeaders({ token: TOKEN, certDer: CERT, privateKey }, v.bag_key, BODY, { nonce: fixedNonce });
    expect(push['x-push-sig']).toBe(v.signature_b64);
    expect(push['x-push-cert']).toBe('MIIBAg==');
    expect(push['x-push-token']).toBe(toBase64(TOKEN));
    const auth = await authHeaders({ userId: 'P:+15555550100', certDer: CERT, privateKey }, TOKEN, v.bag_key, BODY, undefined, { nonce: fixedNonce });
    expect(auth).toEqual({
      'x-auth-user-id': 'P:+15555550100',
      'x-auth-cert': 'MIIBAg==',
      'x-auth-nonce': toBase64(fromHex(v.nonce)),
      'x-auth-sig': v.signature_b64,
    });
  });

  it('suffix auth headers with -N for register', async () => {
    const h = await authHeaders({ userId: 'D:1', certDer: CERT, privateKey }, TOKEN, 'id-register', BODY, 1);
    expect(Object.keys(h).sort()).toEqual(['x-auth-cert-1', 'x-auth-nonce-1', 'x-auth-sig-1', 'x-auth-user-id-1']);
    const nonce = fromBase64(h['x-auth-nonce-1']!);
    const ok = await verifyIdsSignature(publicKey, { nonce, bagKey: 'id-register', query: '', body: BODY, pushToken: TOKEN }, fromBase64(h['x-auth-sig-1']!));
    expect(ok).toBe(true);
  });

  it('use a fresh nonce per family, at the injected time', async () => {
    const h = await pushAndAuthHeaders(
      { token: TOKEN, certDer: CERT, privateKey },
      { userId: 'D:1', certDer: CERT, privateKey },
      'id-get-handles',
      new Uint8Array(0),
      { now: () => 1_700_000_000_123 },
    );
    const push = fromBase64(h['x-push-nonce']!);
    const auth = fromBase64(h['x-auth-nonce']!);
    expect(toBase64(push)).not.toBe(toBase64(auth));
    expect(parseNonce(push)).toEqual({ kind: 'ids', timeMs: 1_700_000_000_123 });
    expect(parseNonce(auth)).toEqual({ kind: 'ids', timeMs: 1_700_000_000_123 });
    for (const [nonce, sig] of [[push, h['x-push-sig']!], [auth, h['x-auth-sig']!]] as const) {
      const fields = { nonce, bagKey: 'id-get-handles', query: '', body: new Uint8Array(0), pushToken: TOKEN };
      expect(await verifyIdsSignature(publicKey, fields, fromBase64(sig))).toBe(true);
    }
  });

  it('refuse a push token that is not 32 bytes', async () => {
    await expect(idHeaders({ certDer: CERT, privateKey }, TOKEN.subarray(1), 'id-query', BODY)).rejects.toBeInstanceOf(EncodeError);
  });
});
