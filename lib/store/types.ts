// What the client keeps on the device, and the one interface both storage back ends (IndexedDB in the browser,
// the file store in Node) implement. Bytes are Uint8Array; times are unix milliseconds; handles are IDS URIs
// (`mailto:…`, `tel:…`), stored normalised (scheme lower-cased, e-mail addresses lower-cased).
import type { DeviceInfo } from '../ids/device';
import type { TapbackReaction } from '../imessage/tapback';
import type { XhtmlPart } from '../imessage/xhtml';

/** What a store can keep in an opaque slot (kv values, outbox payloads): structured-clone data that JSON can carry too. */
export type StorableValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | CryptoKey
  | readonly StorableValue[]
  | { readonly [key: string]: StorableValue | undefined };

// ---------------------------------------------------------------------------------------------------------------
// accounts

/** An IDS certificate (auth certificate from authenticate*, ID certificate from register) for one user id. */
export interface IdsCredential {
  userId: string;
  /** DER. */
  certificate: Uint8Array;
  /** NotAfter. */
  notAfter: number;
}

export interface PushCredentials {
  /** RSA key of the push certificate; signs the courier's connect nonce. */
  keyPair: CryptoKeyPair;
  /** DER, from albert. */
  certificate: Uint8Array;
  /** 32 bytes, assigned by the courier on the first connect. */
  token?: Uint8Array;
}

/** One signed-in user of this device. */
export interface AccountRecord {
  /** Chosen by the client; stable for the life of the sign-in. */
  id: string;
  /** IDS user ids: the Apple ID's profile id and/or `P:+…` for a phone number. */
  userIds: string[];
  /** The URIs registered on this device. */
  handles: string[];
  appleId?: string;
  profileId?: string;
  phoneNumber?: string;
  /** RSA key whose CSR the auth certificates certify; signs IDS requests. */
  authKey?: CryptoKeyPair;
  authCertificates: IdsCredential[];
  idCertificates: IdsCredential[];
  push?: PushCredentials;
  /** When the IDS registration must be renewed. */
  registrationExpiresAt?: number;
  device?: DeviceInfo;
  createdAt: number;
  updatedAt: number;
}

// ---------------------------------------------------------------------------------------------------------------
// keys

/** The legacy "pair" identity: ECDSA P-256 signing and RSA-OAEP encryption, as CryptoKeys. */
export interface LegacyKeys {
  signing: CryptoKeyPair;
  encryption: CryptoKeyPair;
  /** `public-message-identity-key` blob. */
  blob: Uint8Array;
  /** SHA-256 identity hash pair encryption binds into its MAC. */
  hash: Uint8Array;
}

/** The NGM ("pair-ec") identity; `NgmIdentity` from lib/crypto has exactly this shape. */
export interface NgmKeys {
  deviceKey: CryptoKeyPair;
  prekey: CryptoKeyPair;
  deviceCompact: Uint8Array;
  prekeyCompact: Uint8Array;
  prekeyTimestamp: number;
  publicDevicePrekey: Uint8Array;
  ktLoggableData: Uint8Array;
}

/** An account's message identity keys. In IndexedDB non-extractable keys stay non-extractable. */
export interface IdentityKeys {
  accountId: string;
  legacy?: LegacyKeys;
  ngm?: NgmKeys;
  updatedAt: number;
}

// ---------------------------------------------------------------------------------------------------------------
// devices and security events

/** Hex SHA-256 of each key a device publishes. */
export interface KeyFingerprints {
  /** `public-message-identity-key` (legacy identity). */
  identity?: string;
  /** NGM device key (compact). */
  ngmDevice?: string;
  /** NGM signed prekey data. */
  ngmPrekey?: string;
}

export type KeyPart = keyof KeyFingerprints;

/** One identity of a lookup result, reduced to what the change detection compares. */
export interface DeviceObservation {
  pushToken: Uint8Array;
  identityKey?: Uint8Array;
  ngmDeviceKey?: Uint8Array;
  ngmPrekey?: Uint8Array;
  deviceName?: string;
}

