// The bridge's HTTP server: WebSocket upgrades on /tunnel/<host>:<port> become tunnels, /healthz and /metrics
// answer plain GETs, everything else is a 404. A tunnel request is checked (token, path, allowlist or host map,
// limits), then the destination is resolved and connected *before* the WebSocket handshake completes, so a
// client's `open` means the TCP connection exists. Refusals still complete the handshake and then close with a
// 4xxx code and a reason, because a browser cannot read the HTTP status of a failed WebSocket handshake.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { clientKey } from './address-policy';
import { REFUSAL_CLOSE, type RefusalReason } from './close-codes';
import { type BridgeConfig, type BridgeOptions, resolveConfig } from './config';
import { type Destination, formatHostPort, parseTunnelPath, TUNNEL_PREFIX } from './destination';
import { dial } from './dial';
import { createLogger, errorFields, type Logger } from './log';
import { BridgeMetrics } from './metrics';
import { presentedToken, selectProtocol, tokenMatches } from './token';
import { Tunnel, type TunnelSummary } from './tunnel';

export interface RunningBridge {
  /** Base WebSocket URL, e.g. `ws://127.0.0.1:8787`; tunnels are at `${url}/tunnel/<host>:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly metrics: BridgeMetrics;
  /** Stops accepting, closes every tunnel with 1001, and resolves once every socket is gone. */
  close(): Promise<void>;
}

// How long a closing WebSocket waits for the client's close frame before dropping the connection.
const CLOSE_HANDSHAKE_MS = 2_000;

interface Pending {
  readonly abort: AbortController;
}

