// Nonce signatures that authenticate a device to IDS (HTTP headers, ids.md §3) and to the APNs courier
// (connect item 14, apns.md §4). Both use a 17-byte nonce `kind ‖ u64be unix-ms ‖ 8 random bytes` and a signature
// `01 01 ‖ RSASSA-PKCS1-v1_5(SHA-1, …)`; IDS signs the nonce followed by length-prefixed request fields, the courier
// signs the bare nonce. The RSA keys are CryptoKeys whose algorithm fixes the hash to SHA-1.
import { concat, equalBytes, exact, readU64be, toBase64, u32be, u64be, utf8 } from '../codec/bytes';
import { CryptoError, DecodeError, EncodeError } from '../errors';
import { randomBytes, subtle } from './subtle';

export type NonceKind = 'ids' | 'courier';

export interface IdsSignedFields {
  /** 17-byte nonce starting with 0x01, fresh for every header family. */
  nonce: Uint8Array;
  /** The bag key of the endpoint (`id-register`, `id-query`, …), not its URL. */
  bagKey: string;
  /** Always "" in every known client. */
  query: string;
  /** The HTTP body exactly as transmitted (gzipped if sent gzipped); empty for GETs. */
  body: Uint8Array;
  /** Raw 32-byte push token. */
  pushToken: Uint8Array;
}

export interface IdsSignature {
  nonce: Uint8Array;
  /** `01 01 ‖ RSA signature`. */
  signature: Uint8Array;
  /** base64(signature), the value of an `x-…-sig` header. */
  headerValue: string;
}

const NONCE_LENGTH = 17;
const NONCE_PREFIX: Record<NonceKind, number> = { ids: 0x01, courier: 0x00 };
const SIGNATURE_PREFIX = new Uint8Array([0x01, 0x01]);

export function idsNonce(nowMs: number = Date.now()): Uint8Array {
  return makeNonce('ids', nowMs);
}

export function courierNonce(nowMs: number = Date.now()): Uint8Array {
  return makeNonce('courier', nowMs);
}

function makeNonce(kind: NonceKind, nowMs: number): Uint8Array {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) throw new EncodeError('bad-time', 'nonce time must be a non-negative integer of ms');
  return concat(new Uint8Array([NONCE_PREFIX[kind]]), u64be(BigInt(nowMs)), randomBytes(8));
}

/** Kind and timestamp of a nonce, so a verifier can judge freshness. */
export function parseNonce(nonce: Uint8Array): { kind: NonceKind; timeMs: number } {
  if (nonce.length !== NONCE_LENGTH) throw new DecodeError('bad-nonce', `nonce must be ${NONCE_LENGTH} bytes`);
  const kind = nonce[0] === NONCE_PREFIX.ids ? 'ids' : nonce[0] === NONCE_PREFIX.courier ? 'courier' : undefined;
  if (kind === undefined) throw new DecodeError('bad-nonce', 'unknown nonce type byte');
  const time = readU64be(nonce, 1);
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('bad-nonce', 'nonce timestamp is out of range');
  return { kind, timeMs: Number(time) };
}

/** `nonce ‖ u32 len ‖ bagKey ‖ u32 len ‖ query ‖ u32 len ‖ body ‖ u32 len ‖ pushToken`. */
export function idsSignedPreimage(fields: IdsSignedFields): Uint8Array {
  if (!isNonce(fields.nonce, 'ids')) throw new EncodeError('bad-nonce', 'IDS requests need a 17-byte 0x01 nonce');
  const bagKey = utf8(fields.bagKey);
  const query = utf8(fields.query);
  return concat(
    fields.nonce,
    u32be(bagKey.length), bagKey,
    u32be(query.length), query,
    u32be(fields.body.length), fields.body,
    u32be(fields.pushToken.length), fields.pushToken,
  );
}

/** Signs an IDS request; a fresh nonce is made unless one is given (fixed vectors). */
export async function signIdsRequest(
  privateKey: CryptoKey,
  fields: Omit<IdsSignedFields, 'nonce'> & { nonce?: Uint8Array },
): Promise<IdsSignature> {
  const nonce = fields.nonce ?? idsNonce();
  const signature = await prefixedSign(privateKey, idsSignedPreimage({ ...fields, nonce }));
  return { nonce, signature, headerValue: toBase64(signature) };
}

/** True iff `signature` is `01 01 ‖ RSA-SHA1` over the request's preimage under `publicKey`. */
export async function verifyIdsSignature(publicKey: CryptoKey, fields: IdsSignedFields, signature: Uint8Array): Promise<boolean> {
  if (!isNonce(fields.nonce, 'ids')) return false;
  return prefixedVerify(publicKey, idsSignedPreimage(fields), signature);
}

/** Connect item 14: `01 01 ‖ RSA-SHA1(nonce)` for a 0x00 courier nonce. */
export async function signCourierNonce(privateKey: CryptoKey, nonce: Uint8Array): Promise<Uint8Array> {
  if (!isNonce(nonce, 'courier')) throw new EncodeError('bad-nonce', 'the courier needs a 17-byte 0x00 nonce');
  return prefixedSign(privateKey, nonce);
}

export async function verifyCourierNonce(publicKey: CryptoKey, nonce: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (!isNonce(nonce, 'courier')) return false;
  return prefixedVerify(publicKey, nonce, signature);
}

function isNonce(nonce: Uint8Array, kind: NonceKind): boolean {
  return nonce.length === NONCE_LENGTH && nonce[0] === NONCE_PREFIX[kind];
}

async function prefixedSign(privateKey: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  checkRsaSha1(privateKey);
  try {
    const raw = await subtle().sign('RSASSA-PKCS1-v1_5', privateKey, exact(data));
    return concat(SIGNATURE_PREFIX, new Uint8Array(raw));
  } catch (e) {
    throw new CryptoError('bad-key', 'WebCrypto refused to sign with this key', { cause: e });
  }
}

async function prefixedVerify(publicKey: CryptoKey, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  checkRsaSha1(publicKey);
  if (signature.length <= SIGNATURE_PREFIX.length || !equalBytes(signature.subarray(0, 2), SIGNATURE_PREFIX)) return false;
  try {
    return await subtle().verify('RSASSA-PKCS1-v1_5', publicKey, exact(signature.subarray(2)), exact(data));
  } catch (e) {
    throw new CryptoError('bad-key', 'WebCrypto refused to verify with this key', { cause: e });
  }
}

// RSASSA keys carry their hash; a SHA-256 key would silently produce signatures Apple rejects.
function checkRsaSha1(key: CryptoKey): void {
  const alg = key.algorithm as Partial<RsaHashedKeyAlgorithm>;
  if (alg.name !== 'RSASSA-PKCS1-v1_5' || alg.hash?.name !== 'SHA-1') {
    throw new CryptoError('bad-key', 'request signing needs an RSASSA-PKCS1-v1_5 SHA-1 key');
  }
}
