// The legacy "pair" identity of a device: an ECDSA P-256 signing key and an RSA-1280 (e = 65537) OAEP key,
// published in IDS client-data as `public-message-identity-key` (ids.md §6.1):
//   SEQUENCE { [1] IMPLICIT OCTET STRING (u16be 65 ‖ 04 X Y), [2] IMPLICIT OCTET STRING (u16be n ‖ RSAPublicKey) }
// The identity hash that pair encryption binds into its MAC is SHA-256 over both octet-string contents.
// Private keys stay CryptoKeys (non-extractable unless a caller asks otherwise); public keys are parsed once into
// CryptoKeys so encrypting to a device never re-parses its blob.
import { concat, equalBytes, exact, readU16be, u16be } from '../codec/bytes';
import { DecodeError, EncodeError } from '../errors';
import {
  DER_BIT_STRING,
  DER_INTEGER,
  DER_NULL,
  DER_OID,
  DER_SEQUENCE,
  der,
  expectDer,
  expectOnlyDer,
  readUnsignedInteger,
} from '../codec/der';
import { subtle } from './subtle';

export interface LegacyPublicIdentity {
  /** ECDSA P-256, usage `verify` (hash chosen per call: pair uses SHA-1). */
  signingKey: CryptoKey;
  /** RSA-OAEP with SHA-1, usage `encrypt`. */
  encryptionKey: CryptoKey;
  /** The `public-message-identity-key` DER blob (249 bytes for RSA-1280). */
  blob: Uint8Array;
  /** SHA-256 of the blob's two inner fields, u16 prefixes included (32 bytes). */
  hash: Uint8Array;
}

export interface LegacyIdentity {
  /** ECDSA P-256: private `sign`, public `verify`. */
  signing: CryptoKeyPair;
  /** RSA-OAEP SHA-1: private `decrypt`, public `encrypt`. */
  encryption: CryptoKeyPair;
  publicKey: LegacyPublicIdentity;
}

