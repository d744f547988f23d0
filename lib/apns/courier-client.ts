// The APNs courier client (apns.md §3–§6): keeps one authenticated connection alive, reconnecting with back-off,
// delivers notifications to the app and acks each one only after the app's handler has finished with it, and sends
// upstream messages, holding them while offline. The guarantees, in order of importance:
//   - a notification is acked only after onNotification resolved, on the connection that delivered it; anything
//     unacked when a connection dies is the courier's to deliver again (so the handler must be idempotent);
//   - the token the courier issues is handed to onToken before any notification is handled or message sent;
//   - send() resolves only on the courier's ack status 0; messages not acked when a connection dies go out again
//     (same id) once the next connection has its filter.
// Framing is legacy only: the client offers just ALPN apns-security-v3, so the courier never picks packed framing.
// Packed (apns-pack-v1, lib/codec/apns-packed.ts) can be offered later; note that lib/net's TLS refuses the server's
// `apns-pack-v1:E:D` answer form, since it was not among the offered strings.
import { sha1 } from '@noble/hashes/legacy.js';
import type { Ack, Notification } from '../codec/apns-commands';
import { equalBytes, fromHex, toHex, utf8 } from '../codec/bytes';
import { courierNonce, signCourierNonce } from '../crypto/request-signing';
import { randomBytes } from '../crypto/subtle';
import { CeruleanError } from '../errors';
import { CourierConnection, type CourierStream } from './courier-connection';
import { Emitter } from './emitter';
import { ApnsError, CertificateRejectedError } from './errors';
import { systemTimers, type TimerHandle, type Timers } from './timers';

export type { CourierStream } from './courier-connection';

export interface CourierCredentials {
  /** The push key (RSASSA-PKCS1-v1_5, SHA-1) from activation. */
  privateKey: CryptoKey;
  /** The push certificate, DER. */
  certificate: Uint8Array;
}

export interface CourierNotification {
  /** The topic name (one this client filtered on). */
  topic: string;
  topicHash: Uint8Array;
  /** Destination token: the base token, or a scoped one. */
  token: Uint8Array;
  payload: Uint8Array;
  /** The courier's message id (what the ack names). */
  id: number;
}

export interface CourierEvents {
  /** Authenticated and filtered: notifications flow and queued sends go out. */
  connected: { token: Uint8Array };
  /**
   * A connection ended or an attempt to open one failed; `retryInMs` is absent when the client will not try again
   * (closed or stopped).
   */
  disconnected: { error?: ApnsError; retryInMs?: number };
  /** The courier replaced a token we already had: IDS registrations must be redone with the new one. */
  tokenChanged: { token: Uint8Array; previous: Uint8Array };
  /** 0x0E: the courier holds nothing for us at the moment of the filter. */
  noStorage: Record<string, never>;
  /** Failures outside the connection itself: handler, onToken, listeners; and the fatal certificate rejection. */
  error: ApnsError;
}

export interface BackoffOptions {
  /** First delay after a failure (default 1 s); doubles per consecutive failure … */
  initialMs?: number;
  /** … up to this (default 30 s). */
  maxMs?: number;
  /** A delay d is drawn from [d·(1−jitter), d] (default 0.5), so clients that fail together do not retry together. */
  jitter?: number;
  /** A connection that lasted this long resets the doubling (default 60 s); shorter ones count as failures. */
  stableAfterMs?: number;
}

