// The composed sandbox end to end, driven only over the wire the way a client written for Apple would drive it
// (Node's tls/https to the host map's address for each Apple host, SNI = the Apple name, the sandbox CA as the only
// trust root, raw courier frames, signed IDS requests). Two people: Alice (Apple ID with 2FA, two Macs) and Bob (a
// phone number verified through the SMS gateway, on a device that speaks the packed framing). From albert activation
// to a message fanned out to Bob and to Alice's other device, then the ways it can go wrong: bad signatures, stale
// validation data, unknown handles, untrusted or misnamed TLS, and garbage on every port.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConnectResponse } from '../../lib/codec/apns-commands';
import { LEGACY_ALPN, PACKED_ALPN } from '../../lib/codec/apns-packed';
import { fromUtf8, toHex, utf8 } from '../../lib/codec/bytes';
import { gzip } from '../../lib/codec/gzip';
import { encodeBinaryPlist, encodeXmlPlist, type PlistDict } from '../../lib/codec/plist';
import { courierNonce } from '../../lib/crypto/request-signing';
import { FakeClock } from '../../sandbox/context';
import type { Sandbox } from '../../sandbox/sandbox';
import { protocolServices, type ProtocolServices } from '../../sandbox/services';
import {
  AppleDevice,
  COURIER_SNI,
  CourierLink,
  IDS_CONTROL,
  MADRID,
  URLS,
  adminApi,
  appleHttps,
  clientData,
  dialApple,
  fetchValidationData,
  getHandles,
  providerPush,
  registerDevice,
  sameBytes,
  signInAppleId,
  signInPhone,
  topicHash,
  type IdsUser,
  type Received,
  type RelayVersions,
} from './sandbox-e2e-helpers';
import { recordingLog } from './madrid-helpers';
import { startTestSandbox, tempDir } from './sandbox-helpers';

const ALICE_ID = 'alice@example.com';
const ALICE_PASSWORD = 'correct horse battery';
const ALICE = `mailto:${ALICE_ID}`;
const BOB_NUMBER = '+15555550123';
const BOB = `tel:${BOB_NUMBER}`;
const UA = '[macOS,13.5,22G74,Macmini9,1]';
const PACKED = [PACKED_ALPN, LEGACY_ALPN];

const uuid = () => crypto.getRandomValues(new Uint8Array(16));
const isMessage = (U: Uint8Array, c = 100) => (r: Received) => r.dict['c'] === c && sameBytes(r.dict['U'], U);
const spki = (der: Uint8Array) => new X509Certificate(Buffer.from(der)).publicKey.export({ type: 'spki', format: 'der' });

