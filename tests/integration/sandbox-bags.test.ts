// The APNs and IDS init bags: served at Apple's paths (plain HTTP and HTTPS), outer {bag, certs, signature} with an
// RSA-SHA1 signature that verifies with certs[0], inner keys as apns.md §1.1 / ids.md §1 describe.
import { createVerify, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDict, parsePlist, type PlistDict } from '../../lib/codec/plist';
import { FakeClock } from '../../sandbox/context';
import type { Sandbox } from '../../sandbox/sandbox';
import { appleRequest, startTestSandbox, tempDir, type TestResponse } from './sandbox-helpers';

function openBag(res: TestResponse): { inner: PlistDict; certs: Uint8Array[] } {
  expect(res.status).toBe(200);
  const outer = parsePlist(new Uint8Array(res.body));
  if (!isDict(outer)) throw new Error('outer bag is not a dict');
  expect(Object.keys(outer).sort()).toEqual(['bag', 'certs', 'signature']);
  const { bag, certs, signature } = outer;
  if (!(bag instanceof Uint8Array) || !(signature instanceof Uint8Array) || !Array.isArray(certs)) throw new Error('bad outer types');
  const der = certs.map((c) => {
    if (!(c instanceof Uint8Array)) throw new Error('cert is not data');
    return c;
  });
  const leaf = new X509Certificate(der[0]!);
  const verifier = createVerify('RSA-SHA1');
  verifier.update(bag);
  expect(verifier.verify(leaf.publicKey, signature)).toBe(true);
  // The leaf chains to the intermediate that is sent with it.
  expect(leaf.verify(new X509Certificate(der[1]!).publicKey)).toBe(true);
  // A flipped bag byte no longer verifies.
  const tampered = new Uint8Array(bag);
  tampered[50]! ^= 1;
  expect(createVerify('RSA-SHA1').update(tampered).verify(leaf.publicKey, signature)).toBe(false);
  const inner = parsePlist(bag);
  if (!isDict(inner)) throw new Error('inner bag is not a dict');
  return { inner, certs: der };
}

describe('sandbox bags', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sb: Sandbox;
  const clock = new FakeClock(Date.UTC(2026, 0, 1));

  beforeAll(async () => {
    tmp = await tempDir();
    sb = await startTestSandbox(tmp.dir, { clock, courierHostCount: 10 });
  });
  afterAll(async () => {
    await sb?.close();
    await tmp?.remove();
  });

  it('serves the APNs bag over plain HTTP at init-p01st and over HTTPS at init.push', async () => {
    for (const url of ['http://init-p01st.push.apple.com/bag', 'https://init.push.apple.com/bag', 'https://init-p01st.push.apple.com/bag']) {
      const res = await appleRequest(sb, url);
      expect(res.headers['content-type']).toBe('application/x-apple-plist');
      expect(res.headers['cache-control']).toBe('public, max-age=3599');
      const { inner } = openBag(res);
      expect(inner.APNSCourierHostname).toBe('courier.push.apple.com');
      expect(inner.APNSCourierHostcount).toBe(10);
      expect(inner.APNSCourierStatus).toBe(true);
    }
    const sandboxBag = openBag(await appleRequest(sb, 'https://init.sandbox.push.apple.com/bag'));
    expect(sandboxBag.inner.APNSCourierHostname).toBe('courier.sandbox.push.apple.com');
  });

  it('serves the IDS bag with the real keys and URLs', async () => {
    const res = await appleRequest(sb, 'https://init.ess.apple.com/WebObjects/VCInit.woa/wa/getBag?ix=3');
    expect(res.headers['content-type']).toBe('text/xml');
    const { inner } = openBag(res);
    expect(inner['id-register']).toBe('https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/register');
    expect(inner['id-query']).toBe('https://query.ess.apple.com/WebObjects/QueryService.woa/wa/query');
    expect(inner['vc-profile-authenticate']).toBe('https://profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/authenticateUser');
    expect(inner['id-authenticate-ds-id']).toBe('https://profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/authenticateDS');
    expect(inner['id-authenticate-phone-number']).toBe(
      'https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/authenticatePhoneNumber',
    );
    expect(inner['id-get-handles']).toBe('https://profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/idsGetHandles');
    expect(inner['id-validation-cert']).toBe('http://static.ess.apple.com/identity/validation/cert-1.0.plist');
    expect(inner['apns-ids-query-min-version']).toBe(2);
    expect(inner['max-uri-multi-query']).toBe(35);
    expect(inner['bag-expiry-timestamp']).toBe(clock.now() + 3_600_000);
    // Every URL names a host the host map covers.
    for (const v of Object.values(inner)) {
      if (typeof v !== 'string' || !/^https?:/.test(v)) continue;
      const u = new URL(v);
      expect(sb.resolve(`${u.hostname}:${u.protocol === 'https:' ? 443 : 80}`), v).toBeDefined();
    }
  });

  it('answers 404 for other paths and 405 for other methods on the bag hosts', async () => {
    expect((await appleRequest(sb, 'https://init.ess.apple.com/WebObjects/VCInit.woa/wa/getBag2')).status).toBe(404);
    expect((await appleRequest(sb, 'https://init.push.apple.com/bag', { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await appleRequest(sb, 'https://albert.apple.com/bag')).status).toBe(404);
  });
});