export interface DeviceRecord {
  /** `<handle>\n<token hex>`. */
  id: string;
  handle: string;
  pushToken: Uint8Array;
  fingerprints: KeyFingerprints;
  firstSeen: number;
  lastSeen: number;
  /** False once a lookup no longer lists the token; the record stays so a return is not a "new device". */
  present: boolean;
  /** Set by the user after comparing verification codes; cleared by any key change. */
  verified: boolean;
  deviceName?: string;
  keyChangedAt?: number;
}

export type SecurityEvent =
  | {
      kind: 'new-device';
      handle: string;
      pushToken: Uint8Array;
      /** The handle is one of this user's own: "a new device appeared on your account". */
      own: boolean;
      deviceName?: string;
      at: number;
    }
  | {
      kind: 'key-changed';
      handle: string;
      pushToken: Uint8Array;
      own: boolean;
      /** Which keys differ (appeared, disappeared or replaced). */
      changed: KeyPart[];
      before: KeyFingerprints;
      after: KeyFingerprints;
      /** The user had verified this device; the verification no longer holds. */
      wasVerified: boolean;
      at: number;
    };

// ---------------------------------------------------------------------------------------------------------------
// chats and messages

export interface ChatInit {
  /** The group's `gid`, or `directChatId(participants)` for a 1:1 chat. */
  id: string;
  participants: string[];
  name?: string;
  isGroup?: boolean;
}

export interface LastMessage {
  uuid: string;
  sender: string;
  time: number;
  /** The start of the text (at most 200 characters). */
  preview: string;
}

export interface ChatRecord {
  id: string;
  /** Sorted, normalised. */
  participants: string[];
  name?: string;
  isGroup: boolean;
  lastMessage?: LastMessage;
  unreadCount: number;
  createdAt: number;
  /** The newest message time (or the creation time); chats list newest first by it. */
  updatedAt: number;
}

/** Outgoing: sending → sent (server ack) → delivered → read, or failed. Incoming: delivered, then read. */
export type MessageStatus = 'sending' | 'sent' | 'delivered' | 'read' | 'failed';

export interface TapbackRecord {
  sender: string;
  reaction: TapbackReaction;
  /** message-part index the reaction targets; absent for an app balloon. */
  part?: number;
  emoji?: string;
  time: number;
}

export interface EditRecord {
  part: number;
  text: string;
  time: number;
}

export interface NewMessage {
  /** Hyphenated UUID; stored upper-case, compared case-insensitively. */
  uuid: string;
  chatId: string;
  sender: string;
  fromMe: boolean;
  time: number;
  text?: string;
  parts?: XhtmlPart[];
  /** The thread origin (`r` / `tg`) this message replies to. */
  replyTo?: string;
  /** Default: 'sending' for outgoing, 'delivered' for incoming. */
  status?: MessageStatus;
}

export interface MessageRecord extends NewMessage {
  status: MessageStatus;
  /** One per (sender, part): a newer reaction replaces the older one, a removal deletes it. */
  tapbacks: TapbackRecord[];
  /** Every edit in arrival order; the latest per part is the current text. */
  edits: EditRecord[];
  unsent: boolean;
  /** Parts unsent individually (a whole-message unsend sets `unsent`). */
  unsentParts: number[];
  sentAt?: number;
  deliveredAt?: number;
  readAt?: number;
  /** Why the send failed (from `outbox.fail`). */
  error?: string;
}

/** A position in a chat's (time, uuid) order; any MessageRecord is one. */
export interface MessageCursor {
  time: number;
  uuid: string;
}

export interface SaveResult {
  /** False when the UUID was already stored (the stored message is kept and only its status may advance). */
  saved: boolean;
  message: MessageRecord;
}

// ---------------------------------------------------------------------------------------------------------------
// outbox

export interface NewOutboxItem {
  /** Generated when absent. */
  id?: string;
  /** What to send: 'message', 'receipt', 'tapback', … (the client's vocabulary). */
  kind: string;
  /** The message whose status follows this item (sending → sent on complete, failed on fail). */
  messageUuid?: string;
  chatId?: string;
  payload: StorableValue;
  /** Default: now. */
  nextAttemptAt?: number;
}

