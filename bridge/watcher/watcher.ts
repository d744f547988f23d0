// The push watcher: enrollments in SQLite, one DeviceWatch (courier connection) per enrollment of this shard, the
// HTTP API, and the Web Push wake-ups. startWatcher() restores every stored enrollment and reconnects it before it
// starts answering, so a restart loses no enrollment; notifications that arrived meanwhile wait at the courier,
// unacknowledged, and wake their device as soon as its watch reconnects.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHostPort, parseHostPort } from '../destination';
import { createLogger, errorFields, type Logger } from '../log';
import { type WatcherConfig, type WatcherOptions, resolveWatcherConfig } from './config';
import { courierDialer, type CourierDialOptions } from './courier-dial';
import { type AwayFields, type EnrollmentRow, WatcherDb } from './db';
import { DeviceWatch, type WatchCredentials, type WatchEvent, type WatchStatus } from './device-watch';
import { DialGate } from './dial-gate';
import { parseEnrollment, type EnrollmentRequest } from './enrollment-input';
import { shardOf } from './enrollment-id';
import type { EndpointPolicy } from './endpoint-policy';
import { ApiError } from './errors';
import { createApiHandler } from './http-api';
import { WatcherMetrics } from './metrics';
import { Sealer } from './sealer';
import { loadOrCreateVapidKeys, type VapidKeys } from './vapid';
import { type PushTarget, WakePusher } from './wake-push';

export interface RunningWatcher {
  /** Base URL of the API, e.g. `http://127.0.0.1:8790`. */
  readonly url: string;
  readonly port: number;
  readonly vapidPublicKey: string;
  readonly metrics: WatcherMetrics;
  /** Status of an enrollment held by this instance (for tests and tools; the API needs the secret). */
  statusOf(id: string): WatchStatus | undefined;
  /** Stops answering, closes every courier connection (nothing is acknowledged) and the database. */
  close(): Promise<void>;
}

/** What is sealed per enrollment. */
interface SealedSecrets {
  key: string;
  token: string;
  endpoint: string;
  p256dh: string;
  auth: string;
}

interface Entry {
  readonly watch: DeviceWatch;
  readonly secretHash: Uint8Array;
  readonly subscription: PushTarget;
}

const RSA_SHA1 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' } as const;
/** Attempts per wake-up at a push service that answers 429/5xx or cannot be reached, 1 s apart then 2 s. */
const PUSH_ATTEMPTS = 3;
const RATE_WINDOW_MS = 60_000;

const sha256 = (s: string) => new Uint8Array(createHash('sha256').update(s, 'utf8').digest());
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
/** Enough of a token to tell devices apart in a log, not enough to address one. */
const tokenPrefix = (t: Uint8Array) => Buffer.from(t.subarray(0, 4)).toString('hex');

class Watcher {
  readonly metrics: WatcherMetrics;
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry>();
  /** Per-id queue, so an enrollment, a re-enrollment and a delete of one device never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly rate = new Map<string, { start: number; count: number }>();
  private readonly shutdown = new AbortController();
  private readonly gate: DialGate;
  private readonly pusher: WakePusher;
  private readonly endpointPolicy: EndpointPolicy;
  private stopping = false;

  constructor(
    private readonly config: WatcherConfig,
    private readonly db: WatcherDb,
    private readonly sealer: Sealer,
    private readonly vapid: VapidKeys,
  ) {
    this.log = createLogger(config.logLevel, config.logSink);
    this.metrics = new WatcherMetrics(() => [...this.entries.values()].map((e) => e.watch.state));
    this.gate = new DialGate(config.maxConcurrentDials);
    this.endpointPolicy = {
      allowHttpLoopback: config.allowHttpLoopbackEndpoints,
      allowPrivate: config.allowPrivateEndpoints,
      resolver: config.resolver,
    };
    this.pusher = new WakePusher({
      vapid,
      subject: config.vapidSubject,
      ttlSeconds: config.webPushTtlSeconds,
      timeoutMs: config.webPushTimeoutMs,
      policy: this.endpointPolicy,
    });
  }

  // ---- start and stop ------------------------------------------------------------------------------------------

  /** Every stored enrollment of this shard, watched again. */
  async restore(): Promise<void> {
    let restored = 0;
    let elsewhere = 0;
    for (const row of this.db.all()) {
      if (shardOf(row.id, this.config.shard.count) !== this.config.shard.index) {
        elsewhere++;
        continue;
      }
      try {
        await this.startWatch(row, this.unseal(row));
        restored++;
      } catch (e) {
        this.log.error('enrollment.restore-failed', { id: row.id, ...errorFields(e) });
      }
    }
    this.log.info('watcher.restored', { enrollments: restored, ...(elsewhere > 0 ? { otherShards: elsewhere } : {}) });
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.shutdown.abort();
    await Promise.all([...this.entries.values()].map((e) => e.watch.close()));
    this.entries.clear();
    this.pusher.close();
    this.db.close();
  }

