// Backpressure and rate limits: a peer that stops reading must stop the bridge from reading the other side, so
// the bridge's memory stays bounded; and a rate-limited tunnel must not go faster than its rate in either way.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { eventually, openTunnel, readBytes, receive, sleep, startTcpServer, startTestBridge } from './bridge-helpers';

const MiB = 1024 * 1024;
const TOTAL = 64 * MiB;
const COURIER = 'courier.push.apple.com';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Byte i of a stream is i mod 251, so order and completeness can be checked without keeping the data. */
function patterned(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}

class PatternCheck {
  received = 0;
  ok = true;
  add(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i += 4093) if (chunk[i] !== (this.received + i) % 251) this.ok = false;
    this.received += chunk.length;
  }
}

/** Waits until `read()` stops changing for `quietMs`; returns the settled value. */
async function settled(read: () => number, quietMs = 300, maxMs = 10_000): Promise<number> {
  const until = Date.now() + maxMs;
  let last = read();
  for (;;) {
    await sleep(quietMs);
    const now = read();
    if (now === last || Date.now() > until) return now;
    last = now;
  }
}

async function writeAll(socket: net.Socket, total: number, chunk = MiB): Promise<void> {
  for (let off = 0; off < total; off += chunk) {
    if (!socket.write(patterned(off, Math.min(chunk, total - off)))) {
      await new Promise((resolve) => socket.once('drain', resolve));
    }
  }
}

describe('bridge backpressure', () => {
  it('stops reading the destination while the client does not read (64 MiB pushed)', async () => {
    let pushed: Promise<void> | undefined;
    const source = await startTcpServer((s) => {
      pushed = writeAll(s, TOTAL);
    });
    cleanups.push(() => source.close());
    const b = await startTestBridge({ hostMap: { [`${COURIER}:5223`]: `127.0.0.1:${source.port}` }, logLevel: 'warn' });
    cleanups.push(() => b.close());
    const ws = await openTunnel(`${b.url}/tunnel/${COURIER}:5223`);
    cleanups.push(() => ws.terminate());
    const check = new PatternCheck();
    ws.on('message', (d: Buffer) => check.add(d));
    ws.pause();

    const readByBridge = await settled(() => b.metrics.snapshot().bytes.destination_to_client);
    // What the bridge read is what sits in the kernel buffers between it and the client plus at most its
    // high-water mark; the rest of the 64 MiB must still be waiting at the destination.
    expect(readByBridge).toBeLessThan(TOTAL / 4);
    expect(b.metrics.snapshot().backpressurePauses.destination).toBeGreaterThanOrEqual(1);

    ws.resume();
    await eventually(() => check.received === TOTAL, 20_000, 'all bytes delivered');
    expect(check.ok).toBe(true);
    await pushed;
  });

  it('stops reading the client while the destination does not read (64 MiB sent)', async () => {
    let peer: net.Socket | undefined;
    const check = new PatternCheck();
    const sink = await startTcpServer((s) => {
      peer = s;
      s.pause();
      s.on('data', (d: Buffer) => check.add(d));
    });
    cleanups.push(() => sink.close());
    const b = await startTestBridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${sink.port}` }, logLevel: 'warn' });
    cleanups.push(() => b.close());
    const ws: WebSocket = await openTunnel(`${b.url}/tunnel/${COURIER}:443`);
    cleanups.push(() => ws.terminate());
    const chunk = 256 * 1024;
    for (let off = 0; off < TOTAL; off += chunk) ws.send(patterned(off, chunk));

    const readByBridge = await settled(() => b.metrics.snapshot().bytes.client_to_destination);
    expect(readByBridge).toBeLessThan(TOTAL / 4);
    expect(b.metrics.snapshot().backpressurePauses.client).toBeGreaterThanOrEqual(1);

    peer?.resume();
    await eventually(() => check.received === TOTAL, 20_000, 'all bytes delivered');
    expect(check.ok).toBe(true);
  });
});

describe('bridge rate limit', () => {
  it('holds each direction of a tunnel to bytesPerSecond', async () => {
    const size = 512 * 1024;
    const source = await startTcpServer((s) => void writeAll(s, size, 16 * 1024));
    const sink = await startTcpServer(() => {});
    cleanups.push(() => source.close(), () => sink.close());
    const b = await startTestBridge({
      bytesPerSecond: MiB,
      burstBytes: 64 * 1024,
      hostMap: { [`${COURIER}:443`]: `127.0.0.1:${source.port}`, [`${COURIER}:5223`]: `127.0.0.1:${sink.port}` },
    });
    cleanups.push(() => b.close());
    // The floor: everything past the burst at the configured rate, less one read's worth (a chunk is forwarded
    // first and paid for after, and ws may hand over what it had already read when paused).
    const floorMs = ((size - 64 * 1024 - 64 * 1024) / MiB) * 1000;

    const down = (async () => {
      const started = performance.now();
      const ws = await openTunnel(`${b.url}/tunnel/${COURIER}:443`);
      cleanups.push(() => ws.terminate());
      await receive(ws, size, 10_000);
      return performance.now() - started;
    })();
    const up = (async () => {
      const accepted = sink.nextConnection();
      const ws = await openTunnel(`${b.url}/tunnel/${COURIER}:5223`);
      cleanups.push(() => ws.terminate());
      const peer = await accepted;
      const started = performance.now();
      for (let off = 0; off < size; off += 16 * 1024) ws.send(patterned(off, 16 * 1024));
      await readBytes(peer, size, 10_000);
      return performance.now() - started;
    })();
    const [downMs, upMs] = await Promise.all([down, up]);
    expect(downMs).toBeGreaterThanOrEqual(floorMs * 0.9);
    expect(upMs).toBeGreaterThanOrEqual(floorMs * 0.9);
    // Loosely bounded above too: limited, not stalled.
    expect(downMs).toBeLessThan(floorMs * 10);
    expect(upMs).toBeLessThan(floorMs * 10);
  });
});
