// HTTP/1.1 client over a ByteStream (normally a TlsConnection through the bridge): one request at a time per
// connection, kept alive while the server allows it. Apple's HTTPS endpoints (albert, IDS, the bags) cannot be
// fetched from a page (no CORS), so every request to them goes through here.
import { concat, utf8 } from '../codec/bytes';
import { EncodeError } from '../errors';
import { BufferedReader } from './buffered-reader';
import { bridgeProtocols, openWebSocketStream, tunnelUrl, type ByteStream, type WebSocketConstructor } from './byte-stream';
import type { CertificateInput } from './cert-verify';
import { withDeadline } from './deadline';
import { asNetError, NetError } from './errors';
import { HTTP_TOKEN, readResponse, type HttpResponse } from './http-response';
import { connectTls } from './tls';

export type { HttpResponse } from './http-response';

export interface HttpRequest {
  method: string;
  /** Origin-form request target: "/path?query". */
  path: string;
  /** Content-Length is set from `body`; Host and Accept-Encoding: gzip are added unless given here. */
  headers?: Record<string, string> | ReadonlyArray<readonly [string, string]>;
  body?: Uint8Array;
  /** Deadline for writing the request and reading the whole response. */
  timeoutMs?: number;
  maxBodyBytes?: number;
}

export interface HttpConnectionOptions {
  /** The Host header: the host, with ":port" when not the scheme's default. */
  host: string;
  timeoutMs?: number;
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
}

export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

const FIELD_VALUE = /^[\t\x20-\x7e]*$/;
const REQUEST_TARGET = /^\/[\x21-\x7e]*$/;
/** Framing is this client's job; a caller's value could contradict the body it sends. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding']);

export class HttpConnection {
  private readonly reader: BufferedReader;
  private queue: Promise<unknown> = Promise.resolve();
  private canReuse = true;

  constructor(
    private readonly stream: ByteStream,
    private readonly options: HttpConnectionOptions,
  ) {
    this.reader = new BufferedReader(stream);
    void stream.closed.then(() => (this.canReuse = false));
  }

  /** False once the server or an error has ended the connection; open a new one then. */
  get reusable(): boolean {
    return this.canReuse;
  }

  /** Sends one request and reads its response; concurrent calls are queued and run one after another. */
  request(req: HttpRequest): Promise<HttpResponse> {
    const run = this.queue.then(() => this.exchange(req));
    this.queue = run.catch(() => {});
    return run;
  }

  close(): void {
    this.canReuse = false;
    this.stream.close();
  }

  private async exchange(req: HttpRequest): Promise<HttpResponse> {
    if (!this.canReuse) throw new NetError('connection-closed', 'this HTTP connection cannot be reused');
    const head = serializeRequest(req, this.options.host);
    const limits = {
      maxHeaderBytes: this.options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
      maxBodyBytes: req.maxBodyBytes ?? this.options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    };
    const work = (async () => {
      await this.stream.write(req.body?.length ? concat(head, req.body) : head);
      return readResponse(this.reader, req.method, limits);
    })();
    const timeoutMs = req.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    try {
      const res = await withDeadline(work, timeoutMs, () => {
        this.close();
        return new NetError('http-timeout', `no complete response to ${req.method} ${req.path} in ${timeoutMs} ms`);
      });
      // Bytes nobody asked for mean the framing is off; the next response could not be trusted.
      if (!res.keepAlive || this.reader.buffered || sentClose(req)) this.close();
      return { status: res.status, reason: res.reason, headers: res.headers, body: res.body };
    } catch (e) {
      this.close();
      throw asNetError(e, 'http-bad-response', 'the HTTP exchange failed');
    }
  }
}

/** The request line and header block (the body is sent after it as is). */
export function serializeRequest(req: HttpRequest, host: string): Uint8Array {
  if (!HTTP_TOKEN.test(req.method)) throw new EncodeError('http-bad-request', 'invalid HTTP method');
  if (!REQUEST_TARGET.test(req.path)) throw new EncodeError('http-bad-request', 'the path must be "/…" without spaces');
  const given = headerList(req.headers);
  const names = new Set(given.map(([name]) => name.toLowerCase()));
  const lines = [`${req.method} ${req.path} HTTP/1.1`];
  if (!names.has('host')) lines.push(`Host: ${host}`);
  for (const [name, value] of given) {
    if (!HTTP_TOKEN.test(name) || FRAMING_HEADERS.has(name.toLowerCase())) {
      throw new EncodeError('http-bad-request', `header name "${name}" is invalid or reserved`);
    }
    if (!FIELD_VALUE.test(value)) throw new EncodeError('http-bad-request', `header ${name} has a control character`);
    lines.push(`${name}: ${value}`);
  }
  if (!names.has('accept-encoding')) lines.push('Accept-Encoding: gzip');
  if (req.body?.length || /^(POST|PUT|PATCH)$/.test(req.method)) lines.push(`Content-Length: ${req.body?.length ?? 0}`);
  return utf8(lines.join('\r\n') + '\r\n\r\n');
}

function headerList(headers: HttpRequest['headers']): ReadonlyArray<readonly [string, string]> {
  return Array.isArray(headers) ? headers : Object.entries(headers ?? {});
}

function sentClose(req: HttpRequest): boolean {
  return headerList(req.headers).some(([n, v]) => n.toLowerCase() === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(v));
}

export interface HttpsConnectOptions {
  /** The bridge, e.g. wss://bridge.example (tunnels are opened at <bridgeUrl>/tunnel/<host>:<port>). */
  bridgeUrl: string;
  WebSocketImpl: WebSocketConstructor;
  /** The bridge's access token, when it requires one. */
  bridgeToken?: string;
  host: string;
  port?: number;
  /** Name the certificate must carry; defaults to `host`. */
  serverName?: string;
  trustedRoots: readonly CertificateInput[];
  /** Deadline for opening the tunnel and for the TLS handshake, each. */
  connectTimeoutMs?: number;
  timeoutMs?: number;
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

/** WebSocket → bridge → TLS (ALPN http/1.1) → an HttpConnection for sequential requests to one host. */
export async function openHttpsConnection(options: HttpsConnectOptions): Promise<HttpConnection> {
  const port = options.port ?? 443;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const stream = await openWebSocketStream({
    url: tunnelUrl(options.bridgeUrl, options.host, port),
    WebSocketImpl: options.WebSocketImpl,
    ...(options.bridgeToken !== undefined ? { protocols: bridgeProtocols(options.bridgeToken) } : {}),
    timeoutMs: connectTimeoutMs,
  });
  const tls = await connectTls(stream, {
    serverName: options.serverName ?? options.host,
    alpn: ['http/1.1'],
    trustedRoots: options.trustedRoots,
    timeoutMs: connectTimeoutMs,
  });
  return new HttpConnection(tls, {
    host: port === 443 ? options.host : `${options.host}:${port}`,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.maxHeaderBytes !== undefined ? { maxHeaderBytes: options.maxHeaderBytes } : {}),
    ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
  });
}

/** One request on a connection of its own, closed afterwards. */
export async function httpsRequest(options: HttpsConnectOptions & HttpRequest): Promise<HttpResponse> {
  const conn = await openHttpsConnection(options);
  try {
    const given = headerList(options.headers);
    const headers = given.some(([n]) => n.toLowerCase() === 'connection') ? given : [...given, ['Connection', 'close'] as const];
    return await conn.request({ ...options, headers });
  } finally {
    conn.close();
  }
}