  private async startWatch(row: EnrollmentRow, secrets: SealedSecrets, imported?: CryptoKey): Promise<Entry> {
    const privateKey = imported ?? (await importPushKey(Buffer.from(secrets.key, 'base64')));
    const credentials: WatchCredentials = { privateKey, certificate: row.certificate, token: new Uint8Array(Buffer.from(secrets.token, 'base64')) };
    const dial: CourierDialOptions = {
      hostMap: this.config.hostMap,
      allowlist: this.config.allowlist,
      resolver: this.config.resolver,
      connector: this.config.connector,
      ca: this.config.ca,
      hostCount: this.config.courierHostCount,
      timeoutMs: this.config.courierConnectTimeoutMs,
      gate: this.gate,
      signal: this.shutdown.signal,
    };
    const courier = row.courierHost === null ? null : parseHostPort(row.courierHost);
    const away: AwayFields = {
      resumeAt: row.resumeAt,
      awayReason: row.awayReason,
      wakes: row.wakes,
      unansweredWakes: row.unansweredWakes,
      lastWakeAt: row.lastWakeAt,
    };
    const watch = new DeviceWatch(
      row.id,
      credentials,
      away,
      {
        connect: courierDialer(courier, dial),
        wake: (w, at) => void this.wake(w, at).catch((e: unknown) => this.log.error('watch.wake-failed', { id: w.id, ...errorFields(e) })),
        tokenChanged: (w, token) => this.tokenChanged(w, token),
        persist: (w, fields) => this.persist(w, fields),
        event: (w, e) => this.watchEvent(w, e),
      },
      {
        drainTimeoutMs: this.config.drainTimeoutMs,
        maxAwayMs: this.config.maxAwayMs,
        keepAliveMs: this.config.courierKeepAliveMs,
        connectTimeoutMs: this.config.courierConnectTimeoutMs,
        backoffInitialMs: this.config.courierBackoffInitialMs,
        backoffMaxMs: this.config.courierBackoffMaxMs,
      },
    );
    const entry: Entry = {
      watch,
      secretHash: row.secretHash,
      subscription: { endpoint: secrets.endpoint, p256dh: secrets.p256dh, auth: secrets.auth },
    };
    this.entries.set(row.id, entry);
    watch.start();
    return entry;
  }

  // ---- the API -------------------------------------------------------------------------------------------------

  vapidPublicKey(): string {
    return this.vapid.publicKey;
  }

  health(): { ok: boolean; body: unknown } {
    const { index, count } = this.config.shard;
    return {
      ok: !this.stopping,
      body: { status: this.stopping ? 'stopping' : 'ok', enrollments: this.entries.size, shard: `${index}/${count}` },
    };
  }

  metricsText(): string {
    return this.metrics.render();
  }

  statusFor(id: string): WatchStatus | undefined {
    return this.entries.get(id)?.watch.status();
  }

