// `tsx bench/bridge.ts`: the byte bridge against websockify on the same destination server, in one run.
// Measures throughput (256 MiB through one tunnel, each direction), the latency a tunnel adds to 64-byte echoes
// (5,000 sequential round trips, against direct TCP), and memory per idle tunnel (10,000 open tunnels, fewer
// when the descriptor limit or websockify's process-per-connection model calls for it; the JSON says so).
// Timed tests run in rounds that alternate between direct TCP, the bridge and websockify (echoes in blocks of
// ECHO_BLOCK per side in turn), so a burst of load from elsewhere on the machine falls on all three alike;
// medians over the rounds are reported. Prints one JSON document on
// stdout; progress goes to stderr. Nothing is asserted.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { download, type Latency, openEcho, openIdle, type Opener, summarize, tcpOpener, upload, wsOpener } from './bridge-measure';
import {
  ensureWebsockify,
  fdLimit,
  firstLine,
  freePort,
  rssKiB,
  spawnChild,
  stopChild,
  treePssKiB,
  waitForPort,
} from './bridge-procs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
const THROUGHPUT_BYTES = 256 * MiB;
const ECHOES = 5_000;
// Enough round trips for the JIT to settle the bridge's hot paths before anything is kept.
const WARMUP_ECHOES = 1_000;
const ROUNDS = 3;
const ECHO_BLOCK = 250;
const WANTED_IDLE = 10_000;
// websockify 0.10 forks one Python process per connection and waits with select(), which cannot watch
// descriptors above 1023: past about 500 concurrent connections its new children fail and drop their tunnels.
const WEBSOCKIFY_IDLE_CAP = 500;
const TARGET_NAME = 'bench.target.test:7';

const notes: string[] = [];
const progress = (msg: string) => process.stderr.write(`[bench:bridge] ${msg}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

interface Side {
  readonly name: 'direct' | 'bridge' | 'websockify';
  readonly open: Opener;
  readonly latencies: Latency[];
  readonly uploads: number[];
  readonly downloads: number[];
}

interface IdleResult {
  tunnels: number;
  /** Tunnels still open when memory was read; the per-tunnel figure divides by this. */
  stillOpen: number;
  openSeconds: number;
  memoryBeforeMiB: number;
  memoryAfterMiB: number;
  perTunnelKiB: number;
  measure: string;
  error?: string;
}

async function measureIdle(url: string, n: number, memory: () => number, measure: string, extra?: () => object): Promise<IdleResult> {
  // One tunnel first, so lazily loaded code and first-use allocations are in the baseline, not the per-tunnel cost.
  const warm = await openIdle(url, 1);
  for (const ws of warm.sockets) ws.terminate();
  await sleep(1_000);
  const before = memory();
  const started = performance.now();
  const { sockets, error } = await openIdle(url, n);
  const openSeconds = round2((performance.now() - started) / 1000);
  await sleep(2_000);
  const after = memory();
  const extras = extra?.() ?? {};
  const stillOpen = sockets.filter((ws) => ws.readyState === ws.OPEN).length;
  if (stillOpen < sockets.length) notes.push(`${url}: ${sockets.length - stillOpen} idle tunnels closed before memory was read`);
  for (const ws of sockets) ws.terminate();
  await sleep(1_000);
  return {
    tunnels: sockets.length,
    stillOpen,
    openSeconds,
    memoryBeforeMiB: round1(before / 1024),
    memoryAfterMiB: round1(after / 1024),
    perTunnelKiB: round2((after - before) / Math.max(1, stillOpen)),
    measure,
    ...extras,
    ...(error === undefined ? {} : { error }),
  };
}

const children: Array<ReturnType<typeof spawnChild>> = [];

/** The real command-line bridge (`bridge/main.ts`), mapping TARGET_NAME to the target server. */
async function startBridgeProcess(targetPort: number, maxTunnels: number) {
  const port = await freePort();
  const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-bridge-')), 'bridge.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      host: '127.0.0.1',
      port,
      allowAppleDefaults: false,
      hostMap: { [TARGET_NAME]: `127.0.0.1:${targetPort}` },
      maxTunnels: maxTunnels + 100,
      maxTunnelsPerIp: maxTunnels + 100,
      bytesPerSecond: 0,
      pingIntervalMs: 0,
      idleTimeoutMs: 600_000,
      logLevel: 'warn',
    }),
  );
  const child = spawnChild(process.execPath, ['--import', 'tsx', 'bridge/main.ts', '--config', configFile], root);
  children.push(child);
  await waitForPort(port);
  return { child, pid: child.pid ?? 0, url: `ws://127.0.0.1:${port}/tunnel/${TARGET_NAME}` };
}

