// The PWA's (and the service worker's) side of the push watcher's HTTP API (bridge/README.md, "Push watcher"), on
// fetch so it runs in pages, workers and Node alike. Enrolling hands the watcher the device's push credentials —
// the push key, certificate and token, never an identity key — and the browser's Web Push subscription; the
// answer is the enrollment id and a bearer secret for every later call. Failures are WatcherErrors with the
// watcher's own code ('key-mismatch', 'endpoint-not-allowed', 'unknown-enrollment', …) or a local one
// ('watcher-unreachable', 'watcher-timeout', 'bad-response', 'push-key-not-extractable').
import { fromBase64, toBase64 } from '../codec/bytes';
import { subtle } from '../crypto/subtle';
import { CeruleanError } from '../errors';

export type WatcherState = 'connecting' | 'watching' | 'woken' | 'paused' | 'stopped';

export interface WatcherPushCredentials {
  /** The push key from albert activation: an extractable CryptoKey, or its PKCS#8 bytes. */
  key: CryptoKey | Uint8Array;
  /** The push certificate, DER. */
  certificate: Uint8Array;
  /** The 32-byte push token the courier issued. */
  token: Uint8Array;
}

/** What `PushSubscription.toJSON()` gives (a PushSubscription itself is accepted too). */
export interface WebPushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface EnrollRequest {
  push: WatcherPushCredentials;
  subscription: WebPushSubscriptionJson | { toJSON(): unknown };
  /** A fixed courier `host[:port]` (default: a numbered Apple courier host, or whatever the watcher is set up for). */
  courierHost?: string;
  /** Start paused for this long: the page enrolling is open and holds the courier connection itself. */
  pauseSeconds?: number;
}

export interface Enrollment {
  id: string;
  secret: string;
  /** The watcher URL that holds this enrollment (another shard's, when the first one redirected): use it from now on. */
  url: string;
  state: WatcherState;
}

export interface WatcherStatus {
  state: WatcherState;
  /** Whether the watcher's last attempt to reach the courier with this device's credentials succeeded. */
  reachable: boolean;
  /** While woken or paused: when the watcher goes back to watching by itself (Unix ms). */
  resumeAt?: number;
  lastWakeAt?: number;
  wakes: number;
  /** Why the courier was last unreachable ('certificate-rejected': activate again and re-enroll). */
  error?: string;
}

export interface WatcherClientOptions {
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Per request (default 15 s). */
  timeoutMs?: number;
}

export class WatcherError extends CeruleanError {
  /** The HTTP status, when the watcher answered. */
  readonly status?: number;
  /** For 'wrong-shard': the shard that holds the enrollment, of how many, and its URL when the watcher knows it. */
  readonly shard?: number;
  readonly shards?: number;
  readonly url?: string;

  constructor(code: string, message: string, options: { status?: number; shard?: number; shards?: number; url?: string; cause?: unknown } = {}) {
    super(code, message, { cause: options.cause });
    if (options.status !== undefined) this.status = options.status;
    if (options.shard !== undefined) this.shard = options.shard;
    if (options.shards !== undefined) this.shards = options.shards;
    if (options.url !== undefined) this.url = options.url;
  }
}

const DEFAULT_TIMEOUT_MS = 15_000;
const STATES: readonly string[] = ['connecting', 'watching', 'woken', 'paused', 'stopped'];

function endpoint(watcherUrl: string, path: string): string {
  return `${watcherUrl.replace(/\/+$/, '')}${path}`;
}

function badResponse(what: string, status: number): WatcherError {
  return new WatcherError('bad-response', `the watcher's answer is not ${what}`, { status });
}

