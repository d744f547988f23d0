// albert activation: a real CSR in, a push certificate out that the sandbox's own check accepts and whose key is the
// CSR's; malformed requests get an HTML error with the reason in <b>…</b> and a 4xx, and the sandbox keeps serving.
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromUtf8, utf8 } from '../../lib/codec/bytes';
import { encodeXmlPlist, isDict, parsePlist, type PlistDict } from '../../lib/codec/plist';
import { courierNonce, signCourierNonce, verifyCourierNonce } from '../../lib/crypto/request-signing';
import { FakeClock } from '../../sandbox/context';
import type { FairPlayIdentity } from '../../sandbox/pki';
import type { Sandbox } from '../../sandbox/sandbox';
import { appleRequest, makeCsr, startTestSandbox, tempDir, type TestResponse } from './sandbox-helpers';

const ALBERT = 'https://albert.apple.com/deviceservices/deviceActivation?device=MacOS';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function innerInfo(csrPem: string, overrides: PlistDict = {}): PlistDict {
  return {
    ActivationRandomness: randomUUID().toUpperCase(),
    ActivationState: 'Unactivated',
    BuildVersion: '22F82',
    DeviceCertRequest: utf8(csrPem),
    DeviceClass: 'MacOS',
    ProductType: 'MacBookPro18,3',
    ProductVersion: '13.4.1',
    SerialNumber: 'C02ABCDEFGHJ',
    UniqueDeviceID: randomUUID().toUpperCase(),
    ...overrides,
  };
}

function activationForm(inner: PlistDict | Uint8Array, fairPlay?: FairPlayIdentity): string {
  const infoXml = inner instanceof Uint8Array ? inner : encodeXmlPlist(inner);
  let chain: Uint8Array = crypto.getRandomValues(new Uint8Array(300));
  let signature: Uint8Array = crypto.getRandomValues(new Uint8Array(128));
  if (fairPlay) {
    chain = fairPlay.certificateChain;
    signature = new Uint8Array(createSign('RSA-SHA1').update(infoXml).sign(fairPlay.privateKeyPem));
  }
  const outer = encodeXmlPlist({ ActivationInfoComplete: true, ActivationInfoXML: infoXml, FairPlayCertChain: chain, FairPlaySignature: signature });
  return new URLSearchParams({ 'activation-info': fromUtf8(outer) }).toString();
}

/** The DeviceCertificate PEM, found the way [PY]/[RP] do: a regex whose `.` does not cross newlines. */
function deviceCertificate(res: TestResponse): string {
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  const m = /<Protocol>(.*)<\/Protocol>/.exec(res.text);
  if (!m) throw new Error('no one-line <Protocol> in the response');
  const plist = parsePlist(utf8(m[1]!));
  if (!isDict(plist)) throw new Error('protocol is not a dict');
  const da = plist['device-activation'];
  if (!isDict(da)) throw new Error('no device-activation');
  expect(da['ack-received']).toBe(true);
  expect(da['show-settings']).toBe(true);
  const record = da['activation-record'];
  if (!isDict(record) || !(record.DeviceCertificate instanceof Uint8Array)) throw new Error('no DeviceCertificate data');
  return fromUtf8(record.DeviceCertificate);
}

function expectErrorPage(res: TestResponse, status: number, reason: RegExp): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.text).not.toContain('<Protocol>');
  const b = /<b>(.*?)<\/b>/.exec(res.text);
  expect(b?.[1]).toMatch(reason);
}

