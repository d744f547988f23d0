// lib/ids against the real sandbox, through the real bridge and lib/net's TLS: the bag, Apple ID sign-in with a
// second factor, auth certificates for an Apple ID and a phone number, validation data from the relay, handles,
// register with real legacy + NGM keys, own devices, re-registration, and the failures a client must tell apart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { equalBytes } from '../../lib/codec/bytes';
import { generateLegacyIdentity } from '../../lib/crypto/identity-legacy';
import { generateNgmIdentity } from '../../lib/crypto/identity-ngm';
import { signInAppleId } from '../../lib/ids/apple-id';
import { authenticateDS, generateAuthKey, makeAuthCsr, type IdsCertificate } from '../../lib/ids/auth-cert';
import { fetchIdsBag, IdsBagCache } from '../../lib/ids/bag';
import { IdsError } from '../../lib/ids/errors';
import { getDependentRegistrations, getHandles } from '../../lib/ids/handles';
import { authenticatePhone, newRegRequestId, parseRegResp, regReqText } from '../../lib/ids/phone';
import { register, reregisterDueAt, type PublishedKeys, type RegisteredUser, type RegisterUserResult } from '../../lib/ids/register';
import { getValidationData, SANDBOX_RELAY_URL } from '../../lib/ids/validation-data';
import type { UserCredentials } from '../../lib/ids/signing';
import { startIdsWorld, type IdsWorld, type PushDevice } from './ids-client-helpers';

const APPLE_ID = 'alice@example.com';
const PASSWORD = 'correct horse';
const NUMBER = '+15555550100';

let world: IdsWorld;
let push: PushDevice;
let authKey: CryptoKeyPair;
let appleIdAuth: UserCredentials;
let phoneAuth: UserCredentials;
let keys: PublishedKeys;
let relayCode: string;

function ok(r: RegisterUserResult | undefined): RegisteredUser {
  if (!r || r.status !== 'ok') throw new Error(`register failed: ${r?.status === 'failed' ? `${r.error.code} ${r.error.status}` : 'no result'}`);
  return r;
}

async function idsError(p: Promise<unknown>): Promise<IdsError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(IdsError);
  return e as IdsError;
}

beforeAll(async () => {
  world = await startIdsWorld({
    accounts: [{ appleId: APPLE_ID, password: PASSWORD, twoFactor: true }],
    phones: [{ number: NUMBER }],
  });
  push = await world.pushCredentials();
  authKey = await generateAuthKey();
  const legacy = await generateLegacyIdentity();
  const ngm = await generateNgmIdentity();
  keys = { legacyIdentity: legacy.publicKey.blob, ngmDevicePrekey: ngm.publicDevicePrekey, ktLoggableData: ngm.ktLoggableData };
  relayCode = (await world.sandbox.relay.createCode({ name: 'Test Mac' })).code;
});

afterAll(async () => {
  await world?.close();
});

