// IDS lookups over the courier (ids.md §7, §9 item 10): c:96 in, c:97 out, over real TLS with raw frames; the
// signature checks; the URI limit; sub-service lookups; registration changes seen at once; malformed upstreams.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseAck } from '../../lib/codec/apns-commands';
import { createHmac } from 'node:crypto';
import { equalBytes, toBase64, u32be, utf8 } from '../../lib/codec/bytes';
import { gzip } from '../../lib/codec/gzip';
import { encodeBinaryPlist, encodeXmlPlist, PlistReal, type PlistDict } from '../../lib/codec/plist';
import { checkSessionToken, mintSessionToken, SESSION_TOKEN_LENGTH } from '../../sandbox/ids/session-tokens';
import { MADRID, MadridWorld, SMS, tempDir, type IdsUser, type Phone } from './madrid-helpers';

const ALICE = 'mailto:alice@example.com';
const BOB = 'mailto:bob@example.com';
const BOB_PHONE = 'tel:+15551230000';
const NOBODY = 'tel:+15550000000';

// Reals with integral values must come back as reals (ids.md: keep int vs real exactly as registered).
const BOB1_CLIENT_DATA: PlistDict = {
  'public-message-identity-key': new Uint8Array([0x30, 0x81, 0xf6, 1, 2, 3]),
  'public-message-identity-version': new PlistReal(2),
  'ec-version': 1,
  'kt-version': 5,
  'supports-hdr': true,
  'nicknames-version': new PlistReal(1),
  'prefers-sdr': false,
};
const BOB2_CLIENT_DATA: PlistDict = { 'public-message-identity-key': new Uint8Array([9, 9]), 'public-message-identity-version': 2 };
const BOB1_KT = new Uint8Array([0x0a, 0x22, 0x0a, 0x20, ...new Uint8Array(32).fill(7), 0x10, 0x0d, 0x18, 0x05]);

let pkiDir: { dir: string; remove(): Promise<void> };
beforeAll(async () => {
  pkiDir = await tempDir('cerulean-madrid-pki-');
});
afterAll(() => pkiDir.remove());

let w: MadridWorld;
afterEach(async () => w?.close());

interface Cast {
  alice: IdsUser;
  bob: IdsUser;
  a1: Phone;
  b1: Phone;
  b2: Phone;
}

async function world(options = {}): Promise<Cast> {
  w = await MadridWorld.create(pkiDir.dir, options);
  const [alice, bob] = await Promise.all([w.user('alice-profile'), w.user('bob-profile')]);
  const [a1, b1, b2] = await Promise.all([w.phone(), w.phone(), w.phone()]);
  await w.register(a1, alice, [ALICE]);
  await w.register(b1, bob, [BOB, BOB_PHONE], { clientData: BOB1_CLIENT_DATA, ktLoggableData: BOB1_KT });
  await w.register(b2, bob, [BOB], { clientData: BOB2_CLIENT_DATA, subServices: [] });
  return { alice, bob, a1, b1, b2 };
}

const statusOf = (r: { body?: PlistDict }) => r.body?.['status'];

describe('session tokens', () => {
  const mac = (purpose: string, ...parts: Uint8Array[]) => {
    const h = createHmac('sha256', 'test secret').update(purpose);
    for (const p of parts) h.update(u32be(p.length)).update(p);
    return new Uint8Array(h.digest());
  };
  const keys = { mac, verifyMac: (purpose: string, m: Uint8Array, ...parts: Uint8Array[]) => equalBytes(m, mac(purpose, ...parts)) };
  const token = new Uint8Array(32).fill(1);
  const binding = { senderUri: 'mailto:A@x.com', receiverUri: BOB, receiverToken: token };

  test('bound to sender, receiver and device; mailto case-insensitive; expire at their time', () => {
    const st = mintSessionToken(keys, { ...binding, expiresAt: 2_000 });
    expect(st.length).toBe(SESSION_TOKEN_LENGTH);
    expect(checkSessionToken(keys, st, binding, 1_999)).toBe('ok');
    expect(checkSessionToken(keys, st, { ...binding, senderUri: 'mailto:a@X.COM' }, 1_999)).toBe('ok');
    expect(checkSessionToken(keys, st, binding, 2_000)).toBe('expired');
    expect(checkSessionToken(keys, st, { ...binding, senderUri: BOB }, 0)).toBe('bad');
    expect(checkSessionToken(keys, st, { ...binding, receiverUri: BOB_PHONE }, 0)).toBe('bad');
    expect(checkSessionToken(keys, st, { ...binding, receiverToken: new Uint8Array(32) }, 0)).toBe('bad');
    const later = st.slice();
    later[SESSION_TOKEN_LENGTH - 1]! ^= 1; // a forged expiry breaks the MAC
    expect(checkSessionToken(keys, later, binding, 0)).toBe('bad');
    expect(checkSessionToken(keys, st.subarray(1), binding, 0)).toBe('bad');
  });
});

