// Shared by the lib/ids unit suites (Node and Chromium): a scripted IdsHttp that records requests, plist and JSON
// answers, small RSA SHA-1 keys, and certificates over a chosen public key (auth and ID certificates share a key).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { utf8 } from '../../../lib/codec/bytes';
import { encodeXmlPlist, type PlistDict } from '../../../lib/codec/plist';
import { IdsBag } from '../../../lib/ids/bag';
import type { IdsContext } from '../../../lib/ids/context';
import type { DeviceInfo } from '../../../lib/ids/device';
import type { HttpResponse, IdsHttp, IdsHttpRequest } from '../../../lib/ids/transport';

export interface FakeHttp extends IdsHttp {
  requests: IdsHttpRequest[];
}

export function fakeHttp(answer: (req: IdsHttpRequest) => HttpResponse | Promise<HttpResponse>): FakeHttp {
  const requests: IdsHttpRequest[] = [];
  const http = async (req: IdsHttpRequest) => {
    requests.push(req);
    return answer(req);
  };
  return Object.assign(http, { requests });
}

export function response(body: Uint8Array, status = 200, headers: Record<string, string[]> = {}): HttpResponse {
  return { status, reason: status === 200 ? 'OK' : 'Error', headers, body };
}

export function plistAnswer(dict: PlistDict, status = 200, headers: Record<string, string[]> = {}): HttpResponse {
  return response(encodeXmlPlist(dict), status, headers);
}

export function jsonAnswer(json: unknown, status = 200): HttpResponse {
  return response(utf8(JSON.stringify(json)), status);
}

export const DEVICE: DeviceInfo = {
  deviceName: 'cerulean-unit',
  hardwareVersion: 'Macmini9,1',
  softwareName: 'macOS',
  softwareVersion: '13.5',
  softwareBuildId: '22G74',
  uuid: '01234567-89AB-4CDE-8F01-23456789ABCD',
  // 2024-01-01T00:00:00.5Z
  setupAt: 1_704_067_200_500,
};

export const FIXED_NOW = 1_732_270_636_000;

export function context(http: IdsHttp, extra: Partial<IdsContext> = {}): IdsContext {
  return { http, bag: IdsBag.defaults(), device: DEVICE, now: () => FIXED_NOW, ...extra };
}

const RSA_SHA1: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-1',
  modulusLength: 1024,
  publicExponent: new Uint8Array([1, 0, 1]),
};

/** A small RSA SHA-1 key pair (IDS signing keys are RSASSA-PKCS1-v1_5 SHA-1; size does not matter to the code). */
export async function rsaKeys(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(RSA_SHA1, false, ['sign', 'verify'])) as CryptoKeyPair;
}

let caKeys: Promise<CryptoKeyPair> | undefined;
let serial = 1;

/** A certificate over `publicKey` from a test CA, valid until `notAfter`. */
export async function certOver(publicKey: CryptoKey, notAfter: Date, subject = 'CN=test user'): Promise<Uint8Array> {
  caKeys ??= crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']) as Promise<CryptoKeyPair>;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject,
    issuer: 'CN=Test IDS CA',
    notBefore: new Date(notAfter.getTime() - 86_400_000),
    notAfter,
    publicKey,
    signingKey: (await caKeys).privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  return new Uint8Array(cert.rawData);
}

/** Rejections as values, for asserting typed errors. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}