const ECDSA_P256: EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
const RSA_OAEP_SHA1: RsaHashedImportParams = { name: 'RSA-OAEP', hash: 'SHA-1' };
const TAG_SIGNING_FIELD = 0x81;
const TAG_ENCRYPTION_FIELD = 0x82;
const P256_POINT_LENGTH = 65;
// 1.2.840.113549.1.1.1 rsaEncryption
const RSA_ENCRYPTION_OID = new Uint8Array([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
// Pair encryption puts 116 bytes under RSA-OAEP-SHA1, which needs a modulus of at least 158 bytes; Apple uses
// exactly 1280 bits. The upper bound only keeps hostile keys from costing much.
const MIN_MODULUS_BITS = 1280;
const MAX_MODULUS_BITS = 4096;

/**
 * A fresh identity. Private keys are non-extractable; `extractable` exists only for the Node headless client,
 * whose file store must wrap keys with a passphrase (browsers keep CryptoKeys in IndexedDB as they are).
 */
export async function generateLegacyIdentity(opts: { extractable?: boolean } = {}): Promise<LegacyIdentity> {
  const extractable = opts.extractable ?? false;
  const [signing, encryption] = await Promise.all([
    subtle().generateKey(ECDSA_P256, extractable, ['sign', 'verify']),
    subtle().generateKey(
      { ...RSA_OAEP_SHA1, modulusLength: 1280, publicExponent: new Uint8Array([1, 0, 1]) },
      extractable,
      ['encrypt', 'decrypt'],
    ),
  ]);
  return { signing, encryption, publicKey: await publicIdentityFromKeys(signing.publicKey, encryption.publicKey) };
}

/**
 * Imports a stored identity from its two PKCS#8 private keys. The public halves come from a one-off JWK export of
 * a temporary extractable copy, since WebCrypto cannot derive a public key from a non-extractable private one.
 */
export async function importLegacyIdentity(
  signingPkcs8: Uint8Array,
  encryptionPkcs8: Uint8Array,
  opts: { extractable: boolean } = { extractable: false },
): Promise<LegacyIdentity> {
  const [signing, encryption] = await Promise.all([
    importPair(signingPkcs8, ECDSA_P256, 'sign', 'verify', opts.extractable, (j) => ({ kty: j.kty, crv: j.crv, x: j.x, y: j.y })),
    importPair(encryptionPkcs8, RSA_OAEP_SHA1, 'decrypt', 'encrypt', opts.extractable, (j) => ({ kty: j.kty, n: j.n, e: j.e })),
  ]);
  return { signing, encryption, publicKey: await publicIdentityFromKeys(signing.publicKey, encryption.publicKey) };
}

async function importPair(
  pkcs8: Uint8Array,
  alg: EcKeyImportParams | RsaHashedImportParams,
  privateUsage: KeyUsage,
  publicUsage: KeyUsage,
  extractable: boolean,
  publicJwk: (jwk: JsonWebKey) => JsonWebKey,
): Promise<CryptoKeyPair> {
  try {
    const temp = await subtle().importKey('pkcs8', exact(pkcs8), alg, true, [privateUsage]);
    const jwk = await subtle().exportKey('jwk', temp);
    const [privateKey, publicKey] = await Promise.all([
      extractable ? temp : subtle().importKey('pkcs8', exact(pkcs8), alg, false, [privateUsage]),
      subtle().importKey('jwk', publicJwk(jwk), alg, true, [publicUsage]),
    ]);
    return { privateKey, publicKey };
  } catch (e) {
    throw new DecodeError('bad-private-key', `not a PKCS#8 ${alg.name} private key`, { cause: e });
  }
}

/** The blob for an uncompressed P-256 point (65 bytes) and a PKCS#1 RSAPublicKey. */
export function encodePublicIdentity(signingPoint: Uint8Array, rsaPublicKey: Uint8Array): Uint8Array {
  if (signingPoint.length !== P256_POINT_LENGTH || signingPoint[0] !== 0x04) {
    throw new EncodeError('bad-identity-key', 'signing key must be an uncompressed P-256 point');
  }
  if (rsaPublicKey.length > 0xffff) throw new EncodeError('bad-identity-key', 'RSA public key too large');
  return der(
    DER_SEQUENCE,
    der(TAG_SIGNING_FIELD, u16be(signingPoint.length), signingPoint),
    der(TAG_ENCRYPTION_FIELD, u16be(rsaPublicKey.length), rsaPublicKey),
  );
}

/** Builds the public identity (blob and hash) for two public CryptoKeys. */
export async function publicIdentityFromKeys(signingKey: CryptoKey, encryptionKey: CryptoKey): Promise<LegacyPublicIdentity> {
  const [point, spki] = await Promise.all([
    subtle().exportKey('raw', signingKey),
    subtle().exportKey('spki', encryptionKey),
  ]);
  const blob = encodePublicIdentity(new Uint8Array(point), rsaPublicKeyFromSpki(new Uint8Array(spki)));
  const { signingField, encryptionField } = splitBlob(blob);
  return { signingKey, encryptionKey, blob, hash: await identityHash(signingField, encryptionField) };
}

/** Parses a `public-message-identity-key` blob into ready-to-use CryptoKeys; DecodeError on anything malformed. */
export async function parsePublicIdentity(blob: Uint8Array): Promise<LegacyPublicIdentity> {
  const { signingField, encryptionField } = splitBlob(blob);
  const point = prefixed(signingField);
  if (point.length !== P256_POINT_LENGTH || point[0] !== 0x04) {
    throw new DecodeError('bad-identity-key', 'signing key is not an uncompressed P-256 point');
  }
  const rsaPublicKey = prefixed(encryptionField);
  checkRsaPublicKey(rsaPublicKey);
  const importing = Promise.all([
    subtle().importKey('raw', exact(point), ECDSA_P256, true, ['verify']),
    subtle().importKey('spki', spkiFromRsaPublicKey(rsaPublicKey), RSA_OAEP_SHA1, true, ['encrypt']),
  ]);
  const [keys, hash] = await Promise.allSettled([importing, identityHash(signingField, encryptionField)]);
  if (keys.status === 'rejected') {
    throw new DecodeError('bad-identity-key', 'identity key rejected by WebCrypto', { cause: keys.reason });
  }
  if (hash.status === 'rejected') throw hash.reason;
  const [signingKey, encryptionKey] = keys.value;
  return { signingKey, encryptionKey, blob: exact(blob), hash: hash.value };
}

function splitBlob(blob: Uint8Array): { signingField: Uint8Array; encryptionField: Uint8Array } {
  const seq = expectOnlyDer(blob, DER_SEQUENCE);
  const signing = expectDer(seq, TAG_SIGNING_FIELD);
  const encryption = expectDer(seq, TAG_ENCRYPTION_FIELD, signing.end);
  if (encryption.end !== seq.length) throw new DecodeError('der-trailing-bytes', 'bytes after the identity fields');
  return { signingField: signing.content, encryptionField: encryption.content };
}

/** The key bytes of a `u16be length ‖ bytes` field, which must fill the field exactly. */
function prefixed(field: Uint8Array): Uint8Array {
  if (field.length < 2 || readU16be(field) !== field.length - 2) {
    throw new DecodeError('bad-identity-key', 'identity field length prefix does not match its content');
  }
  return field.subarray(2);
}

/** Strict PKCS#1 RSAPublicKey check: SEQUENCE{INTEGER n, INTEGER e}, positive, modulus within bounds. */
function checkRsaPublicKey(pkcs1: Uint8Array): void {
  const seq = expectOnlyDer(pkcs1, DER_SEQUENCE);
  const n = expectDer(seq, DER_INTEGER);
  const e = expectDer(seq, DER_INTEGER, n.end);
  if (e.end !== seq.length) throw new DecodeError('der-trailing-bytes', 'bytes after the RSA exponent');
  const modulus = readUnsignedInteger(n.content);
  const exponent = readUnsignedInteger(e.content);
  const bits = modulus.length === 0 ? 0 : (modulus.length - 1) * 8 + (32 - Math.clz32(modulus[0]!));
  if (bits < MIN_MODULUS_BITS || bits > MAX_MODULUS_BITS) {
    throw new DecodeError('bad-identity-key', `RSA modulus of ${bits} bits is outside ${MIN_MODULUS_BITS}..${MAX_MODULUS_BITS}`);
  }
  if (exponent.length === 0 || exponent.length > 4 || !(exponent[exponent.length - 1]! & 1)) {
    throw new DecodeError('bad-identity-key', 'RSA public exponent is not a small odd number');
  }
}

function rsaPublicKeyFromSpki(spki: Uint8Array): Uint8Array {
  const seq = expectOnlyDer(spki, DER_SEQUENCE);
  const alg = expectDer(seq, DER_SEQUENCE);
  const oid = expectDer(alg.content, DER_OID);
  const bits = expectDer(seq, DER_BIT_STRING, alg.end);
  if (bits.end !== seq.length || !equalBytes(oid.content, RSA_ENCRYPTION_OID) || bits.content[0] !== 0) {
    throw new DecodeError('bad-identity-key', 'not an RSA SubjectPublicKeyInfo');
  }
  return bits.content.subarray(1);
}

function spkiFromRsaPublicKey(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const algorithm = der(DER_SEQUENCE, der(DER_OID, RSA_ENCRYPTION_OID), der(DER_NULL));
  return der(DER_SEQUENCE, algorithm, der(DER_BIT_STRING, new Uint8Array(1), pkcs1));
}

async function identityHash(signingField: Uint8Array, encryptionField: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', exact(concat(signingField, encryptionField))));
}
