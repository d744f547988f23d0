import { beforeAll, describe, expect, it } from 'vitest';
import 'reflect-metadata';
import { Pkcs10CertificateRequest } from '@peculiar/x509';
import { fromHex, fromUtf8 } from '../../../lib/codec/bytes';
import { decodeXmlPlist, type PlistDict } from '../../../lib/codec/plist';
import { CryptoError, DecodeError } from '../../../lib/errors';
import {
  authenticateDS,
  authenticateDsBody,
  csrCommonName,
  generateAuthKey,
  makeAuthCsr,
  parseAuthCertificateResponse,
} from '../../../lib/ids/auth-cert';
import { IdsError } from '../../../lib/ids/errors';
import { certOver, context, fakeHttp, plistAnswer, rejection, rsaKeys } from './helpers';

let keys: CryptoKeyPair;
let csr: Uint8Array;
let cert: Uint8Array;
const NOT_AFTER = new Date(Date.UTC(2030, 0, 1));

beforeAll(async () => {
  keys = await rsaKeys();
  csr = await makeAuthCsr(keys, 'D:1234567890');
  cert = await certOver(keys.publicKey, NOT_AFTER);
});

describe('auth key and CSR', () => {
  it('generates a non-extractable RSA-2048 SHA-1 signing key', async () => {
    const k = await generateAuthKey();
    expect(k.privateKey.extractable).toBe(false);
    const alg = k.privateKey.algorithm as RsaHashedKeyAlgorithm;
    expect(alg.name).toBe('RSASSA-PKCS1-v1_5');
    expect(alg.hash.name).toBe('SHA-1');
    expect(alg.modulusLength).toBe(2048);
    expect([...alg.publicExponent]).toEqual([1, 0, 1]);
    await expect(crypto.subtle.exportKey('pkcs8', k.privateKey)).rejects.toThrow();
    // And it can make a CSR although its private half cannot leave WebCrypto.
    expect((await makeAuthCsr(k, 'P:+15555550100')).length).toBeGreaterThan(200);
  });

  it('puts lower-case hex SHA-1 of the user id in the CN', async () => {
    expect(await csrCommonName('abc')).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    const req = new Pkcs10CertificateRequest(csr as Uint8Array<ArrayBuffer>);
    expect(req.subject).toBe(`CN=${await csrCommonName('D:1234567890')}`);
    // sha1WithRSAEncryption: the key's own hash.
    expect(req.signatureAlgorithm).toMatchObject({ name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-1' } });
    expect(await req.verify()).toBe(true);
  });
});

describe('authenticateDS', () => {
  it('sends {authentication-data:{auth-token}, csr, realm-user-id}', () => {
    const body = authenticateDsBody({ authToken: 'tok', profileId: 'D:1', csr: fromHex('3000') });
    expect(fromUtf8(body)).toContain(
      '<dict>\n\t<key>authentication-data</key>\n\t<dict>\n\t\t<key>auth-token</key>\n\t\t<string>tok</string>\n\t</dict>\n' +
        '\t<key>csr</key>\n\t<data>\n\tMAA=\n\t</data>\n\t<key>realm-user-id</key>\n\t<string>D:1</string>\n</dict>',
    );
  });

  it('POSTs to id-authenticate-ds-id and returns the certificate with its NotAfter', async () => {
    const http = fakeHttp(() => plistAnswer({ status: 0, cert }));
    const got = await authenticateDS(context(http), { authToken: 'tok', profileId: 'D:1234567890', csr });
    expect(got).toEqual({ userId: 'D:1234567890', der: cert, notAfter: NOT_AFTER.getTime() });
    const req = http.requests[0]!;
    expect(`${req.method} ${req.host}${req.path}`).toBe('POST profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/authenticateDS');
    expect(req.headers).toEqual({
      'user-agent': '[macOS,13.5,22G74,Macmini9,1]',
      'x-protocol-version': '1640',
      'content-type': 'application/x-apple-plist',
    });
    const sent = decodeXmlPlist(req.body!) as PlistDict;
    expect(sent['realm-user-id']).toBe('D:1234567890');
  });

  it('maps failures to typed errors', async () => {
    const dead = (await rejection(authenticateDS(context(fakeHttp(() => plistAnswer({ status: 6005 }))), { authToken: 't', profileId: 'D:1', csr }))) as IdsError;
    expect(dead).toBeInstanceOf(IdsError);
    expect(dead.code).toBe('auth-expired');
    expect(dead.userId).toBe('D:1');
    expect(() => parseAuthCertificateResponse({ status: 0 }, 'D:1', csr, 'x')).toThrow(DecodeError);
    try {
      parseAuthCertificateResponse({ status: 0, cert: fromHex('300100') }, 'D:1', csr, 'x');
      expect.unreachable();
    } catch (e) {
      expect((e as DecodeError).code).toBe('ids-bad-certificate');
    }
    const otherKey = await certOver((await rsaKeys()).publicKey, NOT_AFTER);
    try {
      parseAuthCertificateResponse({ status: 0, cert: otherKey }, 'D:1', csr, 'x');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CryptoError);
      expect((e as CryptoError).code).toBe('ids-certificate-key-mismatch');
    }
  });
});
