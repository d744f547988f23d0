// The cryptography the TLS engine (@reclaimprotocol/tls) asks for, on WebCrypto through lib/crypto/subtle.ts.
// The package's own WebCrypto binding imports node:crypto (so it cannot load in a browser) and pads every ECDSA
// signature to P-256 width (so P-384 keys fail); this one serves exactly the suites connectTls offers:
// (EC)DHE key shares on X25519/P-256/P-384, AES-GCM records, ECDSA and RSA(-PSS) signatures.
import type { Crypto as TlsEngineCrypto } from '@reclaimprotocol/tls';
import { concat, equalBytes, fromHex, utf8 } from '../codec/bytes';
import { DER_OID, DER_SEQUENCE, expectDer, expectOnlyDer } from '../codec/der';
import { ecdsaDerToRaw } from '../crypto/ecdsa-der';
import { randomBytes, subtle } from '../crypto/subtle';

type KeyShareAlgorithm = 'P-256' | 'P-384' | 'X25519';

const KEY_SHARES: Record<KeyShareAlgorithm, { params: EcKeyImportParams | Algorithm; bits: number }> = {
  'P-256': { params: { name: 'ECDH', namedCurve: 'P-256' }, bits: 256 },
  'P-384': { params: { name: 'ECDH', namedCurve: 'P-384' }, bits: 384 },
  X25519: { params: { name: 'X25519' }, bits: 256 },
};

interface SignatureScheme {
  /** For ECDSA the curve comes from the key itself (see ecdsaCurve). */
  importParams: RsaHashedImportParams | { name: 'ECDSA' };
  verifyParams: RsaPssParams | EcdsaParams | Algorithm;
}

const SIGNATURE_SCHEMES: Record<string, SignatureScheme> = {
  'RSA-PSS-SHA256': {
    importParams: { name: 'RSA-PSS', hash: 'SHA-256' },
    verifyParams: { name: 'RSA-PSS', saltLength: 32 },
  },
  'RSA-PKCS1-SHA256': rsaPkcs1('SHA-256'),
  'RSA-PKCS1-SHA384': rsaPkcs1('SHA-384'),
  'RSA-PKCS1-SHA512': rsaPkcs1('SHA-512'),
  // In TLS 1.2 these code points name only the hash: a P-384 key may sign "ecdsa_secp256r1_sha256".
  'ECDSA-SECP256R1-SHA256': ecdsa('SHA-256'),
  'ECDSA-SECP256R1-SHA384': ecdsa('SHA-384'),
  'ECDSA-SECP384R1-SHA256': ecdsa('SHA-256'),
  'ECDSA-SECP384R1-SHA384': ecdsa('SHA-384'),
};

/** Named-curve OIDs (DER content) of the curves WebCrypto verifies with, and their coordinate width. */
const EC_CURVES: Array<{ oid: Uint8Array; namedCurve: string; size: number }> = [
  { oid: fromHex('2a8648ce3d030107'), namedCurve: 'P-256', size: 32 },
  { oid: fromHex('2b81040022'), namedCurve: 'P-384', size: 48 },
];

const HMAC_HASHES = new Set(['SHA-1', 'SHA-256', 'SHA-384']);
const GCM = new Set(['AES-128-GCM', 'AES-256-GCM']);
const TAG_BYTES = 16;

function rsaPkcs1(hash: string): SignatureScheme {
  return { importParams: { name: 'RSASSA-PKCS1-v1_5', hash }, verifyParams: { name: 'RSASSA-PKCS1-v1_5' } };
}

function ecdsa(hash: string): SignatureScheme {
  return { importParams: { name: 'ECDSA' }, verifyParams: { name: 'ECDSA', hash } };
}

/** The curve of an EC SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { id-ecPublicKey, namedCurve }, BIT STRING }. */
function ecdsaCurve(spki: Uint8Array): { namedCurve: string; size: number } {
  const algorithm = expectDer(expectOnlyDer(spki, DER_SEQUENCE), DER_SEQUENCE).content;
  const curveOid = expectDer(algorithm, DER_OID, expectDer(algorithm, DER_OID).end).content;
  const curve = EC_CURVES.find((c) => equalBytes(c.oid, curveOid));
  if (!curve) throw new Error('unsupported EC curve in the server certificate');
  return curve;
}

/** The engine hands out plain Uint8Arrays over ordinary ArrayBuffers; WebCrypto's typings want that spelled out. */
function buf(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b as Uint8Array<ArrayBuffer>;
}

