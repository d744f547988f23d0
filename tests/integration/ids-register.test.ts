// register over real HTTPS: the ID certificate certifies the auth key; client-data is kept value-exact (real vs
// integer) through the store; validation data, per-user signatures and handle ownership are enforced; deregistration,
// gzip bodies, phone linking, lifetimes, fault injection, change events and getDependentRegistrations.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { equalBytes, fromUtf8 } from '../../lib/codec/bytes';
import { encodeXmlPlist, PlistReal, type PlistDict } from '../../lib/codec/plist';
import { Registrations, type RegistrationEvent } from '../../sandbox/ids/registrations';
import { Store, type Json } from '../../sandbox/store';
import {
  authHeaders,
  dict,
  list,
  makeDevice,
  makeUser,
  PLIST_HEADERS,
  pushHeaders,
  registerBody,
  sendRegister,
  signedGet,
  startIdsHarness,
  URLS,
  type IdsHarness,
  type TestDevice,
  type TestUser,
} from './ids-helpers';

const PHONE = '+15555550177';
const MINUTE = 60_000;
const DAY = 86_400_000;

// Both numeric types for the same value: the store and every echo must keep them apart.
const CLIENT_DATA: PlistDict = {
  'public-message-identity-key': new Uint8Array([0x30, 0x81, 0xf6, 0x81, 0x43, 0x00, 0x41, 0x04]),
  'public-message-identity-version': new PlistReal(2),
  'ec-version': 1,
  'kt-version': 5,
  'nicknames-version': 1.5,
  'supports-heif': true,
  'show-peer-errors': false,
};

