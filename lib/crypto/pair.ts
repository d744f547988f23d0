// Legacy "pair" end-to-end encryption (imessage.md §4): an 88-bit random seed plus a 40-bit HMAC of the message
// and both identities form an AES-128-CTR key; the key and the first 100 ciphertext bytes go under the recipient's
// RSA-OAEP key, and the sender signs the whole body with ECDSA-SHA1.
//   frame = 02 ‖ u16be L ‖ body (L) ‖ u8 S ‖ DER signature (S),   body = RSA-OAEP(K ‖ C[0..100]) ‖ C[100..]
// On receipt the 40-bit MAC is checked too (Apple's security guide says devices do; the open clients skip it).
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, equalBytes, exact, readU16be, u16be } from '../codec/bytes';
import { CeruleanError, CryptoError, DecodeError, EncodeError } from '../errors';
import { ecdsaDerToRaw, ecdsaRawToDer } from './ecdsa-der';
import type { LegacyIdentity, LegacyPublicIdentity } from './identity-legacy';
import { randomBytes, subtle } from './subtle';

const FRAME_TAG = 0x02;
const SEED_LENGTH = 11;
const MAC_LENGTH = 5;
const KEY_LENGTH = SEED_LENGTH + MAC_LENGTH;
/** How much ciphertext rides inside the RSA block, filling most of what OAEP-SHA1 allows for RSA-1280. */
const RSA_CARRIED = 100;
const MAX_BODY = 0xffff;
// Typical payloads are a few hundred bytes: hashing those in JS saves two WebCrypto round trips (HMAC key import and
// sign), the largest share of per-device latency; past a few KiB the native hash is faster.
const JS_HMAC_LIMIT = 4096;
const ECDSA_SHA1: EcdsaParams = { name: 'ECDSA', hash: 'SHA-1' };
// The whole 16-byte block counts up from 1; a u16-bounded body can never wrap it.
const AES_CTR: AesCtrParams = { name: 'AES-CTR', counter: new Uint8Array([...new Uint8Array(15), 1]), length: 128 };

export interface PairFrame<B extends ArrayBufferLike = ArrayBufferLike> {
  body: Uint8Array<B>;
  signature: Uint8Array<B>;
}

/** Splits a pair payload into body and DER signature; the lengths must account for every byte. */
export function parsePairFrame<B extends ArrayBufferLike>(payload: Uint8Array<B>): PairFrame<B> {
  if (payload.length < 4) throw new DecodeError('pair-truncated', 'pair payload is too short');
  // The open clients ignore the tag, but it lies outside the signature: accepting any value would let it change unseen.
  if (payload[0] !== FRAME_TAG) throw new DecodeError('bad-pair-tag', 'pair payload does not start with 0x02');
  const bodyLength = readU16be(payload, 1);
  const sigLengthAt = 3 + bodyLength;
  if (sigLengthAt >= payload.length) throw new DecodeError('pair-truncated', 'pair body runs past the payload');
  const sigLength = payload[sigLengthAt]!;
  const end = sigLengthAt + 1 + sigLength;
  if (end > payload.length) throw new DecodeError('pair-truncated', 'pair signature runs past the payload');
  if (end < payload.length) throw new DecodeError('pair-trailing-bytes', 'bytes after the pair signature');
  return { body: payload.subarray(3, sigLengthAt), signature: payload.subarray(sigLengthAt + 1, end) };
}

/**
 * Encrypts and signs `message` (already gzipped or not) for one destination device. `opts.seed` pins the 11-byte
 * seed and exists only for fixed-vector tests; real sends must leave it out.
 */
export async function pairEncrypt(
  message: Uint8Array,
  sender: LegacyIdentity,
  recipient: LegacyPublicIdentity,
  opts?: { seed?: Uint8Array },
): Promise<Uint8Array> {
  const seed = opts?.seed === undefined ? randomBytes(SEED_LENGTH) : exact(opts.seed);
  if (seed.length !== SEED_LENGTH) throw new EncodeError('bad-seed', `pair seed must be ${SEED_LENGTH} bytes`);
  const modulusBytes = rsaModulusBytes(recipient.encryptionKey);
  if (modulusBytes + Math.max(0, message.length - RSA_CARRIED) > MAX_BODY) {
    throw new EncodeError('message-too-large', 'message does not fit a pair frame');
  }
  try {
    const plain = exact(message);
    const mac = await integrityMac(seed, plain, sender.publicKey.hash, recipient.hash);
    const key = exact(concat(seed, mac));
    const ciphertext = await aesCtr(key, plain);
    const sealed = await subtle().encrypt(
      { name: 'RSA-OAEP' },
      recipient.encryptionKey,
      exact(concat(key, ciphertext.subarray(0, RSA_CARRIED))),
    );
    const body = exact(concat(new Uint8Array(sealed), ciphertext.subarray(RSA_CARRIED)));
    const signature = ecdsaRawToDer(new Uint8Array(await subtle().sign(ECDSA_SHA1, sender.signing.privateKey, body)));
    return concat(new Uint8Array([FRAME_TAG]), u16be(body.length), body, new Uint8Array([signature.length]), signature);
  } catch (e) {
    if (e instanceof CeruleanError) throw e;
    throw new CryptoError('pair-encrypt-failed', 'WebCrypto refused a pair encryption step', { cause: e });
  }
}

