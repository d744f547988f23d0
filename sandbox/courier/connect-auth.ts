// Connect 0x07 authentication (apns.md §4): item 12 = a push certificate from the sandbox's albert CA, item 13 =
// the 17-byte nonce `00 ‖ u64 ms ‖ 8 random`, item 14 = `01 01 ‖ RSASSA-PKCS1-v1_5(SHA-1, nonce)` with that
// certificate's key. Apple's checks are not observable; these are the ones the notes presume.
import { verify, type KeyObject } from 'node:crypto';
import type { Connect } from '../../lib/codec/apns-commands';
import { readU64be } from '../../lib/codec/bytes';
import type { CourierDeps } from './deps';
import { keyFingerprint } from './tokens';

/** 0x08 item 1. Only 0 and 2 are attested; 1 for a stale nonce is this emulator's choice (not "dead cert"). */
export const ConnectStatus = {
  Ok: 0,
  StaleNonce: 1,
  Rejected: 2,
} as const;

export type ConnectAuth =
  | { ok: true; publicKey: KeyObject; keyId: string; serial: string }
  | { ok: false; status: number; reason: string };

const SIGNATURE_PREFIX = [0x01, 0x01];

function signatureValid(publicKey: KeyObject, nonce: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length <= 2 || signature[0] !== SIGNATURE_PREFIX[0] || signature[1] !== SIGNATURE_PREFIX[1]) {
    return false;
  }
  try {
    return verify('sha1', nonce, publicKey, signature.subarray(2));
  } catch {
    // Not an RSA key, or a signature of the wrong size.
    return false;
  }
}

export async function authenticateConnect(
  connect: Connect,
  deps: Pick<CourierDeps, 'verifyPushCertificate' | 'clock'>,
  nonceWindowMs: number,
): Promise<ConnectAuth> {
  const cert = connect.certificates[0];
  const { nonce, signature } = connect;
  // v2's client-certificate login is retired: 12/13/14 are required.
  if (!cert || !nonce || !signature) return { ok: false, status: ConnectStatus.Rejected, reason: 'missing-auth' };
  let verified: Awaited<ReturnType<CourierDeps['verifyPushCertificate']>>;
  try {
    verified = await deps.verifyPushCertificate(cert);
  } catch {
    verified = null;
  }
  if (!verified) return { ok: false, status: ConnectStatus.Rejected, reason: 'bad-certificate' };
  if (!signatureValid(verified.publicKey, nonce, signature)) {
    return { ok: false, status: ConnectStatus.Rejected, reason: 'bad-signature' };
  }
  const nonceMs = Number(readU64be(nonce, 1));
  if (nonce[0] !== 0x00 || Math.abs(nonceMs - deps.clock.now()) > nonceWindowMs) {
    return { ok: false, status: ConnectStatus.StaleNonce, reason: 'stale-nonce' };
  }
  return { ok: true, publicKey: verified.publicKey, keyId: keyFingerprint(verified.publicKey), serial: verified.serial };
}
