// albert device activation (apns.md §7, §8 item 11): a form field `activation-info` holding an XML plist whose
// ActivationInfoXML carries a PEM CSR; the answer is HTML with a one-line <Protocol> plist whose DeviceCertificate is
// the PEM of a push certificate signed by the sandbox's device CA. Failures are HTML without <Protocol>, the reason
// in <b>…</b>, and a 4xx status.
import { fromUtf8, utf8 } from '../lib/codec/bytes';
import { encodeXmlPlist, isDict, parsePlist, type PlistDict, type PlistValue } from '../lib/codec/plist';
import type { Clock, Log } from './context';
import { HOSTS } from './hosts';
import { escapeHtml, HttpError, htmlResponse, readFormBody, type HttpRouter, type ServiceRequest, type ServiceResponse } from './http-service';
import type { SandboxPki } from './pki';
import type { Store } from './store';

export const ALBERT_PATHS = ['/deviceservices/deviceActivation', '/WebObjects/ALUnbrick.woa/wa/deviceActivation'] as const;

export interface AlbertOptions {
  /** Check FairPlaySignature against a chain from the sandbox's FairPlay CA (pki.fairPlayIdentity()). Off by default. */
  verifyFairPlay?: boolean;
}

/** What the sandbox remembers about an activation, keyed by certificate serial (table `albert-activations`). */
export type ActivationRecord = {
  serialNumber: string;
  uniqueDeviceId: string;
  productType: string;
  deviceClass: string;
  certificateSerial: string;
  issuedAt: number;
  notAfter: number;
};

export const ACTIVATIONS_TABLE = 'albert-activations';

const PLIST_LIMITS = { maxObjects: 10_000, maxDepth: 16 };
const REQUIRED_INNER_STRINGS = ['ActivationRandomness', 'ActivationState', 'DeviceClass', 'ProductType', 'SerialNumber', 'UniqueDeviceID'] as const;

interface Deps {
  pki: SandboxPki;
  store: Store;
  clock: Clock;
  log: Log;
  options?: AlbertOptions;
}

export function addAlbertRoutes(router: HttpRouter, deps: Deps): void {
  for (const path of ALBERT_PATHS) {
    router.add({
      host: HOSTS.albert,
      path,
      methods: ['POST'],
      maxBodyBytes: 256 * 1024,
      contentTypes: ['application/x-www-form-urlencoded'],
      handler: (req) => activate(req, deps),
      onError: (status, reason) => errorPage(reason, status),
    });
  }
}

async function activate(req: ServiceRequest, deps: Deps): Promise<ServiceResponse> {
  if (req.body.length === 0) throw new HttpError(400, 'Missing activation-info');
  const info = readFormBody(req).get('activation-info');
  if (!info) throw new HttpError(400, 'Missing activation-info');
  const outer = dictOf(utf8(info), 'activation-info is not a property-list dictionary');
  const infoXml = field(outer, 'ActivationInfoXML', 'data');
  const certChain = field(outer, 'FairPlayCertChain', 'data');
  const signature = field(outer, 'FairPlaySignature', 'data');
  if ('ActivationInfoComplete' in outer && typeof outer.ActivationInfoComplete !== 'boolean') {
    throw new HttpError(400, 'ActivationInfoComplete must be a boolean');
  }
  const inner = dictOf(infoXml, 'ActivationInfoXML is not a property-list dictionary');
  const strings = Object.fromEntries(REQUIRED_INNER_STRINGS.map((k) => [k, field(inner, k, 'string')])) as Record<
    (typeof REQUIRED_INNER_STRINGS)[number],
    string
  >;
  const csr = field(inner, 'DeviceCertRequest', 'data');

  if (deps.options?.verifyFairPlay && !(await deps.pki.verifyFairPlaySignature(certChain, infoXml, signature))) {
    throw new HttpError(403, 'FairPlay signature is not valid');
  }
  let cert;
  try {
    cert = await deps.pki.issuePushCertificate(csr, { deviceId: strings.UniqueDeviceID });
  } catch {
    throw new HttpError(400, 'Invalid DeviceCertRequest');
  }
  const record: ActivationRecord = {
    serialNumber: strings.SerialNumber.slice(0, 64),
    uniqueDeviceId: strings.UniqueDeviceID.slice(0, 64),
    productType: strings.ProductType.slice(0, 64),
    deviceClass: strings.DeviceClass.slice(0, 64),
    certificateSerial: cert.serial,
    issuedAt: deps.clock.now(),
    notAfter: cert.notAfter,
  };
  await deps.store.put(ACTIVATIONS_TABLE, cert.serial, record);
  deps.log.info('albert.activated', { deviceClass: record.deviceClass, productType: record.productType, certificateSerial: cert.serial });

  const protocol = oneLinePlist({
    'device-activation': {
      'ack-received': true,
      'show-settings': true,
      'activation-record': { DeviceCertificate: utf8(cert.pem) },
    },
  });
  return htmlResponse(
    '<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n' +
      '<title>iPhone Activation</title>\n</head>\n<body>\n' +
      `<Protocol>${protocol}</Protocol>\n` +
      '</body>\n</html>\n',
  );
}

/**
 * An XML plist on a single line: clients extract it with a regex whose `.` stops at newlines. Safe because the only
 * multi-line content the encoder emits is indentation and base64 line breaks, and neither carries meaning.
 */
export function oneLinePlist(value: PlistValue): string {
  const xml = fromUtf8(encodeXmlPlist(value));
  const start = xml.indexOf('<plist');
  return xml.slice(start).replace(/\r?\n[\t ]*/g, '');
}

function errorPage(reason: string, status: number): ServiceResponse {
  return htmlResponse(
    '<!DOCTYPE html>\n<html>\n<head><title>Activation Error</title></head>\n<body>\n' +
      `<h1>Activation Error</h1>\n<p><b>${escapeHtml(reason)}</b></p>\n</body>\n</html>\n`,
    status,
  );
}

function dictOf(bytes: Uint8Array, message: string): PlistDict {
  let v: PlistValue;
  try {
    v = parsePlist(bytes, PLIST_LIMITS);
  } catch {
    throw new HttpError(400, message);
  }
  if (!isDict(v)) throw new HttpError(400, message);
  return v;
}

function field(dict: PlistDict, key: string, type: 'data'): Uint8Array;
function field(dict: PlistDict, key: string, type: 'string'): string;
function field(dict: PlistDict, key: string, type: 'data' | 'string'): Uint8Array | string {
  const v = Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : undefined;
  if (v === undefined) throw new HttpError(400, `Missing ${key}`);
  if (type === 'data' ? !(v instanceof Uint8Array) : typeof v !== 'string') throw new HttpError(400, `${key} must be ${type}`);
  return v as Uint8Array | string;
}
