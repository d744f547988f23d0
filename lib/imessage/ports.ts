// What the messaging engine (sender.ts, receiver.ts) needs from the rest of the client, as small interfaces: the
// courier, the IDS lookup cache, and two bits of persistent state. The engine never sees a socket, an HTTP request or
// a database, so it runs the same against the real client, the sandbox and the in-memory test network.
import type { PlistDict } from '../codec/plist';
import type { LegacyIdentity, LegacyPublicIdentity } from '../crypto/identity-legacy';
import type { NgmIdentity, NgmPublicIdentity } from '../crypto/identity-ngm';

/** Topic of iMessage sends and notifications (imessage.md §1.1). */
export const MADRID_TOPIC = 'com.apple.madrid';
/** Topic of the IDS control notices (JSON, ids.md §7.4). */
export const IDS_CONTROL_TOPIC = 'com.apple.private.ids';

/** Upstream courier sends; resolves once the courier accepted the frame (its 0x0B ack). */
export interface MessageTransport {
  /** `messageId` is the envelope's `i`, which the courier frame should carry as its id too (§1.2). */
  send(topic: string, payload: Uint8Array, messageId?: number): Promise<void>;
}

/**
 * One device of a looked-up handle with its keys already imported (peer-identity.ts makes these; the directory
 * parses each lookup result once and caches the result).
 */
export interface PeerIdentity {
  /** The handle that was looked up (the `tP` a send uses). */
  uri: string;
  pushToken: Uint8Array;
  /** Bound by the server to (querying handle, this handle, this token). */
  sessionToken: Uint8Array;
  /** pair keys (client-data `public-message-identity-key`). */
  legacy?: LegacyPublicIdentity;
  /** pair-ec keys (prekey + device key), present only when the prekey signature verified. */
  ngm?: NgmPublicIdentity;
  clientData: PlistDict;
}

/** IDS lookups, cached per (own handle, their handle) (ids.md §7.3). */
export interface IdentityDirectory {
  /** Identities per handle as queried; a handle that is not on iMessage maps to []. `force` bypasses the cache. */
  lookup(selfUri: string, handles: string[], opts?: { force?: boolean }): Promise<Map<string, PeerIdentity[]>>;
  /** Drops every cached result for `handle`, whoever looked it up. */
  invalidate(handle: string): void;
}

/** Outgoing pair-ec counters, per (own device key, their device key, their prekey) (imessage.md §5.5). */
export interface CounterStore {
  next(ownDevice: Uint8Array, peerDevice: Uint8Array, peerPrekey: Uint8Array): Promise<number>;
}

/** Notifications already processed, by (message UUID string, sending device token). */
export interface SeenStore {
  seen(uuid: string, token: Uint8Array): Promise<boolean>;
  remember(uuid: string, token: Uint8Array): Promise<void>;
}

/** Structured log lines: metadata only (commands, UUIDs, token prefixes, error codes), never content. */
export interface EngineLog {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
}

export const silentEngineLog: EngineLog = { info() {}, warn() {} };

/** This device: its push token, registered handles and private keys. */
export interface LocalDevice {
  pushToken: Uint8Array;
  /** Every handle this device is registered with. */
  handles: string[];
  legacy: LegacyIdentity;
  /** Absent on a device that registered without NGM keys: it sends and receives pair only. */
  ngm?: NgmIdentity;
  /** `ua`, e.g. `[macOS,14.2,23C64,MacBookPro18,3]`. */
  userAgent: string;
}

/** Handles compare case-insensitively for e-mail addresses (ids.md conventions); phone URIs are exact. */
export function handleKey(uri: string): string {
  return /^mailto:/i.test(uri) ? uri.toLowerCase() : uri;
}

export function sameHandle(a: string, b: string): boolean {
  return handleKey(a) === handleKey(b);
}

export function isOwnHandle(device: LocalDevice, uri: string): boolean {
  return device.handles.some((h) => sameHandle(h, uri));
}

/** The identities a lookup returned for `uri`, tolerating a directory that normalised the key's case. */
export function identitiesFor(result: Map<string, PeerIdentity[]>, uri: string): PeerIdentity[] {
  const exact = result.get(uri);
  if (exact) return exact;
  for (const [key, identities] of result) if (sameHandle(key, uri)) return identities;
  return [];
}
