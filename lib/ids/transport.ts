// How lib/ids reaches Apple's HTTPS endpoints: an injectable request function, so the protocol code can be tested
// against anything, and a default one over lib/net (WebSocket → bridge → TLS → HTTP/1.1) that keeps one connection
// per host alive and reuses it, opening a new one when the server or the tunnel has ended the old.
import { EncodeError } from '../errors';
import type { WebSocketConstructor } from '../net/byte-stream';
import type { CertificateInput } from '../net/cert-verify';
import { NetError } from '../net/errors';
import { openHttpsConnection, type HttpConnection, type HttpResponse } from '../net/http';

export type { HttpResponse } from '../net/http';

export interface IdsHttpRequest {
  /** Host name, with ":port" when not 443. */
  host: string;
  method: string;
  /** "/path?query". */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

export type IdsHttp = (req: IdsHttpRequest) => Promise<HttpResponse>;

export interface TunnelHttpOptions {
  /** The bridge, e.g. wss://bridge.example. */
  bridgeUrl: string;
  WebSocketImpl: WebSocketConstructor;
  bridgeToken?: string;
  /** Apple's roots in production, the sandbox CA in sandbox mode. */
  trustedRoots: readonly CertificateInput[];
  connectTimeoutMs?: number;
  /** Per request: writing it and reading the whole response. */
  timeoutMs?: number;
}

/** An IdsHttp that owns pooled connections; close() ends them all. */
export interface TunnelHttp extends IdsHttp {
  close(): void;
}

/** One kept-alive HTTPS connection per host through the bridge. */
export function createTunnelHttp(options: TunnelHttpOptions): TunnelHttp {
  const pool = new Map<string, Promise<HttpConnection>>();

  const open = (host: string): Promise<HttpConnection> => {
    const { name, port } = splitHost(host);
    const opening = openHttpsConnection({
      bridgeUrl: options.bridgeUrl,
      WebSocketImpl: options.WebSocketImpl,
      trustedRoots: options.trustedRoots,
      host: name,
      port,
      ...(options.bridgeToken !== undefined ? { bridgeToken: options.bridgeToken } : {}),
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
    pool.set(host, opening);
    // A failed open must not stay in the pool: the next request tries again.
    opening.catch(() => {
      if (pool.get(host) === opening) pool.delete(host);
    });
    return opening;
  };

  const connection = async (host: string): Promise<{ conn: HttpConnection; reused: boolean }> => {
    const pooled = pool.get(host);
    if (pooled) {
      const conn = await pooled.catch(() => undefined);
      if (conn?.reusable) return { conn, reused: true };
      if (pool.get(host) === pooled) pool.delete(host);
      // Another request may already have replaced it.
      const current = pool.get(host);
      if (current && current !== pooled) return connection(host);
    }
    return { conn: await open(host), reused: false };
  };

  const http = async (req: IdsHttpRequest): Promise<HttpResponse> => {
    const send = (conn: HttpConnection) =>
      conn.request({ method: req.method, path: req.path, headers: req.headers, ...(req.body ? { body: req.body } : {}) });
    const { conn, reused } = await connection(req.host);
    try {
      return await send(conn);
    } catch (e) {
      // A kept-alive connection the server closed while idle fails on first use; that is no answer, so try once
      // more on a fresh connection. A fresh connection's failure is real.
      if (!reused || !isStale(e)) throw e;
      return send((await connection(req.host)).conn);
    }
  };

  return Object.assign(http, {
    close() {
      for (const opening of pool.values()) void opening.then((c) => c.close(), () => {});
      pool.clear();
    },
  });
}

function isStale(e: unknown): boolean {
  return e instanceof NetError && (e.code === 'connection-closed' || e.code === 'connection-lost');
}

/** "name" or "name:port" (IPv6 in brackets) → parts; the port defaults to 443. */
export function splitHost(host: string): { name: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(host);
  const port = m?.[2] === undefined ? 443 : Number(m[2]);
  if (!m || port < 1 || port > 65535) throw new EncodeError('bad-host', `invalid host "${host}"`);
  return { name: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** An https URL as the host and path an IdsHttp request takes. */
export function splitHttpsUrl(url: string): { host: string; path: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new EncodeError('bad-url', `not a URL: ${url}`, { cause: e });
  }
  if (u.protocol !== 'https:') throw new EncodeError('bad-url', `IDS endpoints are https: ${url}`);
  return { host: u.host, path: `${u.pathname}${u.search}` };
}
