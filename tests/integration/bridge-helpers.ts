// Shared pieces for the bridge suites: real TCP servers on loopback, real `ws` clients, and waits with deadlines
// so a broken bridge fails a test instead of hanging it.
import net from 'node:net';
import WebSocket from 'ws';
import { type RunningBridge, startBridge } from '../../bridge/server';
import type { BridgeOptions } from '../../bridge/config';

export interface TcpServer {
  readonly port: number;
  readonly sockets: Set<net.Socket>;
  /** Resolves with the next accepted socket. */
  nextConnection(): Promise<net.Socket>;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1; `onConnection` decides what it does (echo by default). */
export async function startTcpServer(onConnection: (s: net.Socket) => void = (s) => s.pipe(s)): Promise<TcpServer> {
  const sockets = new Set<net.Socket>();
  const waiters: Array<(s: net.Socket) => void> = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onConnection(s);
    waiters.shift()?.(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    nextConnection: () => new Promise((resolve) => waiters.push(resolve)),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Captured {
  readonly lines: string[];
  events(name: string): Array<Record<string, unknown>>;
}

/** Starts a bridge on an ephemeral port with its log lines captured. */
export async function startTestBridge(options: BridgeOptions = {}): Promise<RunningBridge & { log: Captured }> {
  const lines: string[] = [];
  const bridge = await startBridge({
    host: '127.0.0.1',
    port: 0,
    bytesPerSecond: 0,
    logLevel: 'debug',
    logSink: (line) => lines.push(line),
    ...options,
  });
  const log: Captured = {
    lines,
    events: (name) =>
      lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === name),
  };
  return { ...bridge, log };
}

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

export function closeOf(ws: WebSocket): Promise<Closed> {
  return within(
    new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    5_000,
    'WebSocket close',
  );
}

/** Opens a tunnel and waits for 'open'; rejects with the close code when the bridge refuses. */
export function openTunnel(url: string, options?: WebSocket.ClientOptions, protocols?: string[]): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  ws.on('error', () => {});
  return within(
    new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()}`)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`http ${res.statusCode}`)));
    }),
    5_000,
    'tunnel open',
  );
}

/** Opens a tunnel expected to be refused; resolves with the close code and reason (after a completed handshake). */
export function refusal(url: string, options?: WebSocket.ClientOptions, protocols?: string[]): Promise<Closed> {
  const ws = new WebSocket(url, protocols, options);
  ws.on('error', () => {});
  return closeOf(ws);
}

/** Reads exactly `n` bytes from a tunnel. */
export function receive(ws: WebSocket, n: number, timeoutMs = 5_000): Promise<Buffer> {
  return within(
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      let got = 0;
      const onMessage = (data: Buffer) => {
        parts.push(data);
        got += data.length;
        if (got >= n) {
          ws.off('message', onMessage);
          resolve(Buffer.concat(parts).subarray(0, n));
        }
      };
      ws.on('message', onMessage);
    }),
    timeoutMs,
    `receiving ${n} bytes`,
  );
}

export function readBytes(socket: net.Socket, n: number, timeoutMs = 5_000): Promise<Buffer> {
  return within(
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      let got = 0;
      const onData = (data: Buffer) => {
        parts.push(data);
        got += data.length;
        if (got >= n) {
          socket.off('data', onData);
          resolve(Buffer.concat(parts).subarray(0, n));
        }
      };
      socket.on('data', onData);
    }),
    timeoutMs,
    `reading ${n} bytes`,
  );
}

export function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it holds or `ms` pass. */
export async function eventually(check: () => boolean, ms = 3_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
