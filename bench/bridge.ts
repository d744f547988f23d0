// `tsx bench/bridge.ts`: the byte bridge against websockify on the same destination server, in one run.
// Measures throughput (256 MiB through one tunnel, each direction), the latency a tunnel adds to 64-byte echoes
// (5,000 sequential round trips, against direct TCP), and memory per idle tunnel (10,000 open tunnels, fewer
// when the descriptor limit or websockify's process-per-connection model calls for it; the JSON says so).
// Timed tests run in rounds that alternate between direct TCP, the bridge and websockify (echoes in blocks of
// ECHO_BLOCK per side in turn), so a burst of load from elsewhere on the machine falls on all three alike;
// medians over the rounds are reported. Uploads through the two WebSocket sides come from one client that
// writes frames masked in advance (see premaskedOpener), so both get the very same bytes and the client's
// masking does not compete with them for the CPU. Prints one JSON document on stdout; progress goes to
// stderr. Nothing is asserted.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
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
const THROUGHPUT_ROUNDS = 5;
// Untimed, before the timed rounds, each way through each side: the bridge's CPU per MiB only settles after a
// few hundred MiB (JIT, allocator), as the echo warm-up does for small messages.
const WARMUP_BYTES = 256 * MiB;
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

/**
 * A WebSocket client for bulk uploads. `ws` masks every message as it sends it (a copy and an XOR pass per
 * 64 KiB), which on a 2-CPU machine takes CPU from the bridge being measured. This one masks each distinct
 * buffer it is given once, into a few frames with different masking keys used in turn, and writes those:
 * the wire bytes are the same kind of masked binary frames, one per send, at the same message size. Frames
 * arriving from the server are decoded only as far as needed to hand their payload on.
 */
function premaskedOpener(url: string, protocols?: string[]): Opener {
  const KEYS = 8;
  const masked = new WeakMap<Buffer, { frames: Buffer[]; next: number }>();
  const frameOf = (payload: Buffer): Buffer => {
    let entry = masked.get(payload);
    if (entry === undefined) {
      entry = { frames: Array.from({ length: KEYS }, () => maskedFrame(payload)), next: 0 };
      masked.set(payload, entry);
    }
    const frame = entry.frames[entry.next] as Buffer;
    entry.next = (entry.next + 1) % KEYS;
    return frame;
  };
  return () =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const req = request({
        host: u.hostname,
        port: Number(u.port),
        path: u.pathname,
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': randomBytes(16).toString('base64'),
          ...(protocols === undefined ? {} : { 'sec-websocket-protocol': protocols.join(', ') }),
        },
      });
      req.once('error', reject);
      req.once('response', (res) => reject(new Error(`handshake answered ${res.statusCode}`)));
      req.once('upgrade', (_res, socket, head) => {
        socket.setNoDelay(true);
        socket.on('error', () => {});
        const listeners: Array<(chunk: Buffer) => void> = [];
        const frames = serverFrameDecoder((payload) => {
          for (const l of listeners) l(payload);
        });
        socket.on('data', frames);
        if (head.length > 0) frames(head);
        resolve({
          send: (chunk) => (socket.write(frameOf(chunk)) ? undefined : new Promise((r) => socket.once('drain', () => r()))),
          onData: (listener) => void listeners.push(listener),
          close: () => socket.destroy(),
        });
      });
      req.end();
    });
}

/** One masked binary frame carrying `payload`, with a fresh random masking key. */
function maskedFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const frame = Buffer.alloc(2 + lengthBytes + 4 + n);
  frame[0] = 0x82;
  frame[1] = 0x80 | (n < 126 ? n : n < 65536 ? 126 : 127);
  if (lengthBytes === 2) frame.writeUInt16BE(n, 2);
  if (lengthBytes === 8) frame.writeBigUInt64BE(BigInt(n), 2);
  const key = randomBytes(4);
  const at = 2 + lengthBytes;
  key.copy(frame, at);
  for (let i = 0; i < n; i++) frame[at + 4 + i] = (payload[i] as number) ^ (key[i & 3] as number);
  return frame;
}

/** Streams a server's (unmasked) frames, calling `onPayload` with the payload bytes of data frames. */
function serverFrameDecoder(onPayload: (bytes: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let left = 0;
  let isData = false;
  return (chunk) => {
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    pending = Buffer.alloc(0);
    while (buf.length > 0) {
      if (left > 0) {
        const piece = buf.subarray(0, Math.min(left, buf.length));
        if (isData) onPayload(piece);
        left -= piece.length;
        buf = buf.subarray(piece.length);
        continue;
      }
      const len7 = buf.length >= 2 ? (buf[1] as number) & 0x7f : 0;
      const size = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
      if (buf.length < size) {
        pending = Buffer.from(buf);
        return;
      }
      left = len7 === 126 ? buf.readUInt16BE(2) : len7 === 127 ? Number(buf.readBigUInt64BE(2)) : len7;
      isData = ((buf[0] as number) & 0x08) === 0;
      buf = buf.subarray(size);
    }
  };
}

interface Side {
  readonly name: 'direct' | 'bridge' | 'websockify';
  readonly open: Opener;
  /** How uploads connect: the premasked client for the WebSocket sides. */
  readonly openForUpload: Opener;
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
  const side = (name: Side['name'], open: Opener, openForUpload: Opener): Side => ({
    name,
    open,
    openForUpload,
    latencies: [],
    uploads: [],
    downloads: [],
  });
  const tcp = tcpOpener(targetPort);
  const sides = [side('direct', tcp, tcp), side('bridge', wsOpener(bridge.url), premaskedOpener(bridge.url))];
  if (websockifyUrl !== undefined) {
    sides.push(side('websockify', wsOpener(websockifyUrl, ['binary']), premaskedOpener(websockifyUrl, ['binary'])));
  }

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
  for (const s of sides) {
    progress(`warm-up ${s.name}: ${WARMUP_BYTES / MiB} MiB each way`);
    await upload(s.openForUpload, WARMUP_BYTES);
    await download(s.open, WARMUP_BYTES);
  }
  for (let r = 1; r <= THROUGHPUT_ROUNDS; r++) {
    for (const s of sides) {
      progress(`round ${r}/${THROUGHPUT_ROUNDS} ${s.name}: ${THROUGHPUT_BYTES / MiB} MiB each way`);
      s.uploads.push(round1(await upload(s.openForUpload, THROUGHPUT_BYTES)));
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
          throughputRounds: THROUGHPUT_ROUNDS,
          warmupBytes: WARMUP_BYTES,
          uploadClient: 'pre-masked 64 KiB binary frames (8 masking keys in turn), the same for both WebSocket sides',
          reported:
            `latency: medians over ${ROUNDS} rounds of ${ECHOES} echoes per side in alternating blocks of ${ECHO_BLOCK}; ` +
            `throughput: medians over ${THROUGHPUT_ROUNDS} rounds of ${THROUGHPUT_BYTES / MiB} MiB each way per side, after an untimed ${WARMUP_BYTES / MiB} MiB`,
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