/**
 * Verifies and decrypts a pair payload from `sender` to `recipient` (this device). Returns the plaintext, which may
 * still be gzipped. Malformed framing → DecodeError; signature, RSA, layout or MAC failure → CryptoError.
 */
export async function pairDecrypt(
  payload: Uint8Array,
  recipient: LegacyIdentity,
  sender: LegacyPublicIdentity,
): Promise<Uint8Array> {
  const { body, signature } = parsePairFrame(exact(payload));
  const modulusBytes = rsaModulusBytes(recipient.encryption.privateKey);
  if (body.length < modulusBytes) throw new DecodeError('pair-body-too-short', 'pair body is shorter than the RSA block');
  let rawSignature: Uint8Array<ArrayBuffer>;
  try {
    rawSignature = exact(ecdsaDerToRaw(signature));
  } catch (e) {
    throw new CryptoError('bad-signature', 'pair signature is not a valid DER ECDSA signature', { cause: e });
  }
  // Signature check and RSA decryption are independent; run them together, but judge the signature first.
  const [verified, opened] = await Promise.allSettled([
    subtle().verify(ECDSA_SHA1, sender.signingKey, rawSignature, body),
    subtle().decrypt({ name: 'RSA-OAEP' }, recipient.encryption.privateKey, body.subarray(0, modulusBytes)),
  ]);
  if (verified.status === 'rejected' || !verified.value) {
    throw new CryptoError('bad-signature', 'pair signature does not verify', {
      cause: verified.status === 'rejected' ? verified.reason : undefined,
    });
  }
  if (opened.status === 'rejected') {
    throw new CryptoError('bad-rsa-ciphertext', 'pair RSA block does not decrypt', { cause: opened.reason });
  }
  const head = new Uint8Array(opened.value);
  const carried = head.length - KEY_LENGTH;
  const tail = body.subarray(modulusBytes);
  // The sender fills the RSA block with up to 100 ciphertext bytes before spilling into the tail.
  if (carried < 0 || (tail.length > 0 ? carried !== RSA_CARRIED : carried > RSA_CARRIED)) {
    throw new CryptoError('bad-pair-layout', 'pair RSA block has an unexpected length');
  }
  const key = head.subarray(0, KEY_LENGTH);
  const plain = await aesCtr(exact(key), exact(concat(head.subarray(KEY_LENGTH), tail)));
  const mac = await integrityMac(exact(key.subarray(0, SEED_LENGTH)), plain, sender.hash, recipient.publicKey.hash);
  if (!equalBytes(mac, key.subarray(SEED_LENGTH))) throw new CryptoError('bad-mac', 'pair integrity check failed');
  return plain;
}

/** HMAC-SHA256(seed, M ‖ 0x02 ‖ H(sender) ‖ H(recipient)), truncated to 40 bits. */
async function integrityMac(
  seed: Uint8Array<ArrayBuffer>,
  message: Uint8Array,
  senderHash: Uint8Array,
  recipientHash: Uint8Array,
): Promise<Uint8Array> {
  // The 0x02 between message and hashes is the same version byte that tags the frame.
  const data = exact(concat(message, new Uint8Array([FRAME_TAG]), senderHash, recipientHash));
  if (data.length <= JS_HMAC_LIMIT) return hmac(sha256, seed, data).subarray(0, MAC_LENGTH);
  const key = await subtle().importKey('raw', seed, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', key, data), 0, MAC_LENGTH);
}

async function aesCtr(key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const aesKey = await subtle().importKey('raw', key, 'AES-CTR', false, ['encrypt']);
  return new Uint8Array(await subtle().encrypt(AES_CTR, aesKey, data));
}

function rsaModulusBytes(key: CryptoKey): number {
  const alg = key.algorithm as Partial<RsaHashedKeyAlgorithm>;
  if (alg.name !== 'RSA-OAEP' || typeof alg.modulusLength !== 'number') {
    throw new CryptoError('bad-key', 'pair needs an RSA-OAEP key');
  }
  return Math.ceil(alg.modulusLength / 8);
}