export interface CourierClientOptions {
  /** Opens a TLS connection to a courier host (see courier-connect.ts); the client reconnects by calling it again. */
  connect: () => Promise<CourierStream>;
  credentials: CourierCredentials;
  /** The token saved from an earlier connection; the courier keeps it when it is bound to these credentials. */
  token?: Uint8Array;
  /** Persist the token; awaited before anything is delivered or sent on the connection. */
  onToken?: (token: Uint8Array) => Promise<void> | void;
  topics: readonly string[];
  /** Called once per delivered notification, one at a time in arrival order; acked after it resolves. */
  onNotification: (notification: CourierNotification) => Promise<void> | void;
  /** Interval between keep-alives (default 60 s). */
  keepAliveMs?: number;
  /** How long a keep-alive may go unanswered before the connection is dropped (default 15 s). */
  keepAliveTimeoutMs?: number;
  /** For opening the transport, and again for the answer to Connect (default 30 s each). */
  connectTimeoutMs?: number;
  /** How long an upstream message may wait for its ack once written (default 60 s). */
  sendTimeoutMs?: number;
  /** Upstream messages held (queued plus awaiting ack) before send() refuses more (default 1000). */
  maxQueuedSends?: number;
  /** Notifications received and not yet handled; beyond this they are left unacked for redelivery (default 1000). */
  maxPendingNotifications?: number;
  backoff?: BackoffOptions;
  /** Unix ms (default Date.now). */
  now?: () => number;
  timers?: Timers;
  /** Uniform in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
}

export type CourierClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'stopped' | 'closed';

/** 0x05 presence flags of a normal connection ([PY], [PYm], [RP]). */
const PRESENCE_FLAGS = 0x41;
/** 0x14 as every client sends it: active, with the longest interval. */
const ACTIVE_STATE = { state: 1, interval: 0x7fffffff } as const;
const ACK_OK = 0;
const ACK_TOO_LARGE = 3;
const ACK_TOO_EARLY = 0x80;
const TOO_EARLY_RETRIES = 3;
const TOO_EARLY_DELAY_MS = 1000;
/** A legacy item holds at most this many bytes. */
const MAX_PAYLOAD = 0xffff;

interface Outgoing {
  readonly id: number;
  readonly topicHash: Uint8Array;
  readonly payload: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (e: ApnsError) => void;
  timer?: TimerHandle;
  tooEarly: number;
}

interface Incoming {
  readonly conn: CourierConnection;
  readonly key: string;
  readonly n: CourierNotification;
}

interface SessionEnd {
  error?: ApnsError;
  /** How long the connection was up, if it got that far. */
  connectedMs?: number;
  retryNow?: boolean;
  fatal?: boolean;
}

export class CourierClient {
  private readonly events: Emitter<CourierEvents>;
  private readonly timers: Timers;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly keepAliveMs: number;
  private readonly keepAliveTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly sendTimeoutMs: number;
  private readonly maxQueuedSends: number;
  private readonly maxPending: number;
  private readonly backoff: Required<BackoffOptions>;

  private currentState: CourierClientState = 'idle';
  private conn: CourierConnection | undefined;
  private heldToken: Uint8Array | undefined;
  /** Hex hash → name of the topics in the filter now. */
  private topics = new Map<string, string>();
  /** Every topic ever filtered on: notifications queued under an old filter still get their name. */
  private readonly topicNames = new Map<string, string>();
  private failures = 0;
  private clockOffsetMs = 0;
  private lastWasStaleNonce = false;
  private retry: { timer: TimerHandle; wake: () => void } | undefined;
  private flushTimer: TimerHandle | undefined;
  private outbox: Outgoing[] = [];
  private readonly awaitingAck = new Map<number, Outgoing>();
  private inbox: Incoming[] = [];
  private readonly inboxKeys = new Set<string>();
  /** The handler loop, while it runs (close() waits for it). */
  private handling: Promise<void> | undefined;
  private draining = false;
  private waiters: Array<{ resolve: (token: Uint8Array) => void; reject: (e: ApnsError) => void }> = [];
  private fatal: ApnsError | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: CourierClientOptions) {
    this.timers = options.timers ?? systemTimers;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.keepAliveMs = duration('keepAliveMs', options.keepAliveMs, 60_000);
    this.keepAliveTimeoutMs = duration('keepAliveTimeoutMs', options.keepAliveTimeoutMs, 15_000);
    this.connectTimeoutMs = duration('connectTimeoutMs', options.connectTimeoutMs, 30_000);
    this.sendTimeoutMs = duration('sendTimeoutMs', options.sendTimeoutMs, 60_000);
    this.maxQueuedSends = count('maxQueuedSends', options.maxQueuedSends, 1000);
    this.maxPending = count('maxPendingNotifications', options.maxPendingNotifications, 1000);
    const b = options.backoff ?? {};
    this.backoff = {
      initialMs: duration('backoff.initialMs', b.initialMs, 1000),
      maxMs: duration('backoff.maxMs', b.maxMs, 30_000),
      jitter: fraction('backoff.jitter', b.jitter, 0.5),
      stableAfterMs: duration('backoff.stableAfterMs', b.stableAfterMs, 60_000),
    };
    checkPushKey(options.credentials.privateKey);
    if (options.token !== undefined && options.token.length !== 32) {
      throw new CeruleanError('bad-option', 'a push token is 32 bytes');
    }
    this.heldToken = options.token?.slice();
    this.events = new Emitter<CourierEvents>((e, type) => {
      if (type !== 'error') this.events.emit('error', new ApnsError('listener-failed', `a ${String(type)} listener threw`, { cause: e }));
    });
    this.applyTopics(options.topics);
  }

