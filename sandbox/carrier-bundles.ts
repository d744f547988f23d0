// Apple's carrier list and a carrier bundle, so a client finds the sandbox gateway the way it finds a real carrier's
// (ids.md §2.4, §9 items 1 and 5):
//   GET https://itunes.apple.com/WebObjects/MZStore.woa/wa/com.apple.jingle.appserver.client.MZITunesClientCheck/version
//     → XML plist: MobileDeviceCarriersByMccMnc maps the MCC-MNC of every sandbox phone to SandboxCarrier_US, and
//       MobileDeviceCarrierBundlesByProductVersion lists that bundle under two iOS versions, as Apple lists real ones:
//       an old one on http://appldnld.apple.com and the current one on https://updates.cdn-apple.com, each with the
//       archive's SHA-1 `Digest` (the current one also a SHA-384 `Digest3`), plus a `ByProductType` table.
//   GET <BundleURL> → the .ipcc: a zip of Payload/SandboxCarrier_US.bundle/{Info.plist, carrier.plist} and the
//       MCC-MNC symlink Payload/310260 → SandboxCarrier_US.bundle; carrier.plist (binary, as in iOS images) carries
//       PhoneNumberRegistrationGatewayAddress = the sandbox gateway's short code.
// The archives are built once at start with a fixed timestamp, so their bytes and digests are the same every run.
import { createHash } from 'node:crypto';
import { zipSync } from 'fflate';
import { utf8 } from '../lib/codec/bytes';
import { encodeBinaryPlist, encodeXmlPlist, type PlistDict } from '../lib/codec/plist';
import { DEFAULT_MCC_MNC, type Accounts } from './accounts';
import { HOSTS } from './hosts';
import type { HttpRouter } from './http-service';
import { GATEWAY_ADDRESS } from './sms-gateway';

export const CARRIER_LIST_PATH = '/WebObjects/MZStore.woa/wa/com.apple.jingle.appserver.client.MZITunesClientCheck/version';
export const SANDBOX_CARRIER_BUNDLE = 'SandboxCarrier_US';

/** One published version of the bundle: the iOS version it is listed under and the bundle's own build. */
export interface PublishedBundle {
  iosVersion: string;
  buildVersion: string;
  url: string;
  ipcc: Uint8Array;
}

const ZIP_TIME = new Date('2024-05-13T12:00:00Z');
/** A Unix symlink in a zip: file type 0o12 in the high half of the external attributes, made on Unix (3). */
const SYMLINK = { os: 3, attrs: 0o120755 * 0x10000, level: 0 } as const;

/** The two versions the list publishes, oldest first; the URLs follow Apple's two naming schemes. */
export function buildCarrierBundles(): PublishedBundle[] {
  return [
    {
      iosVersion: '8.0',
      buildVersion: '18.0',
      url: `http://${HOSTS.carrierBundlesLegacy}/iOS8/CarrierBundles/031-00000.20140917.SbXcR/${SANDBOX_CARRIER_BUNDLE}_iPhone.ipcc`,
    },
    {
      iosVersion: '17.0',
      buildVersion: '55.0',
      url: `https://${HOSTS.carrierBundles}/20240513/carrierbundles/032-00000/5A4D1B2E-3C4F-4A6B-8D9E-0F1A2B3C4D5E/${SANDBOX_CARRIER_BUNDLE}_iPhone.ipcc`,
    },
  ].map((b) => ({ ...b, ipcc: ipcc(b.buildVersion) }));
}

function ipcc(buildVersion: string): Uint8Array {
  const dir = `Payload/${SANDBOX_CARRIER_BUNDLE}.bundle`;
  const info: PlistDict = {
    CFBundleDevelopmentRegion: 'English',
    CFBundleIdentifier: `com.apple.${SANDBOX_CARRIER_BUNDLE}`,
    CFBundleInfoDictionaryVersion: '6.0',
    CFBundleName: SANDBOX_CARRIER_BUNDLE,
    CFBundleShortVersionString: buildVersion,
    CFBundleVersion: buildVersion,
  };
  const carrier: PlistDict = {
    CarrierName: 'Sandbox',
    PhoneNumberRegistrationGatewayAddress: GATEWAY_ADDRESS,
  };
  return zipSync(
    {
      [`${dir}/Info.plist`]: encodeXmlPlist(info),
      [`${dir}/carrier.plist`]: encodeBinaryPlist(carrier),
      [`Payload/${DEFAULT_MCC_MNC}`]: [utf8(`${SANDBOX_CARRIER_BUNDLE}.bundle`), SYMLINK],
    },
    { mtime: ZIP_TIME },
  );
}

/** The client-check plist for the phones the sandbox has now. */
export function carrierList(bundles: readonly PublishedBundle[], mccMncs: Iterable<string>): PlistDict {
  const byMccMnc: PlistDict = {};
  for (const m of [...new Set(mccMncs)].sort()) byMccMnc[m] = { BundleName: SANDBOX_CARRIER_BUNDLE };
  const versions: PlistDict = {};
  for (const b of bundles) {
    const entry: PlistDict = { BuildVersion: b.buildVersion, BundleURL: b.url, Digest: digest('sha1', b.ipcc) };
    // Apple added the SHA-384 next to the SHA-1 for newer bundles.
    if (b.url.startsWith('https:')) entry['Digest3'] = digest('sha384', b.ipcc);
    versions[b.iosVersion] = entry;
  }
  versions['ByProductType'] = { iPhone: { FallbackToByProductVersion: true } };
  return {
    MobileDeviceCarriersByMccMnc: byMccMnc,
    MobileDeviceCarrierBundlesByProductVersion: { [SANDBOX_CARRIER_BUNDLE]: versions },
  };
}

function digest(algorithm: 'sha1' | 'sha384', data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(algorithm).update(data).digest());
}

export function addCarrierRoutes(router: HttpRouter, deps: { accounts: Pick<Accounts, 'listPhones'> }): PublishedBundle[] {
  const bundles = buildCarrierBundles();
  router.add({
    host: HOSTS.itunes,
    path: CARRIER_LIST_PATH,
    methods: ['GET'],
    handler: () => ({
      status: 200,
      headers: { 'content-type': 'text/xml; charset=UTF-8' },
      body: encodeXmlPlist(carrierList(bundles, [DEFAULT_MCC_MNC, ...deps.accounts.listPhones().map((p) => p.mccMnc)])),
    }),
  });
  for (const b of bundles) {
    const url = new URL(b.url);
    router.add({
      host: url.hostname,
      path: url.pathname,
      methods: ['GET'],
      // An http:// bundle is served over https too: clients that only speak TLS fetch it there.
      schemes: url.protocol === 'http:' ? ['http', 'https'] : ['https'],
      handler: () => ({ status: 200, headers: { 'content-type': 'application/octet-stream' }, body: b.ipcc }),
    });
  }
  return bundles;
}
