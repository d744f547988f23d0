// Lookups (ids.md §7): which devices serve a handle and the keys to encrypt to them. The request is an HTTP request
// tunnelled through the APNs courier: a binary plist {c:96, U, u, v:2, cT, h, b} sent upstream on com.apple.madrid
// (or a sub-service topic), answered by a notification {c:97, U, s, hs, b} on the same topic, matched on U. `b` is
// gzip(plist {uris}) and the x-id-* signature covers exactly those gzip bytes under the bag key `id-query`.
//
// This module builds and parses those payloads, caches answers (§7.3) and runs batched lookups over any courier
// that offers `send(topic, payload)` and `awaitReply(U)`.
import { encodeBinaryPlist, encodeXmlPlist, isDict, parsePlist, type PlistDict, type PlistValue } from '../codec/plist';
import { equalBytes, toHex } from '../codec/bytes';
import { gzip, maybeGunzip } from '../codec/gzip';
import { DecodeError, EncodeError } from '../errors';
import { randomBytes } from '../crypto/subtle';
import { DEFAULT_IDS_URLS } from './bag';
import { DEFAULT_PROTOCOL_VERSION } from './context';
import { IdsError, IdsStatus, statusError } from './errors';
import { own } from './plist-http';
import { MADRID_SERVICE } from './register';
import { idHeaders, type SigningOptions } from './signing';

export const QUERY_BAG_KEY = 'id-query';
/** `c` of the tunnelled HTTP request and response. */
export const HTTP_REQUEST_COMMAND = 96;
export const HTTP_RESPONSE_COMMAND = 97;
/** [RP] asks for 18 handles per request ([BG] ≤ 20); the bag's max-uri-multi-query is larger. */
export const MAX_URIS_PER_QUERY = 18;
/** [BG] gives up on a reply after 60 s. */
export const LOOKUP_TIMEOUT_MS = 60_000;
/** Empty answers are asked again after an hour ([BG], [RP]). */
export const EMPTY_RESULT_TTL_MS = 60 * 60_000;
/** When an identity carries no TTLs: [BG]'s refresh after a day, discard after a week. */
const DEFAULT_REFRESH_SECONDS = 86_400;
const DEFAULT_EXPIRES_SECONDS = 7 * 86_400;
const U_LENGTH = 16;
/** Lookup answers are pushed, so at most 64 KiB compressed; this bounds the inflated plist. */
const MAX_INFLATED_BODY = 4 * 1024 * 1024;
const REPLY_LIMITS = { maxObjects: 200_000, maxDepth: 32, maxBytes: MAX_INFLATED_BODY };

export interface QueryParams {
  /** The querying handle (`x-id-self-uri`); the ID certificate must belong to its user. */
  selfUri: string;
  uris: readonly string[];
  /** DER ID certificate of the user owning selfUri. */
  idCert: Uint8Array;
  /** The auth key the ID certificate certifies. */
  authPrivateKey: CryptoKey;
  /** This device's own push token. */
  pushToken: Uint8Array;
  protocolVersion?: string;
  /** A sub-service (e.g. com.apple.private.alloy.sms): sent on its topic with `x-id-sub-service`. */
  subService?: string;
  /** The bag's `id-query` URL. */
  queryUrl?: string;
  /** `user-agent` inside `h` (optional; [RP] sends `com.apple.madrid-lookup [..]`). */
  userAgent?: string;
  signing?: SigningOptions;
}

export interface QueryRequest {
  /** Correlation id: the reply carries the same bytes. */
  U: Uint8Array;
  /** The APNs topic to send on. */
  topic: string;
  /** The binary plist payload of the upstream message. */
  payload: Uint8Array;
}

/** One device of a looked-up handle. */
export interface LookupIdentity {
  pushToken: Uint8Array;
  sessionToken: Uint8Array;
  sessionTokenExpiresSeconds: number;
  sessionTokenRefreshSeconds: number;
  /** As the device registered it (keys, versions, capability flags). */
  clientData: PlistDict;
  /** client-data `public-message-identity-key` (legacy pair identity). */
  publicMessageIdentityKey: Uint8Array;
  /** Identity-level `kt-loggable-data` (NGM device key), when given. */
  ktLoggableData?: Uint8Array;
  deviceName?: string;
}

export interface QueryResult {
  identities: LookupIdentity[];
  senderCorrelationIdentifier?: string;
}

export interface QueryResponse {
  U: Uint8Array;
  /** By the handle as the server keyed it (the handle as queried). */
  results: Map<string, QueryResult>;
}