class Bridge {
  readonly metrics = new BridgeMetrics();
  private readonly log: Logger;
  private readonly wss: WebSocketServer;
  private readonly http = createServer((req, res) => this.onRequest(req, res));
  private readonly tunnels = new Set<Tunnel>();
  private readonly pending = new Set<Pending>();
  private readonly refusing = new Set<WebSocket>();
  private readonly perClient = new Map<string, number>();
  private nextId = 1;
  private pingTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  constructor(private readonly config: BridgeConfig) {
    this.log = createLogger(config.logLevel, config.logSink);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: config.maxMessageBytes,
      handleProtocols: (offered) => selectProtocol(offered),
      // ws 8.23 reads closeTimeout; @types/ws 8.18 does not declare it yet.
      ...{ closeTimeout: CLOSE_HANDSHAKE_MS },
    });
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 15_000;
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket as Socket, head).catch((err: unknown) => {
        this.log.error('bridge.upgrade-failed', errorFields(err));
        socket.destroy();
      });
    });
  }

  async listen(): Promise<RunningBridge> {
    const { host, port } = this.config;
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const address = this.http.address();
    const boundPort = typeof address === 'object' && address !== null ? address.port : port;
    if (this.config.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        for (const t of this.tunnels) t.ping();
      }, this.config.pingIntervalMs);
      this.pingTimer.unref();
    }
    this.log.info('bridge.listening', {
      host,
      port: boundPort,
      tokenRequired: this.config.token !== undefined,
      hostMapEntries: this.config.hostMap.size,
    });
    return {
      url: `ws://${formatHostPort(host, boundPort)}`,
      port: boundPort,
      metrics: this.metrics,
      close: () => this.close(),
    };
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?', 1)[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(405, 'text/plain; charset=utf-8', 'method not allowed\n');
    } else if (path === '/healthz') {
      const ok = this.stopping === undefined;
      reply(ok ? 200 : 503, 'application/json', `${JSON.stringify({ status: ok ? 'ok' : 'stopping', tunnels: this.tunnels.size })}\n`);
    } else if (path === '/metrics') {
      reply(200, 'text/plain; version=0.0.4; charset=utf-8', this.metrics.render());
    } else if (path?.startsWith(TUNNEL_PREFIX)) {
      reply(426, 'text/plain; charset=utf-8', 'WebSocket upgrade required\n');
    } else {
      reply(404, 'text/plain; charset=utf-8', 'not found\n');
    }
  }

  private clientAddress(req: IncomingMessage): string {
    if (this.config.trustForwardedFor) {
      const forwarded = req.headers['x-forwarded-for'];
      const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').pop()?.trim() ?? '';
      if (isIP(last)) return last;
    }
    return req.socket.remoteAddress ?? 'unknown';
  }

  private async onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const onEarlyError = () => socket.destroy();
    socket.on('error', onEarlyError);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (this.stopping !== undefined) return rejectHttp(socket, 503);
    if (!path.startsWith(TUNNEL_PREFIX)) return rejectHttp(socket, 404);
    // Not a WebSocket handshake at all: answer in HTTP and spend nothing on it.
    if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket' || !req.headers['sec-websocket-key']) {
      return rejectHttp(socket, 400);
    }
    const client = this.clientAddress(req);
    const refuse = (reason: RefusalReason, destination?: Destination, detail?: string) =>
      this.refuse(req, socket, head, reason, client, destination, detail);

    const { token } = this.config;
    if (token !== undefined && !tokenMatches(token, presentedToken(req, new URLSearchParams(q === -1 ? '' : url.slice(q + 1))))) {
      return refuse('unauthorized');
    }
    const destination = parseTunnelPath(path);
    if (destination === null) return refuse('bad-request');
    const mapped = this.config.hostMap.lookup(destination.host, destination.port);
    if (mapped === undefined && !this.config.allowlist.allows(destination.host, destination.port)) {
      return refuse('not-allowed', destination);
    }
    if (this.tunnels.size + this.pending.size >= this.config.maxTunnels) return refuse('limit-total', destination);
    const key = clientKey(client);
    const held = this.perClient.get(key) ?? 0;
    if (held >= this.config.maxTunnelsPerIp) return refuse('limit-per-ip', destination);

    this.perClient.set(key, held + 1);
    const pending: Pending = { abort: new AbortController() };
    this.pending.add(pending);
    this.metrics.tunnelsConnecting++;
    // Read the socket while waiting, or a client that hangs up goes unnoticed; a compliant client sends nothing
    // before the handshake answer, so any byte now also counts as leaving.
    const onGone = () => pending.abort.abort();
    socket.on('close', onGone);
    socket.on('end', onGone);
    socket.on('data', onGone);
    socket.resume();
    const result = await dial(mapped ?? destination, mapped !== undefined, {
      resolver: this.config.resolver,
      connector: this.config.connector,
      timeoutMs: this.config.connectTimeoutMs,
      signal: pending.abort.signal,
    });
    socket.off('close', onGone);
    socket.off('end', onGone);
    socket.off('data', onGone);
    this.pending.delete(pending);
    this.metrics.tunnelsConnecting--;

    // The client left, or the bridge began stopping, while DNS or connect ran.
    if (pending.abort.signal.aborted) {
      if (result.ok) result.socket.destroy();
      this.release(key);
      socket.destroy();
      this.checkDrained();
      return;
    }
    if (!result.ok) {
      this.release(key);
      return refuse(result.reason, destination, result.detail);
    }

    const tcp = result.socket;
    tcp.on('error', noop); // until the tunnel takes over, below
    let tunnel: Tunnel | undefined;
    const id = this.nextId++;
    const dest = formatHostPort(destination.host, destination.port);
    // Completes synchronously once the handshake headers were found valid; otherwise ws answers 400 itself.
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', onEarlyError);
      tunnel = new Tunnel(ws, tcp, this.config, this.metrics, (summary) => this.ended(tunnel, id, client, key, dest, summary));
      this.tunnels.add(tunnel);
      this.metrics.opened();
      this.metrics.tunnelsOpen++;
      this.log.info('tunnel.open', { id, client, destination: dest, address: result.address, mapped: mapped !== undefined });
    });
    tcp.off('error', noop);
    if (tunnel === undefined) {
      tcp.destroy();
      this.release(key);
      this.checkDrained();
    }
  }

  private ended(tunnel: Tunnel | undefined, id: number, client: string, key: string, destination: string, s: TunnelSummary) {
    if (tunnel !== undefined) this.tunnels.delete(tunnel);
    this.metrics.tunnelsOpen--;
    this.metrics.closedFor(s.reason);
    this.release(key);
    this.log.info('tunnel.close', {
      id,
      client,
      destination,
      reason: s.reason,
      code: s.code,
      durationMs: s.durationMs,
      bytesFromClient: s.bytesFromClient,
      bytesToClient: s.bytesToClient,
      error: s.error,
    });
    this.checkDrained();
  }

  private refuse(
    req: IncomingMessage,
    socket: Socket,
    head: Buffer,
    reason: RefusalReason,
    client: string,
    destination: Destination | undefined,
    detail: string | undefined,
  ): void {
    this.metrics.refusedFor(reason);
    this.log.info('tunnel.refused', {
      client,
      destination: destination && formatHostPort(destination.host, destination.port),
      reason,
      detail,
    });
    // A socket that is already gone would never report its WebSocket closed; there is no one left to tell.
    if (socket.destroyed || this.stopping !== undefined) return void socket.destroy();
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.refusing.add(ws);
      ws.on('error', noop);
      ws.on('close', () => {
        this.refusing.delete(ws);
        this.checkDrained();
      });
      const frame = REFUSAL_CLOSE[reason];
      ws.close(frame.code, frame.reason);
    });
  }

  private release(key: string): void {
    const n = (this.perClient.get(key) ?? 1) - 1;
    if (n > 0) this.perClient.set(key, n);
    else this.perClient.delete(key);
  }

  private checkDrained(): void {
    if (this.onDrained && this.tunnels.size === 0 && this.pending.size === 0 && this.refusing.size === 0) this.onDrained();
  }

  private close(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    this.log.info('bridge.stopping', { tunnels: this.tunnels.size, connecting: this.pending.size });
    clearInterval(this.pingTimer);
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const drained = new Promise<void>((resolve) => {
      this.onDrained = resolve;
    });
    for (const p of this.pending) p.abort.abort();
    for (const t of this.tunnels) t.shutdown();
    this.checkDrained();
    let grace: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      grace = setTimeout(resolve, this.config.shutdownGraceMs);
    });
    await Promise.race([drained, graceOver]);
    clearTimeout(grace);
    if (this.tunnels.size + this.refusing.size > 0) {
      this.log.warn('bridge.terminating', { tunnels: this.tunnels.size, refusing: this.refusing.size });
      for (const t of this.tunnels) t.terminate();
      for (const ws of this.refusing) ws.terminate();
      await drained;
    }
    this.http.closeAllConnections();
    await closed;
    this.log.info('bridge.stopped');
  }
}

function noop(): void {}

function rejectHttp(socket: Socket, status: 400 | 404 | 503): void {
  const text = { 400: 'Bad Request', 404: 'Not Found', 503: 'Service Unavailable' }[status];
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Starts a bridge; see BridgeOptions for settings and bridge/README.md for the protocol. */
export async function startBridge(options: BridgeOptions = {}): Promise<RunningBridge> {
  return new Bridge(resolveConfig(options)).listen();
}
