import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { utf8 } from '../../../lib/codec/bytes';
import { encodeBinaryPlist, encodeXmlPlist, type PlistDict } from '../../../lib/codec/plist';
import { listZip } from '../../../lib/codec/zip';
import { DecodeError, EncodeError } from '../../../lib/errors';
import {
  CARRIER_LIST_URL,
  carrierBundlesFor,
  compareVersions,
  discoverSmsGateway,
  gatewayAddresses,
  httpsTarget,
  readCarrierPlist,
} from '../../../lib/ids/carrier-gateway';
import { IdsError } from '../../../lib/ids/errors';
import type { IdsHttpRequest } from '../../../lib/ids/transport';
import { fakeHttp, response } from './helpers';

const LIST_PATH = '/WebObjects/MZStore.woa/wa/com.apple.jingle.appserver.client.MZITunesClientCheck/version?languageCode=en';
const CDN = 'https://updates.cdn-apple.com/20240513/carrierbundles/032-23478/E247835C-8950-4A31-A430-A6DB27A40158';

// A fixed excerpt in the shape of Apple's list: version keys are iOS versions (12.10 is newer than 12.9, which a
// float comparison as in [PY]/[BG] gets wrong), ByProductType is not a version, MVNOs follow the carrier's own.
const LIST_XML = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>MobileDeviceCarriersByMccMnc</key>
  <dict>
    <key>310260</key><dict><key>BundleName</key><string>TMobile_US</string></dict>
    <key>20404</key>
    <dict>
      <key>BundleName</key><string>Vodafone_nl</string>
      <key>MVNOs</key>
      <array>
        <dict><key>BundleName</key><string>Truphone_US</string><key>GID1</key><string>547275554B3030656E</string></dict>
        <dict><key>BundleName</key><string>Vodafone_nl</string><key>ICCID</key><string>89314404</string></dict>
        <dict><key>ICCID</key><string>891480</string></dict>
      </array>
    </dict>
    <key>31000</key><dict><key>MVNOs</key><array><dict><key>BundleName</key><string>Truphone_US</string></dict></array></dict>
    <key>99999</key><dict><key>BundleName</key><string>Unpublished_XX</string></dict>
  </dict>
  <key>MobileDeviceCarrierBundlesByProductVersion</key>
  <dict>
    <key>TMobile_US</key>
    <dict>
      <key>9.3</key><dict><key>BuildVersion</key><string>24.1</string><key>BundleURL</key><string>http://appldnld.apple.com/iOS9.3/carrierbundles/031-34684-20160520-406EA30C-1DEC-11E6-BAC7-A12A5529DBDF/TMobile_US_iPhone.ipcc</string></dict>
      <key>12.9</key><dict><key>BuildVersion</key><string>33.1</string><key>BundleURL</key><string>https://updates.cdn-apple.com/2019/carrierbundles/old/TMobile_US_iPhone.ipcc</string></dict>
      <key>12.10</key><dict><key>BuildVersion</key><string>33.2</string><key>BundleURL</key><string>${CDN}/TMobile_US_iPhone.ipcc</string></dict>
      <key>ByProductType</key><dict><key>iPhone</key><dict><key>FallbackToByProductVersion</key><true/></dict></dict>
    </dict>
    <key>Vodafone_nl</key>
    <dict><key>8.0</key><dict><key>BundleURL</key><string>http://appldnld.apple.com/iOS8/CarrierBundles/031-04817.20140917.otuUK/Vodafone_nl_iPhone.ipcc</string></dict></dict>
    <key>Truphone_US</key>
    <dict><key>17.5</key><dict><key>BundleURL</key><string>${CDN}/Truphone_US_iPhone.ipcc</string></dict></dict>
  </dict>
