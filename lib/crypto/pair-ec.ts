// "pair-ec" (NGM) end-to-end encryption of one iMessage payload to one recipient device (imessage.md §5.3/5.4):
// ephemeral ECDH to the recipient's prekey, HKDF-SHA256 → AES-256-CTR, ECDSA by the sender's device key.
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8 } from '../codec/bytes';
import { decodeInnerMessage, decodeOuterMessage, encodeInnerMessage, encodeOuterMessage } from '../codec/ngm-proto';
import { CryptoError, DecodeError, EncodeError } from '../errors';
import { importCompactPublicKey } from './ec-compact';
import type { NgmIdentity, NgmPublicIdentity } from './identity-ngm';
import { randomBytes, subtle } from './subtle';

// The label sits in HKDF's salt position with empty info in both reference clients (imessage.md §11).
const HKDF_SALT = new Uint8Array(utf8('LastPawn-MessageKeys'));
const HKDF_INFO = new Uint8Array(0);
/** Last key-validator byte as sent by the references; receivers ignore it. */
const KEY_VALIDATOR_VERSION = 0x0c;
/** Receivers compare only the three 2-byte key prefixes. */
const KEY_VALIDATOR_CHECKED = 6;
const ECDSA_SHA256: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export interface PairEcEncryptOptions {
  /** A fixed ECDH key pair instead of a fresh one (tests only). */
  ephemeral?: CryptoKeyPair;
  /** Fixed padding bytes instead of random ones; must have the length the scheme requires (tests only). */
  padding?: Uint8Array;
}

export interface PairEcPlaintext {
  /** InnerMessage.message: the payload plist, maybe gzipped. */
  message: Uint8Array;
  counter: number;
}

/**
 * HKDF output: AES-256 key ‖ 16-byte initial counter block. HKDF over 32 bytes runs in JS: two WebCrypto round
 * trips (import + deriveBits) cost far more per destination than the three SHA-256 blocks they would compute.
 */
async function messageKeys(z: Uint8Array<ArrayBuffer>, usage: 'encrypt' | 'decrypt') {
  const okm = new Uint8Array(hkdf(sha256, z, HKDF_SALT, HKDF_INFO, 48));
  const key = await subtle().importKey('raw', okm.subarray(0, 32), 'AES-CTR', false, [usage]);
  // length 64: only the low half of the counter block increments, as in rustpush (imessage.md §5.6).
  return { key, params: { name: 'AES-CTR', counter: okm.subarray(32, 48), length: 64 } satisfies AesCtrParams };
}

async function ecdh(privateKey: CryptoKey, publicKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await subtle().deriveBits({ name: 'ECDH', public: publicKey }, privateKey, 256));
}

/** z ‖ X(Pk_R) ‖ X(Ek) ‖ X(Dk_R) ‖ ct — what the sender's device key signs. */
function signedData(
  z: Uint8Array,
  recipientPrekey: Uint8Array,
  ephemeral: Uint8Array,
  recipientDevice: Uint8Array,
  ct: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(z.length + recipientPrekey.length + ephemeral.length + recipientDevice.length + ct.length);
  let off = 0;
  for (const part of [z, recipientPrekey, ephemeral, recipientDevice, ct]) {
    out.set(part, off);
    off += part.length;
  }
  return out;
}

/** X(Dk_S)[0..2] ‖ X(Dk_R)[0..2] ‖ X(Pk_R)[0..2], the checked part of the key validator. */
function keyValidatorPrefix(senderDevice: Uint8Array, recipientDevice: Uint8Array, recipientPrekey: Uint8Array) {
  const out = new Uint8Array(KEY_VALIDATOR_CHECKED);
  out.set(senderDevice.subarray(0, 2), 0);
  out.set(recipientDevice.subarray(0, 2), 2);
  out.set(recipientPrekey.subarray(0, 2), 4);
  return out;
}

/**
 * A fresh ephemeral ECDH key. It is not regenerated until y ≤ p − y: only X is sent and signed, and ECDH against
 * (X, y) or (X, p − y) gives the same z, so a key (d, Q) and its compact twin (n − d, −Q) produce byte-identical
 * payloads; the loop would only cost a second key generation half the time.
 */
function newEphemeralKey(): Promise<CryptoKeyPair> {
  return subtle().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
}

/** pt = inner ‖ n padding bytes ‖ u32le(n), with n bringing `inner` to a multiple of 16. */
function pad(inner: Uint8Array, fixed: Uint8Array | undefined): Uint8Array<ArrayBuffer> {
  const n = (16 - (inner.length % 16)) % 16;
  if (fixed && fixed.length !== n) throw new EncodeError('bad-padding', `padding must be ${n} bytes`);
  const out = new Uint8Array(inner.length + n + 4);
  out.set(inner, 0);
  out.set(fixed ?? randomBytes(n), inner.length);
  new DataView(out.buffer).setUint32(inner.length + n, n, true);
  return out;
}