describe('lookup', () => {
  test('known handles list every device with fresh session tokens; unknown ones list none', async () => {
    const { alice, a1, b1, b2 } = await world();
    const asked = ['mailto:Bob@Example.com', NOBODY];
    const { reply, body } = await a1.lookup(alice, ALICE, { uris: asked });
    expect(reply).toMatchObject({ c: 97, s: 0, hs: 200 });
    expect(Object.keys(reply).sort()).toEqual(['U', 'b', 'c', 'hs', 's']);
    expect(body?.['status']).toBe(0);
    const results = body?.['results'] as PlistDict;
    expect(Object.keys(results)).toEqual(asked); // keys verbatim, as queried
    expect(results[NOBODY]).toEqual({ identities: [] });
    const bob = results['mailto:Bob@Example.com'] as PlistDict;
    expect(bob['sender-correlation-identifier']).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
    const ids = bob['identities'] as PlistDict[];
    expect(ids.map((i) => i['push-token'])).toEqual([b1.token, b2.token]);
    const [one, two] = ids as [PlistDict, PlistDict];
    expect(Object.keys(one).sort()).toEqual([
      'client-data', 'kt-loggable-data', 'push-token', 'session-token', 'session-token-expires-seconds', 'session-token-refresh-seconds',
    ]);
    expect(Object.keys(two).sort()).toEqual(['client-data', 'push-token', 'session-token', 'session-token-expires-seconds', 'session-token-refresh-seconds']);
    expect(one['session-token-expires-seconds']).toBe(604800);
    expect(one['session-token-refresh-seconds']).toBe(86400);
    expect(one['kt-loggable-data']).toEqual(BOB1_KT);
    // Byte-exact: the same binary plist as the registered client-data, reals included.
    expect(encodeBinaryPlist(one['client-data']!)).toEqual(encodeBinaryPlist(BOB1_CLIENT_DATA));
    expect(encodeBinaryPlist(two['client-data']!)).toEqual(encodeBinaryPlist(BOB2_CLIENT_DATA));
    const now = w.h.clock.now();
    for (const [i, phone] of [one, two].map((x, k) => [x, k === 0 ? b1 : b2] as const)) {
      const st = i['session-token'] as Uint8Array;
      expect(checkSessionToken(w.pki, st, { senderUri: ALICE, receiverUri: BOB, receiverToken: phone.token }, now)).toBe('ok');
      expect(checkSessionToken(w.pki, st, { senderUri: BOB, receiverUri: BOB, receiverToken: phone.token }, now)).toBe('bad');
      expect(checkSessionToken(w.pki, st, { senderUri: ALICE, receiverUri: BOB, receiverToken: phone.token }, now + 604_800_000)).toBe('expired');
    }
  });

  test("device names go to the account's own devices only", async () => {
    w = await MadridWorld.create(pkiDir.dir);
    const [alice, bob] = await Promise.all([w.user('alice-profile'), w.user('bob-profile')]);
    const [a1, a2, b1] = await Promise.all([w.phone(), w.phone(), w.phone()]);
    await w.register(a1, alice, [ALICE], { deviceName: 'Alice laptop' });
    await w.register(a2, alice, [ALICE], { deviceName: 'Alice phone' });
    await w.register(b1, bob, [BOB], { deviceName: 'Bob tablet' });
    const identitiesOf = (body: PlistDict | undefined, uri: string) => ((body?.['results'] as PlistDict)[uri] as PlistDict)['identities'] as PlistDict[];
    const own = await a1.lookup(alice, ALICE, { uris: [ALICE] });
    expect(identitiesOf(own.body, ALICE).map((i) => i['device-name'])).toEqual(['Alice laptop', 'Alice phone']);
    const other = await a1.lookup(alice, ALICE, { uris: [BOB] });
    expect(identitiesOf(other.body, BOB).map((i) => i['device-name'])).toEqual([undefined]);
  });

  test('the reply goes only to the asking device; a device registered for a handle by two users is one identity', async () => {
    const { alice, a1, b1 } = await world();
    const bobPhoneUser = await w.user('P:+15551230000');
    await w.register(b1, bobPhoneUser, [BOB_PHONE], { updatedAt: w.h.clock.now() + 1 });
    const { body } = await a1.lookup(alice, ALICE, { uris: [BOB_PHONE] });
    const ids = ((body?.['results'] as PlistDict)[BOB_PHONE] as PlistDict)['identities'] as PlistDict[];
    expect(ids.map((i) => i['push-token'])).toEqual([b1.token]);
    expect(ids[0]!['client-data']).toBeUndefined(); // the newer registration (the phone user's) wins
    expect(await b1.none((r) => r.dict['c'] === 97)).toBe(true);
  });

  test('a device whose ID certificate lapsed drops out of lookups', async () => {
    const { alice, bob, a1, b2 } = await world();
    await w.register(b2, bob, [BOB], { clientData: BOB2_CLIENT_DATA, subServices: [], idCertNotAfter: w.h.clock.now() - 1 });
    const ids = await a1.identities(alice, ALICE, [BOB]);
    expect(ids.get(BOB)).toHaveLength(1);
  });

  test('lookups reflect registration changes at once', async () => {
    const { alice, a1, b2 } = await world();
    await w.registrations.removeToken(MADRID, b2.token);
    const ids = await a1.identities(alice, ALICE, [BOB]);
    expect(ids.get(BOB)).toHaveLength(1);
  });

  test('sub-service lookups (topic or x-id-sub-service) list only devices registered for it', async () => {
    const { alice, a1, b1 } = await world();
    for (const o of [{ topic: SMS }, { headers: { 'x-id-sub-service': SMS } }]) {
      const { reply, body } = await a1.lookup(alice, ALICE, { uris: [BOB], ...o });
      expect(reply['s']).toBe(0);
      const ids = ((body?.['results'] as PlistDict)[BOB] as PlistDict)['identities'] as PlistDict[];
      expect(ids.map((i) => i['push-token'])).toEqual([b1.token]);
    }
  });

  test('35 handles are answered; 36 get tunnel status 5206 without a body', async () => {
    const { alice, a1 } = await world();
    const uris = Array.from({ length: 36 }, (_, i) => `tel:+1555000${String(i).padStart(4, '0')}`);
    const ok = await a1.lookup(alice, ALICE, { uris: uris.slice(0, 35) });
    expect(Object.keys(ok.body?.['results'] as PlistDict)).toHaveLength(35);
    const { reply, body } = await a1.lookup(alice, ALICE, { uris });
    expect(body).toBeUndefined();
    expect(Object.keys(reply).sort()).toEqual(['U', 'c', 's']);
    expect(reply).toMatchObject({ c: 97, s: 5206 });
  });
});

