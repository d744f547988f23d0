// Carrier gateway discovery end to end: the sandbox publishes Apple's carrier list on itunes.apple.com and a carrier
// bundle on the carrier-bundle hosts; lib/ids finds the gateway through the real bridge (tunnel + TLS against the
// sandbox CA), the client's phone step uses it when given the SIM's MCC-MNC, and so does the CLI.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parseOptions } from '../../cli/options';
import { decodeXmlPlist, type PlistDict } from '../../lib/codec/plist';
import { carrierBundlesFor, CARRIER_LIST_URL, discoverSmsGateway, httpsTarget, readCarrierPlist } from '../../lib/ids/carrier-gateway';
import { IdsError } from '../../lib/ids/errors';
import { createTunnelHttp, type TunnelHttp } from '../../lib/ids/transport';
import { SANDBOX_CARRIER_BUNDLE } from '../../sandbox/carrier-bundles';
import { GATEWAY_ADDRESS } from '../../sandbox/sms-gateway';
import { startE2eWorld, type E2eWorld } from './e2e-helpers';
import { appleRequest, tempDir } from './sandbox-helpers';

const BOB = '+15555550142';
const CAROL = '+15555550143';
const DAVE = '+15555550144';
const ROOT = path.resolve(__dirname, '../..');

let world: E2eWorld;
let http: TunnelHttp;

beforeAll(async () => {
  world = await startE2eWorld({
    phones: [
      { number: BOB, mccMnc: '310410' },
      { number: CAROL, mccMnc: '20404' },
      { number: DAVE },
    ],
  });
  http = createTunnelHttp({ bridgeUrl: world.proxy.url, WebSocketImpl: WebSocket, trustedRoots: [world.sandbox.caPem], connectTimeoutMs: 10_000, timeoutMs: 20_000 });
});

afterAll(async () => {
  http?.close();
  await world?.close();
});

const tunnelsTo = (host: string) => world.proxy.tunnels.filter((t) => t.path.includes(`/${host}:443`)).length;

