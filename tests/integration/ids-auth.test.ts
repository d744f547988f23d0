// IDS authentication over real HTTPS: Apple ID sign-in (5012, 5000 + a code the account records, success),
// authenticateDS (token ↔ user, CSR self-signature), authenticatePhoneNumber (the gateway's REG-RESP signature),
// and transport-level garbage that must get real statuses while the server keeps serving.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { equalBytes, exact, fromHex, utf8 } from '../../lib/codec/bytes';
import { gzip } from '../../lib/codec/gzip';
import { encodeBinaryPlist, encodeXmlPlist, type PlistDict } from '../../lib/codec/plist';
import { GATEWAY_ADDRESS } from '../../sandbox/sms-gateway';
import { idsCsr, PLIST_HEADERS, rsaKeys, startIdsHarness, URLS, type IdsHarness } from './ids-helpers';

const PHONE = '+15555550123';

describe('IDS authentication', () => {
  let h: IdsHarness;
  let keys: CryptoKeyPair;
  let profileId: string;

  beforeAll(async () => {
    h = await startIdsHarness({ authTokenTtlMs: 60 * 60_000 });
    keys = await rsaKeys(2048);
    profileId = (await h.accounts.createAccount({ appleId: 'alice@example.com', password: 'correct horse', twoFactor: true })).profileId;
    await h.accounts.createAccount({ appleId: 'bob@example.com', password: 'bobpw' });
    await h.accounts.addPhone({ number: PHONE });
  });
  afterAll(async () => {
    await h?.close();
  });

  const post = (url: string, body: PlistDict, headers: Record<string, string> = PLIST_HEADERS) =>
    h.request(url, { body: encodeXmlPlist(body), headers });

  async function signIn(username: string, password: string) {
    return post(URLS.authenticateUser, { username, password });
  }

  async function tokenFor(appleId: string, password: string): Promise<{ token: string; profileId: string }> {
    const r = await signIn(appleId, password);
    expect(r.plist.status).toBe(0);
    return { token: r.plist['auth-token'] as string, profileId: r.plist['profile-id'] as string };
  }

  describe('authenticateUser', () => {
    it('answers 5012 to an unknown account or a wrong password', async () => {
      for (const [u, p] of [
        ['nobody@example.com', 'x'],
        ['alice@example.com', 'wrong'],
      ]) {
        const r = await signIn(u!, p!);
        expect(r.status).toBe(200);
        expect(r.plist).toEqual({ status: 5012 });
      }
    });

    it('answers 5000 to the right password of a 2FA account and records a code; password+code signs in once', async () => {
      const first = await signIn('alice@example.com', 'correct horse');
      expect(first.plist).toEqual({ status: 5000 });
      const code = h.accounts.latestTwoFactorCode('alice@example.com');
      expect(code?.code).toMatch(/^\d{6}$/);
      const ok = await signIn('Alice@Example.com', `correct horse${code!.code}`);
      expect(ok.plist.status).toBe(0);
      expect(ok.plist['profile-id']).toBe(profileId);
      expect(typeof ok.plist['auth-token']).toBe('string');
      expect((ok.plist['auth-token'] as string).length).toBeGreaterThan(40);
      // A code is good once.
      expect((await signIn('alice@example.com', `correct horse${code!.code}`)).plist).toEqual({ status: 5012 });
    });

    it('signs an account without 2FA straight in, from a binary plist body too', async () => {
      const r = await h.request(URLS.authenticateUser, { body: encodeBinaryPlist({ username: 'bob@example.com', password: 'bobpw' }) });
      expect(r.plist.status).toBe(0);
      expect(r.plist['profile-id']).toMatch(/^D:\d+$/);
    });

    it('answers 5008 when a field is missing or has the wrong type', async () => {
      expect((await post(URLS.authenticateUser, { username: 'bob@example.com' })).plist.status).toBe(5008);
      expect((await post(URLS.authenticateUser, { username: 'bob@example.com', password: utf8('bobpw') })).plist.status).toBe(5008);
    });
  });

  describe('authenticateDS', () => {
    it('issues an auth certificate over the CSR key for the token’s user (SHA-256 and SHA-1 CSRs, gzip body)', async () => {
      const { token, profileId: bob } = await tokenFor('bob@example.com', 'bobpw');
      for (const [hash, zipped] of [
        ['SHA-256', false],
        ['SHA-1', true],
      ] as const) {
        const xml = encodeXmlPlist({ 'authentication-data': { 'auth-token': token }, csr: await idsCsr(keys, hash), 'realm-user-id': bob });
        const body = zipped ? await gzip(xml) : xml;
        const r = await h.request(URLS.authenticateDS, { body, headers: { ...PLIST_HEADERS, ...(zipped ? { 'content-encoding': 'gzip' } : {}) } });
        expect(r.plist.status).toBe(0);
        const der = r.plist.cert as Uint8Array;
        const check = await h.pki.verifyIdsCertificate(der);
        expect(check.ok && check.kind).toBe('auth');
        expect(check.ok && check.userId).toBe(bob);
        const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
        expect(check.ok && equalBytes(check.spki, spki)).toBe(true);
        // A real X.509 v3 certificate.
        expect(new x509.X509Certificate(exact(der)).subject).toContain(bob);
      }
    });

    it('answers 6005 to an unknown, foreign or expired auth-token', async () => {
      const csr = await idsCsr(keys);
      const { token, profileId: bob } = await tokenFor('bob@example.com', 'bobpw');
      const ask = (t: string, user: string) => post(URLS.authenticateDS, { 'authentication-data': { 'auth-token': t }, csr, 'realm-user-id': user });
      expect((await ask('not-a-token', bob)).plist.status).toBe(6005);
      expect((await ask(token, profileId)).plist.status).toBe(6005);
      h.clock.advance(61 * 60_000);
      expect((await ask(token, bob)).plist.status).toBe(6005);
    });

    it('rejects a CSR whose signature does not verify, or that is not a CSR, with 5085', async () => {
      const { token, profileId: bob } = await tokenFor('bob@example.com', 'bobpw');
      const good = await idsCsr(keys);
      const tampered = good.slice();
      tampered[tampered.length - 5]! ^= 0x01;
      for (const csr of [tampered, utf8('not a csr'), new Uint8Array([0x30, 0x82, 0xff, 0xff])]) {
        const r = await post(URLS.authenticateDS, { 'authentication-data': { 'auth-token': token }, csr, 'realm-user-id': bob });
        expect(r.status).toBe(200);
        expect(r.plist.status).toBe(5085);
        expect(r.plist.cert).toBeUndefined();
      }
    });

    it('answers 5008 when authentication-data, csr or realm-user-id is missing', async () => {
      const r = await post(URLS.authenticateDS, { csr: await idsCsr(keys), 'realm-user-id': 'D:1' });
      expect(r.plist.status).toBe(5008);
    });
  });

  describe('authenticatePhoneNumber', () => {
    async function regResp(token: Uint8Array): Promise<{ number: string; sig: Uint8Array }> {
      const hex = Array.from(token, (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
      const { reply } = await h.gateway.receive(PHONE, `REG-REQ?v=3;t=${hex};r=4242;`, GATEWAY_ADDRESS);
      const fields = new Map(reply!.slice('REG-RESP?'.length).split(';').map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)]));
      expect(fields.get('v')).toBe('3');
      expect(fields.get('r')).toBe('4242');
      return { number: fields.get('n')!, sig: fromHex(fields.get('s')!) };
    }

    const ask = async (token: Uint8Array, sig: Uint8Array, userId: string) =>
      post(URLS.authenticatePhoneNumber, { 'authentication-data': { 'push-token': token, sigs: [sig] }, csr: await idsCsr(keys, 'SHA-1'), 'realm-user-id': userId });

    it('issues a P:+… auth certificate for the gateway’s REG-RESP signature', async () => {
      const token = crypto.getRandomValues(new Uint8Array(32));
      const { number, sig } = await regResp(token);
      expect(number).toBe(PHONE);
      const r = await ask(token, sig, `P:${number}`);
      expect(r.plist.status).toBe(0);
      const check = await h.pki.verifyIdsCertificate(r.plist.cert as Uint8Array);
      expect(check.ok && check.userId).toBe(`P:${PHONE}`);
      expect(check.ok && check.kind).toBe('auth');
    });

    it('answers 5032 to a forged signature, another token’s, or another number’s', async () => {
      const token = crypto.getRandomValues(new Uint8Array(32));
      const { sig } = await regResp(token);
      const forged = sig.slice();
      forged[forged.length - 1]! ^= 0xff;
      expect((await ask(token, forged, `P:${PHONE}`)).plist.status).toBe(5032);
      expect((await ask(crypto.getRandomValues(new Uint8Array(32)), sig, `P:${PHONE}`)).plist.status).toBe(5032);
      expect((await ask(token, sig, 'P:+15555550199')).plist.status).toBe(5032);
      expect((await ask(token, crypto.getRandomValues(new Uint8Array(33)), `P:${PHONE}`)).plist.status).toBe(5032);
    });

    it('checks the push token length and the user id form', async () => {
      const token = crypto.getRandomValues(new Uint8Array(32));
      const { sig } = await regResp(token);
      expect((await ask(token.subarray(0, 31), sig, `P:${PHONE}`)).plist.status).toBe(5006);
      expect((await ask(token, sig, PHONE)).plist.status).toBe(5003);
      expect((await ask(token, sig, 'P:+1 555 555 0123')).plist.status).toBe(5003);
    });
  });

  describe('transport-level garbage', () => {
    it('gives real statuses for non-plists, wrong media types, bad gzip and wrong methods, and keeps serving', async () => {
      const cases: Array<[string, { method?: string; headers?: Record<string, string>; body?: Uint8Array }, number]> = [
        [URLS.authenticateUser, { body: utf8('<plist><dict><key>username</key>'), headers: PLIST_HEADERS }, 400],
        [URLS.authenticateUser, { body: utf8('{"username":"bob"}'), headers: { 'content-type': 'application/json' } }, 415],
        [URLS.authenticateUser, { body: encodeXmlPlist(['not', 'a', 'dict']), headers: PLIST_HEADERS }, 400],
        [URLS.authenticateDS, { body: utf8('not gzip at all'), headers: { ...PLIST_HEADERS, 'content-encoding': 'gzip' } }, 400],
        [URLS.authenticateDS, { body: new Uint8Array([0x1f, 0x8b, 0x08, 0, 0, 0]), headers: PLIST_HEADERS }, 400],
        [URLS.authenticateUser, { method: 'GET' }, 405],
        [URLS.authenticateUser, { body: new Uint8Array(0), headers: PLIST_HEADERS }, 400],
        [URLS.authenticateDS, { body: new Uint8Array(70 * 1024), headers: PLIST_HEADERS }, 413],
        [URLS.authenticatePhoneNumber, { body: crypto.getRandomValues(new Uint8Array(512)) }, 400],
      ];
      for (const [url, init, status] of cases) {
        const r = await h.request(url, init);
        expect(r.status, `${url} ${JSON.stringify(init.headers)}`).toBe(status);
        expect(r.plist.status).toBe(5003);
        expect(typeof r.plist.message).toBe('string');
      }
      // Unknown paths on the IDS hosts are plain 404s.
      expect((await h.request('https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/nothing')).status).toBe(404);
      // Still serving.
      expect((await signIn('bob@example.com', 'bobpw')).plist.status).toBe(0);
    });
  });
});