describe('sandbox albert', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sb: Sandbox;
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    tmp = await tempDir();
    sb = await startTestSandbox(tmp.dir, { clock });
  });
  afterAll(async () => {
    await sb?.close();
    await tmp?.remove();
  });

  it('activates a device: the push certificate is for the CSR key and passes verifyPushCertificate', async () => {
    const { keys, pem, csr } = await makeCsr();
    const udid = randomUUID().toUpperCase();
    const res = await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(innerInfo(pem, { UniqueDeviceID: udid })) });
    const certPem = deviceCertificate(res);
    expect(certPem).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    const cert = new X509Certificate(certPem);
    expect(cert.issuer).toContain('CN=Cerulean Sandbox iPhone Device CA');
    expect(cert.subject).toContain(`CN=${udid}`);

    const info = await sb.pki.verifyPushCertificate(new Uint8Array(cert.raw));
    expect(info).not.toBeNull();
    expect(Buffer.from(info!.spki)).toEqual(Buffer.from(new Uint8Array(csr.publicKey.rawData)));
    expect(info!.deviceId).toBe(udid);
    expect(info!.serial).toBe(cert.serialNumber.toLowerCase());
    // The courier's check: a nonce signed with the device's private key verifies with the certificate's key.
    const nonce = courierNonce(clock.now());
    const sig = await signCourierNonce(keys.privateKey, nonce);
    expect(await verifyCourierNonce(info!.publicKey, nonce, sig)).toBe(true);
    expect(sb.store.get('albert-activations', info!.serial)).toMatchObject({ uniqueDeviceId: udid, deviceClass: 'MacOS' });
  });

  it('accepts the ALUnbrick path and a 2048-bit SHA-256 CSR sent as DER-in-PEM', async () => {
    const { pem } = await makeCsr({ bits: 2048, hash: 'SHA-256' });
    const res = await appleRequest(sb, 'https://albert.apple.com/WebObjects/ALUnbrick.woa/wa/deviceActivation?device=Windows', {
      headers: FORM,
      body: activationForm(innerInfo(pem, { DeviceClass: 'Windows', ProductType: 'windows1,1' })),
    });
    expect(await sb.pki.verifyPushCertificate(new Uint8Array(new X509Certificate(deviceCertificate(res)).raw))).not.toBeNull();
  });

  it('verifyPushCertificate rejects garbage, foreign and expired certificates', async () => {
    expect(await sb.pki.verifyPushCertificate(new Uint8Array([0x30, 0x03, 1, 2, 3]))).toBeNull();
    expect(await sb.pki.verifyPushCertificate(new Uint8Array(0))).toBeNull();
    expect(await sb.pki.verifyPushCertificate(new Uint8Array(new X509Certificate(sb.caPem).raw))).toBeNull();
    const { pem } = await makeCsr();
    const issued = await sb.pki.issuePushCertificate(pem);
    const tampered = new Uint8Array(issued.der);
    tampered[tampered.length - 10]! ^= 0x01;
    expect(await sb.pki.verifyPushCertificate(tampered)).toBeNull();
    expect(await sb.pki.verifyPushCertificate(issued.der)).not.toBeNull();
    const saved = clock.now();
    clock.advance(366 * 86_400_000);
    expect(await sb.pki.verifyPushCertificate(issued.der)).toBeNull();
    clock.set(saved);
  });

  it('answers malformed activations with an HTML error and a 4xx, and keeps serving', async () => {
    const { pem, der } = await makeCsr();
    expectErrorPage(await appleRequest(sb, ALBERT, { headers: FORM, body: 'something=else' }), 400, /Missing activation-info/);
    expectErrorPage(await appleRequest(sb, ALBERT, { headers: FORM, body: '' }), 400, /Missing activation-info/);
    expectErrorPage(
      await appleRequest(sb, ALBERT, { headers: FORM, body: new URLSearchParams({ 'activation-info': 'not a plist <<<' }).toString() }),
      400,
      /not a property-list/,
    );
    expectErrorPage(
      await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(utf8('<plist><string>x</string></plist>')) }),
      400,
      /ActivationInfoXML is not/,
    );
    const noCsr = innerInfo(pem);
    delete noCsr.DeviceCertRequest;
    expectErrorPage(await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(noCsr) }), 400, /Missing DeviceCertRequest/);
    expectErrorPage(
      await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(innerInfo(pem, { SerialNumber: 42 })) }),
      400,
      /SerialNumber must be string/,
    );
    // A CSR whose signature was tampered with.
    const bad = new Uint8Array(der);
    bad[bad.length - 5]! ^= 0x40;
    const badPem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(bad).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expectErrorPage(await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(innerInfo(badPem)) }), 400, /Invalid DeviceCertRequest/);
    expectErrorPage(
      await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(innerInfo('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n')) }),
      400,
      /Invalid DeviceCertRequest/,
    );
    expectErrorPage(
      await appleRequest(sb, ALBERT, { headers: { 'content-type': 'application/json' }, body: activationForm(innerInfo(pem)) }),
      415,
      /Unsupported content type/,
    );
    expectErrorPage(await appleRequest(sb, ALBERT), 405, /Method Not Allowed/);
    expectErrorPage(await appleRequest(sb, ALBERT, { headers: FORM, body: 'a'.repeat(300 * 1024) }), 413, /too large/);
    // Still serving.
    const ok = await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(innerInfo(pem)) });
    expect(deviceCertificate(ok)).toContain('BEGIN CERTIFICATE');
  });
});

describe('sandbox albert with FairPlay verification on', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sb: Sandbox;

  beforeAll(async () => {
    tmp = await tempDir();
    sb = await startTestSandbox(tmp.dir, { albert: { verifyFairPlay: true }, admin: false });
  });
  afterAll(async () => {
    await sb?.close();
    await tmp?.remove();
  });

  it('accepts a request signed with the sandbox FairPlay identity and refuses others', async () => {
    const fairPlay = await sb.pki.fairPlayIdentity();
    const { pem } = await makeCsr();
    const ok = await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(innerInfo(pem), fairPlay) });
    expect(deviceCertificate(ok)).toContain('BEGIN CERTIFICATE');
    expectErrorPage(await appleRequest(sb, ALBERT, { headers: FORM, body: activationForm(innerInfo(pem)) }), 403, /FairPlay/);
    // Signed over different bytes than the ActivationInfoXML sent.
    const body = activationForm(innerInfo(pem), fairPlay);
    const swapped = new URLSearchParams(body);
    const outer = parsePlist(utf8(swapped.get('activation-info')!)) as PlistDict;
    outer.ActivationInfoXML = encodeXmlPlist(innerInfo(pem));
    swapped.set('activation-info', fromUtf8(encodeXmlPlist(outer)));
    expectErrorPage(await appleRequest(sb, ALBERT, { headers: FORM, body: swapped.toString() }), 403, /FairPlay/);
  });
});
