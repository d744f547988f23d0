// The lookup diff on its own: baselines, new devices (own and contacts'), key changes by part, this device's own
// token, disappearing devices, and the fixed fingerprint / id formats that stored records depend on.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../lib/codec/bytes';
import { directChatId } from '../../../lib/store/chat-id';
import { changedParts, deviceId, diffLookup, fingerprintsOf, type LookupDiffInput } from '../../../lib/store/security-events';
import type { DeviceObservation, DeviceRecord } from '../../../lib/store/types';

const H = 'mailto:alice@example.com';
const token = (n: number) => new Uint8Array(32).fill(n);
const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
const obs = (n: number, key = n): DeviceObservation => ({ pushToken: token(n), identityKey: new Uint8Array([key]) });

function known(n: number, key = n, extra: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    id: deviceId(H, token(n)),
    handle: H,
    pushToken: token(n),
    fingerprints: fingerprintsOf(obs(n, key)),
    firstSeen: 1,
    lastSeen: 1,
    present: true,
    verified: false,
    ...extra,
  };
}

function diff(input: Partial<LookupDiffInput>) {
  const k = input.known ?? [];
  return diffLookup({
    handle: H,
    own: false,
    known: k,
    seenTokens: new Set(k.map((d) => hex(d.pushToken[0]!))),
    selfTokens: new Set(),
    observed: [],
    at: 9,
    ...input,
  });
}

describe('fixed formats', () => {
  it('fingerprints are hex SHA-256 of each key', () => {
    expect(fingerprintsOf({ pushToken: token(1), identityKey: utf8('abc'), ngmPrekey: new Uint8Array(0) })).toEqual({
      identity: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      ngmPrekey: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
  });

  it('device ids and direct chat ids do not change between versions', () => {
    expect(deviceId(H, new Uint8Array([0xab, 0x01]))).toBe('mailto:alice@example.com\nab01');
    expect(directChatId(['tel:+15550001111', 'MAILTO:me@example.com'])).toBe(
      'direct:7142a4f39992d450cff5955983e81ba1c9e5746ad603b5dbd8277fb33b9d1bd6',
    );
  });
});

describe('diffLookup', () => {
  it('records a baseline without events', () => {
    const r = diff({ observed: [obs(1), obs(2)] });
    expect(r.events).toEqual([]);
    expect(r.records.map((d) => [d.firstSeen, d.present, d.verified])).toEqual([
      [9, true, false],
      [9, true, false],
    ]);
  });

  it('reports a new token, and a changed key with the parts that changed', () => {
    const r = diff({ known: [known(1, 1, { verified: true }), known(2)], observed: [{ ...obs(1, 7), ngmDeviceKey: new Uint8Array([1]) }, obs(2), obs(3)] });
    expect(r.events).toMatchObject([
      { kind: 'key-changed', changed: ['identity', 'ngmDevice'], wasVerified: true, own: false },
      { kind: 'new-device', own: false },
    ]);
    const d1 = r.records.find((d) => d.pushToken[0] === 1)!;
    expect(d1).toMatchObject({ verified: false, keyChangedAt: 9, lastSeen: 9, firstSeen: 1 });
  });

  it('marks missing devices absent and does not re-report them when they return', () => {
    const gone = diff({ known: [known(1), known(2)], observed: [obs(1)] });
    expect(gone.records.find((d) => d.pushToken[0] === 2)?.present).toBe(false);
    const back = diff({ known: [known(1), known(2, 2, { present: false })], observed: [obs(1), obs(2)] });
    expect(back.events).toEqual([]);
  });

  it('never reports this device, and counts tokens seen under other own handles as known', () => {
    const r = diff({ own: true, seenTokens: new Set([hex(5)]), selfTokens: new Set([hex(6)]), observed: [obs(5), obs(6), obs(7)] });
    expect(r.events).toMatchObject([{ kind: 'new-device', own: true }]);
    expect(r.events[0]!.pushToken).toEqual(token(7));
    const changedSelf = diff({ known: [known(6)], selfTokens: new Set([hex(6)]), observed: [obs(6, 99)] });
    expect(changedSelf.events).toEqual([]);
  });

  it('uses the first of duplicated tokens in one answer', () => {
    const r = diff({ observed: [obs(1, 1), obs(1, 2)] });
    expect(r.records).toHaveLength(1);
    expect(r.records[0]!.fingerprints).toEqual(fingerprintsOf(obs(1, 1)));
  });

  it('finds no change in an identical answer, for any keys', () => {
    const bytes = fc.option(fc.uint8Array({ maxLength: 8 }), { nil: undefined });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 4 }), bytes, bytes, bytes, (t, a, b, c) => {
        const o: DeviceObservation = { pushToken: t, ...(a && { identityKey: a }), ...(b && { ngmDeviceKey: b }), ...(c && { ngmPrekey: c }) };
        expect(changedParts(fingerprintsOf(o), fingerprintsOf({ ...o }))).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });
});
