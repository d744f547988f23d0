// Client-side measurements for `bench/bridge.ts`, the same code over a plain TCP socket (the baseline) and over
// a WebSocket tunnel (the bridge or websockify), all speaking bench/bridge-target.ts's one-byte modes.
import net from 'node:net';
import WebSocket from 'ws';

export interface Channel {
  /** Sends; the promise, when there is one, resolves once it is worth sending more. */
  send(chunk: Buffer): Promise<void> | undefined;
  onData(listener: (chunk: Buffer) => void): void;
  close(): void;
}

export type Opener = () => Promise<Channel>;

// Client-side queue bound for bulk sends, so the sender measures the path and not its own buffering.
const SEND_HIGH_WATER = 4 * 1024 * 1024;

export function tcpOpener(port: number): Opener {
  return () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.setNoDelay(true);
      s.once('error', reject);
      s.once('connect', () =>
        resolve({
          send: (chunk) => (s.write(chunk) ? undefined : new Promise((r) => s.once('drain', () => r()))),
          onData: (listener) => s.on('data', listener),
          close: () => s.destroy(),
        }),
      );
    });
}

export function wsOpener(url: string, protocols?: string[]): Opener {
  return async () => {
    const ws = await openWebSocket(url, protocols);
    return {
      send: (chunk) => {
        if (ws.bufferedAmount < SEND_HIGH_WATER) {
          ws.send(chunk);
          return undefined;
        }
        // This message's callback runs once everything queued before it reached the kernel.
        return new Promise((resolve) => ws.send(chunk, () => resolve()));
      },
      onData: (listener) => ws.on('message', (d: Buffer) => listener(d)),
      close: () => ws.terminate(),
    };
  };
}

export function openWebSocket(url: string, protocols?: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => {});
      resolve(ws);
    });
    ws.once('error', reject);
    ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()}`)));
  });
}

function header(mode: 'S' | 'R', n: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = mode.charCodeAt(0);
  b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}

const MiB = 1024 * 1024;

/** MiB/s for `bytes` sent client → destination, until the destination confirms it has them all. */
export async function upload(open: Opener, bytes: number): Promise<number> {
  const ch = await open();
  const acked = new Promise<void>((resolve) => ch.onData(() => resolve()));
  const chunk = Buffer.alloc(64 * 1024, 0xa5);
  const started = performance.now();
  await ch.send(header('S', bytes));
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    await ch.send(sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent));
  }
  await acked;
  const seconds = (performance.now() - started) / 1000;
  ch.close();
  return bytes / MiB / seconds;
}

/** MiB/s for `bytes` sent destination → client, from the request to the last byte. */
export async function download(open: Opener, bytes: number): Promise<number> {
  const ch = await open();
  let got = 0;
  const done = new Promise<void>((resolve) =>
    ch.onData((d) => {
      got += d.length;
      if (got >= bytes) resolve();
    }),
  );
  const started = performance.now();
  await ch.send(header('R', bytes));
  await done;
  const seconds = (performance.now() - started) / 1000;
  ch.close();
  return bytes / MiB / seconds;
}

export interface Latency {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
}

export interface EchoChannel {
  /** Round-trip times in µs of `count` sequential `size`-byte echoes. */
  roundTrips(count: number): Promise<number[]>;
  close(): void;
}

/** Opens a channel in echo mode for repeated blocks of round trips. */
export async function openEcho(open: Opener, size = 64): Promise<EchoChannel> {
  const ch = await open();
  let want = 0;
  let arrived: (() => void) | undefined;
  ch.onData((d) => {
    want -= d.length;
    if (want <= 0) arrived?.();
  });
  await ch.send(Buffer.from('E'));
  const payload = Buffer.alloc(size, 0x42);
  return {
    async roundTrips(count) {
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        const back = new Promise<void>((resolve) => {
          arrived = resolve;
        });
        want = size;
        const t0 = performance.now();
        await ch.send(payload);
        await back;
        samples.push((performance.now() - t0) * 1000);
      }
      return samples;
    },
    close: () => ch.close(),
  };
}

export function summarize(samples: readonly number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const round = (x: number) => Math.round(x * 10) / 10;
  return { p50Us: round(at(0.5)), p99Us: round(at(0.99)), meanUs: round(sorted.reduce((a, b) => a + b, 0) / sorted.length) };
}

/** Opens `n` idle tunnels, `concurrency` handshakes at a time; stops at the first failure. */
export async function openIdle(url: string, n: number, concurrency = 200): Promise<{ sockets: WebSocket[]; error?: string }> {
  const sockets: WebSocket[] = [];
  let next = 0;
  let error: string | undefined;
  const worker = async () => {
    while (next < n && error === undefined) {
      next++;
      try {
        sockets.push(await openWebSocket(url));
      } catch (err) {
        error = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { sockets, error };
}
