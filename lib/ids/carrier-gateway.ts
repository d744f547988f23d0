// Finding the carrier's SMS registration gateway (ids.md §2.4), the short code a phone sends its REG-REQ to. Apple
// publishes every carrier bundle in the iTunes "version" plist:
//   MobileDeviceCarriersByMccMnc[<MCC+MNC>]            → { BundleName?, MVNOs?: [{ BundleName, ICCID?/GID1?… }] }
//   MobileDeviceCarrierBundlesByProductVersion[<name>] → { "<iOS version>": { BundleURL, BuildVersion, Digest… },
//                                                          ByProductType: {…} }
// The bundle itself (.ipcc) is a zip holding Payload/<name>.bundle/carrier.plist, whose
// PhoneNumberRegistrationGatewayAddress (a string or an array of strings) is the gateway. Everything downloaded here
// is untrusted: sizes are bounded before anything is inflated, inflating stops at the declared size (codec/zip.ts),
// the list's digests are checked, and every malformed input is a typed error.
import { equalBytes, exact } from '../codec/bytes';
import { isDict, parsePlist, type PlistDict, type PlistValue } from '../codec/plist';
import { listZip, readZipEntry } from '../codec/zip';
import { subtle } from '../crypto/subtle';
import { DecodeError, EncodeError } from '../errors';
import { IdsError } from './errors';
import { own } from './plist-http';
import type { IdsHttp } from './transport';

/** The iTunes client-check plist that lists every carrier bundle (the path [PY] and [BG] hard-code). */
export const CARRIER_LIST_URL =
  'https://itunes.apple.com/WebObjects/MZStore.woa/wa/com.apple.jingle.appserver.client.MZITunesClientCheck/version?languageCode=en';

export interface CarrierGatewayLimits {
  /** The carrier list as received (about 6 MB of XML in 2026, and growing). */
  maxListBytes: number;
  maxListObjects: number;
  /** One downloaded .ipcc. */
  maxBundleBytes: number;
  /** Entries in one .ipcc's zip directory. */
  maxBundleEntries: number;
  /** carrier.plist, inflated. */
  maxCarrierPlistBytes: number;
  /** Bundles downloaded for one MCC-MNC (its own, then its MVNOs') before giving up. */
  maxBundles: number;
}

export const DEFAULT_CARRIER_GATEWAY_LIMITS: Readonly<CarrierGatewayLimits> = Object.freeze({
  maxListBytes: 16 * 1024 * 1024,
  maxListObjects: 1 << 21,
  maxBundleBytes: 16 * 1024 * 1024,
  maxBundleEntries: 4096,
  maxCarrierPlistBytes: 1024 * 1024,
  maxBundles: 8,
});

/** The newest published version of one carrier bundle. */
export interface CarrierBundleRef {
  name: string;
  /** The iOS version key it is listed under (e.g. "17.5"). */
  version: string;
  /** BundleURL as published (often http:// for bundles from before 2018). */
  url: string;
  /** The archive's digests when the list gives them (`Digest` is SHA-1 or SHA-384 by length, `Digest3` SHA-384). */
  sha1?: Uint8Array;
  sha384?: Uint8Array;
}

export interface SmsGatewayDiscovery {
  /** Where to send the REG-REQ: the first of `gateways`. */
  gateway: string;
  gateways: string[];
  /** The carrier bundle that named it, and the version key it was listed under. */
  bundle: string;
  version: string;
}

export interface DiscoverSmsGatewayOptions {
  limits?: Partial<CarrierGatewayLimits>;
}

const MCC_MNC = /^\d{5,6}$/;
/** iOS version keys; other keys in a bundle's table (ByProductType) are not versions. */
const VERSION = /^\d{1,9}(?:\.\d{1,9}){0,3}$/;
/** Exactly one bundle directory under Payload/; the MCC-MNC symlinks beside it are not read. */
const CARRIER_PLIST = /^Payload\/[^/]+\.bundle\/carrier\.plist$/;
/** SMS destinations: short codes and full numbers. */
const GATEWAY_ADDRESS = /^\+?\d{3,20}$/;
const GATEWAY_KEY = 'PhoneNumberRegistrationGatewayAddress';

/**
 * The gateway for a SIM's MCC-MNC: fetches the carrier list, then the newest bundle of the carrier (then of its
 * MVNOs, as [PY] and [BG] do: without the SIM's ICCID/GID there is no telling them apart) until one names a
 * gateway. Nothing is cached; the caller keeps what it needs.
 */
