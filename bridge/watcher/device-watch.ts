// One enrolled device: a courier connection with the device's own push credentials, filtered to the iMessage topic,
// and what happens around it.
//
//   connecting ──connected──▶ watching ──notification──▶ woken ──/drained──▶ connecting
//        ▲                                                  │
//        └──────────────── resumeAt passed ◀────────────────┘   (also from paused; /pause from any state)
//
// A notification is never acknowledged: the watcher only learns *that* something arrived. It leaves the courier at
// once — the notification stays queued there for the device — and the owner sends the Web Push. The device's
// service worker then connects with the same credentials (the courier allows one connection per token), drains,
// acks, and reports /drained, and watching resumes. If /drained never comes, watching resumes after the drain
// timeout, doubled for every wake-up nobody answered, up to a ceiling: a device that cannot drain is not woken
// over and over. A page that is open holds the courier connection itself and asks for a pause meanwhile, so the
// two do not take the connection from each other.
import { CourierClient, type CourierStream } from '../../lib/apns/courier-client';
import type { ApnsError } from '../../lib/apns/errors';
import { MADRID_TOPIC } from '../../lib/imessage/ports';
import type { AwayFields } from './db';

export type WatchState = 'connecting' | 'watching' | 'woken' | 'paused' | 'stopped';

/** iMessage arrives on com.apple.madrid; the other topics (IDS control, …) can wait for the device's next visit. */
export const WAKE_TOPICS: readonly string[] = [MADRID_TOPIC];

export interface WatchCredentials {
  /** Imported from the enrollment's PKCS#8, non-extractable. */
  readonly privateKey: CryptoKey;
  readonly certificate: Uint8Array;
  token: Uint8Array;
}

export interface WatchTiming {
  readonly drainTimeoutMs: number;
  readonly maxAwayMs: number;
  readonly keepAliveMs: number;
  readonly connectTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}

export interface WatchHooks {
  /** Opens a TLS connection to the enrollment's courier host. */
  readonly connect: () => Promise<CourierStream>;
  /** The device must be woken: send the Web Push. `at` is when the notification arrived (Unix ms). */
  wake(watch: DeviceWatch, at: number): void;
  /** The courier issued another token: store it. */
  tokenChanged(watch: DeviceWatch, token: Uint8Array): Promise<void>;
  /** The away fields changed: store them (a restart continues where this left off). */
  persist(watch: DeviceWatch, away: AwayFields): void;
  /** A state change worth a log line or a metric. */
  event(watch: DeviceWatch, event: WatchEvent): void;
}

export type WatchEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly error: string }
  | { readonly type: 'stopped'; readonly error: string }
  | { readonly type: 'resumed'; readonly reason: 'drained' | 'timeout' };

export interface WatchStatus {
  state: WatchState;
  /** Whether the watcher's last attempt to reach the courier with this device's credentials succeeded. */
  reachable: boolean;
  /** While woken or paused: when watching resumes by itself (Unix ms). */
  resumeAt?: number;
  lastWakeAt?: number;
  wakes: number;
  /** Why the courier was last unreachable (an ApnsError code). */
  error?: string;
}

/** Thrown from the notification handler so the courier client leaves the notification unacknowledged. */
const HOLD = new Error('left for the device to fetch');

export class DeviceWatch {
  private current: WatchState = 'connecting';
  private client: CourierClient | undefined;
  private resumeTimer: ReturnType<typeof setTimeout> | undefined;
  private reachable = false;
  private lastError: string | undefined;
  private closed = false;

  constructor(
    readonly id: string,
    private readonly credentials: WatchCredentials,
    private away: AwayFields,
    private readonly hooks: WatchHooks,
    private readonly timing: WatchTiming,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): WatchState {
    return this.current;
  }

  get token(): Uint8Array {
    return this.credentials.token;
  }

  /** Watches now, or stays away until a stored resumeAt (after a restart mid-wake-up or mid-pause). */
  start(): void {
    const { resumeAt, awayReason } = this.away;
    if (resumeAt !== null && awayReason !== null && resumeAt > this.now()) {
      this.current = awayReason;
      this.scheduleResume(resumeAt);
    } else {
      if (resumeAt !== null) this.setAway({ resumeAt: null, awayReason: null });
      this.connect();
    }
  }

  /** The device fetched what was waiting: forget the unanswered wake-ups and watch again now. */
  drained(): void {
    if (this.closed || this.current === 'stopped') return;
    const wasAway = this.current === 'woken' || this.current === 'paused';
    this.setAway({ resumeAt: null, awayReason: null, unansweredWakes: 0 });
    if (wasAway) {
      this.clearResume();
      this.hooks.event(this, { type: 'resumed', reason: 'drained' });
      this.connect();
    }
  }