  async enroll(body: unknown, client: string): Promise<{ status: number; body: unknown }> {
    if (!this.allowRate(client)) {
      this.metrics.enrolled('rate-limited');
      throw new ApiError(429, 'rate-limited', 'too many enrollment requests from this address; try again in a minute');
    }
    let input: EnrollmentRequest;
    try {
      input = await parseEnrollment(body, {
        now: Date.now(),
        courier: { hostMap: this.config.hostMap, allowlist: this.config.allowlist, resolver: this.config.resolver },
        endpoint: this.endpointPolicy,
        maxPauseMs: this.config.maxPauseMs,
      });
    } catch (e) {
      this.metrics.enrolled(e instanceof ApiError && e.status === 403 ? 'refused' : 'invalid');
      throw e;
    }
    this.checkShard(input.id, () => this.metrics.enrolled('wrong-shard'));
    return this.locked(input.id, async () => {
      const previous = this.entries.get(input.id);
      if (!previous && this.entries.size >= this.config.maxEnrollments) {
        this.metrics.enrolled('full');
        throw new ApiError(503, 'watcher-full', 'this watcher holds as many enrollments as it may');
      }
      let privateKey: CryptoKey;
      try {
        privateKey = await importPushKey(input.pkcs8);
      } catch {
        this.metrics.enrolled('invalid');
        throw new ApiError(400, 'bad-key', 'the push key is not usable for RSASSA-PKCS1-v1_5 signatures');
      }
      const secret = randomBytes(32).toString('base64url');
      const now = Date.now();
      const secrets: SealedSecrets = { key: b64(input.pkcs8), token: b64(input.token), ...input.subscription };
      const row: EnrollmentRow = {
        id: input.id,
        secretHash: sha256(secret),
        certificate: input.certificate,
        sealed: this.seal(input.id, secrets),
        courierHost: input.courier === null ? null : formatHostPort(input.courier.host, input.courier.port),
        createdAt: now,
        updatedAt: now,
        resumeAt: input.pauseMs === undefined ? null : now + input.pauseMs,
        awayReason: input.pauseMs === undefined ? null : 'paused',
        wakes: 0,
        unansweredWakes: 0,
        lastWakeAt: null,
      };
      if (previous) {
        await previous.watch.close();
        this.entries.delete(input.id);
      }
      this.db.put(row);
      const entry = await this.startWatch(row, secrets, privateKey);
      this.metrics.enrolled(previous ? 'replaced' : 'created');
      this.log.info('enrollment.created', {
        id: input.id,
        token: tokenPrefix(input.token),
        courier: row.courierHost ?? 'apple',
        pushService: new URL(input.subscription.endpoint).origin,
        replaced: previous !== undefined,
      });
      return { status: 201, body: { id: input.id, secret, state: entry.watch.state } };
    });
  }

  status(id: string, secret: string): WatchStatus {
    return this.authorized(id, secret).watch.status();
  }

  drained(id: string, secret: string): { state: string } {
    const entry = this.authorized(id, secret);
    entry.watch.drained();
    return { state: entry.watch.state };
  }