describe('sandbox end to end', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sb: Sandbox;
  let protocol: ProtocolServices;
  const clock = new FakeClock(Date.now());
  // Built up step by step: each test continues where the previous one left off.
  let a1: AppleDevice, a2: AppleDevice, b1: AppleDevice;
  let aliceOnA1: IdsUser, aliceOnA2: IdsUser, bob: IdsUser;
  let relayCode: string;
  let validation: { data: Uint8Array; versions: RelayVersions };
  const published = new Map<AppleDevice, PlistDict>();
  const sessionTokens = new Map<string, Uint8Array>();
  // Every component's log lines, to check what the sandbox says about bad input (and that it never logs payloads).
  const log = recordingLog();
  const payloads: Uint8Array[] = [];

  beforeAll(async () => {
    tmp = await tempDir('cerulean-e2e-');
    protocol = protocolServices();
    sb = await startTestSandbox(tmp.dir, {
      clock,
      logger: () => log,
      services: protocol.services,
      config: { accounts: [{ appleId: ALICE_ID, password: ALICE_PASSWORD, twoFactor: true }], phones: [{ number: BOB_NUMBER }] },
    });
  });
  afterAll(async () => {
    for (const d of [a1, a2, b1]) await d?.disconnect();
    await sb?.close();
    await tmp?.remove();
  });

  it('activates three devices at albert and connects each to the courier with a signed nonce', async () => {
    [a1, a2, b1] = await Promise.all([
      AppleDevice.activate(sb, clock, 'alice-mac1'),
      AppleDevice.activate(sb, clock, 'alice-mac2'),
      AppleDevice.activate(sb, clock, 'bob-phone'),
    ]);
    for (const d of [a1, a2, b1]) {
      // An albert push certificate from the sandbox's device CA.
      expect(new X509Certificate(Buffer.from(d.pushCert)).issuer).toContain('Cerulean Sandbox iPhone Device CA');
      const r = await d.connect(d === b1 ? { alpn: PACKED } : {});
      expect(r).toMatchObject({ status: 0, maxMessageSize: 4096, largeMessageSize: 15360 });
      expect(r.token).toHaveLength(32);
      d.subscribe();
      await d.requireLink().next(0x0e); // nothing stored yet
    }
    expect(b1.requireLink().packed).toBe(true);
    expect(a1.requireLink().packed).toBe(false);
    expect(new Set([a1, a2, b1].map((d) => toHex(d.token!))).size).toBe(3);
  });

  it('signs Alice in with her password and a 2FA code on each Mac, and Bob in through the SMS gateway', async () => {
    const wrong = await appleHttps(sb, URLS.authenticateUser, { body: encodeXmlPlist({ username: ALICE_ID, password: 'nope' }) });
    expect(wrong.plist['status']).toBe(5012);

    const first = await signInAppleId(sb, ALICE_ID, ALICE_PASSWORD);
    const second = await signInAppleId(sb, ALICE_ID, ALICE_PASSWORD);
    // 5000 = code sent to trusted devices; then the password with the code appended; then authenticateDS.
    expect(first.statuses).toEqual([5000, 0, 0]);
    expect(second.statuses).toEqual([5000, 0, 0]);
    aliceOnA1 = first.user;
    aliceOnA2 = second.user;
    expect(aliceOnA1.userId).toBe(sb.accounts.getAccount(ALICE_ID)!.profileId);
    expect(aliceOnA2.userId).toBe(aliceOnA1.userId);
    // A code works once.
    const code = await adminApi<{ code: string; used: boolean }>(sb, `api/two-factor?appleId=${ALICE_ID}`);
    expect(code.used).toBe(true);
    const replayed = encodeXmlPlist({ username: ALICE_ID, password: ALICE_PASSWORD + code.code });
    const replay = await appleHttps(sb, URLS.authenticateUser, { body: replayed });
    expect(replay.plist['status']).toBe(5012);

    const phone = await signInPhone(sb, b1, BOB_NUMBER);
    expect(phone.regResp).toMatch(/^REG-RESP\?v=3;r=\d+;n=\+15555550123;s=[0-9A-F]+$/);
    bob = phone.user;
    expect(bob.userId).toBe(`P:${BOB_NUMBER}`);
    for (const u of [aliceOnA1, aliceOnA2, bob]) {
      expect(spki(u.authCert!)).toEqual(Buffer.from(await crypto.subtle.exportKey('spki', u.keys.publicKey)));
    }
  });

  it('registers every device with relay validation data and issues ID certificates over the auth keys', async () => {
    relayCode = (await sb.relay.createCode({ name: 'Alice’s Mac' })).code;
    validation = await fetchValidationData(sb, relayCode);
    const ok = (res: Awaited<ReturnType<typeof registerDevice>>, user: IdsUser, uri: string) => {
      expect(res.status).toBe(200);
      expect(res.plist['status']).toBe(0);
      const service = (res.plist['services'] as PlistDict[])[0]!;
      expect(service).toMatchObject({ service: MADRID, status: 0 });
      expect((service['users'] as PlistDict[])[0]).toMatchObject({ 'user-id': user.userId, status: 0, uris: [{ uri, status: 0 }] });
      expect(spki(user.idCert!)).toEqual(spki(user.authCert!));
    };
    for (const [device, user, uri] of [[a1, aliceOnA1, ALICE], [a2, aliceOnA2, ALICE], [b1, bob, BOB]] as const) {
      const data = clientData();
      published.set(device, data);
      const tag = device === b1 ? 'SIM' : undefined;
      // Bob's client gzips its body, as [RP] does; the signatures cover the gzipped bytes.
      ok(await registerDevice(sb, device, [{ user, uris: [uri], clientData: data, tag }], validation, { gzip: device === b1 }), user, uri);
    }
    // Alice's first Mac hears that her account's device list changed (ids.md §7.4).
    expect((await a1.next((r) => r.topic === IDS_CONTROL)).json).toEqual({ c: 34 });

    const handles = await getHandles(sb, a1, aliceOnA1);
    expect(handles.plist).toEqual({ status: 0, handles: [{ uri: ALICE }] });
    expect((await getHandles(sb, b1, bob)).plist).toEqual({ status: 0, handles: [{ uri: BOB }] });
  });

  it('looks handles up over the courier (c:96 → c:97) and returns what each device published', async () => {
    const found = await a1.identities(aliceOnA1, ALICE, [BOB, ALICE]);
    const bobs = found.get(BOB)!;
    expect(bobs).toHaveLength(1);
    expect(bobs[0]).toMatchObject({
      'push-token': b1.token,
      'client-data': published.get(b1),
      'session-token-expires-seconds': expect.any(Number),
      'session-token-refresh-seconds': expect.any(Number),
    });
    expect(found.get(ALICE)!.map((i) => toHex(i['push-token'] as Uint8Array)).sort()).toEqual([a1, a2].map((d) => toHex(d.token!)).sort());
    for (const i of [...bobs, ...found.get(ALICE)!]) sessionTokens.set(toHex(i['push-token'] as Uint8Array), i['session-token'] as Uint8Array);
    // Bob's device (packed framing) looks Alice up too.
    const fromBob = await b1.identities(bob, BOB, [ALICE]);
    expect(fromBob.get(ALICE)!.map((i) => i['client-data'])).toEqual(expect.arrayContaining([published.get(a1), published.get(a2)]));
  });

  it('fans a message out: each device gets its own rewritten copy, Alice a c:255 per entry, Bob a receipt path back', async () => {
    const U = uuid();
    const forBob = crypto.getRandomValues(new Uint8Array(200));
    const forA2 = crypto.getRandomValues(new Uint8Array(180));
    payloads.push(forBob, forA2);
    a1.send({
      c: 100,
      fcn: 1,
      v: 8,
      i: 77,
      U,
      sP: ALICE,
      E: 'pair',
      ua: UA,
      dtl: [
        { tP: BOB, t: b1.token!, sT: sessionTokens.get(toHex(b1.token!))!, D: true, P: forBob },
        { tP: ALICE, t: a2.token!, sT: sessionTokens.get(toHex(a2.token!))!, D: false, P: forA2, E: 'pair-ec' },
      ],
    });
    const acks = await a1.serverAcks(U, 2);
    for (const a of acks) expect(Object.keys(a).sort()).toEqual(['U', 'c', 's', 't']);
    expect(new Map(acks.map((a) => [toHex(a['t'] as Uint8Array), a['s']]))).toEqual(new Map([[toHex(b1.token!), 0], [toHex(a2.token!), 0]]));

    // imessage.md §1.6: envelope keys minus dtl/fcn/sT, the entry's tP/P/E/D, t = the sender's token, e = server time.
    const KEYS = ['D', 'E', 'P', 'U', 'c', 'e', 'i', 'sP', 't', 'tP', 'ua', 'v'];
    const e = BigInt(clock.now()) * 1_000_000n;
    const atBob = (await b1.next(isMessage(U))).dict;
    expect(Object.keys(atBob).sort()).toEqual(KEYS);
    expect(atBob).toEqual({ c: 100, v: 8, i: 77, U, sP: ALICE, ua: UA, tP: BOB, t: a1.token, P: forBob, E: 'pair', D: true, e });
    const atA2 = (await a2.next(isMessage(U))).dict;
    expect(Object.keys(atA2).sort()).toEqual(KEYS);
    expect(atA2).toEqual({ c: 100, v: 8, i: 77, U, sP: ALICE, ua: UA, tP: ALICE, t: a1.token, P: forA2, E: 'pair-ec', D: false, e });
    expect(await a1.none(isMessage(U))).toBe(true);

    // Bob's device acked its copy (next() acks): once the courier has handled the ack, nothing is left for it.
    await b1.requireLink().roundTrip();
    expect(protocol.courier().pendingCount(b1.token!)).toBe(0);

    // The delivery receipt goes back to the device that sent the message, with a session token from Bob's lookup.
    const aliceFromBob = (await b1.identities(bob, BOB, [ALICE])).get(ALICE)!;
    const toA1 = aliceFromBob.find((i) => sameBytes(i['push-token'], a1.token!))!;
    b1.send({ c: 101, fcn: 1, v: 8, i: 78, ua: UA, U, sP: BOB, nr: true, dtl: [{ tP: ALICE, t: a1.token!, sT: toA1['session-token']!, D: false }] });
    const receipt = (await a1.next(isMessage(U, 101))).dict;
    expect(receipt).toMatchObject({ c: 101, U, sP: BOB, tP: ALICE, t: b1.token, nr: true });
    expect(await b1.none((r) => r.dict['c'] === 255 && sameBytes(r.dict['U'], U))).toBe(true); // nr: no server ack
  });

  it('answers bad requests with the statuses clients act on', async () => {
    // register whose body changed after signing: the push signature fails (5032) and nothing is registered.
    const before = await a1.identities(aliceOnA1, ALICE, [ALICE]);
    const again = () => [{ user: aliceOnA1, uris: [ALICE], clientData: clientData() }];
    const tampered = await registerDevice(sb, a1, again(), validation, {
      tamper: (raw) => utf8(fromUtf8(raw).replace('<string>en-US</string>', '<string>en-GB</string>')),
    });
    expect([tampered.status, tampered.plist['status']]).toEqual([200, 5032]);
    // Validation data minted 16 minutes ago has expired (the relay's lifetime is 15): 6004, get fresh data.
    const now = clock.now();
    clock.set(now - 16 * 60_000);
    const stale = await fetchValidationData(sb, relayCode);
    clock.set(now);
    expect((await registerDevice(sb, a1, again(), stale)).plist).toEqual({ status: 6004 });
    const forged = { ...validation, data: crypto.getRandomValues(new Uint8Array(80)) };
    expect((await registerDevice(sb, a1, again(), forged)).plist).toEqual({ status: 6004 });
    const clientDataOf = (m: Map<string, PlistDict[]>) => m.get(ALICE)!.map((i) => i['client-data']);
    expect(clientDataOf(await a1.identities(aliceOnA1, ALICE, [ALICE]))).toEqual(clientDataOf(before));

    // Unknown handles are not an error: they have no identities.
    const unknown = await a1.identities(aliceOnA1, ALICE, ['mailto:nobody@example.com', 'tel:+15555550999']);
    expect([...unknown.values()]).toEqual([[], []]);

    // A session token minted for another device, and a sender that does not own sP.
    const U = uuid();
    const a2sToken = sessionTokens.get(toHex(a2.token!))!;
    a1.send({ c: 100, v: 8, U, sP: ALICE, dtl: [{ tP: BOB, t: b1.token!, sT: a2sToken, D: true, P: new Uint8Array(8) }] });
    expect((await a1.serverAcks(U, 1))[0]).toEqual({ c: 255, U, t: b1.token, s: 5032 });
    const V = uuid();
    b1.send({ c: 100, v: 8, U: V, sP: ALICE, dtl: [{ tP: ALICE, t: a1.token!, sT: new Uint8Array(40), P: new Uint8Array(8) }] });
    expect((await b1.serverAcks(V, 1))[0]).toEqual({ c: 255, U: V, s: 1006 });
    expect(await a1.none(isMessage(U))).toBe(true);
    expect(await b1.none(isMessage(U))).toBe(true);
  });

  it('is refused by a client that does not trust the sandbox CA or asked for another name', async () => {
    // ca: null = Node's own root store, which does not hold the sandbox root.
    const untrusted = { code: expect.stringMatching(/UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/) };
    await expect(dialApple(sb, '1-courier.push.apple.com:5223', { servername: COURIER_SNI, ca: null })).rejects.toMatchObject(untrusted);
    await expect(dialApple(sb, 'identity.ess.apple.com:443', { servername: 'identity.ess.apple.com', ca: null })).rejects.toMatchObject(untrusted);
    // The sandbox answers an unknown SNI with its default (courier) certificate, which does not name that host.
    const misnamed = dialApple(sb, 'identity.ess.apple.com:443', { servername: 'www.example.com' });
    await expect(misnamed).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    // Each Apple name gets a certificate for itself from the same listener.
    for (const name of ['identity.ess.apple.com', 'albert.apple.com', 'api.push.apple.com']) {
      const s = await dialApple(sb, `${name}:443`, { servername: name });
      expect(s.authorized).toBe(true);
      s.destroy();
    }
  });

  it('closes a connection that sends garbage, an oversized length or a malformed frame, and keeps serving the rest', async () => {
    // [what, bytes, ALPN offered, the reason the courier logs when it hangs up]
    const LEGACY = [LEGACY_ALPN];
    const hostile: Array<[string, Uint8Array, string[], string]> = [
      ['an HTTP request on the courier port', utf8('GET / HTTP/1.1\r\nHost: courier.push.apple.com\r\n\r\n'), LEGACY, 'bad-input:frame-too-large'],
      ['a frame declaring 2 GiB', Uint8Array.of(0x07, 0x7f, 0xff, 0xff, 0xff), LEGACY, 'bad-input:frame-too-large'],
      ['an item longer than its frame', Uint8Array.of(0x07, 0, 0, 0, 4, 0x02, 0x00, 0x05, 0x01), LEGACY, 'bad-input:item-overflow'],
      ['a filter before any connect', Uint8Array.of(0x09, 0, 0, 0, 23, 0x02, 0x00, 0x14, ...topicHash(MADRID)), LEGACY, 'frame-before-connect'],
      ['a packed frame with a runaway length', Uint8Array.of(0x07, ...new Uint8Array(8).fill(0xff), 0x7f), PACKED, 'bad-input:frame-too-large'],
    ];
    for (const [what, bytes, alpn, reason] of hostile) {
      const mark = log.lines.length;
      const link = await CourierLink.open(sb, { alpn });
      link.sendRaw(bytes);
      expect(await link.waitClosed(2000), what).toBe(true);
      expect(link.received, what).toEqual([]);
      const closes = log.lines.slice(mark).filter((l) => l.event === 'courier.close');
      expect(closes.map((l) => l.fields['reason']), what).toEqual([reason]);
    }
    // A Connect signed with the wrong key: status 2, then the courier hangs up.
    const impostor = await CourierLink.open(sb);
    const nonce = courierNonce(clock.now());
    const signature = Uint8Array.of(1, 1, ...new Uint8Array(128));
    impostor.send('connect', { state: 1, presenceFlags: 0x41, certificates: [a1.pushCert], nonce, signature });
    expect(parseConnectResponse(await impostor.next(0x08)).status).toBe(2);
    expect(await impostor.waitClosed()).toBe(true);

    // A payload that is not a plist is acked (status 0) and dropped; the connection stays up.
    expect(await a1.courierAck(a1.upstream(MADRID, utf8('definitely not a plist')))).toBe(0);

    // HTTP: a register body that is not a plist, one that claims gzip and is not, and a gzip bomb (8 KiB that would
    // inflate to 8 MiB): 400 with an IDS status inside.
    const plist = { 'content-type': 'application/x-apple-plist' };
    const gzipped = { ...plist, 'content-encoding': 'gzip' };
    const notPlist = await appleHttps(sb, URLS.register, { headers: plist, body: '<plist><dict><key>oops' });
    expect([notPlist.status, notPlist.plist['status']]).toEqual([400, 5003]);
    const badGzip = await appleHttps(sb, URLS.register, { headers: gzipped, body: 'not gzip' });
    expect([badGzip.status, badGzip.plist['status']]).toEqual([400, 5003]);
    const bomb = await appleHttps(sb, URLS.register, { headers: gzipped, body: await gzip(new Uint8Array(8 * 1024 * 1024)) });
    expect([bomb.status, bomb.plist['status']]).toEqual([400, 5003]);

    // Everyone else carries on: signed reads, lookups, and messages over both framings.
    expect((await getHandles(sb, a1, aliceOnA1)).plist['status']).toBe(0);
    await a1.requireLink().roundTrip();
    const sT = (await a1.identities(aliceOnA1, ALICE, [BOB])).get(BOB)![0]!['session-token'] as Uint8Array;
    const U = uuid();
    a1.send({ c: 100, v: 8, U, sP: ALICE, dtl: [{ tP: BOB, t: b1.token!, sT, D: true, P: new Uint8Array([1, 2, 3]) }] });
    expect((await b1.next(isMessage(U))).dict['P']).toEqual(new Uint8Array([1, 2, 3]));
    expect((await a1.serverAcks(U, 1))[0]!['s']).toBe(0);
  });

  it('delivers provider pushes from api.push.apple.com and answers the provider API’s errors', async () => {
    const payload = encodeBinaryPlist({ c: 34, note: 'provider' });
    const ok = await providerPush(sb, b1.token!, MADRID, payload);
    expect(ok.status).toBe(200);
    expect(ok.headers['apns-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect((await b1.next((r) => r.dict['note'] === 'provider')).dict).toEqual({ c: 34, note: 'provider' });

    const unknown = await providerPush(sb, crypto.getRandomValues(new Uint8Array(32)), MADRID, payload);
    expect([unknown.status, JSON.parse(unknown.text)]).toEqual([400, { reason: 'BadDeviceToken' }]);
    const tooBig = await providerPush(sb, b1.token!, MADRID, new Uint8Array(5000));
    expect([tooBig.status, JSON.parse(tooBig.text)]).toEqual([413, { reason: 'PayloadTooLarge' }]);
    const get = await appleHttps(sb, URLS.provider + toHex(b1.token!), { method: 'GET' });
    expect([get.status, JSON.parse(get.text)]).toEqual([405, { reason: 'MethodNotAllowed' }]);
    const noTopic = await appleHttps(sb, URLS.provider + toHex(b1.token!), { body: payload });
    expect([noTopic.status, JSON.parse(noTopic.text)]).toEqual([400, { reason: 'MissingTopic' }]);
    const badPath = await appleHttps(sb, `${URLS.provider}${toHex(b1.token!)}/extra`, { headers: { 'apns-topic': MADRID }, body: payload });
    expect([badPath.status, JSON.parse(badPath.text)]).toEqual([404, { reason: 'BadPath' }]);
    expect(sb.hostMap.hosts['api.sandbox.push.apple.com:443']).toBe(sb.hostMap.hosts['api.push.apple.com:443']);
  });

  it('logged no internal failure and no payload along the way', () => {
    expect(log.lines.filter((l) => l.level === 'error')).toEqual([]);
    const text = JSON.stringify(log.lines, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    for (const p of payloads) expect(text).not.toContain(toHex(p).slice(0, 32));
    expect(text).not.toContain(ALICE_PASSWORD);
  });
});
