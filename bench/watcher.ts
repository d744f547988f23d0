// `tsx bench/watcher.ts [--devices 1000] [--wakes 200]`: what one push watcher process holds and how fast it wakes.
//
//   memory   N devices (push certificates from the sandbox's albert, tokens from one courier connect each) enrolled
//            in a watcher running as its own process (`bridge/watcher/main.ts`), every one with an idle courier
//            connection to the sandbox's courier: the watcher's RSS before enrolling and once all N are watching,
//            and the difference per device.
//   latency  one notification at a time on com.apple.madrid, each to a different enrolled device, handed to the
//            courier in this process (its provider path, minus the HTTP), until the Web Push arrives at a local
//            endpoint that verifies its VAPID JWT and decrypts it: p50/p99 of that interval.
//
// Prints one JSON document on stdout; progress goes to stderr. Exit code 0 when every phase ran, 1 on any failure;
// the sandbox, the watcher process and temp dirs are removed either way.
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createLogger } from '../bridge/log';
import { activateDevice } from '../lib/apns/albert';
import { CourierClient } from '../lib/apns/courier-client';
import { HostMap } from '../bridge/host-map';
import { Allowlist } from '../bridge/allowlist';
import { defaultConnector, defaultResolver } from '../bridge/config';
import { courierDialer } from '../bridge/watcher/courier-dial';
import { DialGate } from '../bridge/watcher/dial-gate';
import { MADRID_TOPIC } from '../lib/imessage/ports';
import type { HttpRequest } from '../lib/net/http';
import type { HttpResponse } from '../lib/net/http-response';
import { enroll, type Enrollment, type WatcherPushCredentials } from '../lib/push/watcher-client';
import type { Sandbox } from '../sandbox/sandbox';
import { protocolServices } from '../sandbox/services';
import { appleRequest, startTestSandbox, tempDir } from '../tests/integration/sandbox-helpers';
import { startPushEndpoint, type ReceivedPush, type TestSubscription } from '../tests/integration/watcher-helpers';
import { freePort, rssKiB, spawnChild, stopChild } from './bridge-procs';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    wakes: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
  },
});
const DEVICES = Number(args.devices);
const WAKES = Math.min(Number(args.wakes), DEVICES);
const CONCURRENCY = Number(args.concurrency);
const root = path.resolve(import.meta.dirname, '..');
const progress = (msg: string) => process.stderr.write(`[bench:watcher] ${msg}\n`);

interface Device {
  push: WatcherPushCredentials & { key: Uint8Array };
  subscription: TestSubscription;
  enrollment?: Enrollment;
}

/** Runs `work` over `items`, `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i]!, i);
      }
    }),
  );
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** albert through Node's HTTPS straight to the sandbox (what activateDevice needs, without a bridge). */
function albertHttp(sandbox: Sandbox): (req: HttpRequest) => Promise<HttpResponse> {
  return async (req) => {
    const headers = Object.fromEntries(Array.isArray(req.headers) ? req.headers : Object.entries(req.headers ?? {}));
    const res = await appleRequest(sandbox, `https://albert.apple.com${req.path}`, { method: req.method, headers, ...(req.body ? { body: req.body } : {}) });
    const out: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v : [String(v)];
    return { status: res.status, reason: '', headers: out, body: new Uint8Array(res.body) };
  };
}

async function makeDevices(sandbox: Sandbox, subscribe: () => TestSubscription): Promise<Device[]> {
  const http = albertHttp(sandbox);
  const connect = courierDialer(null, {
    hostMap: new HostMap(sandbox.hostMap.hosts),
    allowlist: new Allowlist([]),
    resolver: defaultResolver,
    connector: defaultConnector,
    ca: sandbox.caPem,
    hostCount: 50,
    timeoutMs: 10_000,
    gate: new DialGate(CONCURRENCY),
    signal: new AbortController().signal,
  });
  const devices: Device[] = [];
  await pool(Array.from({ length: DEVICES }), CONCURRENCY, async (_, i) => {
    const d = await activateDevice({ http, extractable: true });
    const client = new CourierClient({ connect, credentials: { privateKey: d.privateKey, certificate: d.certificate }, topics: [MADRID_TOPIC], onNotification: () => {} });
    client.start();
    const token = await client.whenConnected();
    await client.close();
    const key = new Uint8Array(await crypto.subtle.exportKey('pkcs8', d.privateKey));
    devices[i] = { push: { key, certificate: d.certificate, token }, subscription: subscribe() };
    if ((i + 1) % 200 === 0) progress(`${i + 1} devices activated`);
  });
  return devices;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}