  pause(id: string, secret: string, body: unknown): { state: string; resumeAt?: number } {
    const entry = this.authorized(id, secret);
    const seconds = (body as { seconds?: unknown } | null)?.seconds;
    const max = Math.floor(this.config.maxPauseMs / 1000);
    if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds) || seconds < 1 || seconds > max) {
      throw new ApiError(400, 'bad-request', `seconds must be an integer in 1…${max}`);
    }
    entry.watch.pause(seconds * 1000);
    const status = entry.watch.status();
    return { state: status.state, ...(status.resumeAt !== undefined ? { resumeAt: status.resumeAt } : {}) };
  }

  async unenroll(id: string, secret: string): Promise<void> {
    this.authorized(id, secret);
    await this.locked(id, () => this.remove(id, 'unenrolled'));
  }

  // ---- wake-ups ------------------------------------------------------------------------------------------------

  private async wake(watch: DeviceWatch, at: number): Promise<void> {
    const entry = this.entries.get(watch.id);
    if (!entry || entry.watch !== watch) return;
    this.metrics.wakes++;
    this.log.info('watch.woken', { id: watch.id, wakes: watch.status().wakes });
    for (let attempt = 1; attempt <= PUSH_ATTEMPTS && !this.stopping; attempt++) {
      const started = Date.now();
      const outcome = await this.pusher.send(entry.subscription, { type: 'wake', enrollment: watch.id, at });
      const fields = { id: watch.id, attempt, ms: Date.now() - started, status: 'status' in outcome ? outcome.status : undefined };
      this.metrics.pushed(outcome.kind);
      if (outcome.kind === 'sent') {
        this.metrics.wakeLatency((Date.now() - at) / 1000);
        this.log.info('webpush.sent', fields);
        return;
      }
      if (outcome.kind === 'gone') {
        // The browser unsubscribed: nothing can wake this device any more, so nothing of it is kept.
        this.log.info('webpush.gone', fields);
        await this.locked(watch.id, async () => {
          if (!this.stopping && this.entries.get(watch.id)?.watch === watch) await this.remove(watch.id, 'subscription-gone');
        });
        return;
      }
      if (outcome.kind === 'rejected') {
        this.log.warn('webpush.rejected', { ...fields, error: outcome.error });
        return;
      }
      this.log.warn('webpush.failed', { ...fields, error: outcome.error });
      if (attempt < PUSH_ATTEMPTS) await new Promise((r) => setTimeout(r, 1000 * 2 ** (attempt - 1)));
    }
  }

  // ---- bookkeeping ---------------------------------------------------------------------------------------------

  private async remove(id: string, reason: string): Promise<void> {
    const entry = this.entries.get(id);
    this.entries.delete(id);
    await entry?.watch.close();
    this.db.delete(id);
    this.metrics.unenrolled++;
    this.log.info('enrollment.deleted', { id, reason });
  }

  private seal(id: string, secrets: SealedSecrets): Uint8Array {
    return this.sealer.seal(id, new TextEncoder().encode(JSON.stringify(secrets)));
  }

  private unseal(row: EnrollmentRow): SealedSecrets {
    return JSON.parse(new TextDecoder().decode(this.sealer.open(row.id, row.sealed))) as SealedSecrets;
  }

  private persist(watch: DeviceWatch, away: AwayFields): void {
    if (this.entries.get(watch.id)?.watch !== watch) return;
    try {
      this.db.updateAway(watch.id, away, Date.now());
    } catch (e) {
      this.log.error('enrollment.persist-failed', { id: watch.id, ...errorFields(e) });
    }
  }

  private async tokenChanged(watch: DeviceWatch, token: Uint8Array): Promise<void> {
    const row = this.entries.get(watch.id)?.watch === watch ? this.db.get(watch.id) : undefined;
    if (!row) return;
    const secrets = this.unseal(row);
    this.db.updateSealed(watch.id, this.seal(watch.id, { ...secrets, token: b64(token) }), Date.now());
    this.log.warn('watch.token-changed', { id: watch.id, token: tokenPrefix(token) });
  }

  private watchEvent(watch: DeviceWatch, e: WatchEvent): void {
    switch (e.type) {
      case 'connected':
        this.metrics.courierConnects++;
        this.log.debug('watch.connected', { id: watch.id });
        return;
      case 'disconnected':
        this.metrics.courierDisconnects++;
        this.log.debug('watch.disconnected', { id: watch.id, error: e.error });
        return;
      case 'stopped':
        this.log.warn('watch.stopped', { id: watch.id, error: e.error });
        return;
      case 'resumed':
        this.metrics.resumed(e.reason);
        this.log.info('watch.resumed', { id: watch.id, reason: e.reason });
        return;
    }
  }

  /** The entry, when `secret` is its secret; the same 404 for an unknown id and a wrong secret. */
  private authorized(id: string, secret: string): Entry {
    this.checkShard(id);
    const entry = this.entries.get(id);
    const presented = sha256(secret);
    // Compared even when the id is unknown, so timing does not tell the two apart.
    const matches = timingSafeEqual(presented, entry?.secretHash ?? new Uint8Array(32)) && entry !== undefined;
    if (!matches) throw new ApiError(404, 'unknown-enrollment', 'no enrollment with this id and secret');
    return entry;
  }

  private checkShard(id: string, onWrong?: () => void): void {
    const { index, count } = this.config.shard;
    const shard = shardOf(id, count);
    if (shard === index) return;
    onWrong?.();
    const url = this.config.shardUrlTemplate?.replaceAll('{shard}', String(shard));
    throw new ApiError(421, 'wrong-shard', `enrollment ${id} belongs to shard ${shard} of ${count}`, {
      shard,
      shards: count,
      ...(url !== undefined ? { url } : {}),
    });
  }

  private allowRate(client: string): boolean {
    const now = Date.now();
    if (this.rate.size > 10_000) {
      for (const [k, w] of this.rate) if (now - w.start >= RATE_WINDOW_MS) this.rate.delete(k);
    }
    const w = this.rate.get(client);
    if (!w || now - w.start >= RATE_WINDOW_MS) {
      this.rate.set(client, { start: now, count: 1 });
      return true;
    }
    w.count++;
    return w.count <= this.config.enrollPerMinute;
  }

  private locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const before = this.locks.get(id) ?? Promise.resolve();
    const run = before.then(work, work);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return run;
  }
}

