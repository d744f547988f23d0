// Device activation with albert (apns.md §7): the device makes an RSA-1024 key, asks for a push certificate with a
// PKCS#10 request wrapped in an activation-info plist, and gets the certificate back as PEM inside an HTML page.
// The push key is not an identity key: it signs only the courier's connect nonce and IDS request headers, and
// cannot decrypt or sign messages. A device that turns Web Push wake-ups on hands it (with the certificate and
// token) to its push watcher, which must connect to the courier as the device; so the app creates it extractable
// (`extractable: true`). Identity keys stay non-extractable (lib/crypto/identity-*.ts).
//
// Apple checks the activation-info with FairPlay (a key and chain from Apple software). That material is the
// user's configuration, never shipped here; without it both FairPlay fields go out empty, which the sandbox
// accepts (it verifies FairPlay only when told to).
// The X.509 library needs a Reflect metadata polyfill, loaded before it.
import 'reflect-metadata';
import { Pkcs10CertificateRequestGenerator, X509Certificate, type JsonName } from '@peculiar/x509';
import { equalBytes, exact, fromBase64, fromUtf8, toBase64, toHex, utf8 } from '../codec/bytes';
import { decodeXmlPlist, encodeXmlPlist, isDict, type PlistDict, type PlistValue } from '../codec/plist';
import { randomBytes, subtle } from '../crypto/subtle';
import { CryptoError } from '../errors';
import type { HttpRequest, HttpResponse } from '../net/http';
import { ApnsError } from './errors';

export { ALBERT_HOST } from './hosts';
export const ACTIVATION_PATH = '/deviceservices/deviceActivation';

/** What the device says it is. Apple has accepted made-up values for all of them (§7). */
export interface DeviceInfo {
  /** `MacOS` or `Windows`; also the `device` query parameter. */
  deviceClass: string;
  productType: string;
  productVersion: string;
  buildVersion: string;
  serialNumber: string;
  uniqueDeviceId: string;
}

/** The FairPlay identity Apple's albert checks: an RSASSA-PKCS1-v1_5 SHA-1 key and its DER chain, leaf first. */
export interface FairPlayIdentity {
  privateKey: CryptoKey;
  certificateChain: Uint8Array;
}

export interface ActivationOptions {
  /** Performs one HTTPS request to albert.apple.com (through the bridge in a browser). */
  http: (req: HttpRequest) => Promise<HttpResponse>;
  /** Fields not given are made up the way [BG] does: a random serial and UDID on a Mac. */
  deviceInfo?: Partial<DeviceInfo>;
  fairPlay?: FairPlayIdentity;
  /** Default false. The client sets it so the key can be handed to a push watcher (and wrapped by a file store). */
  extractable?: boolean;
}

export interface ActivatedDevice {
  /** RSA-1024, RSASSA-PKCS1-v1_5 with SHA-1 (courier nonce and IDS header signatures); extractable only if asked. */
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The push certificate, DER. */
  certificate: Uint8Array;
  certificatePem: string;
  /** The certificate's notAfter, Unix ms: activate again before it. */
  notAfter: number;
  deviceInfo: DeviceInfo;
}

const RSA_SHA1: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 1024,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-1',
};
// albert's answer is a small HTML page; a certificate is ~1 KB.
const MAX_RESPONSE_BYTES = 256 * 1024;
const PLIST_LIMITS = { maxObjects: 1000, maxDepth: 16 };
const MAX_REASON_LENGTH = 300;

export async function activateDevice(options: ActivationOptions): Promise<ActivatedDevice> {
  const deviceInfo = completeDeviceInfo(options.deviceInfo);
  const keys = (await subtle().generateKey(RSA_SHA1, options.extractable ?? false, ['sign', 'verify'])) as CryptoKeyPair;
  const csrPem = await certificateRequest(keys, deviceInfo.uniqueDeviceId);
  const body = utf8(new URLSearchParams({ 'activation-info': await activationInfo(deviceInfo, csrPem, options.fairPlay) }).toString());
  const res = await options.http({
    method: 'POST',
    path: `${ACTIVATION_PATH}?device=${encodeURIComponent(deviceInfo.deviceClass)}`,
    headers: [['Content-Type', 'application/x-www-form-urlencoded']],
    body,
    maxBodyBytes: MAX_RESPONSE_BYTES,
  });
  const certificate = parseActivationResponse(res);
  const spki = new Uint8Array(await subtle().exportKey('spki', keys.publicKey));
  const cert = parseCertificate(certificate);
  if (!equalBytes(new Uint8Array(cert.publicKey.rawData), spki)) {
    throw new ApnsError('activation-bad-response', 'albert issued a certificate for a different key');
  }
  return {
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    certificate,
    certificatePem: certificatePem(certificate),
    notAfter: cert.notAfter.getTime(),
    deviceInfo,
  };
}

function completeDeviceInfo(given: Partial<DeviceInfo> = {}): DeviceInfo {
  return {
    deviceClass: given.deviceClass ?? 'MacOS',
    productType: given.productType ?? 'MacBookPro18,3',
    productVersion: given.productVersion ?? '13.4.1',
    buildVersion: given.buildVersion ?? '22F82',
    serialNumber: given.serialNumber ?? randomSerial(),
    uniqueDeviceId: given.uniqueDeviceId ?? randomUuid(),
  };
}

