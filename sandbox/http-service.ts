// A small HTTP router for the sandbox's Apple endpoints, served over node:https (SNI from the PKI) and node:http.
//
// Routes are keyed by scheme, host (from the Host header, else SNI) and exact path (or a declared prefix). The router
// enforces the method, a body size limit, the request content type and Content-Encoding (gzip bodies are inflated
// with a bound; the raw bytes stay available because IDS signatures cover them), and turns every bad input into a
// clean 4xx. A handler that throws HttpError picks its status; a DecodeError/CryptoError becomes 400; anything else
// is a logged 500. Nothing a client sends can crash the process.
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { fromUtf8, utf8 } from '../lib/codec/bytes';
import { gunzip } from '../lib/codec/gzip';
import { encodeBinaryPlist, encodeXmlPlist, isDict, parsePlist, type PlistDict, type PlistLimits, type PlistValue } from '../lib/codec/plist';
import { CeruleanError } from '../lib/errors';
import type { Log } from './context';
import type { SandboxPki } from './pki';

export type Scheme = 'https' | 'http';

export interface ServiceRequest {
  scheme: Scheme;
  method: string;
  /** Lower-case host name without the port. */
  host: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Lower-case media type without parameters, if the request had a Content-Type. */
  contentType: string | undefined;
  /** The body exactly as received, still gzipped if it was sent gzipped: IDS signatures cover these bytes. */
  rawBody: Uint8Array;
  /** The body with its Content-Encoding removed. */
  body: Uint8Array;
  remoteAddress: string;
  /** For prefix routes: the part of the path after the route's prefix. */
  pathRest: string;
}

export interface ServiceResponse {
  status?: number;
  headers?: Record<string, string | string[]>;
  body?: Uint8Array | string;
}

export type RouteHandler = (req: ServiceRequest) => ServiceResponse | Promise<ServiceResponse>;

export interface Route {
  /** Lower-case host, or '*' for any host (the admin page). */
  host: string;
  /** Exact path (no query). With `prefix`, any path starting with it. */
  path: string;
  prefix?: boolean;
  methods: readonly string[];
  /** Default: https only. */
  schemes?: readonly Scheme[];
  /** Largest accepted request body, before and (×4) after inflation; default 1 MiB. */
  maxBodyBytes?: number;
  /** Accepted request media types (lower-case, no parameters); omitted = any. A bodiless request is never checked. */
  contentTypes?: readonly string[];
  handler: RouteHandler;
  /** Renders router-level and HttpError failures the way the real service does (e.g. albert's HTML). */
  onError?: (status: number, reason: string) => ServiceResponse;
}

