// NGM ("pair-ec") identity of a device (ids.md §6.2–6.4): a long-lived ECDSA device key and an ECDH prekey signed
// by it, both compact P-256 keys, plus the two protobufs that publish them in register.
import { concat, fromBase64, utf8 } from '../codec/bytes';
import {
  decodeKeyTransparencyLoggableData,
  decodeNgmPublicIdentityMessage,
  decodePublicDevicePrekey,
  encodeKeyTransparencyLoggableData,
  encodeNgmPublicIdentityMessage,
  encodePublicDevicePrekey,
} from '../codec/ngm-proto';
import { CryptoError, DecodeError } from '../errors';
import {
  generateCompactKeyPair,
  importCompactPublicKey,
  importRawPublicKey,
  isCompactable,
  type CompactKeyPair,
} from './ec-compact';
import { subtle } from './subtle';

/** `public-message-identity-ngm-version` and the version in `kt-loggable-data`. */
export const NGM_VERSION = 13;
/** `kt-version` of `kt-loggable-data`. */
export const KT_VERSION = 5;

const PREKEY_SIGNATURE_LABEL = utf8('NGMPrekeySignature');
const ECDSA_SHA256: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** This device's NGM keys. Private keys are non-extractable; the object is structured-cloneable (IndexedDB). */
export interface NgmIdentity {
  /** ECDSA P-256: signs prekeys and pair-ec payloads. */
  deviceKey: CryptoKeyPair;
  /** ECDH P-256: peers encrypt to it. */
  prekey: CryptoKeyPair;
  deviceCompact: Uint8Array<ArrayBuffer>;
  prekeyCompact: Uint8Array<ArrayBuffer>;
  /** Unix seconds, an integral value. */
  prekeyTimestamp: number;
  /** client-data `public-message-ngm-device-prekey-data-key` (109 bytes). */
  publicDevicePrekey: Uint8Array<ArrayBuffer>;
  /** user-level `kt-loggable-data` (40 bytes). */
  ktLoggableData: Uint8Array<ArrayBuffer>;
}

/**
 * A peer device's NGM keys, imported once and reused for every message. Only `parseNgmPublicIdentity` makes
 * these, and it has checked the prekey signature, so encryption does not re-check it per message.
 */
export interface NgmPublicIdentity {
  /** ECDSA P-256, verify only. */
  deviceKey: CryptoKey;
  /** ECDH P-256 public key. */
  prekey: CryptoKey;
  deviceCompact: Uint8Array;
  prekeyCompact: Uint8Array;
  prekeyTimestamp: number;
  prekeySignature: Uint8Array;
}

/** What a lookup returns for one identity; the device key comes from `ktLoggableData`, else `ngmPublicIdentity`. */
export interface NgmPublicIdentitySource {
  publicDevicePrekey: Uint8Array;
  ktLoggableData?: Uint8Array;
  ngmPublicIdentity?: Uint8Array;
}

/** The 58 signed bytes: "NGMPrekeySignature" ‖ X(prekey) ‖ timestamp as little-endian f64. */
export function prekeySignedData(prekeyCompact: Uint8Array, timestamp: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(PREKEY_SIGNATURE_LABEL.length + prekeyCompact.length + 8);
  out.set(PREKEY_SIGNATURE_LABEL, 0);
  out.set(prekeyCompact, PREKEY_SIGNATURE_LABEL.length);
  new DataView(out.buffer).setFloat64(out.length - 8, timestamp, true);
  return out;
}

function ktLoggableDataFor(deviceCompact: Uint8Array): Uint8Array<ArrayBuffer> {
  return encodeKeyTransparencyLoggableData({
    ngmPublicIdentity: encodeNgmPublicIdentityMessage({ publicKey: deviceCompact }),
    ngmVersion: NGM_VERSION,
    ktVersion: KT_VERSION,
  });
}

function assemble(device: CompactKeyPair, prekey: CompactKeyPair, timestamp: number, signature: Uint8Array): NgmIdentity {
  return {
    deviceKey: device.keyPair,
    prekey: prekey.keyPair,
    deviceCompact: device.compact,
    prekeyCompact: prekey.compact,
    prekeyTimestamp: timestamp,
    publicDevicePrekey: encodePublicDevicePrekey({
      prekey: prekey.compact,
      prekeySignature: signature,
      timestamp,
    }),
    ktLoggableData: ktLoggableDataFor(device.compact),
  };
}

async function signPrekey(device: CompactKeyPair, prekeyCompact: Uint8Array, timestamp: number) {
  const data = prekeySignedData(prekeyCompact, timestamp);
  return new Uint8Array(await subtle().sign(ECDSA_SHA256, device.keyPair.privateKey, data));
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isFinite(timestamp)) throw new CryptoError('bad-timestamp', 'prekey timestamp must be a finite number');
}

/** A fresh NGM identity; both private keys are non-extractable unless `extractable` (Node file store only). */
export async function generateNgmIdentity(
  nowSeconds = Math.floor(Date.now() / 1000),
  opts: { extractable?: boolean } = {},
): Promise<NgmIdentity> {
  checkTimestamp(nowSeconds);
  const extractable = opts.extractable ?? false;
  const [device, prekey] = await Promise.all([
    generateCompactKeyPair('ecdsa', extractable),
    generateCompactKeyPair('ecdh', extractable),
  ]);
  return assemble(device, prekey, nowSeconds, await signPrekey(device, prekey.compact, nowSeconds));
}