/** PEM PKCS#10 request, subject as [PY] writes it; albert does not read the subject, only the key. */
async function certificateRequest(keys: CryptoKeyPair, commonName: string): Promise<string> {
  const name: JsonName = [
    { C: ['US'] },
    { ST: ['CA'] },
    { L: ['Cupertino'] },
    { O: ['Apple Inc.'] },
    { OU: ['iPhone'] },
    { CN: [commonName] },
  ];
  subtle(); // a clear CryptoError when WebCrypto is missing, before the library reaches for it
  try {
    const csr = await Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm: RSA_SHA1 }, globalThis.crypto);
    return csr.toString('pem');
  } catch (e) {
    throw new CryptoError('csr-failed', 'could not sign the certificate request', { cause: e });
  }
}

/** The form value: the outer plist whose ActivationInfoXML holds the exact inner bytes FairPlay signs. */
async function activationInfo(info: DeviceInfo, csrPem: string, fairPlay: FairPlayIdentity | undefined): Promise<string> {
  const inner: PlistDict = {
    ActivationRandomness: randomUuid(),
    ActivationState: 'Unactivated',
    BuildVersion: info.buildVersion,
    DeviceCertRequest: utf8(csrPem),
    DeviceClass: info.deviceClass,
    ProductType: info.productType,
    ProductVersion: info.productVersion,
    SerialNumber: info.serialNumber,
    UniqueDeviceID: info.uniqueDeviceId,
  };
  const infoXml = encodeXmlPlist(inner);
  const outer: PlistDict = {
    ActivationInfoComplete: true,
    ActivationInfoXML: infoXml,
    FairPlayCertChain: fairPlay?.certificateChain ?? new Uint8Array(0),
    FairPlaySignature: fairPlay ? await fairPlaySign(fairPlay.privateKey, infoXml) : new Uint8Array(0),
  };
  return fromUtf8(encodeXmlPlist(outer));
}

async function fairPlaySign(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  const alg = key.algorithm as Partial<RsaHashedKeyAlgorithm>;
  if (alg.name !== 'RSASSA-PKCS1-v1_5' || alg.hash?.name !== 'SHA-1') {
    throw new CryptoError('bad-key', 'the FairPlay key must be RSASSA-PKCS1-v1_5 with SHA-1');
  }
  try {
    return new Uint8Array(await subtle().sign('RSASSA-PKCS1-v1_5', key, exact(data)));
  } catch (e) {
    throw new CryptoError('bad-key', 'WebCrypto refused to sign with the FairPlay key', { cause: e });
  }
}

/**
 * DER of the DeviceCertificate in albert's `<Protocol>…</Protocol>`. A page without it is a refusal whose reason
 * albert puts in <b>…</b>: ApnsError 'activation-failed'; anything else unusable is 'activation-bad-response'.
 */
export function parseActivationResponse(res: HttpResponse): Uint8Array {
  // Lenient: a stray byte in the page must not hide the refusal reason.
  const html = new TextDecoder().decode(res.body);
  const protocol = /<Protocol>([\s\S]*?)<\/Protocol>/.exec(html);
  if (!protocol) {
    const reason = htmlText(/<b>([\s\S]*?)<\/b>/.exec(html)?.[1] ?? '');
    throw new ApnsError(
      'activation-failed',
      `albert refused the activation (HTTP ${res.status})${reason ? `: ${reason}` : ''}`,
      { status: res.status, ...(reason ? { reason } : {}) },
    );
  }
  const bad = (why: string, cause?: unknown) =>
    new ApnsError('activation-bad-response', `albert's answer is unusable: ${why}`, { status: res.status, cause });
  let plist: PlistValue;
  try {
    plist = decodeXmlPlist(protocol[1]!, PLIST_LIMITS);
  } catch (e) {
    throw bad('the <Protocol> plist does not parse', e);
  }
  const activation = isDict(plist) ? plist['device-activation'] : undefined;
  const record = isDict(activation) ? activation['activation-record'] : undefined;
  const cert = isDict(record) ? record.DeviceCertificate : undefined;
  if (!(cert instanceof Uint8Array)) throw bad('no DeviceCertificate');
  // PEM text per every known albert; DER accepted too, since it is unambiguous.
  if (cert[0] === 0x30) return cert.slice();
  const pem = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(new TextDecoder().decode(cert));
  if (!pem) throw bad('DeviceCertificate is not a PEM certificate');
  try {
    return fromBase64(pem[1]!);
  } catch (e) {
    throw bad('DeviceCertificate has bad base64', e);
  }
}

function parseCertificate(der: Uint8Array): X509Certificate {
  try {
    return new X509Certificate(exact(der));
  } catch (e) {
    throw new ApnsError('activation-bad-response', 'albert sent a certificate that does not parse', { cause: e });
  }
}

function certificatePem(der: Uint8Array): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Tags stripped, character references decoded, cut short: it is shown to a person. */
function htmlText(fragment: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return fragment
    .replace(/<[^>]*>/g, '')
    .replace(/&(?:#(\d{1,7})|#x([0-9a-f]{1,6})|(amp|lt|gt|quot|apos));/gi, (m, dec?: string, hex?: string, name?: string) => {
      const cp = dec ? Number(dec) : hex ? parseInt(hex, 16) : undefined;
      if (cp !== undefined) return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
      return named[name!.toLowerCase()] ?? m;
    })
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_REASON_LENGTH);
}

function randomUuid(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = toHex(b).toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** 12 random uppercase letters and digits, the way [BG] makes a serial up. */
function randomSerial(): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  return [...randomBytes(12)].map((b) => alphabet[b % alphabet.length]).join('');
}