</dict>
</plist>
`;

function ipcc(carrier: PlistDict | Uint8Array, bundle = 'TMobile_US', format: 'binary' | 'xml' = 'binary'): Uint8Array {
  const plist = carrier instanceof Uint8Array ? carrier : format === 'binary' ? encodeBinaryPlist(carrier) : encodeXmlPlist(carrier);
  return zipSync({
    [`Payload/${bundle}.bundle/Info.plist`]: encodeXmlPlist({ CFBundleIdentifier: `com.apple.${bundle}`, CFBundleVersion: '33.2' }),
    [`Payload/${bundle}.bundle/carrier.plist`]: plist,
    'Payload/310260': utf8(`${bundle}.bundle`),
  });
}

/** `zip` with every occurrence of `from` (same length) replaced: entry names in local and central headers. */
function renamed(zip: Uint8Array, from: string, to: string): Uint8Array {
  const text = Array.from(zip, (c) => String.fromCharCode(c)).join('').split(from).join(to);
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

async function digest(algorithm: 'SHA-1' | 'SHA-384', data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest(algorithm, data.slice()));
}

/** An IdsHttp serving `files` by https URL (http:// URLs are asked for over https) and 404 for anything else. */
function server(files: Record<string, Uint8Array>) {
  return fakeHttp((req: IdsHttpRequest) => {
    const body = files[`https://${req.host}${req.path}`];
    return body ? response(body) : response(new Uint8Array(0), 404);
  });
}

function list(dict: PlistDict): Uint8Array {
  return encodeXmlPlist(dict);
}

/** A one-carrier list: 310260 → the names, each with one version whose bundle is at `${CDN}/<name>.ipcc`. */
function carrierList(names: string[], extra: (name: string) => PlistDict = () => ({})): PlistDict {
  const [own, ...mvnos] = names;
  return {
    MobileDeviceCarriersByMccMnc: { '310260': { BundleName: own!, MVNOs: mvnos.map((n) => ({ BundleName: n })) } },
    MobileDeviceCarrierBundlesByProductVersion: Object.fromEntries(
      names.map((n) => [n, { '17.0': { BuildVersion: '55.0', BundleURL: `${CDN}/${n}.ipcc`, ...extra(n) } }]),
    ),
  };
}

function expectError(f: () => unknown, type: typeof DecodeError | typeof IdsError | typeof EncodeError, code: string): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    expect((e as DecodeError).code).toBe(code);
    return;
  }
  expect.unreachable('no error');
}

async function expectRejection(p: Promise<unknown>, type: typeof DecodeError | typeof IdsError | typeof EncodeError, code: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(type);
  expect((e as DecodeError).code).toBe(code);
}

