// albert activation against an in-memory albert that issues real certificates: the request as the wire carries it
// (form field, outer and inner plists, the PEM CSR and its key), the parsed answer, FairPlay signing, and every way
// the answer can be unusable (always a typed ApnsError).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { activateDevice, parseActivationResponse, type ActivationOptions } from '../../../lib/apns/albert';
import { ApnsError } from '../../../lib/apns/errors';
import { exact, fromBase64, fromHex, fromUtf8, utf8 } from '../../../lib/codec/bytes';
import { decodeXmlPlist, encodeXmlPlist, type PlistDict } from '../../../lib/codec/plist';
import type { HttpRequest, HttpResponse } from '../../../lib/net/http';

x509.cryptoProvider.set(globalThis.crypto);
const EC: EcKeyGenParams & EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const RSA_SHA1: RsaHashedKeyGenParams = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-1' };
const NOT_AFTER = Date.UTC(2027, 0, 1);

// A written-out albert answer: DeviceCertificate = PEM text of the 5-byte DER 30 03 02 01 05.
const FIXED_PAGE =
  '<!DOCTYPE html>\n<html>\n<head><title>iPhone Activation</title></head>\n<body>\n' +
  '<Protocol><plist version="1.0"><dict><key>device-activation</key><dict><key>ack-received</key><true/>' +
  '<key>activation-record</key><dict><key>DeviceCertificate</key>' +
  '<data>LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1BTUNBUVU9Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K</data></dict>' +
  '<key>show-settings</key><true/></dict></dict></plist></Protocol>\n</body>\n</html>\n';

let ca: { cert: x509.X509Certificate; keys: CryptoKeyPair };

beforeAll(async () => {
  const keys = (await crypto.subtle.generateKey(EC, false, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Test Device CA',
    notBefore: new Date(Date.UTC(2024, 0, 1)),
    notAfter: new Date(NOT_AFTER),
    keys,
    signingAlgorithm: EC,
  });
  ca = { cert, keys };
});

const html = (body: string, status = 200): HttpResponse => ({
  status,
  reason: status === 200 ? 'OK' : 'Bad Request',
  headers: { 'content-type': ['text/html'] },
  body: utf8(body),
});

/** An XML plist on one line, as albert embeds it. */
function oneLine(value: PlistDict): string {
  const xml = fromUtf8(encodeXmlPlist(value));
  return xml.slice(xml.indexOf('<plist')).replace(/\n\t*/g, '');
}

function certificatePage(pem: string): HttpResponse {
  const protocol = oneLine({
    'device-activation': { 'ack-received': true, 'show-settings': true, 'activation-record': { DeviceCertificate: utf8(pem) } },
  });
  return html(`<!DOCTYPE html>\n<html><body>\n<Protocol>${protocol}</Protocol>\n</body></html>\n`);
}

interface Seen {
  req: HttpRequest;
  outer: PlistDict;
  inner: PlistDict;
  csr: x509.Pkcs10CertificateRequest;
  issued: x509.X509Certificate;
}

/** albert's side: reads the form, checks the CSR, signs its key. `answer` may replace the page. */
function fakeAlbert(seen: Seen[], answer?: (issued: x509.X509Certificate) => HttpResponse): ActivationOptions['http'] {
  return async (req) => {
    const form = new URLSearchParams(fromUtf8(req.body!));
    const outer = decodeXmlPlist(form.get('activation-info')!) as PlistDict;
    const inner = decodeXmlPlist(outer.ActivationInfoXML as Uint8Array) as PlistDict;
    const csr = new x509.Pkcs10CertificateRequest(fromUtf8(inner.DeviceCertRequest as Uint8Array));
    const issued = await x509.X509CertificateGenerator.create({
      serialNumber: '0a',
      subject: csr.subject,
      issuer: ca.cert.subject,
      notBefore: new Date(Date.UTC(2025, 0, 1)),
      notAfter: new Date(NOT_AFTER),
      publicKey: csr.publicKey.rawData,
      signingKey: ca.keys.privateKey,
      signingAlgorithm: EC,
    });
    seen.push({ req, outer, inner, csr, issued });
    return answer ? answer(issued) : certificatePage(issued.toString('pem'));
  };
}

