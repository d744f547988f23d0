// The Web Push payload the push watcher sends, and nothing more: it says *that* the device has something waiting
// at the courier, never what. The service worker parses it, fetches and decrypts the messages itself, then tells
// the watcher it drained. Kept here so the watcher and the service worker agree on one shape.
import { DecodeError } from '../errors';

export interface WakePayload {
  type: 'wake';
  /** The enrollment whose device has notifications waiting. */
  enrollment: string;
  /** When the watcher saw the notification, Unix ms. */
  at: number;
}

/** A push payload is small; anything larger is not ours. */
const MAX_PAYLOAD_CHARS = 512;

export function encodeWake(wake: WakePayload): string {
  return JSON.stringify({ type: 'wake', enrollment: wake.enrollment, at: wake.at });
}

/** Parses a push's text (PushMessageData.text()); DecodeError 'bad-wake' when it is not a wake-up. */
export function parseWake(text: string): WakePayload {
  if (typeof text !== 'string' || text.length > MAX_PAYLOAD_CHARS) throw new DecodeError('bad-wake', 'not a wake-up payload');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new DecodeError('bad-wake', 'a wake-up payload is JSON');
  }
  const o = v as Partial<Record<keyof WakePayload, unknown>> | null;
  if (
    typeof o !== 'object' || o === null || Array.isArray(o) ||
    o.type !== 'wake' ||
    typeof o.enrollment !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.enrollment) ||
    typeof o.at !== 'number' || !Number.isSafeInteger(o.at) || o.at < 0
  ) {
    throw new DecodeError('bad-wake', 'not a wake-up payload');
  }
  return { type: 'wake', enrollment: o.enrollment, at: o.at };
}
