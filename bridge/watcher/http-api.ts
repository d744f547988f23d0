// The watcher's HTTP JSON API, as the PWA calls it (lib/push/watcher-client.ts) — routing, CORS, bearer secrets,
// body limits, and errors as `{ error, message }` with a 4xx/5xx status:
//
//   GET    /v1/vapid-public-key               → { publicKey }
//   POST   /v1/enrollments                    → 201 { id, secret, state }
//   GET    /v1/enrollments/:id/status         → { state, reachable, resumeAt?, lastWakeAt?, wakes, error? }
//   POST   /v1/enrollments/:id/drained        → { state }
//   POST   /v1/enrollments/:id/pause          → { state, resumeAt }         body { seconds }
//   DELETE /v1/enrollments/:id                → 204
//   GET    /healthz, /metrics
//
// Calls on an enrollment carry `Authorization: Bearer <secret>`. An unknown id and a wrong secret get the same 404,
// so the API does not tell which enrollments exist.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { clientKey } from '../address-policy';
import { ENROLLMENT_ID } from './enrollment-id';
import { ApiError } from './errors';

export interface WatcherApi {
  vapidPublicKey(): string;
  enroll(body: unknown, client: string): Promise<{ status: number; body: unknown }>;
  status(id: string, secret: string): unknown;
  drained(id: string, secret: string): unknown;
  pause(id: string, secret: string, body: unknown): unknown;
  unenroll(id: string, secret: string): Promise<void>;
  health(): { ok: boolean; body: unknown };
  metrics(): string;
}

export interface HttpApiOptions {
  readonly corsOrigins: readonly string[];
  readonly maxBodyBytes: number;
  readonly trustForwardedFor: boolean;
  /** Called for answers ≥ 500 (a bug, or storage failing), with no request content. */
  readonly onInternalError: (e: unknown) => void;
}

const ENROLLMENT_PATH = /^\/v1\/enrollments\/([^/]+)(?:\/(status|drained|pause))?$/;
// Past this much of an over-limit body, stop reading and drop the connection.
const MAX_DISCARD_BYTES = 1024 * 1024;

export function createApiHandler(api: WatcherApi, o: HttpApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const allowAny = o.corsOrigins.includes('*');

  const cors = (req: IncomingMessage, res: ServerResponse) => {
    const origin = req.headers.origin;
    if (allowAny) {
      res.setHeader('access-control-allow-origin', '*');
    } else if (origin !== undefined && o.corsOrigins.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
    }
  };

  const send = (res: ServerResponse, status: number, body?: unknown, type = 'application/json') => {
    const text = body === undefined ? '' : typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
    res.writeHead(status, {
      ...(body !== undefined ? { 'content-type': type } : {}),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  };

  const clientOf = (req: IncomingMessage): string => {
    if (o.trustForwardedFor) {
      const forwarded = req.headers['x-forwarded-for'];
      const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').pop()?.trim() ?? '';
      if (isIP(last)) return clientKey(last);
    }
    return clientKey(req.socket.remoteAddress ?? 'unknown');
  };

  const bearer = (req: IncomingMessage): string => {
    const m = /^Bearer[ ]+([A-Za-z0-9_-]{1,128})\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new ApiError(401, 'unauthorized', 'send the enrollment secret as Authorization: Bearer <secret>');
    return m[1]!;
  };

  /** The JSON body, or undefined when there is none; 413/415/400 otherwise. */
  const jsonBody = async (req: IncomingMessage, required: boolean): Promise<unknown> => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > o.maxBodyBytes) throw tooLarge(o.maxBodyBytes);
    // Not `for await`: leaving that loop early destroys the request, and the 413 could not be answered.
    const chunks: Buffer[] = [];
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size <= o.maxBodyBytes) return void chunks.push(chunk);
        req.off('data', onData);
        req.off('end', resolve);
        reject(tooLarge(o.maxBodyBytes));
      };
      req.on('data', onData);
      req.once('end', resolve);
      req.once('error', reject);
    });
    if (size === 0) {
      if (required) throw new ApiError(400, 'bad-json', 'a JSON body is required');
      return undefined;
    }
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new ApiError(415, 'unsupported-media-type', 'send Content-Type: application/json');
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new ApiError(400, 'bad-json', 'the body is not JSON');
    }
  };

  const route = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const method = req.method ?? 'GET';
    const only = (...methods: string[]) => {
      if (!methods.includes(method)) throw new ApiError(405, 'method-not-allowed', `use ${methods.join(' or ')}`);
    };
    if (path === '/healthz') {
      only('GET', 'HEAD');
      const h = api.health();
      return send(res, h.ok ? 200 : 503, h.body);
    }
    if (path === '/metrics') {
      only('GET', 'HEAD');
      return send(res, 200, api.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
    }
    if (path === '/v1/vapid-public-key') {
      only('GET', 'HEAD');
      return send(res, 200, { publicKey: api.vapidPublicKey() });
    }
    if (path === '/v1/enrollments') {
      only('POST');
      const body = await jsonBody(req, true);
      const out = await api.enroll(body, clientOf(req));
      return send(res, out.status, out.body);
    }
    const m = ENROLLMENT_PATH.exec(path);
    if (!m) throw new ApiError(404, 'not-found', 'no such endpoint');
    const [, id = '', action] = m;
    if (action === undefined) only('DELETE');
    else if (action === 'status') only('GET', 'HEAD');
    else only('POST');
    const secret = bearer(req);
    if (!ENROLLMENT_ID.test(id)) throw new ApiError(404, 'unknown-enrollment', 'no enrollment with this id and secret');
    if (action === undefined) {
      await api.unenroll(id, secret);
      return send(res, 204);
    }
    if (action === 'status') return send(res, 200, api.status(id, secret));
    if (action === 'drained') {
      await jsonBody(req, false);
      return send(res, 200, api.drained(id, secret));
    }
    return send(res, 200, api.pause(id, secret, await jsonBody(req, true)));
  };

  return (req, res) => {
    cors(req, res);
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE');
      res.setHeader('access-control-allow-headers', 'authorization, content-type');
      res.setHeader('access-control-max-age', '600');
      return send(res, 204);
    }
    route(req, res, path).catch((e: unknown) => {
      const err = e instanceof ApiError ? e : new ApiError(500, 'internal-error', 'the watcher failed to handle this request');
      if (err.status >= 500) o.onInternalError(e);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err.status === 413) discardRest(req, res);
      send(res, err.status, { error: err.code, message: err.message, ...err.extra });
    });
  };
}

function tooLarge(max: number): ApiError {
  return new ApiError(413, 'body-too-large', `the body is larger than ${max} bytes`);
}

/** Answers then reads and drops what the client is still sending (so it sees the 413), up to a point. */
function discardRest(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > MAX_DISCARD_BYTES) req.destroy();
  });
  req.resume();
}