describe('the carrier list', () => {
  const bytes = utf8(LIST_XML);

  it('picks the newest version of the carrier bundle', () => {
    expect(carrierBundlesFor(bytes, '310260')).toEqual([{ name: 'TMobile_US', version: '12.10', url: `${CDN}/TMobile_US_iPhone.ipcc` }]);
  });

  it("lists the carrier's own bundle first, then its MVNOs', once each", () => {
    expect(carrierBundlesFor(bytes, '20404').map((r) => [r.name, r.version])).toEqual([
      ['Vodafone_nl', '8.0'],
      ['Truphone_US', '17.5'],
    ]);
    expect(carrierBundlesFor(bytes, '31000').map((r) => r.name)).toEqual(['Truphone_US']);
  });

  it('unknown MCC-MNCs and unpublished bundles are unknown carriers', () => {
    expectError(() => carrierBundlesFor(bytes, '310410'), IdsError, 'unknown-carrier');
    expectError(() => carrierBundlesFor(bytes, '99999'), IdsError, 'unknown-carrier');
    // A key only present on Object.prototype is no carrier.
    expectError(() => carrierBundlesFor(bytes, 'constructor'), IdsError, 'unknown-carrier');
  });

  it('takes the digests by key and length', () => {
    const d20 = new Uint8Array(20).fill(1);
    const d48 = new Uint8Array(48).fill(2);
    const of = (entry: PlistDict) => carrierBundlesFor(list(carrierList(['A'], () => entry)), '310260')[0]!;
    expect(of({ Digest: d20 })).toMatchObject({ sha1: d20 });
    expect(of({ Digest: d48 })).toMatchObject({ sha384: d48 });
    expect(of({ Digest: d20, Digest3: d48 })).toMatchObject({ sha1: d20, sha384: d48 });
    expect(of({ Digest: new Uint8Array(16) })).not.toHaveProperty('sha1');
  });

  it('orders versions numerically, part by part', () => {
    expect(compareVersions('12.10', '12.9')).toBe(1);
    expect(compareVersions('8', '8.0')).toBe(0);
    expect(compareVersions('9.3', '10.0')).toBe(-1);
    expect(compareVersions('27.0', '26.4.1')).toBe(1);
    expect(compareVersions('1.0.0.1', '1')).toBe(1);
  });

  it('refuses malformed lists with bad-carrier-list', () => {
    const bad = (b: Uint8Array | PlistDict) => expectError(() => carrierBundlesFor(b instanceof Uint8Array ? b : list(b), '310260'), DecodeError, 'bad-carrier-list');
    bad(utf8('not a plist'));
    bad(encodeXmlPlist(['an', 'array']));
    bad({ MobileDeviceCarriersByMccMnc: {} });
    bad({ MobileDeviceCarriersByMccMnc: { '310260': 'TMobile_US' }, MobileDeviceCarrierBundlesByProductVersion: {} });
    bad({ MobileDeviceCarriersByMccMnc: { '310260': { BundleName: 7 } }, MobileDeviceCarrierBundlesByProductVersion: {} });
    bad({ MobileDeviceCarriersByMccMnc: { '310260': { MVNOs: {} } }, MobileDeviceCarrierBundlesByProductVersion: {} });
    bad({ MobileDeviceCarriersByMccMnc: { '310260': { MVNOs: ['x'] } }, MobileDeviceCarrierBundlesByProductVersion: {} });
    bad({ MobileDeviceCarriersByMccMnc: { '310260': { BundleName: 'A' } }, MobileDeviceCarrierBundlesByProductVersion: { A: [] } });
    bad({ MobileDeviceCarriersByMccMnc: { '310260': { BundleName: 'A' } }, MobileDeviceCarrierBundlesByProductVersion: { A: { '1.0': 'url' } } });
    bad({ MobileDeviceCarriersByMccMnc: { '310260': { BundleName: 'A' } }, MobileDeviceCarrierBundlesByProductVersion: { A: { '1.0': { BuildVersion: '1' } } } });
    expectError(() => carrierBundlesFor(bytes, '310260', { maxListBytes: 100 }), DecodeError, 'bad-carrier-list');
    expectError(() => carrierBundlesFor(bytes, '310260', { maxListObjects: 10 }), DecodeError, 'bad-carrier-list');
  });

  it('random and mutated lists give only typed errors', () => {
    const typed = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e instanceof DecodeError || e instanceof IdsError).toBe(true);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => typed(() => carrierBundlesFor(b, '310260'))), { numRuns: 100 });
    const mccMncs = ['310260', '20404', '31000', '99999'];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0x20, max: 0x7e })), { minLength: 1, maxLength: 8 }),
        fc.constantFrom(...mccMncs),
        (edits, mccMnc) => {
          const b = bytes.slice();
          for (const [at, v] of edits) b[at] = v;
          typed(() => carrierBundlesFor(b, mccMnc));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('the carrier bundle', () => {
  it('reads carrier.plist in binary or XML form', () => {
    const carrier = { CarrierName: 'T-Mobile', PhoneNumberRegistrationGatewayAddress: '22223333' };
    expect(readCarrierPlist(ipcc(carrier))).toEqual(carrier);
    expect(readCarrierPlist(ipcc(carrier, 'TMobile_US', 'xml'))).toEqual(carrier);
  });

  it('reads the gateway as a string or an array', () => {
    expect(gatewayAddresses({ PhoneNumberRegistrationGatewayAddress: '22223333' })).toEqual(['22223333']);
    expect(gatewayAddresses({ PhoneNumberRegistrationGatewayAddress: [' +447786205094 ', '28818773'] })).toEqual(['+447786205094', '28818773']);
    expect(gatewayAddresses({ CarrierName: 'none' })).toEqual([]);
    for (const v of [7, [], ['22223333', 5], 'not a number', '', '12', { a: '1' }]) {
      if (Array.isArray(v) && v.length === 0) expect(gatewayAddresses({ PhoneNumberRegistrationGatewayAddress: v })).toEqual([]);
      else expectError(() => gatewayAddresses({ PhoneNumberRegistrationGatewayAddress: v }), DecodeError, 'bad-carrier-bundle');
    }
  });

  it('refuses archives that are not carrier bundles', () => {
    const bad = (b: Uint8Array) => expectError(() => readCarrierPlist(b), DecodeError, 'bad-carrier-bundle');
    const good = ipcc({ PhoneNumberRegistrationGatewayAddress: '22223333' });
    bad(new Uint8Array(0));
    bad(utf8('PK\x03\x04 but nothing else'));
    bad(good.subarray(0, good.length - 30));
    bad(zipSync({ 'Payload/A.bundle/Info.plist': utf8('x') }));
    bad(zipSync({ 'carrier.plist': encodeBinaryPlist({}) }));
    bad(zipSync({ 'Payload/A.bundle/sub/carrier.plist': encodeBinaryPlist({}) }));
    bad(zipSync({ 'Payload/A.bundle/carrier.plist': encodeBinaryPlist({}), 'Payload/B.bundle/carrier.plist': encodeBinaryPlist({}) }));
    const twoBundles = zipSync({ 'Payload/A.bundle/carrier.plist': encodeBinaryPlist({}), 'Payload/B.bundle/carrier.plist': encodeBinaryPlist({}) });
    bad(renamed(twoBundles, 'B.bundle', 'A.bundle'));
    bad(ipcc(utf8('<plist><dict><key>oops</dict>')));
    bad(ipcc(encodeBinaryPlist(['an array'])));
    // One flipped byte inside carrier.plist's compressed data.
    const entry = listZip(good).find((e) => e.name.endsWith('/carrier.plist'))!;
    const corrupt = good.slice();
    corrupt[entry.localOffset + 30 + entry.name.length + 2]! ^= 0xff;
    bad(corrupt);
  });

  it('refuses zip bombs and oversized archives before inflating them', () => {
    const tooLarge = (b: Uint8Array, limits = {}) => expectError(() => readCarrierPlist(b, limits), DecodeError, 'carrier-bundle-too-large');
    const big = ipcc(new Uint8Array(2 * 1024 * 1024));
    tooLarge(big);
    tooLarge(ipcc({ PhoneNumberRegistrationGatewayAddress: '22223333' }), { maxBundleBytes: 100 });
    const many: Record<string, Uint8Array> = { 'Payload/A.bundle/carrier.plist': encodeBinaryPlist({}) };
    for (let i = 0; i < 20; i++) many[`Payload/A.bundle/${i}.png`] = new Uint8Array(1);
    tooLarge(zipSync(many), { maxBundleEntries: 10 });
    // A carrier.plist declared small that inflates to 8 MiB.
    const bomb = zipSync({ 'Payload/A.bundle/carrier.plist': new Uint8Array(8 * 1024 * 1024) }, { level: 9 });
    const view = new DataView(bomb.buffer);
    view.setUint32(view.getUint32(bomb.length - 22 + 16, true) + 24, 64, true);
    tooLarge(bomb);
  });

  it('mutated bundles give only typed errors', () => {
    const base = ipcc({ CarrierName: 'T-Mobile', PhoneNumberRegistrationGatewayAddress: ['22223333', '+15555550100'] });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (edits) => {
        const b = base.slice();
        for (const [at, v] of edits) b[at] = v;
        try {
          gatewayAddresses(readCarrierPlist(b));
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('discoverSmsGateway', () => {
  it('fetches the list, then the newest bundle, and checks its digests', async () => {
    const bundle = ipcc({ PhoneNumberRegistrationGatewayAddress: '22223333' });
    const dict = carrierList(['TMobile_US']);
    const versions = (dict['MobileDeviceCarrierBundlesByProductVersion'] as Record<string, PlistDict>)['TMobile_US']!;
    versions['17.0'] = { BundleURL: `${CDN}/TMobile_US.ipcc`, Digest: await digest('SHA-1', bundle), Digest3: await digest('SHA-384', bundle) };
    versions['9.0'] = { BundleURL: 'https://updates.cdn-apple.com/never/fetched.ipcc' };
    const http = server({ [CARRIER_LIST_URL]: list(dict), [`${CDN}/TMobile_US.ipcc`]: bundle });
    expect(await discoverSmsGateway(http, '310260')).toEqual({ gateway: '22223333', gateways: ['22223333'], bundle: 'TMobile_US', version: '17.0' });
    expect(http.requests.map((r) => [r.method, r.host, r.path])).toEqual([
      ['GET', 'itunes.apple.com', LIST_PATH],
      ['GET', 'updates.cdn-apple.com', '/20240513/carrierbundles/032-23478/E247835C-8950-4A31-A430-A6DB27A40158/TMobile_US.ipcc'],
    ]);
  });

  it('refuses a bundle whose digest does not match the list', async () => {
    const bundle = ipcc({ PhoneNumberRegistrationGatewayAddress: '22223333' });
    const entries: PlistDict[] = [{ Digest: new Uint8Array(20) }, { Digest: await digest('SHA-1', bundle), Digest3: new Uint8Array(48) }];
    for (const entry of entries) {
      const http = server({ [CARRIER_LIST_URL]: list(carrierList(['A'], () => entry)), [`${CDN}/A.ipcc`]: bundle });
      await expectRejection(discoverSmsGateway(http, '310260'), DecodeError, 'bad-carrier-bundle');
    }
  });

  it('fetches an http:// bundle over https from the same host and path', async () => {
    expect(httpsTarget('http://appldnld.apple.com/iOS8/CarrierBundles/x/A_iPhone.ipcc')).toEqual({
      host: 'appldnld.apple.com',
      path: '/iOS8/CarrierBundles/x/A_iPhone.ipcc',
    });
    expect(httpsTarget('http://appldnld.apple.com:80/a.ipcc?x=1').host).toBe('appldnld.apple.com');
    expect(httpsTarget('https://updates.cdn-apple.com:8443/a.ipcc').host).toBe('updates.cdn-apple.com:8443');
    for (const url of ['ftp://appldnld.apple.com/a.ipcc', 'https://user:pw@updates.cdn-apple.com/a', 'not a url', '/relative']) {
      expectError(() => httpsTarget(url), DecodeError, 'bad-carrier-list');
    }
    const http = server({
      [CARRIER_LIST_URL]: utf8(LIST_XML),
      'https://appldnld.apple.com/iOS8/CarrierBundles/031-04817.20140917.otuUK/Vodafone_nl_iPhone.ipcc': ipcc({ PhoneNumberRegistrationGatewayAddress: '3669' }, 'Vodafone_nl'),
    });
    expect(await discoverSmsGateway(http, '20404')).toMatchObject({ gateway: '3669', bundle: 'Vodafone_nl', version: '8.0' });
  });

  it("falls back to the MVNOs' bundles, and returns every address of an array", async () => {
    const http = server({
      [CARRIER_LIST_URL]: list(carrierList(['Own', 'Mvno1', 'Mvno2'])),
      [`${CDN}/Own.ipcc`]: ipcc({ CarrierName: 'no gateway here' }, 'Own'),
      [`${CDN}/Mvno1.ipcc`]: ipcc({ PhoneNumberRegistrationGatewayAddress: ['+447786205094', '28818773'] }, 'Mvno1'),
    });
    expect(await discoverSmsGateway(http, '310260')).toEqual({
      gateway: '+447786205094',
      gateways: ['+447786205094', '28818773'],
      bundle: 'Mvno1',
      version: '17.0',
    });
    expect(http.requests).toHaveLength(3);
  });

  it('no-gateway when no bundle names one, trying at most maxBundles', async () => {
    const names = ['A', 'B', 'C'];
    const files: Record<string, Uint8Array> = { [CARRIER_LIST_URL]: list(carrierList(names)) };
    for (const n of names) files[`${CDN}/${n}.ipcc`] = ipcc({ CarrierName: n }, n);
    const http = server(files);
    await expectRejection(discoverSmsGateway(http, '310260'), IdsError, 'no-gateway');
    expect(http.requests).toHaveLength(4);
    const limited = server(files);
    await expectRejection(discoverSmsGateway(limited, '310260', { limits: { maxBundles: 1 } }), IdsError, 'no-gateway');
    expect(limited.requests).toHaveLength(2);
  });

  it('unknown-carrier for an MCC-MNC Apple does not list', async () => {
    const http = server({ [CARRIER_LIST_URL]: utf8(LIST_XML) });
    await expectRejection(discoverSmsGateway(http, '310410'), IdsError, 'unknown-carrier');
    expect(http.requests).toHaveLength(1);
  });

  it('HTTP failures are IdsError http-status', async () => {
    const noList = server({});
    const e = await discoverSmsGateway(noList, '310260').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(IdsError);
    expect(e).toMatchObject({ code: 'http-status', httpStatus: 404 });
    await expectRejection(discoverSmsGateway(server({ [CARRIER_LIST_URL]: utf8(LIST_XML) }), '310260'), IdsError, 'http-status');
  });

  it('checks the MCC-MNC before asking anything', async () => {
    const http = server({});
    for (const m of ['3102', '3102600', '31026a', '', ' 310260']) await expectRejection(discoverSmsGateway(http, m), EncodeError, 'bad-mcc-mnc');
    expect(http.requests).toHaveLength(0);
  });
});