describe('lookup signatures', () => {
  test('a good signature is accepted; a body other than the signed one is 5032', async () => {
    const { alice, a1 } = await world();
    expect(statusOf(await a1.lookup(alice, ALICE, { uris: [BOB] }))).toBe(0);
    const other = await gzip(encodeXmlPlist({ uris: [BOB_PHONE] }));
    const r = await a1.lookup(alice, ALICE, { uris: [BOB], body: other });
    expect(r.reply).toMatchObject({ c: 97, s: 0, hs: 200 });
    expect(r.body).toEqual({ status: 5032 });
  });

  test('x-push-token must be the sending connection’s token (5032)', async () => {
    const { alice, a1, b1 } = await world();
    expect(statusOf(await a1.lookup(alice, ALICE, { uris: [BOB], signToken: b1.token }))).toBe(5032);
  });

  test('x-id-self-uri must belong to the certificate’s user (6005)', async () => {
    const { alice, bob, a1 } = await world();
    expect(statusOf(await a1.lookup(alice, BOB, { uris: [BOB] }))).toBe(6005);
    expect(statusOf(await a1.lookup(bob, ALICE, { uris: [BOB] }))).toBe(6005);
    expect(statusOf(await a1.lookup({ ...bob, keys: alice.keys }, BOB, { uris: [BOB] }))).toBe(5032); // bob's cert, alice's key
  });

  test('missing headers 5009, bad nonce 5086/5087, non-ID or expired certificate 5085/6005', async () => {
    const { alice, a1 } = await world();
    expect(statusOf(await a1.lookup(alice, ALICE, { uris: [BOB], omit: ['x-id-sig'] }))).toBe(5009);
    expect(statusOf(await a1.lookup(alice, ALICE, { uris: [BOB], omit: ['x-id-self-uri'] }))).toBe(5009);
    expect(statusOf(await a1.lookup(alice, ALICE, { uris: [BOB], headers: { 'x-id-nonce': 'AAEC' } }))).toBe(5086);
    const stale = new Uint8Array(17);
    stale[0] = 1;
    expect(statusOf(await a1.lookup(alice, ALICE, { uris: [BOB], headers: { 'x-id-nonce': toBase64(stale) } }))).toBe(5087);
    const auth = await w.pki.issueIdsCertificate({ publicKey: alice.keys.publicKey, userId: alice.userId, kind: 'auth', notAfter: w.h.clock.now() + 60_000 });
    expect(statusOf(await a1.lookup({ ...alice, cert: auth.der }, ALICE, { uris: [BOB] }))).toBe(5085);
  });

  test('an expired ID certificate is 6005', async () => {
    const { a1 } = await world();
    const alice2 = await w.user('alice-profile', 60_000);
    expect(statusOf(await a1.lookup(alice2, ALICE, { uris: [BOB] }))).toBe(0);
    w.h.clock.advance(120_000);
    expect(statusOf(await a1.lookup(alice2, ALICE, { uris: [BOB] }))).toBe(6005);
  });
});