async function call(
  watcherUrl: string,
  path: string,
  init: { method: string; secret?: string; body?: unknown },
  opts: WatcherClientOptions,
): Promise<{ status: number; json: unknown }> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const headers: Record<string, string> = {};
  if (init.secret !== undefined) headers.authorization = `Bearer ${init.secret}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await doFetch(endpoint(watcherUrl, path), {
      method: init.method,
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const timedOut = (e as { name?: string } | null)?.name === 'TimeoutError';
    throw new WatcherError(
      timedOut ? 'watcher-timeout' : 'watcher-unreachable',
      timedOut ? `the watcher did not answer within ${timeoutMs} ms` : 'could not reach the watcher',
      { cause: e },
    );
  }
  const text = await res.text().catch(() => '');
  let json: unknown;
  if (text !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      throw badResponse('JSON', res.status);
    }
  }
  if (!res.ok) {
    const e = (json ?? {}) as { error?: unknown; message?: unknown; shard?: unknown; shards?: unknown; url?: unknown };
    throw new WatcherError(
      typeof e.error === 'string' ? e.error : `http-${res.status}`,
      typeof e.message === 'string' ? e.message : `the watcher answered HTTP ${res.status}`,
      {
        status: res.status,
        ...(typeof e.shard === 'number' ? { shard: e.shard } : {}),
        ...(typeof e.shards === 'number' ? { shards: e.shards } : {}),
        ...(typeof e.url === 'string' ? { url: e.url } : {}),
      },
    );
  }
  return { status: res.status, json };
}

function state(v: unknown, status: number): WatcherState {
  if (typeof v !== 'string' || !STATES.includes(v)) throw badResponse('a watcher state', status);
  return v as WatcherState;
}

/** The watcher's VAPID public key (65 bytes): the applicationServerKey to subscribe with. */
export async function vapidPublicKey(watcherUrl: string, opts: WatcherClientOptions = {}): Promise<Uint8Array> {
  const { status, json } = await call(watcherUrl, '/v1/vapid-public-key', { method: 'GET' }, opts);
  const key = (json as { publicKey?: unknown } | undefined)?.publicKey;
  let bytes: Uint8Array | undefined;
  try {
    bytes = typeof key === 'string' ? fromBase64(key) : undefined;
  } catch {
    bytes = undefined;
  }
  if (bytes?.length !== 65 || bytes[0] !== 0x04) throw badResponse('a P-256 public key', status);
  return bytes;
}

async function pkcs8Of(key: CryptoKey | Uint8Array): Promise<Uint8Array> {
  if (key instanceof Uint8Array) return key;
  if (!key.extractable) throw new WatcherError('push-key-not-extractable', 'the push key cannot be exported; activate the device again');
  return new Uint8Array(await subtle().exportKey('pkcs8', key));
}

function subscriptionJson(sub: EnrollRequest['subscription']): WebPushSubscriptionJson {
  const json = ('toJSON' in sub && typeof sub.toJSON === 'function' ? sub.toJSON() : sub) as Partial<WebPushSubscriptionJson> | null;
  if (typeof json?.endpoint !== 'string' || typeof json.keys?.p256dh !== 'string' || typeof json.keys.auth !== 'string') {
    throw new WatcherError('bad-subscription', 'the subscription has no endpoint or keys');
  }
  return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
}

/**
 * Enrolls this device (again: a second enrollment of the same push certificate replaces the first and gets a new
 * secret). A watcher that answers 'wrong-shard' with the right shard's URL is followed once.
 */
export async function enroll(watcherUrl: string, req: EnrollRequest, opts: WatcherClientOptions = {}): Promise<Enrollment> {
  const body = {
    push: { key: toBase64(await pkcs8Of(req.push.key)), certificate: toBase64(req.push.certificate), token: toBase64(req.push.token) },
    subscription: subscriptionJson(req.subscription),
    ...(req.courierHost !== undefined ? { courierHost: req.courierHost } : {}),
    ...(req.pauseSeconds !== undefined ? { pauseSeconds: req.pauseSeconds } : {}),
  };
  let url = watcherUrl;
  let answer: { status: number; json: unknown };
  try {
    answer = await call(url, '/v1/enrollments', { method: 'POST', body }, opts);
  } catch (e) {
    if (!(e instanceof WatcherError && e.code === 'wrong-shard' && e.url !== undefined)) throw e;
    url = e.url;
    answer = await call(url, '/v1/enrollments', { method: 'POST', body }, opts);
  }
  const j = answer.json as { id?: unknown; secret?: unknown; state?: unknown } | undefined;
  if (typeof j?.id !== 'string' || typeof j.secret !== 'string') throw badResponse('an enrollment', answer.status);
  return { id: j.id, secret: j.secret, url, state: state(j.state, answer.status) };
}

/** Tells the watcher this device fetched everything waiting at the courier (and closed its connection): watch again. */
export async function drained(watcherUrl: string, id: string, secret: string, opts: WatcherClientOptions = {}): Promise<WatcherState> {
  const { status, json } = await call(watcherUrl, `/v1/enrollments/${encodeURIComponent(id)}/drained`, { method: 'POST', secret }, opts);
  return state((json as { state?: unknown } | undefined)?.state, status);
}

/** Asks the watcher to stay off the courier for `seconds` while the page holds the connection; renew before it ends. */
export async function pause(
  watcherUrl: string,
  id: string,
  secret: string,
  seconds: number,
  opts: WatcherClientOptions = {},
): Promise<{ state: WatcherState; resumeAt?: number }> {
  const { status, json } = await call(watcherUrl, `/v1/enrollments/${encodeURIComponent(id)}/pause`, { method: 'POST', secret, body: { seconds } }, opts);
  const j = json as { state?: unknown; resumeAt?: unknown } | undefined;
  return { state: state(j?.state, status), ...(typeof j?.resumeAt === 'number' ? { resumeAt: j.resumeAt } : {}) };
}

/** Deletes the enrollment and everything the watcher held for it. */
export async function unenroll(watcherUrl: string, id: string, secret: string, opts: WatcherClientOptions = {}): Promise<void> {
  await call(watcherUrl, `/v1/enrollments/${encodeURIComponent(id)}`, { method: 'DELETE', secret }, opts);
}

export async function status(watcherUrl: string, id: string, secret: string, opts: WatcherClientOptions = {}): Promise<WatcherStatus> {
  const { status: http, json } = await call(watcherUrl, `/v1/enrollments/${encodeURIComponent(id)}/status`, { method: 'GET', secret }, opts);
  const j = (json ?? {}) as Partial<Record<keyof WatcherStatus, unknown>>;
  if (typeof j.reachable !== 'boolean' || typeof j.wakes !== 'number') throw badResponse('a status', http);
  return {
    state: state(j.state, http),
    reachable: j.reachable,
    wakes: j.wakes,
    ...(typeof j.resumeAt === 'number' ? { resumeAt: j.resumeAt } : {}),
    ...(typeof j.lastWakeAt === 'number' ? { lastWakeAt: j.lastWakeAt } : {}),
    ...(typeof j.error === 'string' ? { error: j.error } : {}),
  };
}