export interface OutboxItem {
  id: string;
  kind: string;
  messageUuid?: string;
  chatId?: string;
  payload: StorableValue;
  /** Attempts started (takeDue counts one per item taken). */
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  lastError?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// lookup cache, counters

/** One identity of a lookup answer, as much as sending needs. */
export interface CachedIdentity {
  pushToken: Uint8Array;
  sessionToken: Uint8Array;
  sessionTokenExpiresAt?: number;
  identityKey?: Uint8Array;
  publicDevicePrekey?: Uint8Array;
  ktLoggableData?: Uint8Array;
  ngmPublicIdentity?: Uint8Array;
  deviceName?: string;
}

export interface LookupCacheEntry {
  handle: string;
  identities: CachedIdentity[];
  fetchedAt: number;
  /** After this, use the entry but refresh it. */
  softExpiresAt: number;
  /** After this, the entry is gone. */
  hardExpiresAt: number;
}

export interface CachedLookup {
  entry: LookupCacheEntry;
  /** Past the soft expiry: usable, but look the handle up again. */
  stale: boolean;
}

/** pair-ec counters of one sender→recipient channel (imessage.md §5.5). */
export interface CounterRecord {
  channel: string;
  /** The last counter sent; the first `next` returns 1. */
  lastSent: number;
  /** The highest counter received. */
  lastReceived?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// the interface

export interface AccountsApi {
  /** Inserts or replaces. */
  put(account: AccountRecord): Promise<void>;
  get(id: string): Promise<AccountRecord | undefined>;
  list(): Promise<AccountRecord[]>;
  /** Removes the account and its identity keys; `not-found` if there is none. */
  delete(id: string): Promise<void>;
}

export interface KeysApi {
  /** Inserts or replaces; the account must exist. */
  put(keys: IdentityKeys): Promise<void>;
  get(accountId: string): Promise<IdentityKeys | undefined>;
  /** `not-found` if the account has no keys. */
  delete(accountId: string): Promise<void>;
}

export interface DevicesApi {
  /**
   * Records one lookup answer for a handle and returns what changed: `new-device` for a token never seen for the
   * handle (for own handles: never seen under any own handle, and never this device's own token), `key-changed`
   * for a known token whose keys differ. The first lookup of a handle (of any own handle, for own handles) only
   * sets the baseline.
   */
  recordLookup(handle: string, observed: DeviceObservation[], at?: number): Promise<SecurityEvent[]>;
  /** Devices ever seen for the handle, oldest first. */
  list(handle: string): Promise<DeviceRecord[]>;
  get(handle: string, pushToken: Uint8Array): Promise<DeviceRecord | undefined>;
  setVerified(handle: string, pushToken: Uint8Array, verified: boolean): Promise<DeviceRecord>;
  /** Forgets every device of the handle (the next lookup is a new baseline). */
  forget(handle: string): Promise<void>;
}

export interface ChatsApi {
  /** Creates the chat, or updates its participants and name. */
  upsert(chat: ChatInit, at?: number): Promise<ChatRecord>;
  get(id: string): Promise<ChatRecord | undefined>;
  /** Newest first. */
  list(options?: { limit?: number }): Promise<ChatRecord[]>;
  /** Sets the unread count to 0, marks the unread incoming messages read, and returns their UUIDs (for receipts). */
  markRead(id: string, at?: number): Promise<string[]>;
  totalUnread(): Promise<number>;
  /** Deletes the chat and all its messages. */
  delete(id: string): Promise<void>;
}

export interface MessagesApi {
  has(uuid: string): Promise<boolean>;
  get(uuid: string): Promise<MessageRecord | undefined>;
  /**
   * Messages of a chat in (time, uuid) order: the newest `limit` (default 50) before `before`, or the oldest
   * `limit` after `after`; either way returned oldest first.
   */
  list(chatId: string, options?: { limit?: number; before?: MessageCursor; after?: MessageCursor }): Promise<MessageRecord[]>;
  /**
   * Stores a received message (or one sent from another of the user's devices) unless its UUID is already stored;
   * then the stored message is kept and only its status may advance. Counts as unread when not from me. The chat
   * must exist or be given.
   */
  saveIncoming(message: NewMessage, chat?: ChatInit): Promise<SaveResult>;
  /** Stores a message this device is sending, optionally with its outbox item, in one transaction. */
  saveOutgoing(
    message: NewMessage,
    options?: { chat?: ChatInit; outbox?: NewOutboxItem; at?: number },
  ): Promise<{ message: MessageRecord; outboxItem?: OutboxItem }>;
  /** Advances the status (an older status never overwrites a newer one; failed → sending is a retry). */
  updateStatus(uuid: string, status: MessageStatus, at?: number): Promise<MessageRecord>;
  /** Adds or replaces the sender's reaction on the part; `remove` withdraws it. */
  addTapback(uuid: string, tapback: TapbackRecord & { remove?: boolean }): Promise<MessageRecord>;
  applyEdit(uuid: string, edit: EditRecord): Promise<MessageRecord>;
  /** Unsends one part, or the whole message without `part`. */
  unsend(uuid: string, options?: { part?: number }): Promise<MessageRecord>;
  delete(uuid: string): Promise<void>;
}

export interface OutboxApi {
  enqueue(item: NewOutboxItem, at?: number): Promise<OutboxItem>;
  get(id: string): Promise<OutboxItem | undefined>;
  /** Every pending item, earliest next attempt first. */
  list(): Promise<OutboxItem[]>;
  /**
   * Items due at `now` (earliest first, at most `limit`, default 50), each leased: its attempt count goes up and
   * its next attempt moves `leaseMs` (default 30 s) ahead, so a crash mid-send retries it after the lease.
   */
  takeDue(now: number, options?: { limit?: number; leaseMs?: number }): Promise<OutboxItem[]>;
  /** When the earliest item is due, if any. */
  nextDueAt(): Promise<number | undefined>;
  retry(id: string, nextAttemptAt: number, error?: string): Promise<OutboxItem>;
  /** Sent: removes the item; its message goes from sending to sent. */
  complete(id: string, at?: number): Promise<void>;
  /** Given up: removes the item; its message is marked failed. */
  fail(id: string, error?: string): Promise<void>;
}

export interface LookupCacheApi {
  /** The entry unless missing or past its hard expiry. */
  get(handle: string, now: number): Promise<CachedLookup | undefined>;
  put(entry: LookupCacheEntry): Promise<void>;
  /** Removes the entry if there is one. */
  invalidate(handle: string): Promise<void>;
  clear(): Promise<void>;
  /** Deletes entries past their hard expiry; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

export interface CountersApi {
  /** The next counter to send on the channel (1, 2, …), persisted before it is returned. */
  next(channel: string): Promise<number>;
  /** Records a received counter; 'regression' when it is not above the highest seen (log it, do not drop). */
  observe(channel: string, counter: number): Promise<'ok' | 'regression'>;
  get(channel: string): Promise<CounterRecord | undefined>;
}

export interface KvApi {
  get(key: string): Promise<StorableValue | undefined>;
  set(key: string, value: StorableValue): Promise<void>;
  /** Removes the setting if there is one. */
  delete(key: string): Promise<void>;
  keys(): Promise<string[]>;
}

export interface ClientStore {
  /** The schema version of the open storage. */
  readonly schemaVersion: number;
  readonly accounts: AccountsApi;
  readonly keys: KeysApi;
  readonly devices: DevicesApi;
  readonly chats: ChatsApi;
  readonly messages: MessagesApi;
  readonly outbox: OutboxApi;
  readonly lookupCache: LookupCacheApi;
  readonly counters: CountersApi;
  readonly kv: KvApi;
  /** Releases the storage; every later call fails with `closed`. */
  close(): Promise<void>;
  /** Wipes everything (sign out) and closes. */
  destroy(): Promise<void>;
}