/** A failure with an HTTP status; `reason` is shown to the client, so it must not carry secrets. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason);
    this.name = 'HttpError';
  }
}

const DEFAULT_MAX_BODY = 1024 * 1024;

export class HttpRouter {
  private readonly exact = new Map<string, Route[]>();
  private readonly prefixes: Route[] = [];

  constructor(private readonly log: Log) {}

  /** Adds a route; the same scheme + host + path twice is a programming error. */
  add(route: Route): void {
    const r: Route = { ...route, host: route.host.toLowerCase() };
    if (!r.path.startsWith('/')) throw new Error(`route path must start with '/': ${r.path}`);
    for (const scheme of r.schemes ?? ['https']) {
      const key = routeKey(scheme, r.host, r.path);
      if (r.prefix) {
        if (this.prefixes.some((p) => p.path === r.path && p.host === r.host && (p.schemes ?? ['https']).includes(scheme))) {
          throw new Error(`duplicate route ${key}*`);
        }
      } else {
        if (this.exact.has(key)) throw new Error(`duplicate route ${key}`);
        this.exact.set(key, [r]);
      }
    }
    if (r.prefix) this.prefixes.push(r);
  }

  /** Hosts with at least one route on `scheme` (wildcard routes excluded). */
  hosts(scheme: Scheme): string[] {
    const out = new Set<string>();
    for (const [key] of this.exact) {
      const [s, h] = key.split(' ');
      if (s === scheme && h && h !== '*') out.add(h);
    }
    for (const p of this.prefixes) if ((p.schemes ?? ['https']).includes(scheme) && p.host !== '*') out.add(p.host);
    return [...out];
  }

  private find(scheme: Scheme, host: string, path: string): { route: Route; rest: string } | undefined {
    for (const h of [host, '*']) {
      const hit = this.exact.get(routeKey(scheme, h, path))?.[0];
      if (hit) return { route: hit, rest: '' };
    }
    let best: Route | undefined;
    for (const p of this.prefixes) {
      if (!(p.schemes ?? ['https']).includes(scheme) || (p.host !== host && p.host !== '*')) continue;
      if (path.startsWith(p.path) && (!best || p.path.length > best.path.length)) best = p;
    }
    return best ? { route: best, rest: path.slice(best.path.length) } : undefined;
  }

  /** Serves one request; never throws. */
  async handle(req: IncomingMessage, res: ServerResponse, scheme: Scheme): Promise<void> {
    const started = Date.now();
    const method = req.method ?? 'GET';
    const url = req.url ?? '';
    const host = requestHost(req);
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    let route: Route | undefined;
    let status = 500;
    try {
      if (!path.startsWith('/')) throw new HttpError(400, 'Bad request target');
      const found = this.find(scheme, host, path);
      if (!found) throw new HttpError(404, 'Not Found');
      route = found.route;
      if (!route.methods.includes(method)) {
        throw new HttpError(405, 'Method Not Allowed', { allow: route.methods.join(', ') });
      }
      const limit = route.maxBodyBytes ?? DEFAULT_MAX_BODY;
      const rawBody = await readBody(req, limit);
      const contentType = mediaType(req.headers['content-type']);
      if (rawBody.length > 0 && route.contentTypes && !(contentType && route.contentTypes.includes(contentType))) {
        throw new HttpError(415, `Unsupported content type ${contentType ?? '(none)'}`);
      }
      const body = await decodeBody(rawBody, req.headers['content-encoding'], limit * 4);
      const response = await route.handler({
        scheme,
        method,
        host,
        path,
        query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
        headers: req.headers,
        contentType,
        rawBody,
        body,
        remoteAddress: req.socket.remoteAddress ?? '',
        pathRest: found.rest,
      });
      status = response.status ?? 200;
      send(res, response);
    } catch (e) {
      const failure = toHttpError(e);
      status = failure.status;
      if (status >= 500) this.log.error('http.handler-failed', { host, path, message: (e as Error)?.message ?? String(e) });
      const rendered = route?.onError?.(failure.status, failure.reason) ?? textResponse(failure.reason, failure.status);
      send(res, {
        ...rendered,
        status: failure.status,
        headers: { ...rendered.headers, ...failure.headers, ...(failure.status === 413 ? { connection: 'close' } : {}) },
      });
    } finally {
      this.log.info('http.request', { scheme, host, method, path, status, ms: Date.now() - started });
    }
  }
}

function routeKey(scheme: Scheme, host: string, path: string): string {
  return `${scheme} ${host} ${path}`;
}

function requestHost(req: IncomingMessage): string {
  const header = req.headers.host;
  const raw = header && header.length > 0 ? header : ((req.socket as TLSSocket).servername || '');
  const lower = raw.toLowerCase();
  if (lower.startsWith('[')) return lower.slice(0, lower.indexOf(']') + 1);
  return lower.replace(/:\d*$/, '');
}

function mediaType(header: string | undefined): string | undefined {
  const t = header?.split(';')[0]?.trim().toLowerCase();
  return t ? t : undefined;
}

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(new HttpError(413, 'Request body too large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      total += chunk.length;
      if (total > limit) {
        failed = true;
        chunks.length = 0;
        reject(new HttpError(413, 'Request body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(new Uint8Array(Buffer.concat(chunks)));
    });
    req.on('error', () => {
      if (!failed) {
        failed = true;
        reject(new HttpError(400, 'Request body could not be read'));
      }
    });
  });
}