describe('activateDevice', () => {
  it('sends the activation-info form Apple expects and returns a non-extractable key with its certificate', async () => {
    const seen: Seen[] = [];
    const device = await activateDevice({ http: fakeAlbert(seen) });
    expect(seen).toHaveLength(1);
    const { req, outer, inner, csr, issued } = seen[0]!;

    expect(req.method).toBe('POST');
    expect(req.path).toBe('/deviceservices/deviceActivation?device=MacOS');
    expect(req.headers).toEqual([['Content-Type', 'application/x-www-form-urlencoded']]);
    expect(fromUtf8(req.body!)).toMatch(/^activation-info=%3C%3Fxml\+version%3D%221\.0%22/);

    expect(Object.keys(outer)).toEqual(['ActivationInfoComplete', 'ActivationInfoXML', 'FairPlayCertChain', 'FairPlaySignature']);
    expect(outer.ActivationInfoComplete).toBe(true);
    expect(outer.FairPlayCertChain).toEqual(new Uint8Array(0));
    expect(outer.FairPlaySignature).toEqual(new Uint8Array(0));
    expect(fromUtf8(outer.ActivationInfoXML as Uint8Array)).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist/);

    expect(Object.keys(inner)).toEqual([
      'ActivationRandomness',
      'ActivationState',
      'BuildVersion',
      'DeviceCertRequest',
      'DeviceClass',
      'ProductType',
      'ProductVersion',
      'SerialNumber',
      'UniqueDeviceID',
    ]);
    expect(inner.ActivationState).toBe('Unactivated');
    expect(inner.ActivationRandomness).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    expect(inner.UniqueDeviceID).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    expect(inner.SerialNumber).toMatch(/^[0-9A-Z]{12}$/);
    expect(inner).toMatchObject({ DeviceClass: 'MacOS', ProductType: 'MacBookPro18,3', ProductVersion: '13.4.1', BuildVersion: '22F82' });
    expect(fromUtf8(inner.DeviceCertRequest as Uint8Array)).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);

    // The request is self-signed with SHA-1 by an RSA-1024 key, subject as pypush writes it.
    expect(await csr.verify()).toBe(true);
    expect(csr.signatureAlgorithm).toMatchObject({ name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-1' } });
    expect(csr.subject).toBe(`C=US, ST=CA, L=Cupertino, O=Apple Inc., OU=iPhone, CN=${inner.UniqueDeviceID}`);
    const csrKey = (await csr.publicKey.export({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' }, ['verify'])) as CryptoKey;
    expect((csrKey.algorithm as RsaHashedKeyAlgorithm).modulusLength).toBe(1024);

    expect(device.privateKey.extractable).toBe(false);
    expect(device.privateKey.usages).toEqual(['sign']);
    expect(device.privateKey.algorithm).toMatchObject({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, hash: { name: 'SHA-1' } });
    expect(device.certificate).toEqual(new Uint8Array(issued.rawData));
    expect(device.certificatePem).toBe(issued.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n');
    expect(device.notAfter).toBe(NOT_AFTER);
    expect(device.deviceInfo.uniqueDeviceId).toBe(inner.UniqueDeviceID);
    expect(device.deviceInfo.serialNumber).toBe(inner.SerialNumber);

    // The key signs what the certificate's key verifies.
    const data = exact(utf8('nonce'));
    const sig = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', device.privateKey, data);
    expect(await crypto.subtle.verify('RSASSA-PKCS1-v1_5', csrKey, sig, data)).toBe(true);
  });

  it('uses the given device identity and names its class in the URL', async () => {
    const seen: Seen[] = [];
    const deviceInfo = {
      deviceClass: 'Windows',
      productType: 'windows1,1',
      productVersion: '10.6.4',
      buildVersion: '10.6.4',
      serialNumber: 'WindowSerial',
      uniqueDeviceId: '11111111-2222-4333-8444-555555555555',
    };
    const device = await activateDevice({ http: fakeAlbert(seen), deviceInfo });
    expect(seen[0]!.req.path).toBe('/deviceservices/deviceActivation?device=Windows');
    expect(seen[0]!.inner).toMatchObject({
      DeviceClass: 'Windows',
      ProductType: 'windows1,1',
      ProductVersion: '10.6.4',
      BuildVersion: '10.6.4',
      SerialNumber: 'WindowSerial',
      UniqueDeviceID: '11111111-2222-4333-8444-555555555555',
    });
    expect(device.deviceInfo).toEqual(deviceInfo);
  });

  it('signs ActivationInfoXML with the FairPlay key (RSA SHA-1) and sends its chain', async () => {
    const fairPlay = (await crypto.subtle.generateKey(RSA_SHA1, false, ['sign', 'verify'])) as CryptoKeyPair;
    const chain = fromHex('3003020101' + '3003020102');
    const seen: Seen[] = [];
    await activateDevice({ http: fakeAlbert(seen), fairPlay: { privateKey: fairPlay.privateKey, certificateChain: chain } });
    const { outer } = seen[0]!;
    expect(outer.FairPlayCertChain).toEqual(chain);
    const signature = outer.FairPlaySignature as Uint8Array;
    expect(signature.length).toBe(128);
    expect(await crypto.subtle.verify('RSASSA-PKCS1-v1_5', fairPlay.publicKey, exact(signature), exact(outer.ActivationInfoXML as Uint8Array))).toBe(true);

    const sha256 = (await crypto.subtle.generateKey({ ...RSA_SHA1, hash: 'SHA-256' }, false, ['sign'])) as CryptoKeyPair;
    await expect(
      activateDevice({ http: fakeAlbert([]), fairPlay: { privateKey: sha256.privateKey, certificateChain: chain } }),
    ).rejects.toMatchObject({ name: 'CryptoError', code: 'bad-key' });
  });

  it("reports albert's refusal with its <b> reason and status", async () => {
    const page = html(
      '<!DOCTYPE html>\n<html>\n<head><title>Activation Error</title></head>\n<body>\n<h1>Activation Error</h1>\n' +
        '<p><b>Missing FairPlaySignature &amp; the chain&#39;s leaf</b></p>\n</body>\n</html>\n',
      400,
    );
    const err = await activateDevice({ http: async () => page }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApnsError);
    expect(err).toMatchObject({ code: 'activation-failed', status: 400, reason: "Missing FairPlaySignature & the chain's leaf" });
    await expect(activateDevice({ http: async () => html('<html>busy</html>', 503) })).rejects.toMatchObject({
      code: 'activation-failed',
      status: 503,
      reason: undefined,
    });
  });

  it('refuses a certificate for another key', async () => {
    const other = (await crypto.subtle.generateKey(RSA_SHA1, true, ['sign', 'verify'])) as CryptoKeyPair;
    const http = fakeAlbert([], () => certificatePage(''));
    const foreign = await x509.X509CertificateGenerator.create({
      serialNumber: '0b',
      subject: 'CN=someone else',
      issuer: ca.cert.subject,
      notBefore: new Date(Date.UTC(2025, 0, 1)),
      notAfter: new Date(NOT_AFTER),
      publicKey: other.publicKey,
      signingKey: ca.keys.privateKey,
      signingAlgorithm: EC,
    });
    const swapped: ActivationOptions['http'] = async (req) => (await http(req), certificatePage(foreign.toString('pem')));
    await expect(activateDevice({ http: swapped })).rejects.toMatchObject({ code: 'activation-bad-response' });
  });
});

describe('parseActivationResponse', () => {
  it('reads the DeviceCertificate of a written-out page', () => {
    expect(parseActivationResponse(html(FIXED_PAGE))).toEqual(fromHex('3003020105'));
    // DER instead of PEM is unambiguous and accepted.
    const der = FIXED_PAGE.replace(/<data>[^<]*<\/data>/, '<data>MAMCAQU=</data>');
    expect(parseActivationResponse(html(der))).toEqual(fromBase64('MAMCAQU='));
  });

  it.each([
    ['no DeviceCertificate', FIXED_PAGE.replace('DeviceCertificate', 'OtherKey')],
    ['DeviceCertificate as a string', FIXED_PAGE.replace(/<data>([^<]*)<\/data>/, '<string>$1</string>')],
    ['a DeviceCertificate that is not PEM', FIXED_PAGE.replace(/<data>[^<]*<\/data>/, '<data>aGVsbG8=</data>')],
    ['a <Protocol> that is not a plist', '<html><Protocol>not a plist</Protocol></html>'],
    ['a plist that is not a dict', '<Protocol><plist version="1.0"><array/></plist></Protocol>'],
  ])('refuses %s', (_, page) => {
    const err = (() => {
      try {
        parseActivationResponse(html(page));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ApnsError);
    expect((err as ApnsError).code).toBe('activation-bad-response');
  });

  it('a certificate that does not parse is refused by activateDevice', async () => {
    await expect(activateDevice({ http: async () => html(FIXED_PAGE) })).rejects.toMatchObject({ code: 'activation-bad-response' });
  });

  it('random and mutated pages give a certificate or an ApnsError, nothing else', () => {
    const page = utf8(FIXED_PAGE);
    const mutated = fc
      .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })
      .map((edits) => {
        const out = page.slice();
        for (const [at, v] of edits) out[at % out.length] = v;
        return out;
      });
    const wrapped = fc.string({ maxLength: 200 }).map((s) => utf8(`<b>${s}</b><Protocol>${s}</Protocol>`));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated, wrapped), fc.integer({ min: 100, max: 599 }), (body, status) => {
        try {
          expect(parseActivationResponse({ status, reason: '', headers: {}, body })).toBeInstanceOf(Uint8Array);
        } catch (e) {
          expect(e).toBeInstanceOf(ApnsError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