/**
 * Encrypts `message` (the maybe-gzipped payload plist) for one recipient device and returns the OuterMessage
 * bytes for the dtl entry's `P` (with `E = "pair-ec"`). `recipient` comes from parseNgmPublicIdentity, which
 * has already checked its prekey signature.
 */
export async function pairEcEncrypt(
  message: Uint8Array,
  counter: number,
  sender: NgmIdentity,
  recipient: NgmPublicIdentity,
  opts: PairEcEncryptOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  if (!Number.isInteger(counter) || counter < 0 || counter > 0xffffffff) {
    throw new EncodeError('bad-counter', 'counter must be a uint32');
  }
  const pt = pad(encodeInnerMessage({ message, counter }), opts.padding);
  const ephemeral = opts.ephemeral ?? (await newEphemeralKey());
  const [ephemeralRaw, z] = await Promise.all([
    subtle().exportKey('raw', ephemeral.publicKey),
    ecdh(ephemeral.privateKey, recipient.prekey),
  ]);
  const ephemeralCompact = new Uint8Array(ephemeralRaw, 1, 32);
  const { key, params } = await messageKeys(z, 'encrypt');
  const ct = new Uint8Array(await subtle().encrypt(params, key, pt));
  const data = signedData(z, recipient.prekeyCompact, ephemeralCompact, recipient.deviceCompact, ct);
  const signature = new Uint8Array(await subtle().sign(ECDSA_SHA256, sender.deviceKey.privateKey, data));
  const keyValidator = new Uint8Array(KEY_VALIDATOR_CHECKED + 1);
  keyValidator.set(keyValidatorPrefix(sender.deviceCompact, recipient.deviceCompact, recipient.prekeyCompact));
  keyValidator[KEY_VALIDATOR_CHECKED] = KEY_VALIDATOR_VERSION;
  return encodeOuterMessage({ encryptedPayload: ct, ephemeralPubKey: ephemeralCompact, signature, keyValidator });
}

function unpad(pt: Uint8Array): Uint8Array {
  if (pt.length < 4) throw new DecodeError('bad-padding', 'pair-ec plaintext shorter than its padding length');
  const n = new DataView(pt.buffer, pt.byteOffset, pt.byteLength).getUint32(pt.length - 4, true);
  if (n > 15 || n > pt.length - 4) throw new DecodeError('bad-padding', `impossible pair-ec padding length ${n}`);
  return pt.subarray(0, pt.length - 4 - n);
}

/**
 * Verifies and decrypts a pair-ec payload addressed to this device. A mismatched key validator (usually a stale
 * prekey or lookup) → CryptoError('bad-key-validator'); a bad signature → CryptoError('bad-signature');
 * malformed structure → DecodeError. No plaintext is returned unless the signature verifies.
 */
export async function pairEcDecrypt(
  payload: Uint8Array,
  recipient: NgmIdentity,
  sender: NgmPublicIdentity,
): Promise<PairEcPlaintext> {
  const outer = decodeOuterMessage(payload);
  const expected = keyValidatorPrefix(sender.deviceCompact, recipient.deviceCompact, recipient.prekeyCompact);
  const kv = outer.keyValidator;
  if (kv.length < KEY_VALIDATOR_CHECKED || expected.some((b, i) => kv[i] !== b)) {
    throw new CryptoError('bad-key-validator', 'pair-ec key validator names other keys');
  }
  if (outer.signature.length !== 64) throw new CryptoError('bad-signature', 'pair-ec signature is not 64 bytes');
  const ephemeral = await importCompactPublicKey(outer.ephemeralPubKey, 'ecdh');
  const z = await ecdh(recipient.prekey.privateKey, ephemeral);
  const ct = new Uint8Array(outer.encryptedPayload);
  const data = signedData(z, recipient.prekeyCompact, outer.ephemeralPubKey, recipient.deviceCompact, ct);
  // Verification and decryption are independent; the plaintext is only used once the signature holds.
  const [verified, pt] = await Promise.all([
    subtle().verify(ECDSA_SHA256, sender.deviceKey, new Uint8Array(outer.signature), data),
    messageKeys(z, 'decrypt').then(async ({ key, params }) => new Uint8Array(await subtle().decrypt(params, key, ct))),
  ]);
  if (!verified) throw new CryptoError('bad-signature', 'pair-ec signature does not verify against the sender device key');
  const inner = decodeInnerMessage(unpad(pt));
  return { message: inner.message, counter: inner.counter };
}
