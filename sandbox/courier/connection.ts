// One client connection to the courier (apns.md §4, §6, §8): awaits an authenticated Connect, then serves filters,
// notifications and their acks, upstream messages, keep-alives and the minor commands. Frames are handled one at
// a time in arrival order; while one is being handled the socket is paused, so a client cannot pile work up.
// Anything malformed closes this connection and nothing else.
import type { TLSSocket } from 'node:tls';
import {
  buildMessage,
  filterTopicLists,
  parseMessage,
  type ApnsMessageType,
  type Connect,
  type Filter,
  type MessageInput,
  type UpstreamNotification,
} from '../../lib/codec/apns-commands';
import type { ApnsFrame } from '../../lib/codec/apns-frame';
import { fromHex, toHex, u32be } from '../../lib/codec/bytes';
import { CeruleanError } from '../../lib/errors';
import { authenticateConnect, ConnectStatus } from './connect-auth';
import type { CourierDeps, TopicBackend } from './deps';
import { framingFor, type CourierFraming } from './framing';
import type { CourierFaults, ResolvedCourierOptions } from './options';
import type { MessageQueue, QueuedMessage } from './queue';
import type { TokenRegistry } from './tokens';

/** What a connection needs from the courier that owns it. */
export interface CourierCore {
  readonly deps: CourierDeps;
  readonly options: ResolvedCourierOptions;
  readonly faults: CourierFaults;
  readonly tokens: TokenRegistry;
  readonly queue: MessageQueue;
  /** Makes `conn` the live connection of `token`, closing any older one. */
  attach(conn: CourierConnection, token: string): void;
  /** `conn` is gone; its token (if it still owned it) is offline. */
  detach(conn: CourierConnection): void;
  backendFor(topicHash: string): { topic: string; backend: TopicBackend } | undefined;
  deliverToToken(token: Uint8Array, topicHash: Uint8Array, payload: Uint8Array): Promise<unknown>;
}

/** The five topic lists of the connection's latest 0x09, as hex hashes. */
export interface TopicFilter {
  enabled: ReadonlySet<string>;
  ignored: ReadonlySet<string>;
  opportunistic: ReadonlySet<string>;
  paused: ReadonlySet<string>;
  nonWaking: ReadonlySet<string>;
  version?: bigint;
}

/** What a client told the courier besides its filter: recorded, never acted on. */
export interface ClientState {
  presenceFlags?: number;
  protocolVersion?: number;
  activeState?: { state: number; interval?: number };
  activeInterval?: number;
  transportAcks: number;
  tracingAcks: number;
}

export const UpstreamAckStatus = { Ok: 0, TooLarge: 3, TooEarly: 0x80 } as const;

// Backend calls run behind the frame loop (so keep-alives and acks are not held up by a slow lookup) but in order;
// past this many the frame loop waits for them.
const MAX_PENDING_UPSTREAM = 32;
// After end(), how long a peer gets to read the last frames before the socket is destroyed.
const CLOSE_GRACE_MS = 1000;

let nextConnectionId = 1;

type State = 'awaiting-connect' | 'connected' | 'closed';

export class CourierConnection {
  readonly id = nextConnectionId++;
  readonly client: ClientState = { transportAcks: 0, tracingAcks: 0 };
  private baseToken: string | undefined;
  private tokenBytes: Uint8Array = new Uint8Array(0);
  private state: State = 'awaiting-connect';
  private readonly framing: CourierFraming;
  private readonly inbox: ApnsFrame[] = [];
  private draining = false;
  private readonly openedAt: number;
  private lastFrameAt: number;
  private topicFilter: TopicFilter | undefined;
  /** A 0x09 or 0x14 has arrived: upstream messages are no longer "too early". */
  private ready = false;
  /** Notifications written to this connection and not acked, with when they were last sent. */
  private readonly inFlight = new Map<QueuedMessage, number>();
  private upstreamTail: Promise<void> = Promise.resolve();
  private upstreamPending = 0;