export async function buildQuery(p: QueryParams): Promise<QueryRequest> {
  if (p.uris.length === 0) throw new EncodeError('no-handles', 'a lookup needs at least one handle');
  if (p.pushToken.length !== 32) throw new EncodeError('bad-push-token', 'the push token must be 32 bytes');
  const b = await gzip(encodeXmlPlist({ uris: [...p.uris] }));
  const h: PlistDict = {
    'x-id-self-uri': p.selfUri,
    'x-protocol-version': p.protocolVersion ?? DEFAULT_PROTOCOL_VERSION,
    ...(await idHeaders({ certDer: p.idCert, privateKey: p.authPrivateKey }, p.pushToken, QUERY_BAG_KEY, b, p.signing)),
  };
  if (p.subService !== undefined) h['x-id-sub-service'] = p.subService;
  if (p.userAgent !== undefined) h['user-agent'] = p.userAgent;
  const U = randomBytes(U_LENGTH);
  const payload = encodeBinaryPlist({
    c: HTTP_REQUEST_COMMAND,
    U,
    u: p.queryUrl ?? DEFAULT_IDS_URLS['id-query'],
    v: 2,
    cT: 'application/x-apple-plist',
    h,
    b,
  });
  return { U, topic: p.subService ?? MADRID_SERVICE, payload };
}

