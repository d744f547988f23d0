// What the courier is handed by the sandbox, and what it hands to the services behind it. Narrow on purpose: the
// courier is tested alone with an in-memory store and a test CA, and plugged into the real sandbox later.
import type { KeyObject } from 'node:crypto';
import type { Clock, Log } from '../context';

/** Durable key-value tables of JSON-serializable values; put/delete resolve once the change is durable. */
export interface CourierStore {
  get<T>(table: string, key: string): T | undefined;
  put(table: string, key: string, value: unknown): Promise<void>;
  delete(table: string, key: string): Promise<void>;
  entries<T>(table: string): Iterable<[string, T]>;
}

export interface VerifiedPushCertificate {
  publicKey: KeyObject;
  serial: string;
}

export interface CourierDeps {
  clock: Clock;
  log: Log;
  /** Checks a DER push certificate was issued by the sandbox's albert CA; its public key, or null. */
  verifyPushCertificate(der: Uint8Array): Promise<VerifiedPushCertificate | null>;
  store: CourierStore;
}

/** One upstream 0x0A frame, after the courier has acked it. */
export interface UpstreamMessage {
  /** The topic name the backend was registered under. */
  topic: string;
  topicHash: Uint8Array;
  /** The authenticated base token of the sending connection (not whatever the client put in item 2). */
  senderToken: Uint8Array;
  /** Legacy payload bytes (a packed-mode plist tree arrives here as a binary plist). */
  payload: Uint8Array;
  /** The client's 4-byte message id. */
  messageId: Uint8Array;
}

export interface UpstreamReply {
  /** Queues a notification on the same topic for the sender's token (stored if it goes offline meanwhile). */
  toSender(payload: Uint8Array): Promise<void>;
}

/** A service behind a topic (IDS / iMessage for com.apple.madrid): c:96 lookups, fan-out, … */
export interface TopicBackend {
  handleUpstream(msg: UpstreamMessage, reply: UpstreamReply): Promise<void>;
}