export async function discoverSmsGateway(http: IdsHttp, mccMnc: string, options: DiscoverSmsGatewayOptions = {}): Promise<SmsGatewayDiscovery> {
  if (typeof mccMnc !== 'string' || !MCC_MNC.test(mccMnc)) throw new EncodeError('bad-mcc-mnc', 'the MCC-MNC must be 5 or 6 digits');
  const limits = { ...DEFAULT_CARRIER_GATEWAY_LIMITS, ...options.limits };
  const list = await download(http, CARRIER_LIST_URL, 'the carrier list');
  const bundles = carrierBundlesFor(list, mccMnc, limits);
  for (const ref of bundles.slice(0, limits.maxBundles)) {
    const ipcc = await download(http, ref.url, `carrier bundle ${ref.name}`);
    await checkDigests(ipcc, ref);
    const gateways = gatewayAddresses(readCarrierPlist(ipcc, limits));
    if (gateways.length > 0) return { gateway: gateways[0]!, gateways, bundle: ref.name, version: ref.version };
  }
  throw new IdsError('no-gateway', `no carrier bundle for ${mccMnc} names an SMS registration gateway`);
}

/**
 * Decodes the carrier list and returns, for `mccMnc`, the newest version of the carrier's own bundle and then of
 * each MVNO bundle (duplicates and names without a downloadable version left out).
 */
export function carrierBundlesFor(list: Uint8Array, mccMnc: string, limits: Partial<CarrierGatewayLimits> = {}): CarrierBundleRef[] {
  const bad = (why: string) => new DecodeError('bad-carrier-list', `carrier list: ${why}`);
  const maxBytes = limits.maxListBytes ?? DEFAULT_CARRIER_GATEWAY_LIMITS.maxListBytes;
  if (list.length > maxBytes) throw bad(`larger than ${maxBytes} bytes`);
  let root: PlistValue;
  try {
    root = parsePlist(list, { maxBytes, maxObjects: limits.maxListObjects ?? DEFAULT_CARRIER_GATEWAY_LIMITS.maxListObjects, maxDepth: 32 });
  } catch (e) {
    throw new DecodeError('bad-carrier-list', 'carrier list: not a property list', { cause: e });
  }
  if (!isDict(root)) throw bad('not a dictionary');
  const byMccMnc = own(root, 'MobileDeviceCarriersByMccMnc');
  const byName = own(root, 'MobileDeviceCarrierBundlesByProductVersion');
  if (!isDict(byMccMnc) || !isDict(byName)) throw bad('the carrier tables are missing');
  const carrier = own(byMccMnc, mccMnc);
  if (carrier === undefined) throw new IdsError('unknown-carrier', `Apple lists no carrier for MCC-MNC ${mccMnc}`);
  if (!isDict(carrier)) throw bad(`the entry for ${mccMnc} is not a dictionary`);

  const names: string[] = [];
  const addName = (v: PlistValue | undefined) => {
    if (v === undefined) return;
    if (typeof v !== 'string' || v.length === 0) throw bad(`a BundleName for ${mccMnc} is not a string`);
    if (!names.includes(v)) names.push(v);
  };
  addName(own(carrier, 'BundleName'));
  const mvnos = own(carrier, 'MVNOs');
  if (mvnos !== undefined) {
    if (!Array.isArray(mvnos)) throw bad(`the MVNOs of ${mccMnc} are not an array`);
    for (const mvno of mvnos) {
      if (!isDict(mvno)) throw bad(`an MVNO of ${mccMnc} is not a dictionary`);
      addName(own(mvno, 'BundleName'));
    }
  }

  const refs: CarrierBundleRef[] = [];
  for (const name of names) {
    const versions = own(byName, name);
    if (versions === undefined) continue;
    if (!isDict(versions)) throw bad(`the versions of ${name} are not a dictionary`);
    const ref = newestVersion(name, versions, bad);
    if (ref) refs.push(ref);
  }
  if (refs.length === 0) throw new IdsError('unknown-carrier', `Apple publishes no carrier bundle for MCC-MNC ${mccMnc}`);
  return refs;
}

function newestVersion(name: string, versions: PlistDict, bad: (why: string) => DecodeError): CarrierBundleRef | undefined {
  let best: { version: string; entry: PlistDict; url: string } | undefined;
  for (const version of Object.keys(versions)) {
    if (!VERSION.test(version)) continue;
    const entry = versions[version];
    if (!isDict(entry)) throw bad(`${name} ${version} is not a dictionary`);
    const url = own(entry, 'BundleURL');
    if (typeof url !== 'string' || url.length === 0) throw bad(`${name} ${version} has no BundleURL`);
    if (!best || compareVersions(version, best.version) > 0) best = { version, entry, url };
  }
  if (!best) return undefined;
  const ref: CarrierBundleRef = { name, version: best.version, url: best.url };
  const digest = own(best.entry, 'Digest');
  const digest3 = own(best.entry, 'Digest3');
  if (digest instanceof Uint8Array && digest.length === 20) ref.sha1 = digest;
  if (digest instanceof Uint8Array && digest.length === 48) ref.sha384 = digest;
  if (digest3 instanceof Uint8Array && digest3.length === 48) ref.sha384 = digest3;
  return ref;
}