  get state(): CourierClientState {
    return this.currentState;
  }

  /** The push token: the saved one until the courier has spoken, then the one it confirmed or issued. */
  get token(): Uint8Array | undefined {
    return this.heldToken?.slice();
  }

  on<K extends keyof CourierEvents>(type: K, listener: (event: CourierEvents[K]) => void): () => void {
    return this.events.on(type, listener);
  }

  /** Starts connecting (once; later calls do nothing). */
  start(): void {
    if (this.currentState !== 'idle') return;
    this.currentState = 'connecting';
    void this.run();
  }

  /** Resolves with the token once connected (at once if connected now); rejects if the client closes or stops. */
  whenConnected(): Promise<Uint8Array> {
    if (this.currentState === 'connected' && this.heldToken) return Promise.resolve(this.heldToken.slice());
    if (this.currentState === 'closed' || this.currentState === 'stopped') return Promise.reject(this.finalError());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * Sends `payload` upstream on `topic` (to the topic's backend, e.g. IDS for com.apple.madrid). Resolves when the
   * courier acks it with status 0; held while disconnected. `messageId` is the frame's 4-byte id: iMessage
   * envelopes carry the same number as `i` (imessage.md §1.2); without it, or if it is already awaiting an ack,
   * a fresh random id is used.
   */
  async send(topic: string, payload: Uint8Array, opts: { messageId?: number } = {}): Promise<void> {
    if (this.isFinished()) throw this.finalError();
    if (payload.length > MAX_PAYLOAD) {
      throw new ApnsError('message-too-large', `an upstream payload is at most ${MAX_PAYLOAD} bytes`);
    }
    if (this.awaitingAck.size + this.outbox.length >= this.maxQueuedSends) {
      throw new ApnsError('send-queue-full', `${this.maxQueuedSends} upstream messages are already waiting`);
    }
    const hash = topicHashOf(topic);
    // Queued before the first await, so messages leave in the order send() was called.
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ id: this.messageIdFor(opts.messageId), topicHash: hash, payload: payload.slice(), resolve, reject, tooEarly: 0 });
      this.flushOutbox();
    });
  }

  /** Replaces the topic set; the courier gets the new filter at once when connected. */
  updateTopics(topics: readonly string[]): void {
    this.applyTopics(topics);
    if (this.currentState === 'connected' && this.conn) this.sendFilter(this.conn);
  }

  /**
   * Stops for good: a notification being handled finishes and is acked first; queued ones stay unacked (the
   * courier delivers them next time); unsent and unacked upstream messages are rejected with 'client-closed'.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- connection lifecycle ------------------------------------------------------------------------------------

  private async run(): Promise<void> {
    while (!this.isFinished()) {
      const end = await this.session();
      if (this.isFinished()) return;
      if (end.fatal) {
        this.stop(end.error!);
        return;
      }
      if (end.connectedMs !== undefined && end.connectedMs >= this.backoff.stableAfterMs) this.failures = 0;
      const delay = end.retryNow ? 0 : this.backoffDelay(this.failures++);
      this.currentState = 'waiting';
      this.events.emit('disconnected', { ...(end.error ? { error: end.error } : {}), retryInMs: delay });
      if (delay > 0) await this.sleep(delay);
      if (this.currentState === 'waiting') this.currentState = 'connecting';
    }
  }

  /** One connection from dial to end. */
  private async session(): Promise<SessionEnd> {
    this.currentState = 'connecting';
    let stream: CourierStream;
    try {
      stream = await this.openStream();
    } catch (e) {
      return { error: asApnsError(e, 'connection-closed', 'could not reach the courier') };
    }
    if (this.isFinished()) {
      stream.close();
      return {};
    }
    let settleEnd!: (error: ApnsError | undefined) => void;
    const ended = new Promise<ApnsError | undefined>((resolve) => (settleEnd = resolve));
    const conn: CourierConnection = new CourierConnection(
      stream,
      {
        notification: (n) => this.onNotification(conn, n),
        upstreamAck: (a) => this.onUpstreamAck(conn, a),
        noStorage: () => this.events.emit('noStorage', {}),
        end: (error) => settleEnd(error),
      },
      { timers: this.timers, keepAliveMs: this.keepAliveMs, keepAliveTimeoutMs: this.keepAliveTimeoutMs },
    );
    this.conn = conn;
    let connectedAt: number | undefined;
    let verdict: SessionEnd | undefined;
    try {
      verdict = await this.authenticate(conn);
      if (!verdict && !conn.ended && !this.isFinished()) {
        this.sendFilter(conn, true);
        connectedAt = this.now();
        this.currentState = 'connected';
        this.lastWasStaleNonce = false;
        conn.startKeepAlive();
        const token = this.heldToken!.slice();
        for (const w of this.waiters.splice(0)) w.resolve(token.slice());
        this.events.emit('connected', { token });
        this.flushOutbox();
      }
    } catch (e) {
      conn.close(asApnsError(e, 'protocol-error', 'connecting to the courier failed'));
    }
    if (verdict) conn.close(verdict.error);
    const error = await ended;
    this.onConnectionEnd(conn);
    return {
      ...(verdict ?? {}),
      ...(error ? { error } : {}),
      ...(connectedAt !== undefined ? { connectedMs: this.now() - connectedAt } : {}),
    };
  }

  private openStream(): Promise<CourierStream> {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = this.timers.setTimeout(() => {
        done = true;
        reject(new ApnsError('connect-timeout', `no connection to the courier within ${this.connectTimeoutMs} ms`));
      }, this.connectTimeoutMs);
      Promise.resolve()
        .then(() => this.options.connect())
        .then(
          (stream) => {
            // A stream that arrives after we gave up is nobody's: close it.
            if (done) return stream.close();
            done = true;
            this.timers.clearTimeout(timer);
            resolve(stream);
          },
          (e: unknown) => {
            if (done) return;
            done = true;
            this.timers.clearTimeout(timer);
            reject(e);
          },
        );
    });
  }

  /** Connect → 0x08. Undefined when accepted (token adopted); otherwise how this session ends. */
  private async authenticate(conn: CourierConnection): Promise<SessionEnd | undefined> {
    const nonce = courierNonce(Math.max(0, Math.round(this.now() + this.clockOffsetMs)));
    const signature = await signCourierNonce(this.options.credentials.privateKey, nonce);
    const res = await conn.handshake(
      {
        ...(this.heldToken ? { token: this.heldToken } : {}),
        state: 1,
        presenceFlags: PRESENCE_FLAGS,
        certificates: [this.options.credentials.certificate],
        nonce,
        signature,
      },
      this.connectTimeoutMs,
    );
    if (res.status !== 0) {
      const { status, redirectReason: reason } = res;
      if (status === 2) return { error: new CertificateRejectedError(status), fatal: true };
      if (res.staleNonceServerTimeMs !== undefined) {
        this.clockOffsetMs = Number(res.staleNonceServerTimeMs) - this.now();
        // One immediate retry with the corrected clock; if that is refused too, back off as usual.
        const retryNow = !this.lastWasStaleNonce;
        this.lastWasStaleNonce = true;
        return { error: new ApnsError('stale-nonce', 'the courier refused our clock; retrying with its time', { status }), retryNow };
      }
      if (reason) return { error: new ApnsError('redirected', `the courier redirected us (${reason})`, { status, reason }) };
      return { error: new ApnsError('connect-refused', `the courier refused Connect with status ${status}`, { status }) };
    }
    const token = res.token ?? this.heldToken;
    if (!token) return { error: new ApnsError('no-token', 'the courier accepted Connect but issued no token') };
    await this.adoptToken(token);
    return undefined;
  }

  private async adoptToken(token: Uint8Array): Promise<void> {
    const previous = this.heldToken;
    if (previous && equalBytes(previous, token)) return;
    this.heldToken = token.slice();
    try {
      await this.options.onToken?.(token.slice());
    } catch (e) {
      this.events.emit('error', new ApnsError('token-persist-failed', 'onToken failed; the new token is only in memory', { cause: e }));
    }
    if (previous) this.events.emit('tokenChanged', { token: token.slice(), previous: previous.slice() });
  }

  /**
   * 0x14 (first time only) and 0x09 with every topic. Written without waiting: frames leave in call order, so
   * nothing sent after this can overtake the filter.
   */
  private sendFilter(conn: CourierConnection, withState = false): void {
    const token = this.heldToken;
    if (!token) return;
    if (withState) conn.send('setState', ACTIVE_STATE).catch(() => {});
    const enabled = [...this.topics.keys()].map(fromHex);
    conn.send('filter', { token, enabled }).catch(() => {});
  }

  /** Whatever the connection left undone: its unhandled notifications are dropped (unacked), its sends requeued. */
  private onConnectionEnd(conn: CourierConnection): void {
    if (this.conn === conn) this.conn = undefined;
    this.inbox = this.inbox.filter((i) => {
      if (i.conn !== conn) return true;
      this.inboxKeys.delete(i.key);
      return false;
    });
    const requeue = [...this.awaitingAck.values()];
    this.awaitingAck.clear();
    for (const o of requeue) this.timers.clearTimeout(o.timer);
    this.outbox = [...requeue, ...this.outbox];
    if (this.currentState === 'connected') this.currentState = 'waiting';
  }

  private backoffDelay(failures: number): number {
    const { initialMs, maxMs, jitter } = this.backoff;
    const full = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
    return Math.round(full * (1 - jitter * this.random()));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.timers.clearTimeout(this.retry?.timer);
        this.retry = undefined;
        resolve();
      };
      this.retry = { timer: this.timers.setTimeout(wake, ms), wake };
    });
  }

  private isFinished(): boolean {
    return this.currentState === 'closed' || this.currentState === 'stopped';
  }

  private finalError(): ApnsError {
    return this.fatal ?? new ApnsError('client-closed', 'the courier client is closed');
  }

  /** A dead certificate: nothing more can succeed with these credentials. */
  private stop(error: ApnsError): void {
    this.currentState = 'stopped';
    this.fatal = error;
    this.failEverything(error);
    this.events.emit('disconnected', { error });
    this.events.emit('error', error);
  }

  private async shutdown(): Promise<void> {
    const wasConnected = this.currentState === 'connected';
    this.currentState = 'closed';
    this.retry?.wake();
    if (this.flushTimer !== undefined) this.timers.clearTimeout(this.flushTimer);
    // Let the handler in progress finish and ack on the still-open connection; the rest wait for redelivery.
    for (const i of this.inbox) this.inboxKeys.delete(i.key);
    this.inbox = [];
    await this.handling;
    this.conn?.close();
    this.failEverything(this.finalError());
    if (wasConnected) this.events.emit('disconnected', {});
  }

  private failEverything(error: ApnsError): void {
    for (const o of [...this.outbox, ...this.awaitingAck.values()]) {
      this.timers.clearTimeout(o.timer);
      o.reject(error);
    }
    this.outbox = [];
    this.awaitingAck.clear();
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  // ---- topics --------------------------------------------------------------------------------------------------

  private applyTopics(topics: readonly string[]): void {
    if (!Array.isArray(topics) || topics.some((t) => typeof t !== 'string' || t === '')) {
      throw new CeruleanError('bad-option', 'topics must be non-empty strings');
    }
    const hashed = topics.map((t) => [toHex(topicHashOf(t)), t] as const);
    this.topics = new Map(hashed);
    for (const [hex, name] of hashed) this.topicNames.set(hex, name);
  }

  // ---- downstream ----------------------------------------------------------------------------------------------

  private onNotification(conn: CourierConnection, n: Notification): void {
    if (this.currentState === 'closed') return;
    const topic = this.topicNames.get(toHex(n.topicHash));
    if (topic === undefined) {
      // Not a topic of ours: ack so the courier stops resending it (§6: clients ack everything).
      void this.ack(conn, n.messageId);
      return;
    }
    const key = `${conn.id}:${n.messageId}`;
    // A redelivery of one we still hold, or more than we hold: the courier will send it (again) later.
    if (this.inboxKeys.has(key) || this.inbox.length >= this.maxPending) return;
    this.inboxKeys.add(key);
    this.inbox.push({
      conn,
      key,
      n: { topic, topicHash: n.topicHash.slice(), token: n.token.slice(), payload: n.payload.slice(), id: n.messageId },
    });
    if (!this.draining) this.handling = this.handleInbox();
  }

  /** One handler at a time, across connections, so a redelivery never runs beside its first copy. */
  private async handleInbox(): Promise<void> {
    this.draining = true;
    // The flag drops in the same turn the inbox is found empty, so whatever arrives next starts a new loop.
    try {
      for (let item = this.inbox.shift(); item; item = this.inbox.shift()) {
        let handled = false;
        try {
          await this.options.onNotification(item.n);
          handled = true;
        } catch (e) {
          this.events.emit(
            'error',
            new ApnsError('handler-failed', `onNotification failed for message ${item.n.id}; it stays unacked`, { cause: e }),
          );
        }
        this.inboxKeys.delete(item.key);
        // Awaited so close() cannot cut the connection while the ack is still being written.
        if (handled && !item.conn.ended) await this.ack(item.conn, item.n.id);
      }
    } finally {
      this.draining = false;
    }
  }

  private ack(conn: CourierConnection, messageId: number): Promise<void> {
    const token = this.heldToken;
    return conn.send('ack', { ...(token ? { token } : {}), messageId, status: ACK_OK }).catch(() => {});
  }

  // ---- upstream ------------------------------------------------------------------------------------------------

  private flushOutbox(): void {
    const conn = this.conn;
    const token = this.heldToken;
    if (this.currentState !== 'connected' || !conn || conn.ended || !token) return;
    for (let o = this.outbox.shift(); o; o = this.outbox.shift()) {
      const out = o;
      this.awaitingAck.set(out.id, out);
      out.timer = this.timers.setTimeout(() => {
        if (this.awaitingAck.get(out.id) !== out) return;
        this.awaitingAck.delete(out.id);
        out.reject(new ApnsError('send-timeout', `no ack for upstream message ${out.id} within ${this.sendTimeoutMs} ms`));
      }, this.sendTimeoutMs);
      // A failed write ends the connection, which puts the message back in the outbox.
      conn
        .send('upstreamNotification', { messageId: out.id, topicHash: out.topicHash, senderToken: token, payload: out.payload })
        .catch(() => {});
    }
  }

  private onUpstreamAck(conn: CourierConnection, ack: Ack): void {
    if (conn !== this.conn) return;
    const o = this.awaitingAck.get(ack.messageId);
    if (!o) return;
    this.awaitingAck.delete(ack.messageId);
    this.timers.clearTimeout(o.timer);
    if (ack.status === ACK_OK) {
      o.resolve();
    } else if (ack.status === ACK_TOO_EARLY && o.tooEarly < TOO_EARLY_RETRIES) {
      // "Sent before SetState/Filter" ([BG]'s reading): the filter is out by now, so try again shortly.
      o.tooEarly++;
      this.outbox.push(o);
      this.flushTimer ??= this.timers.setTimeout(() => {
        this.flushTimer = undefined;
        this.flushOutbox();
      }, TOO_EARLY_DELAY_MS);
    } else if (ack.status === ACK_TOO_LARGE) {
      o.reject(new ApnsError('message-too-large', 'the courier refused the upstream message as too large', { status: ack.status }));
    } else {
      o.reject(new ApnsError('send-rejected', `the courier refused the upstream message with status ${ack.status}`, { status: ack.status }));
    }
  }

  private newMessageId(): number {
    for (;;) {
      const b = randomBytes(4);
      const id = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      if (this.idIsFree(id)) return id;
    }
  }

  /** The caller's id when it is a free, non-zero u32 (acks are matched by id, so two in flight must differ). */
  private messageIdFor(wanted: number | undefined): number {
    return wanted !== undefined && Number.isInteger(wanted) && wanted <= 0xffffffff && this.idIsFree(wanted) ? wanted : this.newMessageId();
  }

  private idIsFree(id: number): boolean {
    return id !== 0 && !this.awaitingAck.has(id) && !this.outbox.some((o) => o.id === id);
  }
}

