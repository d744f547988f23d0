// The sandbox's APNs courier (apns.md §8 items 3–10 and 12): authenticated client connections over legacy or
// packed framing, push tokens bound to push certificates, per-token store-and-forward with acks and redelivery,
// upstream messages handed to per-topic backends, and a provider-style deliver() for everything that pushes.
// TLS itself (listeners, ALPN selection via selectCourierAlpn) belongs to whoever mounts it.
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { fromHex, toHex } from '../../lib/codec/bytes';
import { CeruleanError } from '../../lib/errors';
import { CourierConnection, type ClientState, type CourierCore, type TopicFilter } from './connection';
import type { CourierDeps, TopicBackend } from './deps';
import type { CourierFaults, CourierOptions, ResolvedCourierOptions } from './options';
import { resolveCourierOptions } from './options';
import { MessageQueue } from './queue';
import { TokenRegistry } from './tokens';

export interface DeliverOptions {
  /** 0x0A item 5, Unix seconds; the message is dropped from storage after it. Default: now + storageTtlMs. */
  expiry?: number;
  /** false: deliver only if the token is online with the topic enabled now, never store (typing, `eX:0`). */
  storeIfOffline?: boolean;
}

export type DeliveryRefusal = 'unknown-token' | 'token-not-for-topic' | 'too-large' | 'queue-full' | 'offline';

export interface DeliveryResult {
  /** Written to the token's live connection during this call. */
  delivered: boolean;
  /** Persisted: survives restarts and is redelivered until acked or expired. */
  stored: boolean;
  /** Why it was neither delivered nor stored. */
  reason?: DeliveryRefusal;
}

export interface ConnectionInfo {
  packed: boolean;
  filter: TopicFilter | undefined;
  client: ClientState;
}

export interface Courier {
  /** Serves a client on an already-handshaken TLS socket; `socket.alpnProtocol` picks the framing. */
  handleConnection(socket: TLSSocket): void;
  /** Apple's provider path: push `payload` on `topic` (name, or 20-byte SHA-1 hash) to a base or scoped token. */
  deliver(token: Uint8Array, topic: string | Uint8Array, payload: Uint8Array, opts?: DeliverOptions): Promise<DeliveryResult>;
  /** Upstream 0x0A frames on this topic go to `backend` (replacing any earlier one). */
  registerTopicBackend(topic: string, backend: TopicBackend): void;
  /** Base tokens with a live, authenticated connection. */
  connectedTokens(): Uint8Array[];
  connectionInfo(token: Uint8Array): ConnectionInfo | undefined;
  /** Notifications queued for a base token and not yet acked. */
  pendingCount(token: Uint8Array): number;
  /** Mutable fault switches. */
  readonly faults: CourierFaults;
  /** Whether a base token was minted for the push key with this SPKI fingerprint (hex SHA-256). */
  isTokenBoundToKey(token: Uint8Array, keyId: string): boolean;
  /** Cuts a token's connection without a word (a network drop); false if it was not connected. */
  drop(token: Uint8Array): boolean;
  /** Sends 0x17 with a redirect reason to a token's connection and closes it; false if it was not connected. */
  redirect(token: Uint8Array, reason: string): boolean;
  /** Expiry, idle and backlog closes, redelivery: run by a timer unless sweepIntervalMs is 0. */
  tick(): Promise<void>;
  /** Closes every connection and stops the timer; the store stays open (it is the caller's). */
  close(): Promise<void>;
}

/** Larger payloads cannot be framed as one legacy item. */
const MAX_ITEM_PAYLOAD = 0xffff;
const U32_MAX = 0xffffffff;

function sha1Hex(topic: string): string {
  return createHash('sha1').update(topic, 'utf8').digest('hex');
}

class CourierService implements Courier, CourierCore {
  readonly options: ResolvedCourierOptions;
  readonly faults: CourierFaults = {};
  readonly tokens: TokenRegistry;
  readonly queue: MessageQueue;
  private readonly connections = new Set<CourierConnection>();
  private readonly live = new Map<string, CourierConnection>();
  private readonly backends = new Map<string, { topic: string; backend: TopicBackend }>();
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  private ticking: Promise<void> | undefined;
  private closed = false;