  constructor(
    private readonly core: CourierCore,
    private readonly socket: TLSSocket,
  ) {
    this.openedAt = this.lastFrameAt = core.deps.clock.now();
    this.framing = framingFor(socket.alpnProtocol, { maxFrameLength: core.options.maxFrameLength });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Uint8Array) => this.onData(chunk));
    socket.on('error', (e) => this.log('info', 'courier.socket-error', { error: e.message }));
    socket.on('close', () => this.close('socket-closed'));
  }

  /** Base token (hex) once connected. */
  get token(): string | undefined {
    return this.baseToken;
  }

  get packed(): boolean {
    return this.framing.packed;
  }

  /** A getter, so checks after an await are not narrowed away by the compiler. */
  get isClosed(): boolean {
    return this.state === 'closed';
  }

  get filter(): TopicFilter | undefined {
    return this.topicFilter;
  }

  /** Whether a notification on this topic (hex hash) may be written to this connection now. */
  enables(topicHash: string): boolean {
    return this.state === 'connected' && this.topicFilter?.enabled.has(topicHash) === true;
  }

  isInFlight(m: QueuedMessage): boolean {
    return this.inFlight.has(m);
  }

  /** Ends the connection (idempotent): what was written is flushed, then the socket is torn down. */
  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.inbox.length = 0;
    this.inFlight.clear();
    this.log(reason === 'socket-closed' ? 'info' : 'warn', 'courier.close', { reason, wasConnected });
    this.core.detach(this);
    if (!this.socket.destroyed) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    }
  }

  /** Ends the connection at once, without flushing (a network drop, or shutdown). */
  destroy(reason: string): void {
    this.close(reason);
    this.socket.destroy();
  }

  /** Server-initiated redirect (apns.md §3 0x17): tell the client, then close. */
  redirect(reason: string): void {
    this.send('redirect', { redirectReason: reason });
    this.close('redirect');
  }

  /** Writes every queued notification this connection may receive now, oldest first, within the in-flight window. */
  pump(): void {
    if (this.state !== 'connected' || !this.token || !this.topicFilter) return;
    const now = this.core.deps.clock.now();
    for (const m of this.core.queue.forToken(this.token)) {
      if (this.inFlight.size >= this.core.options.maxInFlight) break;
      if (this.inFlight.has(m) || !this.topicFilter.enabled.has(m.topicHash)) continue;
      this.sendNotification(m);
      this.inFlight.set(m, now);
    }
  }

  /** Periodic duties: connect and idle timeouts, backlog close, redelivery of overdue notifications. */
  sweep(now: number): void {
    if (this.state === 'closed') return;
    const { options } = this.core;
    if (this.state === 'awaiting-connect' && now - this.openedAt >= options.connectTimeoutMs) {
      this.close('connect-timeout');
      return;
    }
    if (now - this.lastFrameAt >= options.idleTimeoutMs) {
      this.close('idle');
      return;
    }
    if (this.state !== 'connected' || !this.token) return;
    const queued = new Set(this.core.queue.forToken(this.token));
    const overdue: QueuedMessage[] = [];
    for (const [m, sentAt] of this.inFlight) {
      // Acked through another connection, expired, or no longer wanted by the filter: not ours to resend.
      if (!queued.has(m) || !this.enables(m.topicHash)) this.inFlight.delete(m);
      else if (now - sentAt >= options.ackTimeoutMs) overdue.push(m);
    }
    if (overdue.length > 0) {
      let backlog = 0;
      for (const m of queued) if (this.enables(m.topicHash)) backlog++;
      if (backlog > options.maxUnackedBacklog) {
        this.close('unacked-backlog');
        return;
      }
    }
    overdue.sort((a, b) => a.seq - b.seq);
    for (const m of overdue) {
      this.sendNotification(m);
      this.inFlight.set(m, now);
    }
    if (overdue.length) this.log('info', 'courier.redeliver', { count: overdue.length });
    this.pump();
  }

  // ---- input -------------------------------------------------------------------------------------------------

  private onData(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    let frames: ApnsFrame[];
    try {
      frames = this.framing.decode(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (e) {
      this.fail(e);
      return;
    }
    if (frames.length === 0) return;
    this.lastFrameAt = this.core.deps.clock.now();
    this.inbox.push(...frames);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    this.socket.pause();
    try {
      for (let frame = this.inbox.shift(); frame && this.state !== 'closed'; frame = this.inbox.shift()) {
        await this.handle(frame);
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.draining = false;
      if (this.state !== 'closed') this.socket.resume();
    }
  }

  private fail(e: unknown): void {
    const code = e instanceof CeruleanError ? e.code : 'internal';
    this.log(code === 'internal' ? 'error' : 'warn', 'courier.bad-input', {
      code,
      error: e instanceof Error ? e.message : String(e),
    });
    this.close(`bad-input:${code}`);
  }

  private async handle(frame: ApnsFrame): Promise<void> {
    const msg = parseMessage(frame, 'toServer');
    if (this.state === 'awaiting-connect') {
      if (msg.type !== 'connect') {
        this.close('frame-before-connect');
        return;
      }
      await this.onConnect(msg.fields);
      return;
    }
    switch (msg.type) {
      case 'connect':
        this.log('warn', 'courier.repeated-connect');
        return;
      case 'filter':
        this.onFilter(msg.fields);
        return;
      case 'upstreamNotification':
        await this.onUpstream(msg.fields);
        return;
      case 'ack':
        if (msg.fields.status !== 0) {
          this.log('info', 'courier.nack', { status: msg.fields.status });
          return;
        }
        await this.onAck(msg.fields.messageId);
        return;
      case 'keepAlive':
        this.send('keepAliveAck', {});
        return;
      case 'setState':
        this.client.activeState = { state: msg.fields.state, interval: msg.fields.interval };
        this.ready = true;
        return;
      case 'setActiveInterval':
        this.client.activeInterval = msg.fields.interval;
        return;
      case 'transportAck':
        this.client.transportAcks++;
        return;
      case 'tracingAck':
        this.client.tracingAcks++;
        return;
      case 'scopedTokenRequest':
        await this.onScopedTokenRequest(msg.fields.baseToken, msg.fields.topicHash, msg.fields.appId);
        return;
      case 'pubSub':
        this.send('pubSub', { requestId: msg.fields.requestId, token: this.tokenBytes, status: 0 });
        return;
      case 'flush':
        this.send('flushResponse', { padding: new Uint8Array(msg.fields.wantPadding ?? 0) });
        return;
      default:
        this.log('info', 'courier.ignored', { command: frame.command });
    }
  }

  // ---- commands ----------------------------------------------------------------------------------------------

  private async onConnect(c: Connect): Promise<void> {
    const base = {
      maxMessageSize: this.core.options.maxMessageSize,
      unknown5: Uint8Array.of(0x00, 0x02),
      capabilities: this.core.options.capabilities,
      largeMessageSize: this.core.options.largeMessageSize,
    };
    const now = () => BigInt(this.core.deps.clock.now());
    const forced = this.core.faults.connect;
    if (forced) {
      const { status, redirectReason } = forced;
      this.send('connectResponse', { status, ...base, redirectReason, serverTimeMs: now() });
      this.close('forced-connect-status');
      return;
    }
    const auth = await authenticateConnect(c, this.core.deps, this.core.options.nonceWindowMs);
    if (this.isClosed) return;
    if (!auth.ok) {
      const stale = auth.status === ConnectStatus.StaleNonce ? { staleNonceServerTimeMs: now() } : {};
      this.send('connectResponse', { status: auth.status, ...base, ...stale, serverTimeMs: now() });
      this.close(`connect-${auth.reason}`);
      return;
    }
    const { token, issued } = await this.core.tokens.forConnect(c.token, auth.keyId);
    if (this.isClosed) return;
    this.baseToken = token;
    this.tokenBytes = fromHex(token);
    this.client.presenceFlags = c.presenceFlags;
    this.client.protocolVersion = c.protocolVersion;
    this.state = 'connected';
    this.core.attach(this, token);
    const echo = issued || this.core.options.echoAcceptedToken;
    this.send('connectResponse', {
      status: ConnectStatus.Ok,
      ...base,
      token: echo ? this.tokenBytes : undefined,
      serverTimeMs: now(),
    });
    this.log('info', 'courier.connected', { issued, serial: auth.serial, packed: this.packed });
  }

  private onFilter(f: Filter): void {
    const lists = filterTopicLists(f);
    const set = (hashes: Uint8Array[]) => new Set(hashes.map(toHex));
    const enabled = set(lists.enabled);
    this.topicFilter = {
      enabled,
      ignored: set(lists.ignored),
      opportunistic: set(lists.opportunistic),
      paused: set(lists.paused),
      nonWaking: set(lists.nonWaking),
      version: f.version,
    };
    this.ready = true;
    if (f.token && toHex(f.token) !== this.token) this.log('warn', 'courier.filter-foreign-token');
    if (f.version !== undefined) {
      this.send('filterResponse', { token: this.tokenBytes, version: f.version, status: 0 });
    }
    // Sent-but-unacked notifications whose topic left the filter wait for a filter that enables it again.
    for (const m of this.inFlight.keys()) if (!enabled.has(m.topicHash)) this.inFlight.delete(m);
    const pending = this.core.queue.forToken(this.token!).some((m) => enabled.has(m.topicHash));
    if (pending) this.pump();
    else this.send('noStorage', { token: this.tokenBytes });
  }

  private async onAck(messageId: number): Promise<void> {
    const m = await this.core.queue.remove(this.token!, messageId);
    if (!m) {
      this.log('info', 'courier.ack-unknown', { messageId });
      return;
    }
    this.inFlight.delete(m);
    this.pump();
  }

  private async onUpstream(u: UpstreamNotification): Promise<void> {
    const ack = (status: number) => this.send('ack', { messageId: u.messageId, status });
    const forced = this.core.faults.upstreamAckStatus;
    if (forced !== undefined) return ack(forced);
    if (this.core.options.ackTooEarly && !this.ready) return ack(UpstreamAckStatus.TooEarly);
    if (u.payload.length > this.core.options.largeMessageSize) return ack(UpstreamAckStatus.TooLarge);
    ack(UpstreamAckStatus.Ok);
    const topicHash = toHex(u.topicHash);
    const route = this.core.backendFor(topicHash);
    if (!route) {
      this.log('warn', 'courier.upstream-unknown-topic', { topicHash });
      return;
    }
    if (u.senderToken && toHex(u.senderToken) !== this.token) this.log('warn', 'courier.upstream-sender-mismatch');
    const sender = this.tokenBytes;
    const msg = { topic: route.topic, topicHash: u.topicHash, senderToken: sender, payload: u.payload, messageId: u32be(u.messageId) };
    const reply = {
      toSender: async (payload: Uint8Array) => {
        await this.core.deliverToToken(sender, u.topicHash, payload);
      },
    };
    this.upstreamPending++;
    this.upstreamTail = this.upstreamTail
      .then(() => route.backend.handleUpstream(msg, reply))
      .catch((e: unknown) => {
        this.log('error', 'courier.backend-failed', { topic: route.topic, error: e instanceof Error ? e.message : String(e) });
      })
      .finally(() => this.upstreamPending--);
    if (this.upstreamPending >= MAX_PENDING_UPSTREAM) await this.upstreamTail;
  }

  private async onScopedTokenRequest(baseToken: Uint8Array, topicHash: Uint8Array, appId?: number): Promise<void> {
    if (toHex(baseToken) !== this.token) {
      this.send('scopedTokenResponse', { status: 1, topicHash, appId });
      return;
    }
    const scoped = await this.core.tokens.scoped(this.token, toHex(topicHash));
    this.send('scopedTokenResponse', { status: 0, scopedToken: fromHex(scoped), topicHash, appId });
  }

  // ---- output ------------------------------------------------------------------------------------------------

  private sendNotification(m: QueuedMessage): void {
    this.send('notification', {
      token: fromHex(m.dest),
      topicHash: fromHex(m.topicHash),
      payload: m.payload,
      messageId: m.id,
      expiry: m.expiry,
      timestampNs: BigInt(m.createdMs) * 1_000_000n,
    });
  }

  private send<T extends ApnsMessageType>(type: T, fields: MessageInput<T>): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(this.framing.encode(buildMessage(type, fields)));
  }

  private log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.core.deps.log[level](event, { conn: this.id, token: this.token?.slice(0, 16), ...fields });
  }
}