describe('IDS register', () => {
  let h: IdsHarness;
  let relayCode: string;
  let aliceProfile: string;
  let alice: TestUser;
  let phone: TestUser;
  let mac: TestDevice;
  let iphone: TestDevice;
  const events: RegistrationEvent[] = [];
  const vd = () => h.relay.mintValidationData(relayCode).data;
  const madrid = (r: { plist: PlistDict }) => dict(list(r.plist.services)[0]);
  const userAnswer = (r: { plist: PlistDict }, i = 0) => dict(list(madrid(r).users)[i]);
  const user = (u: TestUser, uris: string[], extra: PlistDict = {}): PlistDict => ({ 'user-id': u.userId, uris: uris.map((uri) => ({ uri })), ...extra });

  beforeAll(async () => {
    h = await startIdsHarness({ idCertLifetimes: { phoneFirstMs: 30 * MINUTE, phoneMs: 30 * DAY, appleIdMs: 20 * DAY } });
    h.registrations.onChange((e) => events.push(e));
    relayCode = (await h.relay.createCode()).code;
    aliceProfile = (await h.accounts.createAccount({ appleId: 'alice@example.com', password: 'pw' })).profileId;
    await h.accounts.addPhone({ number: PHONE });
    alice = await makeUser(h, aliceProfile);
    phone = await makeUser(h, `P:${PHONE}`);
    mac = await makeDevice(h);
    iphone = await makeDevice(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('issues an ID certificate over the auth key and stores the registration', async () => {
    const kt = crypto.getRandomValues(new Uint8Array(40));
    const r = await sendRegister(h, mac, [alice], registerBody([user(alice, ['mailto:alice@example.com'], { 'kt-loggable-data': kt })], vd()));
    expect(r.status).toBe(200);
    expect(r.plist.status).toBe(0);
    expect(madrid(r)).toMatchObject({ service: 'com.apple.madrid', status: 0 });
    const u = userAnswer(r);
    expect(u).toMatchObject({ 'user-id': aliceProfile, status: 0, uris: [{ uri: 'mailto:alice@example.com', status: 0 }] });
    const check = await h.pki.verifyIdsCertificate(u.cert as Uint8Array);
    if (!check.ok) throw new Error('ID cert does not verify');
    expect(check.kind).toBe('id');
    expect(check.userId).toBe(aliceProfile);
    expect(equalBytes(check.spki, new Uint8Array(await crypto.subtle.exportKey('spki', alice.keys.publicKey)))).toBe(true);
    expect(check.notAfter).toBeGreaterThan(h.clock.now() + 19 * DAY);
    expect(check.notAfter).toBeLessThanOrEqual(h.clock.now() + 20 * DAY);

    const [reg] = h.registrations.forToken('com.apple.madrid', mac.token);
    expect(reg).toMatchObject({ userId: aliceProfile, uris: ['mailto:alice@example.com'], deviceName: 'cerulean-test', hardwareVersion: 'Macmini9,1', osVersion: 'macOS,13.5,22G74', softwareVersion: '22G74', idCertSerial: check.serial });
    expect(reg!.subServices).toEqual(['com.apple.private.alloy.sms', 'com.apple.private.alloy.gelato']);
    expect(equalBytes(reg!.ktLoggableData!, kt)).toBe(true);
    expect(reg!.clientData).toBeUndefined();
    expect(events.at(-1)).toMatchObject({ kind: 'registered', registration: { userId: aliceProfile } });
  });

  it('keeps client-data value-exact (real vs integer) in memory, in the store and in getDependentRegistrations', async () => {
    const body = registerBody([user(alice, ['mailto:alice@example.com'], { 'client-data': CLIENT_DATA })], vd());
    expect(fromUtf8(encodeXmlPlist(body))).toMatch(/<key>public-message-identity-version<\/key>\s*<real>2(\.0)?<\/real>/);
    const r = await sendRegister(h, mac, [alice], body);
    expect(userAnswer(r).status).toBe(0);
    expect(events.at(-1)?.kind).toBe('updated');

    const expectExact = (cd: PlistDict | undefined) => {
      expect(cd!['public-message-identity-version']).toBeInstanceOf(PlistReal);
      expect((cd!['public-message-identity-version'] as PlistReal).value).toBe(2);
      expect(cd!['ec-version']).toBe(1);
      expect(cd!['kt-version']).toBe(5);
      expect(cd!['nicknames-version']).toBe(1.5);
      expect(cd!['supports-heif']).toBe(true);
      expect(cd!['show-peer-errors']).toBe(false);
      expect(Object.keys(cd!)).toEqual(['public-message-identity-key', 'public-message-identity-version', 'ec-version', 'kt-version', 'nicknames-version', 'supports-heif', 'show-peer-errors']);
    };
    expectExact(h.registrations.forToken('com.apple.madrid', mac.token)[0]!.clientData);

    const deps = await signedGet(h, URLS.dependents, 'id-get-dependent-registrations', mac, alice);
    expect(deps.text).toMatch(/<key>public-message-identity-version<\/key>\s*<real>2(\.0)?<\/real>/);
    expect(deps.text).toMatch(/<key>ec-version<\/key>\s*<integer>1<\/integer>/);
    expectExact(dict(dict(list(deps.plist.registrations)[0])['client-data']));

    // And from disk: the stored records copied to another store, closed and reopened.
    const copyDir = `${h.dir}/store-copy`;
    const copy = await Store.open(copyDir);
    for (const [k, v] of h.store.entries('ids-registrations')) await copy.put('ids-registrations', k, v as Json);
    await copy.close();
    const reopened = await Store.open(copyDir);
    expectExact(Registrations.open(reopened, h.clock).forToken('com.apple.madrid', mac.token)[0]!.clientData);
    await reopened.close();
  });

  it('registers a gzip body (signature over the gzip bytes) and tolerates users without client-data', async () => {
    const r = await sendRegister(h, iphone, [alice], registerBody([user(alice, ['mailto:alice@example.com'])], vd()), { gzip: true });
    expect(r.plist.status).toBe(0);
    expect(userAnswer(r).status).toBe(0);
    expect(h.registrations.devicesForUri('com.apple.madrid', 'mailto:ALICE@example.com').length).toBe(2);
  });

  it('lists both of the account’s devices in getDependentRegistrations (GET and POST)', async () => {
    const get = await signedGet(h, URLS.dependents, 'id-get-dependent-registrations', iphone, alice);
    expect(get.plist.status).toBe(0);
    expect(get.plist['expiry-epoch-milli-sec']).toBeGreaterThan(h.clock.now());
    const regs = list(get.plist.registrations).map(dict);
    expect(regs.length).toBe(2);
    const tokens = regs.map((x) => x['push-token'] as Uint8Array);
    expect(tokens.some((t) => equalBytes(t, mac.token)) && tokens.some((t) => equalBytes(t, iphone.token))).toBe(true);
    for (const x of regs) {
      expect(x).toMatchObject({ service: 'com.apple.madrid', 'device-name': 'cerulean-test', 'hardware-version': 'Macmini9,1', identities: [{ uri: 'mailto:alice@example.com' }], 'is-hsa-trusted-device': true, 'self-handle': 'mailto:alice@example.com' });
      expect(dict(x['private-device-data']).pn).toBe('macOS');
    }
    // [BG] POSTs {retry-count: 0}; the signature covers that body.
    const body = encodeXmlPlist({ 'retry-count': 0 });
    const headers = { ...PLIST_HEADERS, ...(await pushHeaders(h, mac, 'id-get-dependent-registrations', body)), ...(await authHeaders(h, alice, mac, 'id-get-dependent-registrations', body)) };
    const post = await h.request(URLS.dependents, { body, headers });
    expect(list(post.plist.registrations).length).toBe(2);
  });

  it('answers 6004 to missing, forged, expired or revoked validation data', async () => {
    const body = (data: Uint8Array) => registerBody([user(alice, ['mailto:alice@example.com'])], data);
    const good = vd();
    const forged = good.slice();
    forged[forged.length - 1]! ^= 1;
    const noVd = registerBody([user(alice, ['mailto:alice@example.com'])], new Uint8Array(0));
    delete noVd['validation-data'];
    for (const b of [body(forged), body(crypto.getRandomValues(new Uint8Array(100))), body(new Uint8Array(0)), noVd]) {
      const r = await sendRegister(h, mac, [alice], b);
      expect(r.plist).toEqual({ status: 6004 });
    }
    const expiring = vd();
    h.clock.advance(16 * MINUTE);
    expect((await sendRegister(h, mac, [alice], body(expiring))).plist).toEqual({ status: 6004 });
    const other = (await h.relay.createCode()).code;
    const revoked = h.relay.mintValidationData(other).data;
    await h.relay.deleteCode(other);
    expect((await sendRegister(h, mac, [alice], body(revoked))).plist).toEqual({ status: 6004 });
  });

  it('fails a user whose auth signature is bad, expired or absent, without touching the others', async () => {
    const bob = await makeUser(h, (await h.accounts.createAccount({ appleId: 'bob@example.com', password: 'pw' })).profileId);
    const device = await makeDevice(h);
    const body = registerBody([user(alice, ['mailto:alice@example.com']), user(bob, ['mailto:bob@example.com'])], vd());
    // Bob's -1 family signs with Alice's key under Bob's certificate.
    const r = await sendRegister(h, device, [alice, { ...bob, keys: alice.keys }], body);
    expect(r.plist.status).toBe(0);
    expect(userAnswer(r, 0).status).toBe(0);
    expect(userAnswer(r, 1)).toEqual({ 'user-id': bob.userId, status: 5032, uris: [{ uri: 'mailto:bob@example.com', status: 5032 }] });
    // Only Alice signed.
    const unsigned = await sendRegister(h, device, [alice], body);
    expect(userAnswer(unsigned, 1).status).toBe(5009);
    // Bob's auth certificate has expired.
    const expired = await makeUser(h, bob.userId, bob.keys, MINUTE);
    h.clock.advance(2 * MINUTE);
    const stale = await sendRegister(h, device, [alice, expired], registerBody([user(alice, ['mailto:alice@example.com']), user(bob, ['mailto:bob@example.com'])], vd()));
    expect(userAnswer(stale, 1).status).toBe(6005);
    expect(h.registrations.forToken('com.apple.madrid', device.token).map((x) => x.userId)).toEqual([aliceProfile]);
    // A bad push signature fails the whole request.
    const badPush = await sendRegister(h, device, [alice], body, { headers: { 'x-push-sig': 'AQEAAAAA' } });
    expect(badPush.plist).toEqual({ status: 5032 });
  });

  it('grants only owned handles: a foreign uri gets 5052, a user with none granted gets 5052', async () => {
    const r = await sendRegister(h, mac, [alice], registerBody([user(alice, ['mailto:alice@example.com', 'mailto:bob@example.com', `tel:${PHONE}`])], vd()));
    expect(userAnswer(r)).toMatchObject({
      status: 0,
      uris: [
        { uri: 'mailto:alice@example.com', status: 0 },
        { uri: 'mailto:bob@example.com', status: 5052 },
        { uri: `tel:${PHONE}`, status: 5052 },
      ],
    });
    expect(h.registrations.forToken('com.apple.madrid', mac.token)[0]!.uris).toEqual(['mailto:alice@example.com']);
    const none = await sendRegister(h, mac, [alice], registerBody([user(alice, ['mailto:bob@example.com'])], vd()));
    expect(userAnswer(none)).toEqual({ 'user-id': aliceProfile, status: 5052, uris: [{ uri: 'mailto:bob@example.com', status: 5052 }] });
    expect(userAnswer(none).cert).toBeUndefined();
  });

  it('gives a phone 30 minutes the first time and 30 days after, and links it to an Apple ID registered with it', async () => {
    const body = () => registerBody([user(alice, ['mailto:alice@example.com']), user(phone, [`tel:${PHONE}`], { tag: 'SIM' })], vd());
    const first = await sendRegister(h, iphone, [alice, phone], body());
    expect(first.plist.status).toBe(0);
    const notAfter = async (i: number, r: typeof first) => {
      const c = await h.pki.verifyIdsCertificate(userAnswer(r, i).cert as Uint8Array);
      return c.ok ? c.notAfter - h.clock.now() : -1;
    };
    expect(await notAfter(1, first)).toBeLessThanOrEqual(30 * MINUTE);
    expect(await notAfter(1, first)).toBeGreaterThan(29 * MINUTE);
    expect(await notAfter(0, first)).toBeGreaterThan(19 * DAY);
    const again = await sendRegister(h, iphone, [alice, phone], body());
    expect(await notAfter(1, again)).toBeGreaterThan(29 * DAY);
    expect(h.accounts.getAccount('alice@example.com')?.phones).toEqual([PHONE]);
    const handles = await signedGet(h, URLS.getHandles, 'id-get-handles', iphone, alice);
    expect(list(handles.plist.handles)).toContainEqual({ uri: `tel:${PHONE}` });
    const deps = list((await signedGet(h, URLS.dependents, 'id-get-dependent-registrations', iphone, alice)).plist.registrations).map(dict);
    expect(deps.find((d) => equalBytes(d['push-token'] as Uint8Array, iphone.token))?.['linked-user-uri']).toEqual([`tel:${PHONE}`]);
  });

  it('answers every service in request order and drops users a re-registration no longer lists', async () => {
    const body = registerBody([user(alice, ['mailto:alice@example.com'])], vd());
    const madridEntry = dict(list(body.services)[0]);
    body.services = [
      { service: 'com.apple.private.alloy.facetime.multi', users: [user(alice, ['mailto:alice@example.com'])] },
      madridEntry,
      { service: 'com.apple.ess', users: [user(alice, ['mailto:alice@example.com'])] },
    ];
    const r = await sendRegister(h, iphone, [alice], body);
    expect(list(r.plist.services).map((s) => dict(s).service)).toEqual(['com.apple.private.alloy.facetime.multi', 'com.apple.madrid', 'com.apple.ess']);
    for (const s of list(r.plist.services)) expect(dict(list(dict(s).users)[0]).status).toBe(0);
    // The phone user was on this device's madrid registration before; this request lists only Alice.
    expect(h.registrations.forToken('com.apple.madrid', iphone.token).map((x) => x.userId)).toEqual([aliceProfile]);
    expect(events.some((e) => e.kind === 'deregistered' && e.registration.userId === phone.userId)).toBe(true);
  });

  it('deregisters a token when no users are listed', async () => {
    const before = events.length;
    const body = registerBody([], vd());
    const r = await sendRegister(h, iphone, [], body);
    expect(r.plist).toEqual({ status: 0, services: [{ service: 'com.apple.madrid', status: 0, users: [] }] });
    expect(h.registrations.forToken('com.apple.madrid', iphone.token)).toEqual([]);
    expect(h.registrations.forToken('com.apple.ess', iphone.token).length).toBe(1);
    expect(events.slice(before).map((e) => e.kind)).toEqual(['deregistered']);
    // The deregister endpoint with an empty body removes the rest.
    const raw = new Uint8Array(0);
    const d = await h.request(URLS.deregister, { method: 'POST', body: raw, headers: await pushHeaders(h, iphone, 'id-deregister', raw) });
    expect(d.plist).toEqual({ status: 0 });
    expect(h.registrations.list().some((x) => equalBytes(x.pushToken, iphone.token))).toBe(false);
  });

  it('injects 7000, 6009 with an alert and 6001', async () => {
    const body = () => registerBody([user(alice, ['mailto:alice@example.com'])], vd());
    h.faults.inject({ status: 7000, times: 1 });
    const limited = await sendRegister(h, mac, [alice], body());
    expect(limited.plist.status).toBe(7000);
    expect(limited.plist['retry-interval']).toBeGreaterThan(0);
    h.faults.inject({ status: 6009, userId: aliceProfile, times: 1 });
    const disabled = userAnswer(await sendRegister(h, mac, [alice], body()));
    expect(disabled.status).toBe(6009);
    expect(dict(disabled.alert)).toMatchObject({ title: expect.any(String), body: expect.any(String), button: 'OK' });
    expect(disabled.cert).toBeUndefined();
    h.faults.inject({ status: 6001 });
    expect(userAnswer(await sendRegister(h, mac, [alice], body())).status).toBe(6001);
    expect(userAnswer(await sendRegister(h, mac, [alice], body())).status).toBe(6001);
    h.faults.clear();
    expect(userAnswer(await sendRegister(h, mac, [alice], body())).status).toBe(0);
  });

  it('answers malformed requests with real statuses and keeps serving', async () => {
    const bad = await sendRegister(h, mac, [alice], { services: 'nope', 'validation-data': vd() });
    expect(bad.plist.status).toBe(5008);
    const noUserId = await sendRegister(h, mac, [alice], registerBody([{ uris: [{ uri: 'mailto:alice@example.com' }] }], vd()));
    expect(userAnswer(noUserId).status).toBe(5008);
    const badClientData = await sendRegister(h, mac, [alice], registerBody([user(alice, ['mailto:alice@example.com'], { 'client-data': 'x' })], vd()));
    expect(userAnswer(badClientData).status).toBe(5003);
    const odd = await sendRegister(h, mac, [alice], registerBody([1, 'x', { 'user-id': 5 }, { 'user-id': aliceProfile, uris: 'mailto:alice@example.com' }] as PlistDict[], vd()));
    expect(list(madrid(odd).users).map((u) => dict(u).status)).toEqual([5008, 5008, 5008, 5008]);
    const noPush = await h.request(URLS.register, { body: encodeXmlPlist(registerBody([], vd())), headers: PLIST_HEADERS });
    expect(noPush.plist).toEqual({ status: 5009 });
    const text = await h.request(URLS.register, { body: new TextEncoder().encode('hello'), headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    const get = await h.request(URLS.register, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(userAnswer(await sendRegister(h, mac, [alice], registerBody([user(alice, ['mailto:alice@example.com'])], vd()))).status).toBe(0);
  });

  it('never fails with a 5xx on a mutated signed request', async () => {
    const xml = encodeXmlPlist(registerBody([user(alice, ['mailto:alice@example.com'])], vd()));
    const headers = { ...PLIST_HEADERS, ...(await pushHeaders(h, mac, 'id-register', xml)), ...(await authHeaders(h, alice, mac, 'id-register', xml, '-0')) };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), async (flips) => {
        const body = xml.slice();
        for (const [at, x] of flips) body[at % body.length]! ^= x;
        const r = await h.request(URLS.register, { body, headers });
        expect([200, 400]).toContain(r.status);
        expect(typeof r.plist.status).toBe('number');
        // Any change to the signed bytes is caught before anything is stored.
        if (r.status === 200) expect(r.plist.status).not.toBe(0);
      }),
      { numRuns: 25 },
    );
  });
});

describe('IDS register, lenient validation', () => {
  let h: IdsHarness;
  afterAll(async () => {
    await h?.close();
  });

  it('accepts any non-empty validation blob (clients running Apple’s NAC) but not an empty one', async () => {
    h = await startIdsHarness({ validation: 'lenient' });
    const profile = (await h.accounts.createAccount({ appleId: 'dave@example.com', password: 'pw' })).profileId;
    const u = await makeUser(h, profile);
    const d = await makeDevice(h);
    const users = [{ 'user-id': profile, uris: [{ uri: 'mailto:dave@example.com' }] }];
    expect((await sendRegister(h, d, [u], registerBody(users, new Uint8Array([1, 2, 3])))).plist.status).toBe(0);
    expect((await sendRegister(h, d, [u], registerBody(users, new Uint8Array(0)))).plist.status).toBe(6004);
  });
});