/** The push key as WebCrypto wants it for CourierClient: RSASSA-PKCS1-v1_5 SHA-1, sign only, not extractable. */
async function importPushKey(pkcs8: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey('pkcs8', new Uint8Array(pkcs8), RSA_SHA1, false, ['sign']);
}

export async function startWatcher(options: WatcherOptions): Promise<RunningWatcher> {
  const config = resolveWatcherConfig(options);
  const sealer = Sealer.fromKeyFile(config.keyFile);
  const vapid = loadOrCreateVapidKeys(config.vapidFile);
  const db = WatcherDb.open(config.dbFile);
  const watcher = new Watcher(config, db, sealer, vapid);
  const log = createLogger(config.logLevel, config.logSink);
  try {
    await watcher.restore();
  } catch (e) {
    await watcher.close();
    throw e;
  }
  const server = createServer(
    createApiHandler(
      {
        vapidPublicKey: () => watcher.vapidPublicKey(),
        enroll: (body, client) => watcher.enroll(body, client),
        status: (id, secret) => watcher.status(id, secret),
        drained: (id, secret) => watcher.drained(id, secret),
        pause: (id, secret, body) => watcher.pause(id, secret, body),
        unenroll: (id, secret) => watcher.unenroll(id, secret),
        health: () => watcher.health(),
        metrics: () => watcher.metricsText(),
      },
      {
        corsOrigins: config.corsOrigins,
        maxBodyBytes: config.maxBodyBytes,
        trustForwardedFor: config.trustForwardedFor,
        onInternalError: (e) => log.error('api.internal-error', errorFields(e)),
      },
    ),
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await watcher.close();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const { index, count } = config.shard;
  log.info('watcher.listening', { host: config.host, port, shard: `${index}/${count}`, vapidPublicKey: vapid.publicKey });
  let closing: Promise<void> | undefined;
  return {
    url: `http://${formatHostPort(config.host, port)}`,
    port,
    vapidPublicKey: vapid.publicKey,
    metrics: watcher.metrics,
    statusOf: (id) => watcher.statusFor(id),
    close() {
      closing ??= (async () => {
        log.info('watcher.stopping', {});
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await watcher.close();
        log.info('watcher.stopped', {});
      })();
      return closing;
    },
  };
}
