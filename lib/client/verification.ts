// Verification codes ("safety numbers"): two people read a 60-digit code aloud or side by side, and if both screens
// show the same digits, the keys each side's messages are encrypted to are the ones the other side's devices really
// hold — IDS did not slip in a device or a key. The construction follows Signal's safety numbers: each account's
// half is an iterated SHA-256 (5200 rounds, to make searching for a colliding key set expensive) over the key
// fingerprints of its present devices, shown as 30 digits; the two halves are put in sorted order, so both people
// compute the same code whichever side they start from. Handles are left out of the hash: the two sides may know an
// account by different handles (a phone number here, an e-mail address there) of the same devices.
// For this device the keys it holds itself are used, not what a lookup said about it, so a key IDS substituted for
// this device's changes the code the other side sees and this one's differently.
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex, utf8 } from '../codec/bytes';
import type { ClientStore, KeyFingerprints } from '../store/types';

export interface VerificationCode {
  /** 12 groups of 5 digits, separated by spaces. */
  code: string;
  ownDevices: number;
  theirDevices: number;
}

export const VERIFICATION_ITERATIONS = 5200;
const VERSION = utf8('cerulean-verification-1\n');

/** This device: its push token (to replace what lookups stored for it) and its own keys' fingerprints. */
export interface SelfDevice {
  pushToken: Uint8Array;
  fingerprints: KeyFingerprints;
}

/**
 * The fingerprints of the devices lookups last listed for any of `handles` (each device once), with `self`
 * standing in for this device whether or not a lookup listed it.
 */
export async function presentDevices(store: ClientStore, handles: readonly string[], self?: SelfDevice): Promise<KeyFingerprints[]> {
  const byToken = new Map<string, KeyFingerprints>();
  for (const handle of handles) {
    for (const d of await store.devices.list(handle)) {
      if (d.present && !byToken.has(toHex(d.pushToken))) byToken.set(toHex(d.pushToken), d.fingerprints);
    }
  }
  if (self) byToken.set(toHex(self.pushToken), self.fingerprints);
  return [...byToken.values()];
}

/** Undefined when either side has no device to vouch for. */
export function verificationCode(own: readonly KeyFingerprints[], theirs: readonly KeyFingerprints[]): VerificationCode | undefined {
  if (own.length === 0 || theirs.length === 0) return undefined;
  const halves = [half(own), half(theirs)].sort();
  const digits = halves.join('');
  const groups: string[] = [];
  for (let i = 0; i < digits.length; i += 5) groups.push(digits.slice(i, i + 5));
  return { code: groups.join(' '), ownDevices: own.length, theirDevices: theirs.length };
}

/** One account's 30 digits. */
function half(devices: readonly KeyFingerprints[]): string {
  const lines = devices.map((f) => `${f.identity ?? '-'}:${f.ngmDevice ?? '-'}:${f.ngmPrekey ?? '-'}\n`).sort();
  const keys = utf8(lines.join(''));
  let h = sha256.create().update(VERSION).update(keys).digest();
  for (let i = 1; i < VERIFICATION_ITERATIONS; i++) h = sha256.create().update(h).update(keys).digest();
  let out = '';
  // Six 5-byte chunks, each taken mod 100000: 40 bits leave a negligible bias over five decimal digits.
  for (let i = 0; i < 30; i += 5) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + h[i + j]!;
    out += String(n % 100000).padStart(5, '0');
  }
  return out;
}