/** Orders dotted numeric versions ("12.10" after "12.9", "8" equal to "8.0"); both must match VERSION. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The carrier.plist of an .ipcc, read with every size bounded before it is inflated. */
export function readCarrierPlist(ipcc: Uint8Array, limits: Partial<CarrierGatewayLimits> = {}): PlistDict {
  const l = { ...DEFAULT_CARRIER_GATEWAY_LIMITS, ...limits };
  const bad = (why: string, cause?: unknown) => new DecodeError('bad-carrier-bundle', `carrier bundle: ${why}`, cause === undefined ? undefined : { cause });
  if (ipcc.length > l.maxBundleBytes) throw new DecodeError('carrier-bundle-too-large', `carrier bundle: larger than ${l.maxBundleBytes} bytes`);
  let bytes: Uint8Array;
  try {
    const found = listZip(ipcc, { maxEntries: l.maxBundleEntries }).filter((e) => CARRIER_PLIST.test(e.name));
    if (found.length === 0) throw bad('no Payload/<name>.bundle/carrier.plist');
    // Ambiguous, whether two bundles or two entries of one name (a classic way to show two readers two files).
    if (found.length > 1) throw bad('more than one carrier.plist');
    bytes = readZipEntry(ipcc, found[0]!, l.maxCarrierPlistBytes);
  } catch (e) {
    if (e instanceof DecodeError && e.code === 'zip-too-large') throw new DecodeError('carrier-bundle-too-large', `carrier bundle: ${e.message}`, { cause: e });
    if (e instanceof DecodeError && e.code === 'bad-carrier-bundle') throw e;
    throw bad(`not a readable zip archive (${e instanceof Error ? e.message : String(e)})`, e);
  }
  let plist: PlistValue;
  try {
    plist = parsePlist(bytes, { maxBytes: l.maxCarrierPlistBytes, maxObjects: 100_000, maxDepth: 32 });
  } catch (e) {
    throw bad('carrier.plist is not a property list', e);
  }
  if (!isDict(plist)) throw bad('carrier.plist is not a dictionary');
  return plist;
}

/** PhoneNumberRegistrationGatewayAddress as a list (empty when the bundle has none). */
export function gatewayAddresses(carrier: PlistDict): string[] {
  const v = own(carrier, GATEWAY_KEY);
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((a) => {
    const address = typeof a === 'string' ? a.trim() : undefined;
    if (address === undefined || !GATEWAY_ADDRESS.test(address)) {
      throw new DecodeError('bad-carrier-bundle', `carrier bundle: ${GATEWAY_KEY} holds something that is not a phone number`);
    }
    return address;
  });
}

/** A GET of an Apple URL through the tunnel client, which speaks only TLS: http:// is fetched as https://. */
async function download(http: IdsHttp, url: string, what: string): Promise<Uint8Array> {
  const { host, path } = httpsTarget(url, what);
  const res = await http({ host, method: 'GET', path, headers: {} });
  if (res.status !== 200) throw new IdsError('http-status', `${what}: HTTP ${res.status} ${res.reason}`.trim(), { httpStatus: res.status });
  return res.body;
}

/**
 * The https host and path of a carrier-list URL. Bundles from before 2018 are listed as http:// on
 * appldnld.apple.com (and updates-http.cdn-apple.com); those hosts serve the same paths over https, and the
 * list's digests, checked after the download, cover the bytes either way.
 */
export function httpsTarget(url: string, what = 'carrier bundle'): { host: string; path: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new DecodeError('bad-carrier-list', `${what}: not a URL`, { cause: e });
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '') {
    throw new DecodeError('bad-carrier-list', `${what}: not an http(s) URL`);
  }
  // An http:// URL's explicit port is its plain-HTTP port; the https fetch goes to 443.
  const host = u.protocol === 'https:' ? u.host : u.hostname;
  return { host, path: `${u.pathname}${u.search}` };
}

async function checkDigests(ipcc: Uint8Array, ref: CarrierBundleRef): Promise<void> {
  const checks: Array<[string, Uint8Array | undefined]> = [
    ['SHA-384', ref.sha384],
    ['SHA-1', ref.sha1],
  ];
  for (const [algorithm, expected] of checks) {
    if (!expected) continue;
    const actual = new Uint8Array(await subtle().digest(algorithm, exact(ipcc)));
    if (!equalBytes(actual, expected)) {
      throw new DecodeError('bad-carrier-bundle', `carrier bundle ${ref.name}: the ${algorithm} digest does not match the carrier list`);
    }
  }
}