try {
  const loadAtStart = os.loadavg().map(round2);
  const limit = fdLimit();
  // The bridge process holds two descriptors per tunnel (the client's WebSocket and the destination's TCP).
  const bridgeIdle = Math.min(WANTED_IDLE, Math.floor((limit - 200) / 2));
  if (bridgeIdle < WANTED_IDLE) {
    notes.push(
      `ulimit -n is ${limit} and cannot be raised here; the bridge needs two descriptors per tunnel, so the idle test ` +
        `opens ${bridgeIdle} tunnels instead of ${WANTED_IDLE} (per-tunnel memory is what to compare)`,
    );
  }

  const target = spawnChild(process.execPath, ['--import', 'tsx', 'bench/bridge-target.ts'], root);
  children.push(target);
  const { port: targetPort } = await firstLine<{ port: number }>(target);

  const websockify = ensureWebsockify();
  let websockifyUrl: string | undefined;
  let websockifyPid: number | undefined;
  if ('path' in websockify) {
    if (websockify.installed) notes.push('websockify was installed with apt-get for this run');
    const port = await freePort();
    const child = spawnChild(websockify.path, [`127.0.0.1:${port}`, `127.0.0.1:${targetPort}`], root);
    children.push(child);
    await waitForPort(port);
    websockifyUrl = `ws://127.0.0.1:${port}/`;
    websockifyPid = child.pid;
  } else {
    notes.push(`websockify side skipped: ${websockify.skipped}`);
  }

  // A fresh bridge process for the memory test and another for the timed tests, so neither inherits the other's
  // heap.
  const idleBridge = await startBridgeProcess(targetPort, bridgeIdle);
  progress(`bridge: ${bridgeIdle} idle tunnels`);
  const bridgeIdleResult = await measureIdle(idleBridge.url, bridgeIdle, () => rssKiB(idleBridge.pid), 'RSS of the bridge process');
  await stopChild(idleBridge.child);
  let websockifyIdleResult: IdleResult | undefined;
  if (websockifyUrl !== undefined && websockifyPid !== undefined) {
    const n = Math.min(bridgeIdle, WEBSOCKIFY_IDLE_CAP);
    notes.push(
      `websockify forks a process per connection and drops connections past about 500 (select() limit), so its ` +
        `idle test opens ${n} tunnels and counts PSS summed over its process tree (shared copy-on-write pages ` +
        'counted once; plain RSS would count them once per process)',
    );
    progress(`websockify: ${n} idle tunnels`);
    const pid = websockifyPid;
    websockifyIdleResult = await measureIdle(websockifyUrl, n, () => treePssKiB(pid).pss, 'PSS summed over the websockify process tree', () => {
      const t = treePssKiB(pid);
      return { processes: t.processes, rssSumMiB: round1(t.rss / 1024) };
    });
    // Its per-connection children exit when their client goes; give them time before the timed runs.
    for (let i = 0; i < 50 && treePssKiB(pid).processes > 1; i++) await sleep(200);
  }

  const bridge = await startBridgeProcess(targetPort, 100);
  const side = (name: Side['name'], open: Opener): Side => ({ name, open, latencies: [], uploads: [], downloads: [] });
  const sides = [side('direct', tcpOpener(targetPort)), side('bridge', wsOpener(bridge.url))];
  if (websockifyUrl !== undefined) sides.push(side('websockify', wsOpener(websockifyUrl, ['binary'])));

  // Echoes before bulk transfers, so garbage from the transfers does not pause the collector mid-measurement.
  for (let r = 1; r <= ROUNDS; r++) {
    progress(`round ${r}/${ROUNDS}: ${ECHOES} echoes per side`);
    const channels = await Promise.all(sides.map((s) => openEcho(s.open)));
    for (const ch of channels) await ch.roundTrips(WARMUP_ECHOES);
    const samples = sides.map((): number[] => []);
    for (let done = 0; done < ECHOES; done += ECHO_BLOCK) {
      for (const [i, ch] of channels.entries()) samples[i]?.push(...(await ch.roundTrips(Math.min(ECHO_BLOCK, ECHOES - done))));
    }
    for (const [i, s] of sides.entries()) s.latencies.push(summarize(samples[i] ?? []));
    for (const ch of channels) ch.close();
  }
  for (let r = 1; r <= ROUNDS; r++) {
    for (const s of sides) {
      progress(`round ${r}/${ROUNDS} ${s.name}: ${THROUGHPUT_BYTES / MiB} MiB each way`);
      s.uploads.push(round1(await upload(s.open, THROUGHPUT_BYTES)));
      s.downloads.push(round1(await download(s.open, THROUGHPUT_BYTES)));
    }
  }
  const bridgeRssAfterMiB = round1(rssKiB(bridge.pid) / 1024);

  const results = new Map(
    sides.map((s) => [
      s.name,
      {
        uploadMiBps: median(s.uploads),
        downloadMiBps: median(s.downloads),
        latency: {
          p50Us: median(s.latencies.map((l) => l.p50Us)),
          p99Us: median(s.latencies.map((l) => l.p99Us)),
          meanUs: median(s.latencies.map((l) => l.meanUs)),
        },
        rounds: { uploadMiBps: s.uploads, downloadMiBps: s.downloads, latency: s.latencies },
      },
    ]),
  );
  const direct = results.get('direct');
  const viaBridge = results.get('bridge');
  const viaWebsockify = results.get('websockify');
  if (direct === undefined || viaBridge === undefined) throw new Error('missing results');
  const added = (l: Latency) => ({ p50Us: round1(l.p50Us - direct.latency.p50Us), p99Us: round1(l.p99Us - direct.latency.p99Us) });
  // Null when a side's figure is not positive (added latency lost in the noise of the direct baseline).
  const ratio = (x: number, y: number) => (x > 0 && y > 0 ? Number((x / y).toPrecision(3)) : null);
  const bridgeAdded = added(viaBridge.latency);
  const websockifyAdded = viaWebsockify && added(viaWebsockify.latency);

  const loadAtEnd = os.loadavg().map(round2);
  if (Math.max(...loadAtStart, ...loadAtEnd) > os.cpus().length) {
    notes.push('the machine was busy with other work during the run (see loadAverage); absolute numbers are noisy, ratios less so');
  }

  console.log(
    JSON.stringify(
      {
        benchmark: 'bridge',
        node: process.version,
        cpus: os.cpus().length,
        loadAverage: { start: loadAtStart, end: loadAtEnd },
        fdLimit: limit,
        settings: {
          throughputBytes: THROUGHPUT_BYTES,
          echoes: ECHOES,
          echoSize: 64,
          warmupEchoes: WARMUP_ECHOES,
          rounds: ROUNDS,
          reported: `medians over ${ROUNDS} rounds (each round: ${ECHOES} echoes per side in alternating blocks of ${ECHO_BLOCK}; 256 MiB each way per side)`,
        },
        direct,
        bridge: { ...viaBridge, addedLatency: bridgeAdded, idle: bridgeIdleResult, rssAfterThroughputMiB: bridgeRssAfterMiB },
        websockify: viaWebsockify ? { ...viaWebsockify, addedLatency: websockifyAdded, idle: websockifyIdleResult } : { skipped: true },
        // bridge ÷ websockify: above 1 is better for throughput, below 1 is better for latency and memory.
        ratios: viaWebsockify
          ? {
              uploadThroughput: ratio(viaBridge.uploadMiBps, viaWebsockify.uploadMiBps),
              downloadThroughput: ratio(viaBridge.downloadMiBps, viaWebsockify.downloadMiBps),
              addedLatencyP50: websockifyAdded && ratio(bridgeAdded.p50Us, websockifyAdded.p50Us),
              addedLatencyP99: websockifyAdded && ratio(bridgeAdded.p99Us, websockifyAdded.p99Us),
              memoryPerIdleTunnel: websockifyIdleResult && ratio(bridgeIdleResult.perTunnelKiB, websockifyIdleResult.perTunnelKiB),
            }
          : null,
        notes,
      },
      null,
      2,
    ),
  );
} finally {
  for (const c of children.reverse()) await stopChild(c);
}