describe('malformed upstreams', () => {
  test('are acked, logged and ignored; the connection keeps being served', async () => {
    const { alice, a1 } = await world();
    const bad = [
      utf8('not a plist at all'),
      utf8('{"c":96}'),
      encodeBinaryPlist([1, 2, 3]),
      encodeBinaryPlist({ U: new Uint8Array(16) }),
      encodeBinaryPlist({ c: 'ninety-six' }),
      encodeBinaryPlist({ c: 96, h: {}, b: new Uint8Array(1) }), // no U: nothing to answer to
      new Uint8Array([0x62, 0x70, 0x6c, 0x69, 0x73, 0x74, 0x30, 0x30, 0xff, 0xff]),
    ];
    for (const p of bad) a1.upstream(MADRID, p);
    for (let i = 0; i < bad.length; i++) expect(parseAck(await a1.device.client.next(0x0b)).status).toBe(0);
    // A c:96 with a U but nothing usable gets a status answer rather than silence.
    const U = new Uint8Array(16).fill(3);
    a1.upstream(MADRID, encodeBinaryPlist({ c: 96, U, h: 'headers?', b: new Uint8Array([1]) }));
    const answer = await a1.next((r) => r.dict['c'] === 97);
    expect(answer.dict['U']).toEqual(U);
    expect(statusOf(await a1.lookup(alice, ALICE, { uris: [BOB] }))).toBe(0);
    const malformed = w.log.lines.filter((l) => l.event === 'madrid.malformed');
    expect(malformed).toHaveLength(6);
    expect(w.log.lines.filter((l) => l.event === 'ids.query-unanswerable')).toHaveLength(1);
    expect(a1.device.client.isClosed).toBe(false);
  });
});
