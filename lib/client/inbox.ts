// Received notifications, from the courier to the store. The courier client acks a notification once its handler
// returns and hands over the next one only then; processing a message can need an IDS lookup whose answer is itself
// a notification, so processing inside the handler would wait for an answer queued behind it. Instead the handler
// writes the notification to the store (durable before the ack, so nothing acked can be lost) and returns; a
// separate loop processes the stored notifications in arrival order, each to the end — events stored, receiver
// commit (seen mark, delivery receipt) — before deleting it. A crash in between means it is processed again, and
// the receiver's seen-set and the store's de-duplication make that harmless.
// Lookup answers (c:97) and server acks (c:255) need no storing: they are handed on as they arrive.
import type { CourierNotification } from '../apns/courier-client';
import { Command } from '../imessage/commands';
import { decodeEnvelopeDict, readCommand } from '../imessage/envelope';
import { MADRID_TOPIC, type EngineLog } from '../imessage/ports';
import type { InboundEvent, MessageReceiver } from '../imessage/receiver';
import type { ClientStore } from '../store/types';
import { describe } from './events';
import type { LookupReplies } from './lookup-replies';

export interface InboxDeps {
  store: ClientStore;
  replies: LookupReplies;
  /** Undefined until the device is registered; stored notifications wait for it. */
  receiver(): MessageReceiver | undefined;
  apply(event: InboundEvent): Promise<void>;
  log: EngineLog;
  now(): number;
  onError(code: string, message: string): void;
  /** First delay after a failed processing attempt (doubles, at most 64×). */
  retryMs?: number;
}

const PREFIX = 'inbox/';
const DEFAULT_RETRY_MS = 1000;
const MAX_BACKOFF_DOUBLINGS = 6;

interface StoredNotification {
  topic: string;
  payload: Uint8Array;
}

export class Inbox {
  private readonly queue: string[] = [];
  private running: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  /** Set when a notification is queued while the loop runs, so the loop's end cannot miss it. */
  private arrived = false;
  private stopped = true;
  private lastTime = 0;
  private seq = 0;

  constructor(private readonly d: InboxDeps) {}

  /** Picks up notifications stored before a restart and starts processing. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    const known = new Set(this.queue);
    const stored = (await this.d.store.kv.keys()).filter((k) => k.startsWith(PREFIX) && !known.has(k));
    this.queue.push(...stored);
    this.queue.sort();
    this.kick();
  }

  /** Stops after the notification being processed; stored ones stay for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** The courier's onNotification: resolves once the notification is safe to ack. */
  async accept(n: CourierNotification): Promise<void> {
    if (n.topic === MADRID_TOPIC) {
      if (this.d.replies.offer(n.payload)) return;
      if (commandOf(n.payload) === Command.ServerAck) {
        await this.d.receiver()?.handleNotification(n.topic, n.payload);
        return;
      }
    }
    const key = this.nextKey();
    const item: StoredNotification = { topic: n.topic, payload: n.payload };
    await this.d.store.kv.set(key, { ...item });
    this.queue.push(key);
    this.arrived = true;
    this.kick();
  }

  /** Received notifications not yet processed to the end (the one being processed stays at the head until done). */
  get pending(): number {
    return this.queue.length;
  }

  /** Tries a notification that failed again now instead of after its back-off (the connection is back). */
  retryNow(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.kick();
  }

  /** Processes what is queued (again), e.g. once the device is registered. */
  kick(): void {
    if (this.stopped || this.running || this.timer !== undefined) return;
    this.arrived = false;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.arrived) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const receiver = this.d.receiver();
      if (!receiver) return;
      const key = this.queue[0]!;
      try {
        const item = parseStored(await this.d.store.kv.get(key));
        if (item) {
          const received = await receiver.handleNotification(item.topic, item.payload);
          for (const event of received.events) await this.d.apply(event);
          await received.commit();
        } else {
          this.d.log.warn('client.inbox-item-unreadable', {});
        }
        await this.d.store.kv.delete(key);
        this.queue.shift();
        this.failures = 0;
      } catch (e) {
        // Kept at the head of the queue, so order holds: try it again later.
        this.failures++;
        const delay = (this.d.retryMs ?? DEFAULT_RETRY_MS) * 2 ** Math.min(this.failures - 1, MAX_BACKOFF_DOUBLINGS);
        this.d.onError('inbox-retry', `processing a notification failed (${describe(e)}); retrying in ${delay} ms`);
        if (!this.stopped) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.kick();
          }, delay);
        }
        return;
      }
    }
  }

  /** Keys sort in arrival order, across restarts too (time first, then a counter). */
  private nextKey(): string {
    this.lastTime = Math.max(this.lastTime, this.d.now());
    return `${PREFIX}${String(this.lastTime).padStart(15, '0')}-${String(this.seq++).padStart(9, '0')}`;
  }
}

function commandOf(payload: Uint8Array): number | undefined {
  try {
    return readCommand(decodeEnvelopeDict(payload));
  } catch {
    return undefined;
  }
}

function parseStored(v: unknown): StoredNotification | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { topic, payload } = v as Partial<StoredNotification>;
  return typeof topic === 'string' && payload instanceof Uint8Array ? { topic, payload } : undefined;
}