/** The `U` of a c:97 payload, or undefined when it is not one (for routing replies to waiters). */
export function replyCorrelationId(payload: Uint8Array): Uint8Array | undefined {
  try {
    const v = parsePlist(payload, { maxObjects: 64, maxDepth: 4, maxBytes: 128 * 1024 });
    if (!isDict(v) || own(v, 'c') !== HTTP_RESPONSE_COMMAND) return undefined;
    const u = own(v, 'U');
    return u instanceof Uint8Array ? u : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses a c:97 reply. Tunnel status 5206 → IdsError 'response-too-large' (ask for fewer handles); lookup status
 * 6005 → 'auth-expired' (re-register, then retry once); malformed → DecodeError. Identities lacking what a sender
 * needs (32-byte push token, session token, client-data with a legacy identity key) are left out, as [PY] does.
 */
export async function parseQueryResponse(payload: Uint8Array, expectedU?: Uint8Array): Promise<QueryResponse> {
  const what = 'lookup';
  const bad = (why: string, cause?: unknown) => new DecodeError('ids-bad-response', `${what}: ${why}`, cause === undefined ? undefined : { cause });
  let v: PlistValue;
  try {
    v = parsePlist(payload, REPLY_LIMITS);
  } catch (e) {
    throw bad('the reply is not a property list', e);
  }
  if (!isDict(v) || own(v, 'c') !== HTTP_RESPONSE_COMMAND) throw bad('not a c:97 reply');
  const U = own(v, 'U');
  if (!(U instanceof Uint8Array) || U.length === 0) throw bad('the reply has no U');
  if (expectedU && !equalBytes(U, expectedU)) throw bad('the reply answers another request');
  const tunnel = own(v, 's');
  if (tunnel !== undefined && tunnel !== 0) {
    if (tunnel === IdsStatus.responseTooLarge) throw new IdsError('response-too-large', `${what}: too many handles for one reply (5206)`, { status: tunnel });
    if (typeof tunnel === 'number' && Number.isSafeInteger(tunnel)) throw new IdsError('ids-status', `${what}: tunnel status ${tunnel}`, { status: tunnel });
    throw bad('the tunnel status is not an integer');
  }
  const b = own(v, 'b');
  const hs = own(v, 'hs');
  if (!(b instanceof Uint8Array)) {
    if (typeof hs === 'number' && hs !== 200) throw new IdsError('http-status', `${what}: HTTP ${hs}`, { httpStatus: hs });
    throw bad('the reply has no body');
  }
  let body: PlistValue;
  try {
    body = parsePlist(await maybeGunzip(b, MAX_INFLATED_BODY), REPLY_LIMITS);
  } catch (e) {
    throw bad('the reply body is not a (gzipped) property list', e);
  }
  if (!isDict(body)) throw bad('the reply body is not a dictionary');
  const status = own(body, 'status');
  if (typeof status !== 'number' || !Number.isSafeInteger(status)) throw bad('the reply body has no status');
  if (status !== IdsStatus.ok) throw statusError(status, what);
  const rawResults = own(body, 'results') ?? {};
  if (!isDict(rawResults)) throw bad('results is not a dictionary');
  const results = new Map<string, QueryResult>();
  for (const [uri, entry] of Object.entries(rawResults)) {
    if (!isDict(entry)) throw bad('a result is not a dictionary');
    const list = own(entry, 'identities') ?? [];
    if (!Array.isArray(list)) throw bad('identities is not an array');
    const result: QueryResult = { identities: list.flatMap((i) => parseIdentity(i) ?? []) };
    const sci = own(entry, 'sender-correlation-identifier');
    if (typeof sci === 'string') result.senderCorrelationIdentifier = sci;
    results.set(uri, result);
  }
  return { U, results };
}

function parseIdentity(v: PlistValue): LookupIdentity | undefined {
  if (!isDict(v)) return undefined;
  const pushToken = own(v, 'push-token');
  const sessionToken = own(v, 'session-token');
  const clientData = own(v, 'client-data');
  const key = isDict(clientData) ? own(clientData, 'public-message-identity-key') : undefined;
  if (!(pushToken instanceof Uint8Array) || pushToken.length !== 32) return undefined;
  if (!(sessionToken instanceof Uint8Array) || sessionToken.length === 0) return undefined;
  if (!isDict(clientData) || !(key instanceof Uint8Array) || key.length === 0) return undefined;
  const identity: LookupIdentity = {
    pushToken,
    sessionToken,
    sessionTokenExpiresSeconds: seconds(own(v, 'session-token-expires-seconds'), DEFAULT_EXPIRES_SECONDS),
    sessionTokenRefreshSeconds: seconds(own(v, 'session-token-refresh-seconds'), DEFAULT_REFRESH_SECONDS),
    clientData,
    publicMessageIdentityKey: key,
  };
  const kt = own(v, 'kt-loggable-data');
  if (kt instanceof Uint8Array && kt.length > 0) identity.ktLoggableData = kt;
  const name = own(v, 'device-name');
  if (typeof name === 'string') identity.deviceName = name;
  return identity;
}

function seconds(v: PlistValue | undefined, fallback: number): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fallback;
}

// ---- Cache ------------------------------------------------------------------------------------------------------

export interface LookupCacheOptions {
  now?: () => number;
  /** How long an answer with no identities is kept (default 1 h). */
  emptyTtlMs?: number;
  /** Oldest entries go first beyond this. */
  maxEntries?: number;
}

export interface CachedLookup {
  result: QueryResult;
  /** Past the soft TTL (the smallest refresh-seconds): usable, but look it up again. */
  stale: boolean;
}

interface CacheEntry {
  result: QueryResult;
  refreshAt: number;
  expiresAt: number;
}

/**
 * Lookup answers for one service (use one cache per service). Soft TTL = the smallest
 * session-token-refresh-seconds of the answer, hard TTL = the smallest session-token-expires-seconds (entries are
 * dropped after it); an empty answer lives EMPTY_RESULT_TTL_MS. `mailto:` handles match case-insensitively.
 */
export class LookupCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly now: () => number;
  private readonly emptyTtlMs: number;
  private readonly maxEntries: number;
  private owner: string | undefined;

  constructor(options: LookupCacheOptions = {}) {
    this.now = options.now ?? Date.now;
    this.emptyTtlMs = options.emptyTtlMs ?? EMPTY_RESULT_TTL_MS;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  get size(): number {
    return this.entries.size;
  }

  get(uri: string): CachedLookup | undefined {
    const key = cacheKey(uri);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const now = this.now();
    if (now >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return { result: entry.result, stale: now >= entry.refreshAt };
  }

  put(uri: string, result: QueryResult): void {
    const now = this.now();
    let refreshAt = now + this.emptyTtlMs;
    let expiresAt = refreshAt;
    if (result.identities.length > 0) {
      const soft = Math.min(...result.identities.map((i) => i.sessionTokenRefreshSeconds));
      const hard = Math.min(...result.identities.map((i) => i.sessionTokenExpiresSeconds));
      expiresAt = now + hard * 1000;
      refreshAt = Math.min(now + soft * 1000, expiresAt);
    }
    const key = cacheKey(uri);
    this.entries.delete(key);
    this.entries.set(key, { result, refreshAt, expiresAt });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  /** Forgets one handle (a peer's cache-invalidate push, a delivery error 5032). */
  invalidate(uri: string): void {
    this.entries.delete(cacheKey(uri));
  }

  clear(): void {
    this.entries.clear();
  }

  /** Wipes the cache when this device's ID certificate or push token differs from the last call's (§7.3). */
  bindOwnIdentity(idCert: Uint8Array, pushToken: Uint8Array): void {
    const owner = `${toHex(pushToken)}|${toHex(idCert)}`;
    if (this.owner !== undefined && this.owner !== owner) this.clear();
    this.owner = owner;
  }
}

function cacheKey(uri: string): string {
  return uri.slice(0, 7).toLowerCase() === 'mailto:' ? uri.toLowerCase() : uri;
}

// ---- Lookup -----------------------------------------------------------------------------------------------------

/** What lookup needs from an APNs courier client. */
export interface LookupTransport {
  /** Sends `payload` upstream on `topic` from this device's token (0x0A; resolves once the courier acked it). */
  send(topic: string, payload: Uint8Array): Promise<void>;
  /**
   * The payload of the c:97 notification whose U equals `U` (see replyCorrelationId). Called before send, so a fast
   * reply is not missed; must stop waiting (and may reject) when `signal` aborts.
   */
  awaitReply(U: Uint8Array, signal: AbortSignal): Promise<Uint8Array>;
}

export interface LookupOptions extends Omit<QueryParams, 'uris'>, LookupTransport {
  cache?: LookupCache;
  /** Handles per request, at most MAX_URIS_PER_QUERY. */
  batchSize?: number;
  timeoutMs?: number;
  /** Ask again even for fresh cache entries. */
  forceRefresh?: boolean;
}

/**
 * The devices of each handle, from the cache when fresh, else asked in batches of ≤ 18 (a 5206 answer splits the
 * batch). A stale entry whose refresh fails is still used until its hard TTL. Unregistered handles map to [].
 */
export async function lookup(handles: readonly string[], o: LookupOptions): Promise<Map<string, QueryResult>> {
  o.cache?.bindOwnIdentity(o.idCert, o.pushToken);
  const out = new Map<string, QueryResult>();
  const stale = new Map<string, QueryResult>();
  const wanted = new Map<string, string>();
  for (const handle of handles) {
    const cached = o.forceRefresh ? undefined : o.cache?.get(handle);
    if (cached && !cached.stale) out.set(handle, cached.result);
    else {
      if (cached) stale.set(handle, cached.result);
      if (!wanted.has(cacheKey(handle))) wanted.set(cacheKey(handle), handle);
    }
  }
  const size = Math.max(1, Math.min(o.batchSize ?? MAX_URIS_PER_QUERY, MAX_URIS_PER_QUERY));
  const toAsk = [...wanted.values()];
  const batches: string[][] = [];
  for (let i = 0; i < toAsk.length; i += size) batches.push(toAsk.slice(i, i + size));
  const answers = await Promise.all(
    batches.map((batch) =>
      askSplitting(batch, o).catch((e: unknown) => {
        // A refresh that fails leaves stale-but-unexpired answers usable, unless our own credentials are dead
        // (the caller must re-register); a handle without any answer fails the lookup.
        const ownProblem = e instanceof IdsError && e.code === 'auth-expired';
        if (!ownProblem && batch.every((h) => stale.has(h))) return new Map<string, QueryResult>();
        throw e;
      }),
    ),
  );
  const fetched = new Map<string, QueryResult>();
  for (const answer of answers) {
    for (const [handle, result] of answer) {
      fetched.set(cacheKey(handle), result);
      o.cache?.put(handle, result);
    }
  }
  for (const handle of handles) {
    if (out.has(handle)) continue;
    const result = fetched.get(cacheKey(handle)) ?? stale.get(handle);
    if (result) out.set(handle, result);
  }
  return out;
}

async function askSplitting(batch: string[], o: LookupOptions): Promise<Map<string, QueryResult>> {
  try {
    return await ask(batch, o);
  } catch (e) {
    if (!(e instanceof IdsError) || e.code !== 'response-too-large' || batch.length === 1) throw e;
    const half = Math.ceil(batch.length / 2);
    const [a, b] = await Promise.all([askSplitting(batch.slice(0, half), o), askSplitting(batch.slice(half), o)]);
    return new Map([...a, ...b]);
  }
}

/** One request: every queried handle must be in the answer ([BG]). */
async function ask(batch: string[], o: LookupOptions): Promise<Map<string, QueryResult>> {
  const req = await buildQuery({ ...o, uris: batch });
  const abort = new AbortController();
  const reply = o.awaitReply(req.U, abort.signal);
  // Observed now: if sending fails or the timer fires, this promise may reject with nobody waiting on it.
  reply.catch(() => {});
  const timeoutMs = o.timeoutMs ?? LOOKUP_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IdsError('lookup-timeout', `no lookup reply within ${timeoutMs} ms`)), timeoutMs);
  });
  timeout.catch(() => {});
  try {
    await Promise.race([o.send(req.topic, req.payload), timeout]);
    const response = await parseQueryResponse(await Promise.race([reply, timeout]), req.U);
    const byKey = new Map<string, QueryResult>();
    for (const [uri, result] of response.results) byKey.set(cacheKey(uri), result);
    const out = new Map<string, QueryResult>();
    for (const handle of batch) {
      const result = response.results.get(handle) ?? byKey.get(cacheKey(handle));
      if (!result) throw new DecodeError('ids-bad-response', 'lookup: a queried handle is missing from the answer');
      out.set(handle, result);
    }
    return out;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