/**
 * SHA-1 of the topic name (apns.md §5), computed synchronously (not with WebCrypto's async digest) so that send()
 * queues in call order and a topic update takes effect at once.
 */
function topicHashOf(topic: string): Uint8Array {
  return sha1(utf8(topic));
}

function asApnsError(e: unknown, code: 'connection-closed' | 'protocol-error', message: string): ApnsError {
  return e instanceof ApnsError ? e : new ApnsError(code, `${message}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

function duration(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new CeruleanError('bad-option', `${name} must be a non-negative number`);
  return v;
}

/** Signing is the first thing every connection does; a wrong key would fail there forever, so refuse it now. */
function checkPushKey(key: CryptoKey): void {
  const alg = key?.algorithm as Partial<RsaHashedKeyAlgorithm> | undefined;
  if (alg?.name !== 'RSASSA-PKCS1-v1_5' || alg.hash?.name !== 'SHA-1' || !key.usages.includes('sign')) {
    throw new CeruleanError('bad-option', 'the push key must be an RSASSA-PKCS1-v1_5 SHA-1 signing key');
  }
}

function count(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new CeruleanError('bad-option', `${name} must be a positive integer`);
  return v;
}

function fraction(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new CeruleanError('bad-option', `${name} must be between 0 and 1`);
  return v;
}
