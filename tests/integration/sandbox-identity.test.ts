// Test identities and the things that vouch for them: Apple ID sign-in with 2FA codes read from the admin API, the
// SMS gateway's REG-REQ → REG-RESP round trip and its signature check, the registration relay (401/404/200 and
// validation-data expiry), IDS certificates (issue, verify, expired vs bad), and the admin page's guards.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toHex } from '../../lib/codec/bytes';
import { FakeClock } from '../../sandbox/context';
import { RELAY_PATHS } from '../../sandbox/relay';
import type { Sandbox } from '../../sandbox/sandbox';
import { GATEWAY_ADDRESS, gatewaySignature, parseRegReq, verifyGatewaySignature } from '../../sandbox/sms-gateway';
import { adminRequest, appleRequest, makeCsr, startTestSandbox, tempDir } from './sandbox-helpers';

const RELAY = 'https://registration-relay.sandbox.cerulean.invalid';

describe('sandbox identities', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sb: Sandbox;
  const clock = new FakeClock(Date.UTC(2026, 5, 1));

  beforeAll(async () => {
    tmp = await tempDir();
    sb = await startTestSandbox(tmp.dir, { clock });
  });
  afterAll(async () => {
    await sb?.close();
    await tmp?.remove();
  });

  it('the admin API creates an account, and sign-in asks for and accepts a 2FA code', async () => {
    const created = await adminRequest(sb, 'api/accounts', { appleId: 'Alice@Example.com', password: 'correct horse', twoFactor: true });
    expect(created.status).toBe(201);
    const account = JSON.parse(created.text) as { appleId: string; profileId: string; handles: string[] };
    expect(account.appleId).toBe('alice@example.com');
    expect(account.profileId).toMatch(/^D:\d{10}$/);
    expect(account.handles).toEqual(['mailto:alice@example.com']);
    expect(created.text).not.toContain('correct horse');
    expect((await adminRequest(sb, 'api/accounts', { appleId: 'alice@example.com', password: 'x' })).status).toBe(409);
    expect((await adminRequest(sb, 'api/accounts', { appleId: 'not-an-email', password: 'x' })).status).toBe(400);

    expect(await sb.accounts.signIn('alice@example.com', 'wrong')).toEqual({ status: 'bad-credentials' });
    expect((await adminRequest(sb, 'api/two-factor?appleId=alice@example.com')).status).toBe(404);
    expect((await sb.accounts.signIn('alice@example.com', 'correct horse')).status).toBe('second-factor-required');
    const code = JSON.parse((await adminRequest(sb, 'api/two-factor?appleId=alice@example.com')).text) as { code: string; used: boolean };
    expect(code.code).toMatch(/^\d{6}$/);
    expect(code.used).toBe(false);
    const wrongCode = code.code === '000000' ? '111111' : '000000';
    expect((await sb.accounts.signIn('alice@example.com', `correct horse${wrongCode}`)).status).toBe('bad-credentials');
    const ok = await sb.accounts.signIn('ALICE@example.com', `correct horse${code.code}`);
    expect(ok).toMatchObject({ status: 'ok', account: { profileId: account.profileId } });
    // A code works once, and not after it expires.
    expect((await sb.accounts.signIn('alice@example.com', `correct horse${code.code}`)).status).toBe('bad-credentials');
    await sb.accounts.signIn('alice@example.com', 'correct horse');
    const second = sb.accounts.latestTwoFactorCode('alice@example.com')!;
    clock.advance(11 * 60_000);
    expect((await sb.accounts.signIn('alice@example.com', `correct horse${second.code}`)).status).toBe('bad-credentials');

    await sb.accounts.createAccount({ appleId: 'bob@example.com', password: 'pw', handles: ['tel:+1 (555) 555-0111'] });
    expect((await sb.accounts.signIn('bob@example.com', 'pw')).status).toBe('ok');
    expect(sb.accounts.getAccount('bob@example.com')?.handles).toEqual(['mailto:bob@example.com', 'tel:+15555550111']);
    expect(sb.accounts.findByProfileId(account.profileId)?.appleId).toBe('alice@example.com');
  });

  it('the SMS gateway answers a REG-REQ with a signed REG-RESP that verifies for that number and token only', async () => {
    expect((await adminRequest(sb, 'api/phones', { number: '+15555550100' })).status).toBe(201);
    const token = randomBytes(32);
    const text = `REG-REQ?v=3;t=${toHex(token).toUpperCase()};r=3141592653;`;
    const res = await adminRequest(sb, 'api/sms', { from: '+15555550100', text });
    expect(res.status).toBe(200);
    const { reply } = JSON.parse(res.text) as { reply: string };
    const m = /^REG-RESP\?v=3;r=3141592653;n=(\+15555550100);s=([0-9A-F]+)$/.exec(reply);
    expect(m).not.toBeNull();
    const sig = fromHex(m![2]!.toLowerCase());
    expect(sig.length).toBeGreaterThanOrEqual(20);
    expect(verifyGatewaySignature(sb.pki, '+15555550100', token, sig)).toBe(true);
    expect(verifyGatewaySignature(sb.pki, '+15555550101', token, sig)).toBe(false);
    expect(verifyGatewaySignature(sb.pki, '+15555550100', randomBytes(32), sig)).toBe(false);
    const flipped = new Uint8Array(sig);
    flipped[5]! ^= 1;
    expect(verifyGatewaySignature(sb.pki, '+15555550100', token, flipped)).toBe(false);
    expect(gatewaySignature(sb.pki, '+15555550100', token)).toEqual(sig);

    const inbox = JSON.parse((await adminRequest(sb, 'api/sms?number=%2B15555550100')).text) as Array<{ direction: string; peer: string; text: string }>;
    expect(inbox.map((s) => [s.direction, s.peer, s.text])).toEqual([
      ['sent', GATEWAY_ADDRESS, text],
      ['received', GATEWAY_ADDRESS, reply],
    ]);
    // Malformed requests get no reply; unknown phones are refused.
    const bad = JSON.parse((await adminRequest(sb, 'api/sms', { from: '+15555550100', text: 'REG-REQ?v=3;t=XYZ;r=1;' })).text) as { reply: null; error: string };
    expect(bad.reply).toBeNull();
    expect(bad.error).toMatch(/token/);
    expect((await adminRequest(sb, 'api/sms', { from: '+15555550199', text })).status).toBe(400);
  });

  it('parseRegReq takes the real format and refuses variants', () => {
    const t = 'AB'.repeat(32);
    expect(parseRegReq(`REG-REQ?v=3;t=${t};r=7;`)).toEqual({ pushToken: fromHex('ab'.repeat(32)), requestId: 7 });
    for (const bad of [`REG-REQ?v=2;t=${t};r=7;`, `REG-REQ?v=3;t=${t.slice(2)};r=7;`, `REG-REQ?v=3;t=${t};r=4294967296;`, `REG-REQ?v=3;t=${t};`, 'hello', `REG-REQ?v=3;v=3;t=${t};r=1;`]) {
      expect(() => parseRegReq(bad), bad).toThrow();
    }
  });

  it('the relay serves validation data for a registered code: 401 without one, 404 for unknown, expiry after 15 min', async () => {
    const created = JSON.parse((await adminRequest(sb, 'api/relay-codes', { name: 'Test Mac' })).text) as { code: string };
    expect(created.code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    const auth = (code: string) => ({ authorization: `Bearer ${code}`, 'content-type': 'application/json' });

    expect((await appleRequest(sb, RELAY + RELAY_PATHS.validationData, { method: 'POST', body: '{}' })).status).toBe(401);
    const unknown = await appleRequest(sb, RELAY + RELAY_PATHS.validationData, { headers: auth('NOPE-NOPE-NOPE-NOPE'), body: '{}' });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toHaveProperty('error');

    const res = await appleRequest(sb, RELAY + RELAY_PATHS.validationData, { headers: auth(created.code), body: '{}' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(res.text) as { data: string; valid_until: string; versions: Record<string, string>; name: string };
    expect(body.name).toBe('Test Mac');
    expect(Date.parse(body.valid_until)).toBe(clock.now() + 15 * 60_000);
    expect(body.versions).toMatchObject({ hardware_version: 'Macmini9,1', software_name: 'macOS', software_version: '13.5', software_build_id: '22G74' });
    expect(body.versions.serial_number).toMatch(/^[A-Z0-9]{12}$/);
    const data = fromBase64(body.data);
    expect(sb.relay.verifyValidationData(data)).toEqual({ status: 'ok', code: created.code, validUntil: clock.now() + 15 * 60_000 });

    const version = await appleRequest(sb, RELAY + RELAY_PATHS.versionInfo, { headers: { authorization: `Bearer ${created.code}` }, method: 'POST' });
    expect(version.status).toBe(200);
    expect(JSON.parse(version.text).versions).toEqual(body.versions);

    const tampered = new Uint8Array(data);
    tampered[8]! ^= 1;
    expect(sb.relay.verifyValidationData(tampered)).toEqual({ status: 'bad' });
    expect(sb.relay.verifyValidationData(new Uint8Array(10))).toEqual({ status: 'bad' });
    expect(sb.relay.verifyValidationData(data.subarray(0, data.length - 1))).toEqual({ status: 'bad' });
    clock.advance(15 * 60_000 + 1);
    expect(sb.relay.verifyValidationData(data)).toMatchObject({ status: 'expired', code: created.code });
    // A deleted code's data is no longer accepted, and the relay forgets the code.
    const fresh = sb.relay.mintValidationData(created.code).data;
    expect(sb.relay.verifyValidationData(fresh).status).toBe('ok');
    await sb.relay.deleteCode(created.code);
    expect(sb.relay.verifyValidationData(fresh)).toEqual({ status: 'bad' });
    expect((await appleRequest(sb, RELAY + RELAY_PATHS.validationData, { headers: auth(created.code), body: '{}' })).status).toBe(404);
  });

  it('issues IDS certificates and tells expired from bad', async () => {
    const { keys, csr } = await makeCsr({ bits: 2048, hash: 'SHA-256' });
    const info = await sb.pki.parseCsr(new Uint8Array(csr.rawData));
    expect(info.modulusBits).toBe(2048);
    const notAfter = clock.now() + 30 * 60_000;
    const auth = await sb.pki.issueIdsCertificate({ publicKey: info.spki, userId: 'P:+15555550100', kind: 'auth', notAfter });
    const id = await sb.pki.issueIdsCertificate({ publicKey: keys.publicKey, userId: 'D:1234567890', kind: 'id', notAfter });

    const a = await sb.pki.verifyIdsCertificate(auth.der);
    expect(a).toMatchObject({ ok: true, userId: 'P:+15555550100', kind: 'auth', notAfter: Math.floor(notAfter / 1000) * 1000 });
    if (!a.ok) throw new Error('unreachable');
    expect(Buffer.from(a.spki)).toEqual(Buffer.from(info.spki));
    const signature = await crypto.subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, await sha1Key(keys.privateKey), new Uint8Array([1, 2, 3]));
    expect(await crypto.subtle.verify({ name: 'RSASSA-PKCS1-v1_5' }, a.publicKey, signature, new Uint8Array([1, 2, 3]))).toBe(true);
    expect(await sb.pki.verifyIdsCertificate(id.der)).toMatchObject({ ok: true, userId: 'D:1234567890', kind: 'id' });

    const tampered = new Uint8Array(auth.der);
    tampered[tampered.length - 3]! ^= 1;
    expect(await sb.pki.verifyIdsCertificate(tampered)).toEqual({ ok: false, reason: 'bad' });
    expect(await sb.pki.verifyIdsCertificate(new Uint8Array([1, 2, 3]))).toEqual({ ok: false, reason: 'bad' });
    const push = await sb.pki.issuePushCertificate(new Uint8Array(csr.rawData));
    expect(await sb.pki.verifyIdsCertificate(push.der)).toEqual({ ok: false, reason: 'bad' });
    expect(await sb.pki.verifyPushCertificate(auth.der)).toBeNull();
    clock.advance(31 * 60_000);
    expect(await sb.pki.verifyIdsCertificate(auth.der)).toEqual({ ok: false, reason: 'expired' });
    await expect(sb.pki.issueIdsCertificate({ publicKey: info.spki, userId: '', kind: 'auth', notAfter: clock.now() + 1000 })).rejects.toThrow();
  });

  it('the admin page is loopback-only and refuses foreign hosts and origins', async () => {
    const page = await adminRequest(sb, '');
    expect(page.status).toBe(200);
    expect(page.text).toContain('alice@example.com');
    expect(page.text).toContain('REG-RESP?v=3');
    expect(new URL(sb.adminUrl!).hostname).toBe('127.0.0.1');
    expect((await adminRequest(sb, 'api/state', undefined, { host: 'evil.example' })).status).toBe(403);
    expect((await adminRequest(sb, 'api/phones', { number: '+15555550123' }, { origin: 'http://evil.example' })).status).toBe(403);
    // A cross-site form cannot send JSON, and form posts need the page's own origin.
    const u = new URL('form/phone', sb.adminUrl);
    const form = await new Promise<number>((resolve, reject) => {
      const body = 'number=%2B15555550124';
      const headers = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length), origin: u.origin };
      const req = request({ host: u.hostname, port: Number(u.port), path: u.pathname, method: 'POST', headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(form).toBe(303);
    expect(sb.accounts.getPhone('+15555550124')).toBeDefined();
    const state = JSON.parse((await adminRequest(sb, 'api/state')).text) as { accounts: unknown[]; phones: unknown[]; caFile: string };
    expect(state.caFile).toBe(sb.caFile);
    expect(state.phones.length).toBe(2);
  });
});

async function sha1Key(privateKey: CryptoKey): Promise<CryptoKey> {
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', privateKey);
  return crypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' }, false, ['sign']);
}
