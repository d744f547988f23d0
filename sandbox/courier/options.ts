// Tuning and fault injection for the courier. Defaults follow what Apple advertises or what clients tolerate
// (apns.md §3.2, §6); the fault switches are the controls apns.md §8.12 asks for.
import { CeruleanError } from '../../lib/errors';

export interface CourierOptions {
  /** Accepted distance between a Connect nonce's time and the clock (the real window is unknown). */
  nonceWindowMs?: number;
  /** Send 0x08 item 3 also when the offered token is accepted (Apple may or may not; clients handle both). */
  echoAcceptedToken?: boolean;
  /** 0x08 item 4. */
  maxMessageSize?: number;
  /** 0x08 item 8; also the limit on an upstream payload (larger ones are acked with status 3). */
  largeMessageSize?: number;
  /** 0x08 item 6 bit field; the emulator implements none of the optional features. */
  capabilities?: number;
  /** Largest frame body read from a client; a frame declaring more closes the connection. */
  maxFrameLength?: number;
  /** A delivered notification not acked within this is sent again. */
  ackTimeoutMs?: number;
  /** A connection that has not completed a Connect within this is closed. */
  connectTimeoutMs?: number;
  /** A connection that sends no frame for this long is closed. */
  idleTimeoutMs?: number;
  /** How long a notification waits for an offline token unless the caller gives an expiry. */
  storageTtlMs?: number;
  /** Notifications sent to one connection and not yet acked; the rest wait their turn. */
  maxInFlight?: number;
  /** A connection with more deliverable notifications queued than this while one is overdue for its ack is closed. */
  maxUnackedBacklog?: number;
  /** Queued notifications per token; deliveries beyond it are refused. */
  maxStoredPerToken?: number;
  /** Answer upstream messages sent before the first 0x09 / 0x14 with ack status 0x80 ("too early"). */
  ackTooEarly?: boolean;
  /** Period of the timer that runs tick(); 0 leaves it to the caller (tests with a FakeClock). */
  sweepIntervalMs?: number;
}

export type ResolvedCourierOptions = Required<CourierOptions>;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;

export const DEFAULT_COURIER_OPTIONS: Readonly<ResolvedCourierOptions> = Object.freeze({
  nonceWindowMs: 5 * MINUTE,
  echoAcceptedToken: false,
  maxMessageSize: 4096,
  largeMessageSize: 15360,
  capabilities: 0,
  maxFrameLength: 64 * 1024,
  ackTimeoutMs: 30 * SECOND,
  connectTimeoutMs: 30 * SECOND,
  // Above every known client keep-alive period (pypush's 300 s is the longest).
  idleTimeoutMs: 10 * MINUTE,
  // Apple's messaging servers keep messages for offline devices up to 30 days.
  storageTtlMs: 30 * DAY,
  maxInFlight: 100,
  maxUnackedBacklog: 1000,
  maxStoredPerToken: 10_000,
  ackTooEarly: false,
  sweepIntervalMs: SECOND,
});

export function resolveCourierOptions(opts: CourierOptions = {}): ResolvedCourierOptions {
  const out = { ...DEFAULT_COURIER_OPTIONS } as ResolvedCourierOptions;
  for (const [k, v] of Object.entries(opts) as [keyof CourierOptions, unknown][]) {
    if (v === undefined) continue;
    const fallback = DEFAULT_COURIER_OPTIONS[k];
    if (typeof fallback === 'boolean') {
      if (typeof v !== 'boolean') throw new CeruleanError('bad-option', `${k} must be a boolean`);
    } else if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new CeruleanError('bad-option', `${k} must be a non-negative integer`);
    }
    (out as unknown as Record<string, unknown>)[k] = v;
  }
  if (out.maxMessageSize > 0xffff || out.largeMessageSize > 0xffff || out.capabilities > 0xffffffff) {
    throw new CeruleanError('bad-option', 'message sizes are u16 and capabilities a u32 on the wire');
  }
  return out;
}

/** Switches a test flips to make the courier misbehave the way Apple's can. */
export interface CourierFaults {
  /** Answer every Connect with this status (2 = rejected) and, if given, 0x08 item 9 redirect reason; then close. */
  connect?: { status: number; redirectReason?: string };
  /** Ack every upstream 0x0A with this status (3 = too large, 0x80 = too early) instead of routing it. */
  upstreamAckStatus?: number;
}
