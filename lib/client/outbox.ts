// Outgoing work that must survive reloads and restarts: every message, tapback, edit, unsend, read receipt and
// group change is an item in the store's outbox, sent by one loop, one item at a time in the order queued. An item
// is leased while it is being sent (a crash mid-send retries it once the lease runs out), then completed (its
// message becomes 'sent'), retried later with back-off, or failed for good. Resending is safe: the message UUID is
// fixed per item, so the server drops repeats within its window and receivers drop what they have already seen.
import type { EngineLog } from '../imessage/ports';
import type { ClientStore, NewOutboxItem, OutboxItem } from '../store/types';
import { describe } from './events';

export type OutboxOutcome = { kind: 'done' } | { kind: 'retry'; error: string } | { kind: 'fail'; error: string };

export interface OutboxDeps {
  store: ClientStore;
  now(): number;
  log: EngineLog;
  /** Sends one item; throwing counts as a retryable failure. */
  perform(item: OutboxItem): Promise<OutboxOutcome>;
  /** False while sending cannot work (not registered); the loop waits for a kick. */
  ready(): boolean;
  /** After an item left the outbox, sent or given up. */
  finished(item: OutboxItem, outcome: 'sent' | 'failed'): Promise<void>;
  retryMs?: number;
  maxRetryMs?: number;
  maxAttempts?: number;
  /** How long a send may take before a crashed attempt is retried. */
  leaseMs?: number;
}

const DEFAULT_RETRY_MS = 2_000;
const DEFAULT_MAX_RETRY_MS = 5 * 60_000;
const DEFAULT_MAX_ATTEMPTS = 12;
const DEFAULT_LEASE_MS = 2 * 60_000;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 0x7fffffff;
const STOPPED = Symbol('stopped');

export class Outbox {
  private running: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private again = false;
  private lastSlot = 0;
  private stopSignal!: () => void;
  private stopping: Promise<typeof STOPPED> = this.newStopping();

  constructor(private readonly d: OutboxDeps) {}

  /** A due time after every earlier one, so items leave in the order they were queued. */
  slot(): number {
    this.lastSlot = Math.max(this.lastSlot + 1, this.d.now());
    return this.lastSlot;
  }

  async enqueue(item: Omit<NewOutboxItem, 'nextAttemptAt'>): Promise<OutboxItem> {
    const queued = await this.d.store.outbox.enqueue({ ...item, nextAttemptAt: this.slot() }, this.d.now());
    this.kick();
    return queued;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopping = this.newStopping();
    this.kick();
  }

  /** Abandons a send in progress (its item is retried at the next start) and waits for the loop to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal();
    this.clearTimer();
    await this.running;
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.clearTimer();
    this.again = false;
    this.running = this.run()
      .catch((e: unknown) => this.d.log.warn('client.outbox-loop-failed', { error: describe(e) }))
      .finally(() => {
        this.running = undefined;
        if (this.again) this.kick();
      });
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.d.ready()) {
      const now = this.d.now();
      const [item] = await this.d.store.outbox.takeDue(now, { limit: 1, leaseMs: this.d.leaseMs ?? DEFAULT_LEASE_MS });
      if (!item) {
        await this.scheduleNext();
        return;
      }
      const outcome = await Promise.race([this.attempt(item), this.stopping]);
      if (outcome === STOPPED) {
        // Sent or not, it goes again first thing next time (repeats are harmless).
        await this.d.store.outbox.retry(item.id, this.d.now());
        return;
      }
      await this.settle(item, outcome);
    }
  }

  private async attempt(item: OutboxItem): Promise<OutboxOutcome> {
    try {
      return await this.d.perform(item);
    } catch (e) {
      return { kind: 'retry', error: describe(e) };
    }
  }

  private async settle(item: OutboxItem, outcome: OutboxOutcome): Promise<void> {
    const maxAttempts = this.d.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    if (outcome.kind === 'done') {
      await this.d.store.outbox.complete(item.id, this.d.now());
      await this.d.finished(item, 'sent');
    } else if (outcome.kind === 'fail' || item.attempts >= maxAttempts) {
      this.d.log.warn('client.outbox-failed', { kind: item.kind, attempts: item.attempts, error: outcome.error });
      await this.d.store.outbox.fail(item.id, outcome.error);
      await this.d.finished(item, 'failed');
    } else {
      const base = this.d.retryMs ?? DEFAULT_RETRY_MS;
      const delay = Math.min(this.d.maxRetryMs ?? DEFAULT_MAX_RETRY_MS, base * 2 ** Math.min(item.attempts - 1, 30));
      this.d.log.info('client.outbox-retry', { kind: item.kind, attempts: item.attempts, delayMs: delay, error: outcome.error });
      await this.d.store.outbox.retry(item.id, this.d.now() + delay, outcome.error);
    }
  }

  private async scheduleNext(): Promise<void> {
    const due = await this.d.store.outbox.nextDueAt();
    if (due === undefined || this.stopped) return;
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, Math.min(MAX_TIMER_MS, Math.max(0, due - this.d.now())));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private newStopping(): Promise<typeof STOPPED> {
    return new Promise((resolve) => (this.stopSignal = () => resolve(STOPPED)));
  }
}