describe('the sandbox carrier list and bundles', () => {
  it("lists every phone's MCC-MNC under the sandbox bundle, in two versions", async () => {
    const res = await appleRequest(world.sandbox, CARRIER_LIST_URL);
    expect(res.status).toBe(200);
    const list = decodeXmlPlist(new Uint8Array(res.body)) as PlistDict;
    expect(Object.keys(list['MobileDeviceCarriersByMccMnc'] as PlistDict).sort()).toEqual(['20404', '310260', '310410']);
    const versions = (list['MobileDeviceCarrierBundlesByProductVersion'] as Record<string, PlistDict>)[SANDBOX_CARRIER_BUNDLE]!;
    expect(Object.keys(versions).sort()).toEqual(['17.0', '8.0', 'ByProductType']);
    // The newest goes by number, and its digests are of the bytes served.
    const [ref] = carrierBundlesFor(new Uint8Array(res.body), '310410');
    expect(ref).toMatchObject({ name: SANDBOX_CARRIER_BUNDLE, version: '17.0' });
    expect(ref!.url).toMatch(/^https:\/\/updates\.cdn-apple\.com\/.+\/SandboxCarrier_US_iPhone\.ipcc$/);
    const ipcc = await appleRequest(world.sandbox, ref!.url);
    expect(new Uint8Array(createHash('sha1').update(ipcc.body).digest())).toEqual(ref!.sha1);
    expect(new Uint8Array(createHash('sha384').update(ipcc.body).digest())).toEqual(ref!.sha384);
    expect(readCarrierPlist(new Uint8Array(ipcc.body))).toMatchObject({ PhoneNumberRegistrationGatewayAddress: GATEWAY_ADDRESS });
  });

  it('serves the old http:// bundle over plain HTTP and over https', async () => {
    const list = decodeXmlPlist(new Uint8Array((await appleRequest(world.sandbox, CARRIER_LIST_URL)).body)) as PlistDict;
    const versions = (list['MobileDeviceCarrierBundlesByProductVersion'] as Record<string, Record<string, PlistDict>>)[SANDBOX_CARRIER_BUNDLE]!;
    const url = versions['8.0']!['BundleURL'] as string;
    expect(url).toMatch(/^http:\/\/appldnld\.apple\.com\//);
    const plain = await appleRequest(world.sandbox, url);
    const secure = await appleRequest(world.sandbox, url.replace(/^http:/, 'https:'));
    expect(plain.status).toBe(200);
    expect(secure.body.equals(plain.body)).toBe(true);
    expect(new Uint8Array(createHash('sha1').update(plain.body).digest())).toEqual(versions['8.0']!['Digest']);
    // Through the tunnel (TLS only), as lib/ids would fetch it.
    const { host, path: p } = httpsTarget(url);
    const viaTunnel = await http({ host, method: 'GET', path: p, headers: {} });
    expect(viaTunnel.status).toBe(200);
    expect(readCarrierPlist(viaTunnel.body)).toMatchObject({ PhoneNumberRegistrationGatewayAddress: GATEWAY_ADDRESS });
  });
});

describe('discoverSmsGateway through the bridge', () => {
  it('finds the sandbox gateway for each phone', async () => {
    for (const mccMnc of ['310410', '20404', '310260']) {
      expect(await discoverSmsGateway(http, mccMnc)).toEqual({
        gateway: GATEWAY_ADDRESS,
        gateways: [GATEWAY_ADDRESS],
        bundle: SANDBOX_CARRIER_BUNDLE,
        version: '17.0',
      });
    }
  });

  it('an MCC-MNC no sandbox phone has is an unknown carrier', async () => {
    await expect(discoverSmsGateway(http, '99999')).rejects.toMatchObject({ code: 'unknown-carrier' });
  });
});

describe('phone registration with the SIM’s MCC-MNC', () => {
  it('sends the REG-REQ to the discovered gateway and registers', async () => {
    const d = await world.device('bob');
    const before = tunnelsTo('itunes.apple.com');
    const first = await d.client.register({ phone: { mccMnc: '310410' } });
    if (first.status !== 'sms-required') throw new Error(`expected an SMS step, got ${first.status}`);
    expect(first.gateway).toBe(GATEWAY_ADDRESS);
    expect(tunnelsTo('itunes.apple.com')).toBeGreaterThan(before);
    expect(tunnelsTo('updates.cdn-apple.com')).toBeGreaterThan(0);
    expect(await d.store.kv.get('client/phone-request')).toMatchObject({ requestId: expect.any(Number), gateway: GATEWAY_ADDRESS, mccMnc: '310410' });
    const sms = await world.sandbox.gateway.receive(BOB, first.text, first.gateway);
    const done = await d.client.register({ phone: { regResp: sms.reply! } });
    expect(done).toMatchObject({ status: 'registered', handles: [`tel:${BOB}`] });
    await d.close();
  });

  it('fails with unknown-carrier for an MCC-MNC Apple (the sandbox) does not list', async () => {
    const d = await world.device('carol');
    const e = await d.client.register({ phone: { mccMnc: '99999' } }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(IdsError);
    expect(e).toMatchObject({ code: 'unknown-carrier' });
    await d.close();
  });

  it('without an MCC-MNC, sandbox mode keeps its default gateway and asks no carrier list', async () => {
    const d = await world.device('carol');
    const before = tunnelsTo('itunes.apple.com');
    const first = await d.client.register({ phone: {} });
    expect(first).toMatchObject({ status: 'sms-required', gateway: GATEWAY_ADDRESS });
    expect(tunnelsTo('itunes.apple.com')).toBe(before);
    await d.close();
  });
});

describe('the CLI', () => {
  /** `tsx cli/main.ts <args>`; `onLine` sees each stdout line and may answer on stdin. */
  const run = (dataDir: string, args: string[], onLine: (line: string) => Promise<string | undefined>) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(
        path.join(ROOT, 'node_modules/.bin/tsx'),
        ['cli/main.ts', ...args, '--bridge', world.proxy.url, '--ca', world.sandbox.caFile, '--relay-code', world.relayCode, '--data-dir', dataDir],
        { cwd: ROOT, env: { ...process.env, CERULEAN_PASSPHRASE: 'carrier gateway test' } },
      );
      let out = '';
      let err = '';
      let seen = 0;
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const lines = out.split('\n');
        for (const line of lines.slice(seen, -1)) void onLine(line).then((answer) => answer !== undefined && child.stdin.write(`${answer}\n`));
        seen = lines.length - 1;
      });
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('exit', (code) => resolve({ code, out, err }));
    });

  it('register --phone --mcc-mnc shows the discovered gateway and registers', async () => {
    const tmp = await tempDir('cerulean-carrier-cli-');
    try {
      const gateways: string[] = [];
      const result = await run(path.join(tmp.dir, 'dave'), ['register', '--phone', '--mcc-mnc', '310260'], async (line) => {
        if (!line.startsWith('{"regReq"')) return undefined;
        const { regReq, gateway } = JSON.parse(line) as { regReq: string; gateway: string };
        gateways.push(gateway);
        return (await world.sandbox.gateway.receive(DAVE, regReq, gateway)).reply ?? undefined;
      });
      expect(result.code, result.err).toBe(0);
      expect(gateways).toEqual([GATEWAY_ADDRESS]);
      expect(result.out).toContain('"status":"registered"');
    } finally {
      await tmp.remove();
    }
  });

  it('parses --mcc-mnc, and refuses it malformed or misplaced', async () => {
    const common = ['--bridge', world.proxy.url, '--ca', world.sandbox.caFile];
    const env: NodeJS.ProcessEnv = { ...process.env, CERULEAN_PASSPHRASE: 'carrier gateway test' };
    expect(await parseOptions(['register', '--phone', '--mcc-mnc', '310260', ...common], env)).toMatchObject({ phone: true, mccMnc: '310260' });
    for (const args of [['register', '--phone', '--mcc-mnc', '3102'], ['register', '--phone', '--mcc-mnc', '31026x'], ['listen', '--mcc-mnc', '310260']]) {
      await expect(parseOptions([...args, ...common], env)).rejects.toThrow(/--mcc-mnc/);
    }
  });
});