async function decodeBody(raw: Uint8Array, encoding: string | undefined, maxInflated: number): Promise<Uint8Array> {
  const enc = encoding?.trim().toLowerCase();
  if (!enc || enc === 'identity') return raw;
  if (enc !== 'gzip') throw new HttpError(415, `Unsupported content encoding ${enc}`);
  try {
    return await gunzip(raw, maxInflated);
  } catch {
    throw new HttpError(400, 'Body is not valid gzip or inflates too far');
  }
}

function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof CeruleanError) return new HttpError(400, `Bad request (${e.code})`);
  return new HttpError(500, 'Internal Server Error');
}

function send(res: ServerResponse, r: ServiceResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = typeof r.body === 'string' ? utf8(r.body) : (r.body ?? new Uint8Array(0));
  res.statusCode = r.status ?? 200;
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  res.setHeader('content-length', body.length);
  res.end(body);
}

// ---- Responses -----------------------------------------------------------------------------------------------

export function plistResponse(
  value: PlistValue,
  options: { status?: number; format?: 'xml' | 'binary'; contentType?: string; headers?: Record<string, string> } = {},
): ServiceResponse {
  const binary = options.format === 'binary';
  return {
    status: options.status ?? 200,
    headers: {
      'content-type': options.contentType ?? (binary ? 'application/x-apple-plist' : 'text/xml; charset=utf-8'),
      ...options.headers,
    },
    body: binary ? encodeBinaryPlist(value) : encodeXmlPlist(value),
  };
}

export function jsonResponse(value: unknown, status = 200, headers: Record<string, string> = {}): ServiceResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(value) };
}

export function htmlResponse(html: string, status = 200, headers: Record<string, string> = {}): ServiceResponse {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8', ...headers }, body: html };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function textResponse(text: string, status = 200): ServiceResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: text + '\n' };
}

// ---- Request bodies --------------------------------------------------------------------------------------------

const BODY_PLIST_LIMITS: PlistLimits = { maxObjects: 100_000, maxDepth: 32 };

/** The body as a plist dict (XML or binary); anything else is a 400. */
export function readPlistBody(req: ServiceRequest, limits: PlistLimits = BODY_PLIST_LIMITS): PlistDict {
  let v: PlistValue;
  try {
    v = parsePlist(req.body, limits);
  } catch {
    throw new HttpError(400, 'Body is not a property list');
  }
  if (!isDict(v)) throw new HttpError(400, 'Body is not a property-list dictionary');
  return v;
}

/** The body as JSON; an empty body is `{}`. */
export function readJsonBody(req: ServiceRequest): unknown {
  if (req.body.length === 0) return {};
  try {
    return JSON.parse(fromUtf8(req.body));
  } catch {
    throw new HttpError(400, 'Body is not JSON');
  }
}

export function readFormBody(req: ServiceRequest): URLSearchParams {
  try {
    return new URLSearchParams(fromUtf8(req.body));
  } catch {
    throw new HttpError(400, 'Body is not a form');
  }
}

// ---- Listeners -----------------------------------------------------------------------------------------------

export interface Listener {
  port: number;
  close(): Promise<void>;
}

export interface ListenOptions {
  host: string;
  port: number;
  log: Log;
}

/** HTTPS for every host the PKI has a certificate for, TLS 1.2 and 1.3, certificate chosen by SNI. */
export function listenHttps(router: HttpRouter, pki: SandboxPki, options: ListenOptions): Promise<Listener> {
  const server = https.createServer({
    SNICallback: (name, cb) => {
      try {
        cb(null, pki.secureContext(name));
      } catch (e) {
        cb(e as Error);
      }
    },
    // Clients that send no SNI get the first identity's chain.
    ...pki.defaultCredentials(),
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
  });
  server.on('tlsClientError', (e) => options.log.info('https.tls-client-error', { message: e.message }));
  return serve(server, router, 'https', options);
}

export function listenHttp(router: HttpRouter, options: ListenOptions): Promise<Listener> {
  return serve(http.createServer(), router, 'http', options);
}

function serve(server: http.Server, router: HttpRouter, scheme: Scheme, options: ListenOptions): Promise<Listener> {
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = 5_000;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => void router.handle(req, res, scheme));
  server.on('clientError', (_e: Error, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      server.on('error', (e) => options.log.error('http.server-error', { scheme, message: e.message }));
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
