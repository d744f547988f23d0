// Store-and-forward (apns.md §6, imessage.md §10.6): a FIFO of notifications per base token, kept until the device
// acks them or they expire. Durable messages are written to the store before they become visible to delivery, so
// whatever a caller was told is queued survives a restart, and an ack can never race ahead of the write. Messages
// that must not be stored (typing, expiry 0) live in memory only and vanish when their token goes offline.
import { randomInt } from 'node:crypto';
import { fromBase64, toBase64 } from '../../lib/codec/bytes';
import type { Log } from '../context';
import type { CourierStore } from './deps';

const QUEUE = 'courier.queue';

export interface QueuedMessage {
  /** Arrival order across the whole courier; FIFO within a token follows it. */
  readonly seq: number;
  /** 0x0A item 4, unique among the token's queued messages; kept across redeliveries so any copy's ack counts. */
  readonly id: number;
  /** Base token (hex) whose connection receives it. */
  readonly token: string;
  /** 0x0A item 1 (hex): the base token or a scoped token of it. */
  readonly dest: string;
  readonly topicHash: string;
  readonly payload: Uint8Array;
  /** 0x0A item 5, Unix seconds; dropped once the clock passes it. */
  readonly expiry: number;
  /** When it was accepted (0x0A item 6 is this in ns). */
  readonly createdMs: number;
  readonly durable: boolean;
}

export type NewMessage = Omit<QueuedMessage, 'seq' | 'id'>;

interface StoredMessage {
  seq: number;
  id: number;
  token: string;
  dest: string;
  topicHash: string;
  payload: string;
  expiry: number;
  createdMs: number;
}

const storeKey = (m: { token: string; seq: number }) => `${m.token}.${m.seq}`;

function isStoredMessage(v: unknown): v is StoredMessage {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    ['seq', 'id', 'expiry', 'createdMs'].every((k) => Number.isSafeInteger(r[k])) &&
    ['token', 'dest', 'topicHash', 'payload'].every((k) => typeof r[k] === 'string')
  );
}

export class MessageQueue {
  private readonly byToken = new Map<string, QueuedMessage[]>();
  private nextSeq = 0;
  private total = 0;

  constructor(
    private readonly store: CourierStore,
    log: Log,
  ) {
    for (const [key, v] of store.entries<unknown>(QUEUE)) {
      if (!isStoredMessage(v)) {
        log.warn('courier.queue.bad-record', { key });
        continue;
      }
      this.insert({ ...v, payload: fromBase64(v.payload), durable: true });
      this.nextSeq = Math.max(this.nextSeq, v.seq + 1);
    }
  }

  /** Messages waiting for this base token, oldest first (a live view: copy before awaiting). */
  forToken(token: string): readonly QueuedMessage[] {
    return this.byToken.get(token) ?? [];
  }

  count(token: string): number {
    return this.byToken.get(token)?.length ?? 0;
  }

  get size(): number {
    return this.total;
  }

  /** Assigns order and id; a durable message is persisted before it is queued. */
  async add(m: NewMessage): Promise<QueuedMessage> {
    const queued: QueuedMessage = { ...m, seq: this.nextSeq++, id: this.freshId(m.token) };
    if (queued.durable) {
      const { seq, id, token, dest, topicHash, expiry, createdMs } = queued;
      const stored: StoredMessage = { seq, id, token, dest, topicHash, payload: toBase64(queued.payload), expiry, createdMs };
      await this.store.put(QUEUE, storeKey(queued), stored);
    }
    this.insert(queued);
    return queued;
  }

  /** Removes the token's message with this id (an ack): the message, or undefined if there is none. */
  async remove(token: string, id: number): Promise<QueuedMessage | undefined> {
    const list = this.byToken.get(token);
    const i = list?.findIndex((m) => m.id === id) ?? -1;
    if (!list || i < 0) return undefined;
    const m = list.splice(i, 1)[0]!;
    this.forget(token, list);
    if (m.durable) await this.store.delete(QUEUE, storeKey(m));
    return m;
  }

  /** Drops the token's in-memory-only messages (it went offline); how many. */
  dropEphemeral(token: string): number {
    const list = this.byToken.get(token);
    if (!list) return 0;
    const kept = list.filter((m) => m.durable);
    const dropped = list.length - kept.length;
    this.total -= dropped;
    if (kept.length) this.byToken.set(token, kept);
    else this.byToken.delete(token);
    return dropped;
  }

  /** Drops every message whose expiry is before `nowSeconds`; how many. */
  async expire(nowSeconds: number): Promise<number> {
    const gone: QueuedMessage[] = [];
    for (const [token, list] of this.byToken) {
      const kept = list.filter((m) => m.expiry >= nowSeconds);
      if (kept.length === list.length) continue;
      gone.push(...list.filter((m) => m.expiry < nowSeconds));
      this.total -= list.length - kept.length;
      if (kept.length) this.byToken.set(token, kept);
      else this.byToken.delete(token);
    }
    for (const m of gone) if (m.durable) await this.store.delete(QUEUE, storeKey(m));
    return gone.length;
  }

  private insert(m: QueuedMessage): void {
    let list = this.byToken.get(m.token);
    if (!list) this.byToken.set(m.token, (list = []));
    // Concurrent adds may finish their writes out of order; keep arrival order.
    let i = list.length;
    while (i > 0 && list[i - 1]!.seq > m.seq) i--;
    list.splice(i, 0, m);
    this.total++;
  }

  private forget(token: string, list: QueuedMessage[]): void {
    this.total--;
    if (list.length === 0) this.byToken.delete(token);
  }

  private freshId(token: string): number {
    const list = this.byToken.get(token) ?? [];
    let id: number;
    do id = randomInt(0x1_0000_0000);
    while (list.some((m) => m.id === id));
    return id;
  }
}