async function startWatcherProcess(sandbox: Sandbox, dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawnChild(
    process.execPath,
    [
      '--import', 'tsx', 'bridge/watcher/main.ts',
      '--port', String(port),
      '--data-dir', dataDir,
      '--host-map', sandbox.hostMapFile,
      '--ca-file', sandbox.caFile,
      '--allow-http-loopback-endpoints',
      '--enroll-per-minute', '1000000',
      '--max-enrollments', String(DEVICES + 10),
      '--log-level', 'warn',
    ],
    root,
  );
  // Its log lines are not needed, but an unread pipe would stall it once full.
  child.stdout?.resume();
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) return { child, url };
    if (child.exitCode !== null || Date.now() > until) throw new Error('the watcher did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The smallest of a few samples a second apart: RSS settles as the collector catches up. */
async function settledRss(pid: number): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    best = Math.min(best, rssKiB(pid));
  }
  return best;
}

async function main(): Promise<void> {
  const tmp = await tempDir('cerulean-bench-watcher-');
  const services = protocolServices();
  let sandbox: Sandbox | undefined;
  let watcher: { child: ChildProcess; url: string } | undefined;
  const endpoint = await startPushEndpoint();
  try {
    sandbox = await startTestSandbox(path.join(tmp.dir, 'sandbox'), { services: services.services, admin: false });
    const sb = sandbox;
    progress(`activating ${DEVICES} devices with albert and the courier`);
    let started = performance.now();
    const devices = await makeDevices(sb, () => endpoint.subscribe());
    const setupSeconds = (performance.now() - started) / 1000;

    watcher = await startWatcherProcess(sb, path.join(tmp.dir, 'watcher'));
    const pid = watcher.child.pid!;
    const baseline = await settledRss(pid);
    progress(`watcher up (pid ${pid}, ${round(baseline / 1024)} MiB); enrolling`);

    started = performance.now();
    const url = watcher.url;
    await pool(devices, CONCURRENCY, async (d) => {
      d.enrollment = await enroll(url, { push: d.push, subscription: d.subscription });
    });
    const enrollSeconds = (performance.now() - started) / 1000;
    for (;;) {
      const watching = await metric(url, 'cerulean_watcher_enrollments{state="watching"}');
      if (watching === DEVICES) break;
      if (performance.now() - started > 300_000) throw new Error(`only ${watching} of ${DEVICES} devices are watching`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const allWatchingSeconds = (performance.now() - started) / 1000;
    const held = await settledRss(pid);
    progress(`${DEVICES} watching (${round(held / 1024)} MiB); waking ${WAKES}`);

    const courier = services.courier();
    const latencies: number[] = [];
    const arrivals = new Map<string, (p: ReceivedPush) => void>();
    endpoint.onPush = (p) => arrivals.get(p.subscription)?.(p);
    for (let i = 0; i < WAKES; i++) {
      const d = devices[i]!;
      const arrived = new Promise<ReceivedPush>((resolve, reject) => {
        arrivals.set(d.subscription.id, resolve);
        setTimeout(() => reject(new Error(`no push for device ${i} within 10 s`)), 10_000).unref();
      });
      const t0 = performance.now();
      const result = await courier.deliver(d.push.token, MADRID_TOPIC, new TextEncoder().encode('{"c":100}'));
      if (result.reason !== undefined) throw new Error(`the courier did not deliver: ${result.reason}`);
      const push = await arrived;
      latencies.push(push.receivedAt - t0);
    }
    if (endpoint.failures.length > 0) throw new Error(`pushes that failed verification: ${endpoint.failures[0]}`);
    const wakeCount = await metric(url, 'cerulean_watcher_wakes_total');
    latencies.sort((a, b) => a - b);

    const report = {
      benchmark: 'push-watcher',
      machine: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg().map((l) => round(l)) },
      devices: DEVICES,
      setup: { activateAndTokenSeconds: round(setupSeconds), enrollSeconds: round(enrollSeconds), allWatchingSeconds: round(allWatchingSeconds) },
      memory: {
        watcherRssBaselineMiB: round(baseline / 1024),
        watcherRssWithDevicesMiB: round(held / 1024),
        perDeviceKiB: round((held - baseline) / DEVICES, 1),
      },
      wake: {
        measured: latencies.length,
        wakesCounted: wakeCount,
        pushesVerifiedAndDecrypted: endpoint.pushes.length,
        from: 'courier hands the notification to the watcher\'s connection',
        to: 'the Web Push request arrives at the endpoint',
        p50Ms: round(quantile(latencies, 0.5)),
        p99Ms: round(quantile(latencies, 0.99)),
        meanMs: round(latencies.reduce((a, b) => a + b, 0) / latencies.length),
        maxMs: round(latencies.at(-1)!),
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    if (watcher) await stopChild(watcher.child);
    await endpoint.close();
    await sandbox?.close();
    await tmp.remove();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    createLogger('info', (line) => process.stderr.write(`${line}\n`)).error('bench.failed', { error: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  },
);