  /** The device holds the courier connection itself for `ms`: stay off it until then (renewable). */
  pause(ms: number): void {
    if (this.closed || this.current === 'stopped') return;
    const resumeAt = this.now() + ms;
    this.setAway({ resumeAt, awayReason: 'paused' });
    this.leaveCourier();
    this.current = 'paused';
    this.scheduleResume(resumeAt);
  }

  status(): WatchStatus {
    return {
      state: this.current,
      reachable: this.reachable,
      ...(this.away.resumeAt !== null ? { resumeAt: this.away.resumeAt } : {}),
      ...(this.away.lastWakeAt !== null ? { lastWakeAt: this.away.lastWakeAt } : {}),
      wakes: this.away.wakes,
      ...(this.lastError !== undefined ? { error: this.lastError } : {}),
    };
  }

  /** Stops for good (unenroll, replacement, shutdown); what the courier holds stays there. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearResume();
    const client = this.client;
    this.client = undefined;
    await client?.close();
  }

  private connect(): void {
    if (this.closed) return;
    this.current = 'connecting';
    const t = this.timing;
    const client: CourierClient = new CourierClient({
      connect: this.hooks.connect,
      credentials: { privateKey: this.credentials.privateKey, certificate: this.credentials.certificate },
      token: this.credentials.token,
      onToken: (token) => this.tokenIssued(token),
      topics: WAKE_TOPICS,
      onNotification: () => this.notified(client),
      // Spread over ±10 %, so thousands of idle connections do not all send their keep-alive in the same second.
      keepAliveMs: Math.round(t.keepAliveMs * (0.9 + Math.random() * 0.2)),
      connectTimeoutMs: t.connectTimeoutMs,
      backoff: { initialMs: t.backoffInitialMs, maxMs: t.backoffMaxMs },
    });
    client.on('connected', () => {
      if (this.client !== client) return;
      this.current = 'watching';
      this.reachable = true;
      this.lastError = undefined;
      this.hooks.event(this, { type: 'connected' });
    });
    client.on('disconnected', (e) => {
      if (this.client !== client || e.retryInMs === undefined) return;
      // Also what it looks like when the device connects itself (the courier drops the older connection).
      if (this.current === 'watching') this.current = 'connecting';
      if (e.error) {
        this.reachable = false;
        this.lastError = e.error.code;
        this.hooks.event(this, { type: 'disconnected', error: e.error.code });
      }
    });
    client.on('error', (e: ApnsError) => {
      if (this.client !== client || e.cause === HOLD) return;
      if (e.code === 'certificate-rejected') {
        // Nothing can succeed with this certificate; the device must activate again and re-enroll.
        this.client = undefined;
        this.current = 'stopped';
        this.reachable = false;
        this.lastError = e.code;
        this.hooks.event(this, { type: 'stopped', error: e.code });
      }
    });
    this.client = client;
    client.start();
  }

  private notified(client: CourierClient): never {
    if (this.client === client && !this.closed) this.wake();
    throw HOLD;
  }

  private wake(): void {
    const at = this.now();
    const unanswered = this.away.unansweredWakes + 1;
    const awayMs = Math.min(this.timing.maxAwayMs, this.timing.drainTimeoutMs * 2 ** Math.min(unanswered - 1, 30));
    this.setAway({ resumeAt: at + awayMs, awayReason: 'woken', wakes: this.away.wakes + 1, unansweredWakes: unanswered, lastWakeAt: at });
    this.leaveCourier();
    this.current = 'woken';
    this.scheduleResume(at + awayMs);
    this.hooks.wake(this, at);
  }

  /** Closes the courier client; called from inside its handler too, where close() completes once the handler threw. */
  private leaveCourier(): void {
    const client = this.client;
    this.client = undefined;
    void client?.close();
  }

  private async tokenIssued(token: Uint8Array): Promise<void> {
    this.credentials.token = token.slice();
    await this.hooks.tokenChanged(this, token);
  }

  private setAway(change: Partial<AwayFields>): void {
    this.away = { ...this.away, ...change };
    this.hooks.persist(this, this.away);
  }

  private scheduleResume(at: number): void {
    this.clearResume();
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      if (this.closed || (this.current !== 'woken' && this.current !== 'paused')) return;
      this.setAway({ resumeAt: null, awayReason: null });
      this.hooks.event(this, { type: 'resumed', reason: 'timeout' });
      this.connect();
    }, Math.max(0, at - this.now()));
  }

  private clearResume(): void {
    if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
  }
}
