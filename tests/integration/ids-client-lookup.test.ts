// lib/ids lookups against the sandbox's query service. The courier client of lib/apns is not used here: a raw-frame
// courier connection (the one that minted the device's token) plays `send` / `awaitReply`, which is exactly the
// seam lookup() is designed around.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { parseNotification } from '../../lib/codec/apns-commands';
import { equalBytes } from '../../lib/codec/bytes';
import { generateLegacyIdentity } from '../../lib/crypto/identity-legacy';
import { generateNgmIdentity, parseNgmPublicIdentity } from '../../lib/crypto/identity-ngm';
import { signInAppleId } from '../../lib/ids/apple-id';
import { authenticateDS, generateAuthKey, makeAuthCsr } from '../../lib/ids/auth-cert';
import { IdsError } from '../../lib/ids/errors';
import { buildQuery, lookup, LookupCache, parseQueryResponse, replyCorrelationId, type LookupTransport } from '../../lib/ids/query';
import { register, type PublishedKeys, type RegisteredUser } from '../../lib/ids/register';
import { getValidationData, SANDBOX_RELAY_URL } from '../../lib/ids/validation-data';
import { startIdsWorld, type IdsWorld, type PushDevice } from './ids-client-helpers';

const MADRID = 'com.apple.madrid';
const SMS = 'com.apple.private.alloy.sms';
const IDS = 'com.apple.private.ids';
const sha1 = (s: string) => new Uint8Array(createHash('sha1').update(s).digest());

interface Person {
  handle: string;
  push: PushDevice;
  authKey: CryptoKeyPair;
  keys: PublishedKeys;
  registered: RegisteredUser;
}

let world: IdsWorld;
let alice: Person;
let bob: Person;
let nextMessageId = 1;

/** send / awaitReply over a raw courier connection; every notification is acked, replies are matched on U. */
function courierTransport(p: Person, sent: string[] = []): LookupTransport {
  return {
    async send(topic, payload) {
      sent.push(topic);
      p.push.courier.send('upstreamNotification', { messageId: nextMessageId++, topicHash: sha1(topic), senderToken: p.push.token, payload });
    },
    async awaitReply(U, signal) {
      while (!signal.aborted) {
        const n = parseNotification(await p.push.courier.next(0x0a, 10_000));
        p.push.courier.send('ack', { token: p.push.token, messageId: n.messageId, status: 0 });
        const u = replyCorrelationId(n.payload);
        if (u && equalBytes(u, U)) return n.payload;
      }
      throw new Error('aborted');
    },
  };
}

async function person(appleId: string): Promise<Person> {
  const push = await world.pushCredentials();
  push.courier.send('filter', { token: push.token, enabled: [sha1(MADRID), sha1(SMS), sha1(IDS)] });
  const signedIn = await signInAppleId(world.ctx, { username: appleId, password: 'pw' });
  if (signedIn.status !== 'ok') throw new Error('sign-in failed');
  const authKey = await generateAuthKey();
  const cert = await authenticateDS(world.ctx, { ...signedIn, csr: await makeAuthCsr(authKey, signedIn.profileId) });
  const [legacy, ngm] = await Promise.all([generateLegacyIdentity(), generateNgmIdentity()]);
  const keys = { legacyIdentity: legacy.publicKey.blob, ngmDevicePrekey: ngm.publicDevicePrekey, ktLoggableData: ngm.ktLoggableData };
  const code = (await world.sandbox.relay.createCode()).code;
  const { data } = await getValidationData(world.http, { relayUrl: SANDBOX_RELAY_URL, code });
  const [result] = await register(world.ctx, {
    push,
    validationData: data,
    users: [{ auth: { userId: cert.userId, certDer: cert.der, privateKey: authKey.privateKey }, uris: [`mailto:${appleId}`], keys }],
  });
  if (result?.status !== 'ok') throw new Error('register failed');
  return { handle: `mailto:${appleId}`, push, authKey, keys, registered: result };
}

function queryOptions(p: Person) {
  return {
    selfUri: p.handle,
    idCert: p.registered.idCert.der,
    authPrivateKey: p.authKey.privateKey,
    pushToken: p.push.token,
    signing: { now: () => world.clock.now() },
  };
}