function notOffered(what: string): never {
  throw new Error(`${what} is not offered by this client`);
}

async function importKey(alg: string, raw: Uint8Array, type?: unknown): Promise<CryptoKey> {
  if (GCM.has(alg)) return subtle().importKey('raw', buf(raw), 'AES-GCM', false, ['encrypt', 'decrypt']);
  if (HMAC_HASHES.has(alg)) return subtle().importKey('raw', buf(raw), { name: 'HMAC', hash: alg }, false, ['sign']);
  const share = KEY_SHARES[alg as KeyShareAlgorithm];
  if (share && type === 'public') return subtle().importKey('raw', buf(raw), share.params, true, []);
  const scheme = SIGNATURE_SCHEMES[alg];
  if (scheme && type === 'public') {
    const params = scheme.importParams.name === 'ECDSA' ? { name: 'ECDSA', namedCurve: ecdsaCurve(raw).namedCurve } : scheme.importParams;
    return subtle().importKey('spki', buf(raw), params, false, ['verify']);
  }
  return notOffered(`key type ${alg}`);
}

async function verify(
  alg: string,
  { data, signature, publicKey }: { data: Uint8Array; signature: Uint8Array; publicKey: CryptoKey },
): Promise<boolean> {
  const scheme = SIGNATURE_SCHEMES[alg] ?? notOffered(`signature scheme ${alg}`);
  let sig = signature;
  if (scheme.importParams.name === 'ECDSA') {
    // TLS carries DER; WebCrypto wants r ‖ s at the key's coordinate width.
    const size = EC_CURVES.find((c) => c.namedCurve === (publicKey.algorithm as EcKeyAlgorithm).namedCurve)?.size;
    try {
      sig = ecdsaDerToRaw(signature, size);
    } catch {
      return false;
    }
  }
  return subtle().verify(scheme.verifyParams, publicKey, buf(sig), buf(data));
}

async function hmac(alg: string, key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().sign('HMAC', key, buf(data)));
}

export const tlsEngineCrypto: TlsEngineCrypto<CryptoKey> = {
  importKey,
  async exportKey(key) {
    return new Uint8Array(await subtle().exportKey('raw', key));
  },
  async generateKeyPair(alg) {
    const share = KEY_SHARES[alg] ?? notOffered(`key share ${alg}`);
    // Ephemeral: the private half never needs to leave WebCrypto.
    const pair = (await subtle().generateKey(share.params, false, ['deriveBits'])) as CryptoKeyPair;
    return { pubKey: pair.publicKey, privKey: pair.privateKey };
  },
  async calculateSharedSecret(alg, privateKey, publicKey) {
    const share = KEY_SHARES[alg] ?? notOffered(`key share ${alg}`);
    const params = { name: share.params.name, public: publicKey };
    return new Uint8Array(await subtle().deriveBits(params, privateKey, share.bits));
  },
  randomBytes,
  asymmetricEncrypt: () => notOffered('RSA key exchange'),
  encrypt: () => notOffered('CBC cipher suites'),
  decrypt: () => notOffered('CBC cipher suites'),
  async authenticatedEncrypt(cipher, { key, iv, data, aead }) {
    if (!GCM.has(cipher)) notOffered(cipher);
    const params: AesGcmParams = { name: 'AES-GCM', iv: buf(iv), additionalData: buf(aead), tagLength: 128 };
    const sealed = new Uint8Array(await subtle().encrypt(params, key, buf(data)));
    return { ciphertext: sealed.subarray(0, -TAG_BYTES), authTag: sealed.subarray(-TAG_BYTES) };
  },
  async authenticatedDecrypt(cipher, { key, iv, data, aead, authTag }) {
    if (!GCM.has(cipher)) notOffered(cipher);
    const params: AesGcmParams = { name: 'AES-GCM', iv: buf(iv), additionalData: buf(aead), tagLength: 128 };
    try {
      return { plaintext: new Uint8Array(await subtle().decrypt(params, key, buf(concat(data, authTag)))) };
    } catch (e) {
      throw new Error('TLS record failed authentication', { cause: e });
    }
  },
  verify,
  async hash(alg, data) {
    return new Uint8Array(await subtle().digest(alg, buf(data)));
  },
  hmac,
  async extract(alg, hashLength, ikm, salt) {
    const saltBytes = typeof salt === 'string' ? utf8(salt) : salt;
    const key = await importKey(alg, saltBytes.length ? saltBytes : new Uint8Array(hashLength));
    return hmac(alg, key, ikm);
  },
};