  constructor(
    readonly deps: CourierDeps,
    opts: CourierOptions,
  ) {
    this.options = resolveCourierOptions(opts);
    this.tokens = new TokenRegistry(deps.store, () => deps.clock.now());
    this.queue = new MessageQueue(deps.store, deps.log);
    if (this.options.sweepIntervalMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.options.sweepIntervalMs);
      this.timer.unref();
    }
    deps.log.info('courier.start', { queued: this.queue.size });
  }

  isTokenBoundToKey(token: Uint8Array, keyId: string): boolean {
    return this.tokens.isBoundTo(token, keyId);
  }

  handleConnection(socket: TLSSocket): void {
    if (this.closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    try {
      this.connections.add(new CourierConnection(this, socket));
    } catch (e) {
      // Only an unusable ALPN string gets here.
      this.deps.log.warn('courier.refused', { error: e instanceof Error ? e.message : String(e) });
      socket.destroy();
    }
  }

  async deliver(
    token: Uint8Array,
    topic: string | Uint8Array,
    payload: Uint8Array,
    opts: DeliverOptions = {},
  ): Promise<DeliveryResult> {
    if (this.closed) throw new CeruleanError('courier-closed', 'the courier is closed');
    if (typeof topic !== 'string' && topic.length !== 20) {
      throw new CeruleanError('bad-topic', 'a topic hash is 20 bytes (SHA-1 of the topic name)');
    }
    if (opts.expiry !== undefined && (!Number.isInteger(opts.expiry) || opts.expiry < 0 || opts.expiry > U32_MAX)) {
      throw new CeruleanError('bad-option', 'expiry is a u32 of Unix seconds');
    }
    const topicHash = typeof topic === 'string' ? sha1Hex(topic) : toHex(topic);
    const dest = toHex(token);
    const refuse = (reason: DeliveryRefusal): DeliveryResult => {
      this.deps.log.info('courier.deliver-refused', { token: dest.slice(0, 16), topicHash, reason });
      return { delivered: false, stored: false, reason };
    };
    if (payload.length > MAX_ITEM_PAYLOAD) return refuse('too-large');
    const resolved = this.tokens.resolve(dest);
    if (!resolved) return refuse('unknown-token');
    if (resolved.scopedTopic !== undefined && resolved.scopedTopic !== topicHash) return refuse('token-not-for-topic');
    const base = resolved.base;
    const nowMs = this.deps.clock.now();
    const expiry = opts.expiry ?? Math.min(U32_MAX, Math.floor((nowMs + this.options.storageTtlMs) / 1000));
    const durable = opts.storeIfOffline !== false && expiry >= Math.floor(nowMs / 1000);
    if (!durable && !this.live.get(base)?.enables(topicHash)) return refuse('offline');
    if (this.queue.count(base) >= this.options.maxStoredPerToken) return refuse('queue-full');
    const m = await this.queue.add({
      token: base,
      dest,
      topicHash,
      payload: payload.slice(),
      expiry,
      createdMs: nowMs,
      durable,
    });
    // Looked up again: the connection may have changed while the message was being written.
    const conn = this.live.get(base);
    conn?.pump();
    const delivered = conn?.isInFlight(m) ?? false;
    this.deps.log.info('courier.deliver', { token: base.slice(0, 16), topicHash, delivered, stored: durable });
    return { delivered, stored: durable };
  }

  deliverToToken(token: Uint8Array, topicHash: Uint8Array, payload: Uint8Array): Promise<DeliveryResult> {
    return this.deliver(token, topicHash, payload);
  }

  registerTopicBackend(topic: string, backend: TopicBackend): void {
    this.backends.set(sha1Hex(topic), { topic, backend });
  }

  backendFor(topicHash: string): { topic: string; backend: TopicBackend } | undefined {
    return this.backends.get(topicHash);
  }

  connectedTokens(): Uint8Array[] {
    return [...this.live.keys()].map(fromHex);
  }

  connectionInfo(token: Uint8Array): ConnectionInfo | undefined {
    const conn = this.live.get(toHex(token));
    return conn && { packed: conn.packed, filter: conn.filter, client: conn.client };
  }

  pendingCount(token: Uint8Array): number {
    return this.queue.count(toHex(token));
  }

  attach(conn: CourierConnection, token: string): void {
    const older = this.live.get(token);
    this.live.set(token, conn);
    // One live connection per token (apns.md §8.5); set first so the old one's detach leaves the token online.
    if (older && older !== conn) older.close('replaced');
  }

  detach(conn: CourierConnection): void {
    this.connections.delete(conn);
    if (conn.token === undefined || this.live.get(conn.token) !== conn) return;
    this.live.delete(conn.token);
    const dropped = this.queue.dropEphemeral(conn.token);
    if (dropped) this.deps.log.info('courier.drop-unstored', { token: conn.token.slice(0, 16), count: dropped });
  }

  drop(token: Uint8Array): boolean {
    const conn = this.live.get(toHex(token));
    conn?.destroy('dropped');
    return conn !== undefined;
  }

  redirect(token: Uint8Array, reason: string): boolean {
    const conn = this.live.get(toHex(token));
    conn?.redirect(reason);
    return conn !== undefined;
  }

  tick(): Promise<void> {
    this.ticking ??= this.sweep().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async sweep(): Promise<void> {
    const now = this.deps.clock.now();
    try {
      const expired = await this.queue.expire(Math.floor(now / 1000));
      if (expired) this.deps.log.info('courier.expired', { count: expired });
    } catch (e) {
      this.deps.log.error('courier.expire-failed', { error: e instanceof Error ? e.message : String(e) });
    }
    for (const conn of [...this.connections]) {
      try {
        conn.sweep(now);
      } catch (e) {
        this.deps.log.error('courier.sweep-failed', { conn: conn.id, error: e instanceof Error ? e.message : String(e) });
        conn.destroy('sweep-failed');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const conn of [...this.connections]) conn.destroy('courier-closed');
    await this.ticking;
  }
}

export function createCourier(deps: CourierDeps, options: CourierOptions = {}): Courier {
  return new CourierService(deps, options);
}
