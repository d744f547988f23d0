// Change detection for lookups (imessage.md §9): a token never seen for a handle is a new device, a known token
// with different keys is a key change. Pure functions, so the rules are testable without a store; the store runs
// them inside the transaction that reads and writes the device records.
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '../codec/bytes';
import type { DeviceObservation, DeviceRecord, KeyFingerprints, KeyPart, SecurityEvent } from './types';

const KEY_PARTS: readonly KeyPart[] = ['identity', 'ngmDevice', 'ngmPrekey'];

export function deviceId(handle: string, pushToken: Uint8Array): string {
  return `${handle}\n${toHex(pushToken)}`;
}

export function fingerprintsOf(o: DeviceObservation): KeyFingerprints {
  const fp: KeyFingerprints = {};
  if (o.identityKey) fp.identity = toHex(sha256(o.identityKey));
  if (o.ngmDeviceKey) fp.ngmDevice = toHex(sha256(o.ngmDeviceKey));
  if (o.ngmPrekey) fp.ngmPrekey = toHex(sha256(o.ngmPrekey));
  return fp;
}

export function changedParts(before: KeyFingerprints, after: KeyFingerprints): KeyPart[] {
  return KEY_PARTS.filter((p) => before[p] !== after[p]);
}

export interface LookupDiffInput {
  handle: string;
  /** The handle is one of the user's own. */
  own: boolean;
  /** Every device stored for the handle. */
  known: readonly DeviceRecord[];
  /**
   * Tokens (hex) already seen in scope: the handle's own devices, or for an own handle the devices of every own
   * handle (a device registered for two of the user's handles is one device). Empty means this is the baseline.
   */
  seenTokens: ReadonlySet<string>;
  /** This device's own push tokens (hex): never reported. */
  selfTokens: ReadonlySet<string>;
  observed: readonly DeviceObservation[];
  at: number;
}

/** The events of one lookup and the device records to write (new, changed, or no longer present). */
export function diffLookup(input: LookupDiffInput): { events: SecurityEvent[]; records: DeviceRecord[] } {
  const { handle, own, at } = input;
  const baseline = input.seenTokens.size === 0;
  const byToken = new Map(input.known.map((d) => [toHex(d.pushToken), d]));
  const observedTokens = new Set<string>();
  const events: SecurityEvent[] = [];
  const records: DeviceRecord[] = [];

  for (const o of input.observed) {
    const token = toHex(o.pushToken);
    if (observedTokens.has(token)) continue;
    observedTokens.add(token);
    const fingerprints = fingerprintsOf(o);
    const self = input.selfTokens.has(token);
    const existing = byToken.get(token);
    if (!existing) {
      records.push({
        id: deviceId(handle, o.pushToken),
        handle,
        pushToken: o.pushToken,
        fingerprints,
        firstSeen: at,
        lastSeen: at,
        present: true,
        verified: false,
        ...(o.deviceName !== undefined && { deviceName: o.deviceName }),
      });
      if (!baseline && !self && !input.seenTokens.has(token)) {
        events.push({
          kind: 'new-device',
          handle,
          pushToken: o.pushToken,
          own,
          ...(o.deviceName !== undefined && { deviceName: o.deviceName }),
          at,
        });
      }
      continue;
    }
    const changed = changedParts(existing.fingerprints, fingerprints);
    const next: DeviceRecord = {
      ...existing,
      lastSeen: at,
      present: true,
      fingerprints,
      ...(o.deviceName !== undefined && { deviceName: o.deviceName }),
    };
    if (changed.length > 0) {
      next.verified = false;
      next.keyChangedAt = at;
      if (!self) {
        events.push({
          kind: 'key-changed',
          handle,
          pushToken: o.pushToken,
          own,
          changed,
          before: existing.fingerprints,
          after: fingerprints,
          wasVerified: existing.verified,
          at,
        });
      }
    }
    records.push(next);
  }

  for (const [token, d] of byToken) {
    if (!observedTokens.has(token) && d.present) records.push({ ...d, present: false });
  }
  return { events, records };
}