beforeAll(async () => {
  world = await startIdsWorld({
    accounts: [
      { appleId: 'alice@example.com', password: 'pw' },
      { appleId: 'bob@example.com', password: 'pw' },
    ],
  });
  alice = await person('alice@example.com');
  bob = await person('bob@example.com');
});

afterAll(async () => {
  await world?.close();
});

describe('lookups over the courier', () => {
  it('finds a registered handle with its published keys, and none for an unknown one', async () => {
    const sent: string[] = [];
    // The cache gets its own view of time: moving the sandbox's clock a day ahead would make the courier drop every
    // connection as idle at its next sweep, and the tests after this one share those connections.
    let cacheSkewMs = 0;
    const cache = new LookupCache({ now: () => world.clock.now() + cacheSkewMs });
    const unknown = 'mailto:nobody@example.com';
    const results = await lookup([alice.handle, unknown], { ...queryOptions(bob), ...courierTransport(bob, sent), cache });
    expect(sent).toEqual([MADRID]);
    expect(results.get(unknown)?.identities).toEqual([]);
    const identities = results.get(alice.handle)!.identities;
    expect(identities).toHaveLength(1);
    const id = identities[0]!;
    expect(equalBytes(id.pushToken, alice.push.token)).toBe(true);
    expect(equalBytes(id.publicMessageIdentityKey, alice.keys.legacyIdentity)).toBe(true);
    expect(equalBytes(id.ktLoggableData!, alice.keys.ktLoggableData)).toBe(true);
    expect(id.sessionToken.length).toBeGreaterThan(0);
    expect(id.sessionTokenRefreshSeconds).toBeGreaterThan(0);
    expect(id.sessionTokenExpiresSeconds).toBeGreaterThanOrEqual(id.sessionTokenRefreshSeconds);
    // The published NGM keys come back usable (prekey signature checks out).
    const ngm = await parseNgmPublicIdentity({
      publicDevicePrekey: id.clientData['public-message-ngm-device-prekey-data-key'] as Uint8Array,
      ktLoggableData: id.ktLoggableData!,
    });
    expect(ngm.prekeyCompact.length).toBe(32);

    // Served from the cache the second time; a mailto: in other case is the same handle.
    const again = await lookup([alice.handle.toUpperCase().replace('MAILTO:', 'mailto:')], { ...queryOptions(bob), ...courierTransport(bob, sent), cache });
    expect(sent).toEqual([MADRID]);
    expect([...again.values()][0]!.identities).toHaveLength(1);

    // Past the soft TTL it asks again.
    cacheSkewMs = id.sessionTokenRefreshSeconds * 1000 + 1;
    await lookup([alice.handle], { ...queryOptions(bob), ...courierTransport(bob, sent), cache });
    expect(sent).toEqual([MADRID, MADRID]);
  });

  it('looks up on a sub-service topic', async () => {
    const sent: string[] = [];
    const results = await lookup([alice.handle], { ...queryOptions(bob), ...courierTransport(bob, sent), subService: SMS });
    expect(sent).toEqual([SMS]);
    expect(results.get(alice.handle)!.identities).toHaveLength(1);
  });

  it('gets 6005 for a self handle the certificate does not own', async () => {
    const e = await lookup([alice.handle], { ...queryOptions(bob), ...courierTransport(bob), selfUri: alice.handle }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(IdsError);
    expect((e as IdsError).code).toBe('auth-expired');
  });

  it('builds requests the sandbox accepts byte for byte (a hand-driven round trip)', async () => {
    const transport = courierTransport(bob);
    const req = await buildQuery({ ...queryOptions(bob), uris: [alice.handle] });
    const abort = new AbortController();
    const reply = transport.awaitReply(req.U, abort.signal);
    await transport.send(req.topic, req.payload);
    const response = await parseQueryResponse(await reply, req.U);
    expect([...response.results.keys()]).toEqual([alice.handle]);
    expect(response.results.get(alice.handle)!.senderCorrelationIdentifier).toMatch(/^[0-9A-F-]{36}$/);
  });
});