describe('the IDS client against the sandbox', () => {
  it('fetches the bag through the tunnel and caches it', async () => {
    const bag = await fetchIdsBag(world.http);
    expect(bag.url('id-register')).toBe('https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/register');
    expect(bag.url('id-query')).toBe('https://query.ess.apple.com/WebObjects/QueryService.woa/wa/query');
    expect(bag.maxUrisPerQuery).toBe(35);
    const cache = new IdsBagCache(world.http, { now: () => world.clock.now() });
    const [a, b] = await Promise.all([cache.get(), cache.get()]);
    expect(a).toBe(b);
    expect(await cache.get()).toBe(a);
    world.clock.advance(3600_000);
    expect(await cache.get()).not.toBe(a);
    world.ctx.bag = a;
  });

  it('signs in with a password and a second-factor code, and refuses a wrong password', async () => {
    expect(await signInAppleId(world.ctx, { username: APPLE_ID, password: 'wrong' })).toEqual({ status: 'bad-credentials' });
    expect(await signInAppleId(world.ctx, { username: APPLE_ID, password: PASSWORD })).toEqual({ status: 'second-factor-required' });
    const code = world.sandbox.accounts.latestTwoFactorCode(APPLE_ID)!.code;
    const wrongCode = code === '000000' ? '111111' : '000000';
    expect(await signInAppleId(world.ctx, { username: APPLE_ID, password: PASSWORD, code: wrongCode })).toEqual({ status: 'bad-credentials' });
    const signedIn = await signInAppleId(world.ctx, { username: APPLE_ID, password: PASSWORD, code });
    expect(signedIn.status).toBe('ok');
    if (signedIn.status !== 'ok') return;
    expect(signedIn.profileId).toBe(world.sandbox.accounts.getAccount(APPLE_ID)!.profileId);

    const csr = await makeAuthCsr(authKey, signedIn.profileId);
    const cert = await authenticateDS(world.ctx, { authToken: signedIn.authToken, profileId: signedIn.profileId, csr });
    expect(cert.userId).toBe(signedIn.profileId);
    expect(cert.notAfter).toBeGreaterThan(world.clock.now());
    expect(new X509Certificate(cert.der as Uint8Array<ArrayBuffer>).notAfter.getTime()).toBe(cert.notAfter);
    appleIdAuth = { userId: cert.userId, certDer: cert.der, privateKey: authKey.privateKey };

    // A made-up token is a dead credential (6005).
    const bad = await idsError(authenticateDS(world.ctx, { authToken: 'bogus', profileId: signedIn.profileId, csr }));
    expect(bad.code).toBe('auth-expired');
    expect(bad.status).toBe(6005);
  });

  it('authenticates a phone number with the gateway REG-RESP', async () => {
    const r = newRegRequestId();
    const sms = await world.sandbox.gateway.receive(NUMBER, regReqText(push.token, r));
    expect(sms.reply).toBeTruthy();
    const regResp = parseRegResp(sms.reply!, r);
    expect(regResp.userId).toBe(`P:${NUMBER}`);
    const cert: IdsCertificate = await authenticatePhone(world.ctx, { pushToken: push.token, regResp, csr: await makeAuthCsr(authKey, regResp.userId) });
    expect(cert.userId).toBe(`P:${NUMBER}`);
    phoneAuth = { userId: cert.userId, certDer: cert.der, privateKey: authKey.privateKey };

    // The gateway bound the signature to this push token: another token's request is refused (5032).
    const other = await world.pushCredentials();
    const e = await idsError(authenticatePhone(world.ctx, { pushToken: other.token, regResp, csr: await makeAuthCsr(authKey, regResp.userId) }));
    expect(e.status).toBe(5032);
  });

  it('gets validation data from the relay and tells an unknown code apart', async () => {
    const v = await getValidationData(world.http, { relayUrl: SANDBOX_RELAY_URL, code: relayCode });
    expect(v.data.length).toBeGreaterThan(32);
    expect(v.validUntil).toBeGreaterThan(world.clock.now());
    expect(v.versions).toMatchObject({ hardwareVersion: 'Macmini9,1', softwareName: 'macOS', softwareVersion: '13.5', softwareBuildId: '22G74' });
    expect(v.name).toBe('Test Mac');
    const e = await idsError(getValidationData(world.http, { relayUrl: SANDBOX_RELAY_URL, code: 'NOPE-NOPE-NOPE-NOPE' }));
    expect(e.code).toBe('relay-unknown-code');
  });

  it('lists the handles of each user', async () => {
    expect(await getHandles(world.ctx, { push, user: appleIdAuth })).toEqual([`mailto:${APPLE_ID}`]);
    expect(await getHandles(world.ctx, { push, user: phoneAuth })).toEqual([`tel:${NUMBER}`]);
  });

  it('registers an Apple ID and a phone number with published keys, then lists the device', async () => {
    const { data } = await getValidationData(world.http, { relayUrl: SANDBOX_RELAY_URL, code: relayCode });
    const now = world.clock.now();
    const results = await register(world.ctx, {
      push,
      validationData: data,
      users: [
        { auth: appleIdAuth, uris: [`mailto:${APPLE_ID}`], keys },
        { auth: phoneAuth, uris: [`tel:${NUMBER}`], keys },
      ],
    });
    const apple = ok(results[0]);
    const phone = ok(results[1]);
    expect(apple.granted).toEqual([`mailto:${APPLE_ID}`]);
    expect(phone.granted).toEqual([`tel:${NUMBER}`]);
    // Sandbox defaults: 30 days for an Apple ID, 30 minutes for a phone's first registration.
    expect(apple.idCert.notAfter - now).toBeGreaterThan(29 * 86_400_000);
    expect(phone.idCert.notAfter - now).toBeLessThanOrEqual(30 * 60_000 + 5_000);
    expect(reregisterDueAt(phone.idCert.notAfter, now)).toBe(phone.idCert.notAfter - 3 * 60_000);

    // What the sandbox stored is byte-exact what we published.
    const stored = world.services.registrations().forToken('com.apple.madrid', push.token);
    const mine = stored.find((r) => r.userId === appleIdAuth.userId)!;
    expect(equalBytes(mine.clientData!['public-message-identity-key'] as Uint8Array, keys.legacyIdentity)).toBe(true);
    expect(equalBytes(mine.ktLoggableData!, keys.ktLoggableData)).toBe(true);
    expect(mine.clientData!['public-message-identity-ngm-version']).toBe(13);

    // Registering together linked the phone to the Apple ID, so its handle list grows.
    expect(await getHandles(world.ctx, { push, user: appleIdAuth })).toEqual([`mailto:${APPLE_ID}`, `tel:${NUMBER}`]);

    const own = await getDependentRegistrations(world.ctx, { push, user: appleIdAuth });
    expect(own.expiresAt).toBeGreaterThan(now);
    expect(own.devices).toHaveLength(1);
    const device = own.devices[0]!;
    expect(device.deviceName).toBe('cerulean-test');
    expect(equalBytes(device.pushToken, push.token)).toBe(true);
    expect(device.identities).toEqual([`mailto:${APPLE_ID}`]);
    expect(device.firstSeen).toBe(world.device.setupAt);
  });

  it('re-registers with fresh validation data and gets a longer phone certificate', async () => {
    const { data } = await getValidationData(world.http, { relayUrl: SANDBOX_RELAY_URL, code: relayCode });
    const now = world.clock.now();
    const results = await register(world.ctx, {
      push,
      validationData: data,
      users: [
        { auth: appleIdAuth, uris: [`mailto:${APPLE_ID}`, `tel:${NUMBER}`, 'mailto:someone-else@example.com'], keys },
        { auth: phoneAuth, uris: [`tel:${NUMBER}`], keys },
      ],
    });
    const apple = ok(results[0]);
    expect(apple.granted).toEqual([`mailto:${APPLE_ID}`, `tel:${NUMBER}`]);
    expect(apple.rejected).toEqual([{ uri: 'mailto:someone-else@example.com', status: 5052 }]);
    expect(ok(results[1]).idCert.notAfter - now).toBeGreaterThan(29 * 86_400_000);
  });

  it('reports expired validation data as ValidationDataExpired', async () => {
    const { data, validUntil } = await getValidationData(world.http, { relayUrl: SANDBOX_RELAY_URL, code: relayCode });
    world.clock.set(validUntil! + 1000);
    const e = await idsError(register(world.ctx, { push, validationData: data, users: [{ auth: appleIdAuth, uris: [`mailto:${APPLE_ID}`], keys }] }));
    expect(e.code).toBe('validation-data-expired');
    expect(e.status).toBe(6004);
  });

  it('reports a refused user with its alert, and keeps the other user', async () => {
    world.services.faults.inject({ status: 6009, userId: phoneAuth.userId, times: 1 });
    const { data } = await getValidationData(world.http, { relayUrl: SANDBOX_RELAY_URL, code: relayCode });
    const results = await register(world.ctx, {
      push,
      validationData: data,
      users: [
        { auth: appleIdAuth, uris: [`mailto:${APPLE_ID}`], keys },
        { auth: phoneAuth, uris: [`tel:${NUMBER}`], keys },
      ],
    });
    ok(results[0]);
    const failed = results[1]!;
    expect(failed.status).toBe('failed');
    if (failed.status !== 'failed') return;
    expect(failed.error.code).toBe('registration-refused');
    expect(failed.error.status).toBe(6009);
    expect(typeof failed.error.alert?.['title']).toBe('string');
  });

  it('reports a dead auth certificate as AuthExpired', async () => {
    world.clock.advance(31 * 86_400_000);
    const e = await idsError(getHandles(world.ctx, { push, user: appleIdAuth }));
    expect(e.code).toBe('auth-expired');
    expect(e.status).toBe(6005);
  });
});

describe('the tunnel transport', () => {
  it('kept one connection per host alive across the whole flow', () => {
    // init, profile, identity and the relay: four hosts for some twenty requests. (A very slow run could see the
    // sandbox's 5 s keep-alive timeout end one, hence the slack.)
    expect(world.bridge.metrics.snapshot().tunnelsOpened).toBeGreaterThanOrEqual(4);
    expect(world.bridge.metrics.snapshot().tunnelsOpened).toBeLessThanOrEqual(6);
  });
});
