// Lookup identity → PeerIdentity: the vectors' published keys, every reason an identity is unusable, logging of
// skipped identities, and property tests that hostile lookup data only ever yields PeerIdentityError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import { encodeNgmPublicIdentityMessage } from '../../../lib/codec/ngm-proto';
import type { PlistDict } from '../../../lib/codec/plist';
import { CeruleanError, CryptoError, DecodeError } from '../../../lib/errors';
import { parsePeerIdentities, parsePeerIdentity, PeerIdentityError } from '../../../lib/imessage/peer-identity';
import vectors from '../../vectors';
import { dictOver, mutated } from './arbitraries';
import { MemoryLog } from './fake-network';

const URI = 'mailto:alice@example.com';
const TOKEN = new Uint8Array(32).fill(0xaa);
const SESSION = fromHex('0102030405');
const { legacy, ngm } = vectors;

function identity(over: PlistDict = {}, clientData: PlistDict = {}): PlistDict {
  return {
    'push-token': TOKEN,
    'session-token': SESSION,
    'session-token-expires-seconds': 604800,
    'session-token-refresh-seconds': 86400,
    'client-data': {
      'public-message-identity-key': fromHex(legacy.alice.public_message_identity_key),
      'public-message-identity-version': 2,
      'public-message-ngm-device-prekey-data-key': fromHex(ngm.alice.public_device_prekey),
      ...clientData,
    },
    'kt-loggable-data': fromHex(ngm.alice.kt_loggable_data),
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<PeerIdentityError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof PeerIdentityError)) throw new Error(`expected a PeerIdentityError, got ${String(e)}`);
  return e;
}

describe('parsePeerIdentity', () => {
  it('imports both key sets from the vectors\' published blobs', async () => {
    const peer = await parsePeerIdentity(URI, identity());
    expect(peer.uri).toBe(URI);
    expect(peer.pushToken).toEqual(TOKEN);
    expect(peer.sessionToken).toEqual(SESSION);
    expect(toHex(peer.legacy!.hash)).toBe(legacy.alice.identity_hash);
    expect(toHex(peer.ngm!.deviceCompact)).toBe(ngm.alice.device_public_compact);
    expect(toHex(peer.ngm!.prekeyCompact)).toBe(ngm.alice.prekey_public_compact);
    expect(peer.ngm!.prekeyTimestamp).toBe(ngm.alice.prekey_timestamp);
    expect(peer.clientData['public-message-identity-version']).toBe(2);
  });

  it('pair-only identity: no prekey, no NGM keys', async () => {
    const cd = identity()['client-data'] as PlistDict;
    const { ['public-message-ngm-device-prekey-data-key']: _, ...pairOnly } = cd;
    const peer = await parsePeerIdentity(URI, { ...identity(), 'client-data': pairOnly });
    expect(peer.legacy).toBeDefined();
    expect(peer.ngm).toBeUndefined();
  });

  it('takes the device key from client-data ngm-public-identity when kt-loggable-data is absent', async () => {
    const { ['kt-loggable-data']: _, ...rest } = identity();
    const device = fromHex(ngm.alice.device_public_compact);
    const peer = await parsePeerIdentity(URI, {
      ...rest,
      'client-data': { ...(rest['client-data'] as PlistDict), 'ngm-public-identity': encodeNgmPublicIdentityMessage({ publicKey: device }) },
    });
    expect(toHex(peer.ngm!.deviceCompact)).toBe(ngm.alice.device_public_compact);
  });

  it('every reason to skip has its code', async () => {
    const cases: [PlistDict, string][] = [
      [identity({ 'push-token': new Uint8Array(31) }), 'missing-push-token'],
      [identity({ 'push-token': 'not data' }), 'missing-push-token'],
      [identity({ 'session-token': new Uint8Array(0) }), 'missing-session-token'],
      [{ ...identity(), 'client-data': 7 }, 'missing-identity-key'],
      [identity({}, { 'public-message-identity-key': fromHex('3003020100') }), 'bad-identity-key'],
      [identity({ 'kt-loggable-data': fromHex('0a00') }), 'bad-ngm-identity'],
    ];
    for (const [input, code] of cases) expect((await rejection(parsePeerIdentity(URI, input))).code).toBe(code);
    const noSession = identity();
    delete noSession['session-token'];
    expect((await rejection(parsePeerIdentity(URI, noSession))).code).toBe('missing-session-token');
  });

  it('a prekey whose signature fails makes the identity unusable (no silent fallback to pair)', async () => {
    const prekey = fromHex(ngm.alice.public_device_prekey);
    prekey[40]! ^= 0x01; // inside the 64-byte signature
    const e = await rejection(parsePeerIdentity(URI, identity({}, { 'public-message-ngm-device-prekey-data-key': prekey })));
    expect(e.code).toBe('bad-ngm-identity');
    expect(e.cause).toBeInstanceOf(CryptoError);
    expect((e.cause as CryptoError).code).toBe('bad-prekey-signature');
    // Bob's prekey under Alice's device key: signed by another key.
    const swapped = identity({}, { 'public-message-ngm-device-prekey-data-key': fromHex(ngm.bob.public_device_prekey) });
    expect((await rejection(parsePeerIdentity(URI, swapped))).code).toBe('bad-ngm-identity');
  });

  it('a malformed identity blob keeps its decoder error as the cause', async () => {
    const blob = fromHex(legacy.alice.public_message_identity_key);
    const e = await rejection(parsePeerIdentity(URI, identity({}, { 'public-message-identity-key': blob.subarray(0, 100) })));
    expect(e.code).toBe('bad-identity-key');
    expect(e.cause).toBeInstanceOf(DecodeError);
  });
});

describe('parsePeerIdentities', () => {
  it('keeps the usable identities, logs the others with their codes', async () => {
    const log = new MemoryLog();
    const other = new Uint8Array(32).fill(0xcc);
    const peers = await parsePeerIdentities(URI, [identity(), 'junk', identity({ 'push-token': other, 'session-token': new Uint8Array(0) })], log);
    expect(peers).toHaveLength(1);
    expect(log.lines.map((l) => [l.event, l.fields?.['code']])).toEqual([
      ['imessage.identity-skipped', 'missing-push-token'],
      ['imessage.identity-skipped', 'missing-session-token'],
    ]);
    expect(log.lines[1]!.fields?.['token']).toBe('cccccccccccccccc');
  });

  it('property: random identity dicts give identities or PeerIdentityError, nothing else', async () => {
    const valid = identity();
    const arbitrary = fc.oneof(
      dictOver(['push-token', 'session-token', 'client-data', 'kt-loggable-data']),
      fc.constantFrom(...Object.keys(valid)).chain((key) =>
        mutated(valid[key] instanceof Uint8Array ? (valid[key] as Uint8Array) : fromHex('00')).map((bytes) => ({ ...valid, [key]: bytes })),
      ),
      mutated(fromHex(legacy.alice.public_message_identity_key)).map((blob) => identity({}, { 'public-message-identity-key': blob })),
      mutated(fromHex(ngm.alice.public_device_prekey)).map((p) => identity({}, { 'public-message-ngm-device-prekey-data-key': p })),
    );
    await fc.assert(
      fc.asyncProperty(arbitrary, async (input) => {
        try {
          const peer = await parsePeerIdentity(URI, input);
          expect(peer.legacy).toBeDefined();
        } catch (e) {
          expect(e).toBeInstanceOf(PeerIdentityError);
          expect(e).toBeInstanceOf(CeruleanError);
        }
      }),
      { numRuns: 150 },
    );
  });
});