/** Imports a PKCS#8 P-256 private key non-extractably, recovering its public half through a throwaway JWK. */
async function importPkcs8(pkcs8: Uint8Array, usage: 'ecdsa' | 'ecdh'): Promise<CompactKeyPair> {
  const algorithm: EcKeyImportParams = { name: usage === 'ecdsa' ? 'ECDSA' : 'ECDH', namedCurve: 'P-256' };
  const usages: KeyUsage[] = usage === 'ecdsa' ? ['sign'] : ['deriveBits'];
  const der = new Uint8Array(pkcs8);
  let privateKey: CryptoKey;
  let jwk: JsonWebKey;
  try {
    const [temporary, kept] = await Promise.all([
      subtle().importKey('pkcs8', der, algorithm, true, usages),
      subtle().importKey('pkcs8', der, algorithm, false, usages),
    ]);
    jwk = await subtle().exportKey('jwk', temporary);
    privateKey = kept;
  } catch (e) {
    throw new CryptoError('bad-key', 'not a P-256 PKCS#8 private key', { cause: e });
  }
  if (jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new CryptoError('bad-key', 'not a P-256 private key');
  }
  const point = concat(new Uint8Array([0x04]), fromBase64(jwk.x), fromBase64(jwk.y));
  if (point.length !== 65) throw new CryptoError('bad-key', 'not a P-256 private key');
  if (!isCompactable(point)) throw new CryptoError('key-not-compact', `the ${usage} key has y > p − y`);
  const publicKey = await importRawPublicKey(new Uint8Array(point), usage);
  return { keyPair: { privateKey, publicKey }, compact: point.slice(1, 33) };
}

/**
 * Rebuilds an identity from PKCS#8 private keys (test vectors, migration). With `prekeySignature` the published
 * signature is kept (ECDSA is randomised, so re-signing would change `publicDevicePrekey`) after checking it.
 */
export async function importNgmIdentity(
  devicePkcs8: Uint8Array,
  prekeyPkcs8: Uint8Array,
  timestamp: number,
  opts: { prekeySignature?: Uint8Array } = {},
): Promise<NgmIdentity> {
  checkTimestamp(timestamp);
  const [device, prekey] = await Promise.all([importPkcs8(devicePkcs8, 'ecdsa'), importPkcs8(prekeyPkcs8, 'ecdh')]);
  let signature: Uint8Array;
  if (opts.prekeySignature) {
    signature = opts.prekeySignature;
    await verifyPrekeySignature(device.keyPair.publicKey, prekey.compact, timestamp, signature);
  } else {
    signature = await signPrekey(device, prekey.compact, timestamp);
  }
  return assemble(device, prekey, timestamp, signature);
}

async function verifyPrekeySignature(
  deviceKey: CryptoKey,
  prekeyCompact: Uint8Array,
  timestamp: number,
  signature: Uint8Array,
): Promise<void> {
  const ok =
    signature.length === 64 &&
    (await subtle().verify(ECDSA_SHA256, deviceKey, new Uint8Array(signature), prekeySignedData(prekeyCompact, timestamp)));
  if (!ok) throw new CryptoError('bad-prekey-signature', 'prekey signature does not verify against the device key');
}

/** Checks that the device key signed the prekey (senders must not encrypt to an unsigned prekey). */
export async function validatePrekey(identity: NgmPublicIdentity): Promise<void> {
  await verifyPrekeySignature(
    identity.deviceKey,
    identity.prekeyCompact,
    identity.prekeyTimestamp,
    identity.prekeySignature,
  );
}

function deviceCompactOf(source: NgmPublicIdentitySource): Uint8Array {
  let ngmPublicIdentity = source.ngmPublicIdentity;
  if (source.ktLoggableData) ngmPublicIdentity = decodeKeyTransparencyLoggableData(source.ktLoggableData).ngmPublicIdentity;
  if (!ngmPublicIdentity) throw new DecodeError('missing-device-key', 'neither kt-loggable-data nor ngm-public-identity');
  return decodeNgmPublicIdentityMessage(ngmPublicIdentity).publicKey.slice();
}

/**
 * Parses, imports and validates a peer device's published NGM keys once, for reuse across messages.
 * Malformed data → DecodeError; a prekey signature that does not verify → CryptoError('bad-prekey-signature').
 */
export async function parseNgmPublicIdentity(source: NgmPublicIdentitySource): Promise<NgmPublicIdentity> {
  const published = decodePublicDevicePrekey(source.publicDevicePrekey);
  const deviceCompact = deviceCompactOf(source);
  const [deviceKey, prekey] = await Promise.all([
    importCompactPublicKey(deviceCompact, 'ecdsa'),
    importCompactPublicKey(published.prekey, 'ecdh'),
  ]);
  const identity: NgmPublicIdentity = {
    deviceKey,
    prekey,
    deviceCompact,
    // Copies: decoded fields are views into the caller's buffer.
    prekeyCompact: published.prekey.slice(),
    prekeyTimestamp: published.timestamp,
    prekeySignature: published.prekeySignature.slice(),
  };
  await validatePrekey(identity);
  return identity;
}
