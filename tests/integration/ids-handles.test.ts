// idsGetHandles over real HTTPS with every failure of the §3 signature check: the push and auth header families,
// nonces (malformed 5086, stale 5087), certificates (5085 foreign or wrong kind, 6005 expired), signatures (5032),
// missing headers (5009), and the token↔certificate binding hook.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { equalBytes, toBase64 } from '../../lib/codec/bytes';
import {
  authHeaders,
  list,
  makeDevice,
  makeUser,
  pushHeaders,
  signedGet,
  startIdsHarness,
  URLS,
  type IdsHarness,
  type TestDevice,
  type TestUser,
} from './ids-helpers';

const PHONE = '+15555550142';

describe('idsGetHandles', () => {
  let h: IdsHarness;
  let device: TestDevice;
  let alice: TestUser;
  let phone: TestUser;
  let aliceProfile: string;
  const get = (d: TestDevice, u: TestUser, tweak?: (headers: Record<string, string>) => void) => signedGet(h, URLS.getHandles, 'id-get-handles', d, u, tweak);

  beforeAll(async () => {
    h = await startIdsHarness();
    aliceProfile = (await h.accounts.createAccount({ appleId: 'alice@example.com', password: 'pw', handles: ['mailto:alice@icloud.example'] })).profileId;
    device = await makeDevice(h);
    alice = await makeUser(h, aliceProfile);
    // [BG] shares one auth key between its users; nothing may depend on keys being distinct.
    phone = await makeUser(h, `P:${PHONE}`, alice.keys);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("returns an Apple ID's handles and a phone user's number", async () => {
    const r = await get(device, alice);
    expect(r.status).toBe(200);
    expect(r.plist).toEqual({ status: 0, handles: [{ uri: 'mailto:alice@example.com' }, { uri: 'mailto:alice@icloud.example' }] });
    expect((await get(device, phone)).plist).toEqual({ status: 0, handles: [{ uri: `tel:${PHONE}` }] });
  });

  it('accepts header names in any case', async () => {
    const r = await get(device, alice, (hd) => {
      for (const k of Object.keys(hd)) {
        const v = hd[k]!;
        delete hd[k];
        hd[k.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())] = v;
      }
    });
    expect(r.plist.status).toBe(0);
  });

  it('answers 5032 to a signature over other bytes or by another key, in either family', async () => {
    const other = await makeDevice(h);
    const flipped = (sig: string) => {
      const b = Buffer.from(sig, 'base64');
      b[b.length - 1]! ^= 1;
      return b.toString('base64');
    };
    expect((await get(device, alice, (hd) => (hd['x-push-sig'] = flipped(hd['x-push-sig']!)))).plist.status).toBe(5032);
    expect((await get(device, alice, (hd) => (hd['x-auth-sig'] = flipped(hd['x-auth-sig']!)))).plist.status).toBe(5032);
    // Signed for another bag key (register's), or with another device's push key under this device's cert.
    const wrongBag = await authHeaders(h, alice, device, 'id-register', new Uint8Array(0));
    expect((await get(device, alice, (hd) => Object.assign(hd, wrongBag))).plist.status).toBe(5032);
    const otherKey = await pushHeaders(h, { ...other, token: device.token, certDer: device.certDer }, 'id-get-handles', new Uint8Array(0));
    expect((await get(device, alice, (hd) => Object.assign(hd, otherKey))).plist.status).toBe(5032);
    // The signature lacks the 01 01 prefix.
    expect((await get(device, alice, (hd) => (hd['x-auth-sig'] = Buffer.from(hd['x-auth-sig']!, 'base64').subarray(2).toString('base64')))).plist.status).toBe(5032);
    // The token the push signature covered is not the one in the header.
    expect((await get(device, alice, (hd) => (hd['x-push-token'] = toBase64(other.token)))).plist.status).toBe(5032);
  });

  it('answers 5087 to a nonce more than 5 minutes off, 5086 to a malformed one', async () => {
    const empty = new Uint8Array(0);
    const stale = await pushHeaders(h, device, 'id-get-handles', empty, h.clock.now() - 6 * 60_000);
    expect((await get(device, alice, (hd) => Object.assign(hd, stale))).plist.status).toBe(5087);
    const future = await authHeaders(h, alice, device, 'id-get-handles', empty, '', h.clock.now() + 6 * 60_000);
    expect((await get(device, alice, (hd) => Object.assign(hd, future))).plist.status).toBe(5087);
    const nearlyStale = await authHeaders(h, alice, device, 'id-get-handles', empty, '', h.clock.now() - 4 * 60_000);
    expect((await get(device, alice, (hd) => Object.assign(hd, nearlyStale))).plist.status).toBe(0);
    for (const bad of [toBase64(new Uint8Array(16)), toBase64(new Uint8Array(17)) /* type byte 00 */, '!!!']) {
      expect((await get(device, alice, (hd) => (hd['x-auth-nonce'] = bad))).plist.status).toBe(5086);
    }
  });

  it('answers 5085 to a certificate the sandbox did not issue, of the wrong kind, or for another user', async () => {
    const pushAsAuth = (hd: Record<string, string>) => (hd['x-auth-cert'] = hd['x-push-cert']!);
    expect((await get(device, alice, pushAsAuth)).plist.status).toBe(5085);
    expect((await get(device, alice, (hd) => (hd['x-push-cert'] = toBase64(alice.authCert)))).plist.status).toBe(5085);
    expect((await get(device, alice, (hd) => (hd['x-auth-cert'] = 'AAAA'))).plist.status).toBe(5085);
    const idCert = await h.pki.issueIdsCertificate({ publicKey: alice.keys.publicKey, userId: aliceProfile, kind: 'id', notAfter: h.clock.now() + 3_600_000 });
    expect((await get(device, { ...alice, authCert: idCert.der })).plist.status).toBe(5085);
    expect((await get(device, alice, (hd) => (hd['x-auth-user-id'] = `P:${PHONE}`))).plist.status).toBe(5085);
  });

  it('answers 5009 to a missing header and 5006 to a push token that is not 32 bytes', async () => {
    for (const name of ['x-push-token', 'x-push-cert', 'x-push-nonce', 'x-push-sig', 'x-auth-user-id', 'x-auth-cert', 'x-auth-nonce', 'x-auth-sig']) {
      const r = await get(device, alice, (hd) => delete hd[name]);
      expect(r.status, name).toBe(200);
      expect(r.plist.status, name).toBe(5009);
      expect(r.plist.handles).toBeUndefined();
    }
    expect((await get(device, alice, (hd) => (hd['x-push-token'] = toBase64(new Uint8Array(31))))).plist.status).toBe(5006);
  });

  it('answers 6005 once the auth certificate has expired (and the push certificate is still good)', async () => {
    const shortLived = await makeUser(h, aliceProfile, alice.keys, 60 * 60_000);
    expect((await get(device, shortLived)).plist.status).toBe(0);
    h.clock.advance(2 * 60 * 60_000);
    const r = await get(device, shortLived);
    expect(r.plist).toEqual({ status: 6005 });
    expect((await get(device, alice)).plist.status).toBe(0);
  });

  it('answers 6005 for a user id that no account has', async () => {
    const ghost = await makeUser(h, 'D:999', alice.keys);
    expect((await get(device, ghost)).plist.status).toBe(6005);
  });

  it('lists a linked phone among the Apple ID handles', async () => {
    await h.accounts.linkPhone('alice@example.com', PHONE);
    const uris = list((await get(device, alice)).plist.handles).map((x) => (x as { uri: string }).uri);
    expect(uris).toContain(`tel:${PHONE}`);
  });
});

describe('push token binding', () => {
  let h: IdsHarness;
  const bound: Array<{ token: Uint8Array; spki: Uint8Array }> = [];

  beforeAll(async () => {
    h = await startIdsHarness({ isTokenBoundToCert: (token, spki) => bound.some((b) => equalBytes(b.token, token) && equalBytes(b.spki, spki)) });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('consults the courier hook: a token not bound to the push certificate is 5006', async () => {
    const profile = (await h.accounts.createAccount({ appleId: 'carol@example.com', password: 'pw' })).profileId;
    const device = await makeDevice(h);
    const user = await makeUser(h, profile);
    expect((await signedGet(h, URLS.getHandles, 'id-get-handles', device, user)).plist.status).toBe(5006);
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', device.keys.publicKey));
    bound.push({ token: device.token, spki });
    expect((await signedGet(h, URLS.getHandles, 'id-get-handles', device, user)).plist.status).toBe(0);
  });
});
