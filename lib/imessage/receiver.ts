// Incoming notifications (imessage.md §1.6, §2, §7, §9): route server acks and lookup replies, find the sending
// device's published keys by (sP looked up from tP, push-token == t), drop repeats, verify and decrypt by `E`,
// parse the payload by command into an InboundEvent, and answer D=true messages with a delivery receipt.
//
// Processing is two-phase so nothing is lost: handleNotification() returns the events; the caller stores them, then
// calls commit() (which remembers the notification as seen and sends the delivery receipt, §7.1 "after
// decrypt/storage"), and only then acks the courier. A crash in between means the notification comes again and is
// processed again, never that it is marked seen but not stored.
// Bad input of any kind becomes an event (malformed / undecryptable / unsupported-encryption), never an exception;
// only failures of the ports themselves (store, directory) propagate, so the caller leaves the notification
// un-acked and gets it again.
import { equalBytes, fromUtf8, toHex } from '../codec/bytes';
import { setPlistKey, type PlistDict } from '../codec/plist';
import { pairEcDecrypt } from '../crypto/pair-ec';
import { pairDecrypt } from '../crypto/pair';
import { CeruleanError, CryptoError, DecodeError } from '../errors';
import { Command } from './commands';
import { parseEdit, type EditPayload, type UnsendPayload } from './edit';
import {
  decodeEnvelopeDict,
  parseIncoming,
  parseServerAck,
  readCommand,
  uuidToString,
  type Encryption,
  type IncomingNotification,
} from './envelope';
import { FieldReader } from './fields';
import { parseGroupChange, type GroupChange } from './group';
import { parseTextMessage, type TextMessage } from './message';
import { decodePayload } from './payload';
import {
  IDS_CONTROL_TOPIC,
  identitiesFor,
  isOwnHandle,
  MADRID_TOPIC,
  silentEngineLog,
  type EngineLog,
  type IdentityDirectory,
  type LocalDevice,
  type PeerIdentity,
  type SeenStore,
} from './ports';
import type { MessageSender } from './sender';
import { isTapback, parseTapback, type Tapback } from './tapback';
import { classifyTyping, parseTypingPayload, type TypingPayload } from './typing';

/** SMS relay rides the same envelopes on its own topic (§1.1). */
export const SMS_TOPIC = 'com.apple.private.alloy.sms';
/** c:120 reason meaning "your pair-ec keys for me are stale" ([RP]). */
const STALE_KEYS_REASON = 'ec-com.apple.messageprotection-802';

/** What every event about one notification carries. */
export interface InboundMeta {
  command: number;
  /** U, upper-case UUID string: the message's own, or for receipts the acknowledged message's. */
  uuid: string;
  /** sP */
  senderUri: string;
  /** tP: which of this device's handles was addressed. */
  targetUri: string;
  /** t: the sending device. */
  senderToken: Uint8Array;
  /** e: server time, ns since 1970. */
  timestampNs: bigint;
  /** Sent by another device of this account (a sent copy, or a read-state sync). */
  fromSelf: boolean;
  encryption?: Encryption;
}

export type InboundEvent =
  | { kind: 'message'; meta: InboundMeta; message: TextMessage }
  | { kind: 'tapback'; meta: InboundMeta; tapback: Tapback }
  | { kind: 'edit'; meta: InboundMeta; edit: EditPayload }
  | { kind: 'unsend'; meta: InboundMeta; unsend: UnsendPayload }
  | { kind: 'typing'; meta: InboundMeta; typing: boolean; payload?: TypingPayload }
  /** meta.uuid was delivered to the device meta.senderToken of meta.senderUri. */
  | { kind: 'delivery-receipt'; meta: InboundMeta }
  /** meta.senderUri read everything up to meta.uuid. */
  | { kind: 'read-receipt'; meta: InboundMeta }
  | { kind: 'group-change'; meta: InboundMeta; change: GroupChange }
  /** The peer's keys or devices changed; its cached lookups are already dropped. */
  | { kind: 'peer-cache-invalidate'; meta: InboundMeta }
  /** c:120: a peer device could not process message `failedUuid`. */
  | { kind: 'delivery-failure'; meta: InboundMeta; failedUuid?: string; reason?: number; reasonText?: string }
  /** A command this engine does not model, with its decrypted payload if it had one. */
  | { kind: 'other'; meta: InboundMeta; payload?: PlistDict }
  /** Sender device unknown, keys missing, signature/MAC/validator failure: `code` says which. No receipt is sent. */
  | { kind: 'undecryptable'; meta: InboundMeta; code: string }
  | { kind: 'unsupported-encryption'; meta: InboundMeta; encryption: string }
  /** The notification or its decrypted payload does not parse. */
  | { kind: 'malformed'; topic: string; code: string; meta?: InboundMeta }
  /** IDS control notices (ids.md §7.4); c:34 has already invalidated the lookups of own handles. */
  | { kind: 'devices-changed' }
  | { kind: 'handles-changed' }
  | { kind: 'reregister' };

export interface ReceivedNotification {
  events: InboundEvent[];
  /** Call after storing the events: marks the notification seen and sends its delivery receipt if one is due. */
  commit(): Promise<void>;
}

export interface ReceiverOptions {
  device: LocalDevice;
  directory: IdentityDirectory;
  seen: SeenStore;
  /** Gets the c:255 acks and sends the delivery receipts. */
  sender: Pick<MessageSender, 'handleServerAck' | 'sendDeliveryReceipt'>;
  /** Gets c:97 lookup replies (the IDS client matches them by U). */
  onLookupReply?: (reply: PlistDict) => void;
  log?: EngineLog;
  /** Cap on a gunzipped payload. */
  maxInflatedBytes?: number;
}

/**
 * Receipts share their U with the message they acknowledge (and a device sends both a c:101 and a c:102 for it), and
 * acting on one twice is harmless, so only other commands are de-duplicated by (U, t).
 */
const NOT_DEDUPLICATED: ReadonlySet<number> = new Set([Command.DeliveryReceipt, Command.ReadReceipt]);

const nothing: ReceivedNotification = { events: [], commit: async () => {} };
const only = (event: InboundEvent): ReceivedNotification => ({ events: [event], commit: async () => {} });

/** The payload, and the identity that verified it (fresher than the first one after a re-lookup). */
type Decrypted = { dict: PlistDict; from: PeerIdentity } | { failure: InboundEvent };

export class MessageReceiver {
  private readonly device: LocalDevice;
  private readonly directory: IdentityDirectory;
  private readonly seen: SeenStore;
  private readonly sender: ReceiverOptions['sender'];
  private readonly onLookupReply?: (reply: PlistDict) => void;
  private readonly log: EngineLog;
  private readonly maxInflatedBytes?: number;

  constructor(o: ReceiverOptions) {
    this.device = o.device;
    this.directory = o.directory;
    this.seen = o.seen;
    this.sender = o.sender;
    this.onLookupReply = o.onLookupReply;
    this.log = o.log ?? silentEngineLog;
    this.maxInflatedBytes = o.maxInflatedBytes;
  }

  async handleNotification(topic: string, payload: Uint8Array): Promise<ReceivedNotification> {
    if (topic === IDS_CONTROL_TOPIC) return this.control(payload);
    if (topic !== MADRID_TOPIC && topic !== SMS_TOPIC) {
      this.log.info('imessage.topic-ignored', { topic });
      return nothing;
    }
    let dict: PlistDict;
    let command: number;
    try {
      dict = decodeEnvelopeDict(payload);
      command = readCommand(dict);
      if (command === Command.ServerAck) {
        this.sender.handleServerAck(parseServerAck(dict));
        return nothing;
      }
    } catch (e) {
      return only(this.malformed(topic, e));
    }
    if (command === Command.HttpResponse) {
      this.onLookupReply?.(dict);
      return nothing;
    }
    const scheme = dict['E'];
    if (typeof scheme === 'string' && scheme !== 'pair' && scheme !== 'pair-ec') {
      return this.unsupported(topic, dict, scheme);
    }
    let incoming: IncomingNotification;
    try {
      incoming = parseIncoming(dict);
    } catch (e) {
      return only(this.malformed(topic, e));
    }
    return this.receive(topic, incoming);
  }

  private async receive(topic: string, n: IncomingNotification): Promise<ReceivedNotification> {
    const meta = this.metaOf(n);
    if (!isOwnHandle(this.device, n.targetUri)) {
      // A lookup "from" a handle that is not ours cannot be made, and the server never addresses one.
      return only({ kind: 'malformed', topic, code: 'not-my-handle', meta });
    }
    const deduplicate = !NOT_DEDUPLICATED.has(n.command);
    if (deduplicate && (await this.seen.seen(meta.uuid, n.senderToken))) {
      this.log.info('imessage.duplicate', { c: n.command, U: meta.uuid, from: toHex(n.senderToken.subarray(0, 8)) });
      return nothing;
    }
    const remember = async () => {
      if (deduplicate) await this.seen.remember(meta.uuid, n.senderToken);
    };

    // Keys are needed to decrypt, and the session token to answer with a receipt.
    let from: PeerIdentity | undefined;
    let forced = false;
    if (n.payload !== undefined || n.deliveryReceipt === true) {
      from = await this.findSender(n, false);
      if (!from) {
        forced = true;
        from = await this.findSender(n, true);
      }
      if (!from) return { events: [this.undecryptable(meta, 'unknown-sender-device')], commit: remember };
    }

    let dict: PlistDict | undefined;
    if (n.payload !== undefined && from) {
      const decrypted = await this.decrypt(n, meta, n.payload, from, forced);
      if ('failure' in decrypted) return { events: [decrypted.failure], commit: remember };
      ({ dict, from } = decrypted);
    }

    let event: InboundEvent;
    try {
      event = this.interpret(n, meta, dict);
    } catch (e) {
      return { events: [this.malformed(topic, e, meta)], commit: remember };
    }
    const sendReceipt = n.deliveryReceipt === true && !meta.fromSelf ? from : undefined;
    return {
      events: [event],
      commit: async () => {
        await remember();
        if (sendReceipt) await this.deliveryReceipt(n, meta, sendReceipt);
      },
    };
  }

  /** The identity of `sP` (looked up from `tP`) whose push token is the incoming `t`. */
  private async findSender(n: IncomingNotification, force: boolean): Promise<PeerIdentity | undefined> {
    const found = await this.directory.lookup(n.targetUri, [n.senderUri], force ? { force: true } : undefined);
    return identitiesFor(found, n.senderUri).find((identity) => equalBytes(identity.pushToken, n.senderToken));
  }

  /**
   * Verifies and decrypts, looking the sender up again once (unless that already happened) when its keys for the
   * scheme are missing or the pair-ec key validator names other keys — both usually mean a stale cache (§5.4, §9).
   */
  private async decrypt(
    n: IncomingNotification,
    meta: InboundMeta,
    payload: Uint8Array,
    from: PeerIdentity,
    forced: boolean,
  ): Promise<Decrypted> {
    let plaintext: Uint8Array;
    try {
      plaintext = await this.open(n, payload, from);
    } catch (e) {
      const code = errorCode(e);
      if (forced || (code !== 'missing-sender-key' && code !== 'bad-key-validator')) return { failure: this.undecryptable(meta, code) };
      const fresh = await this.findSender(n, true);
      if (!fresh) return { failure: this.undecryptable(meta, 'unknown-sender-device') };
      try {
        plaintext = await this.open(n, payload, fresh);
        from = fresh;
      } catch (again) {
        return { failure: this.undecryptable(meta, errorCode(again)) };
      }
    }
    try {
      return { dict: await decodePayload(plaintext, { maxInflated: this.maxInflatedBytes }), from };
    } catch (e) {
      return { failure: this.malformed(MADRID_TOPIC, e, meta) };
    }
  }

  /** The plaintext (maybe gzipped) of a pair or pair-ec payload; an absent `E` is taken as pair, the original scheme. */
  private async open(n: IncomingNotification, payload: Uint8Array, from: PeerIdentity): Promise<Uint8Array> {
    if (n.encryption === 'pair-ec') {
      if (!this.device.ngm) throw new CryptoError('no-own-ngm-keys', 'pair-ec payload but this device has no NGM keys');
      if (!from.ngm) throw new CryptoError('missing-sender-key', 'sender device has no NGM keys in the lookup');
      return (await pairEcDecrypt(payload, this.device.ngm, from.ngm)).message;
    }
    if (!from.legacy) throw new CryptoError('missing-sender-key', 'sender device has no pair key in the lookup');
    return pairDecrypt(payload, this.device.legacy, from.legacy);
  }

  /** The event for a decrypted (or payload-less) notification, by command. Throws DecodeError on a bad payload. */
  private interpret(n: IncomingNotification, meta: InboundMeta, dict: PlistDict | undefined): InboundEvent {
    switch (n.command) {
      case Command.Message:
        return this.message(n, meta, dict);
      case Command.DeliveryReceipt:
        return { kind: 'delivery-receipt', meta };
      case Command.ReadReceipt:
        return { kind: 'read-receipt', meta };
      case Command.EditUnsend: {
        const edit = parseEdit(requirePayload(dict));
        return edit.kind === 'edit' ? { kind: 'edit', meta, edit } : { kind: 'unsend', meta, unsend: edit };
      }
      case Command.GroupChange:
        return { kind: 'group-change', meta, change: parseGroupChange(requirePayload(dict)) };
      case Command.PeerCacheInvalidate:
        this.directory.invalidate(n.senderUri);
        return { kind: 'peer-cache-invalidate', meta };
      case Command.DeliveryFailure:
        return this.deliveryFailure(n, meta);
      default:
        return { kind: 'other', meta, payload: dict };
    }
  }

  private message(n: IncomingNotification, meta: InboundMeta, dict: PlistDict | undefined): InboundEvent {
    const typing = classifyTyping(n, dict);
    if (typing === 'started' || typing === 'stopped') {
      return { kind: 'typing', meta, typing: typing === 'started', payload: dict && parseTypingPayload(dict) };
    }
    if (!dict) return { kind: 'other', meta };
    if (isTapback(dict)) return { kind: 'tapback', meta, tapback: parseTapback(dict) };
    const message = parseTextMessage(dict);
    // [BG] stops typing with an ordinary message that has nothing in it.
    if (isEmptyMessage(message)) return { kind: 'typing', meta, typing: false };
    return { kind: 'message', meta, message };
  }

  /** c:120 is unencrypted: its fields ride in the notification itself. */
  private deliveryFailure(n: IncomingNotification, meta: InboundMeta): InboundEvent {
    const r = new FieldReader(n.extra, 'delivery failure');
    const fU = r.data('fU', 16);
    const reasonText = r.string('fRM');
    if (reasonText === STALE_KEYS_REASON) this.directory.invalidate(n.senderUri);
    return {
      kind: 'delivery-failure',
      meta,
      failedUuid: fU ? uuidToString(fU) : r.string('fM'),
      reason: r.int('fR'),
      reasonText,
    };
  }

  private async deliveryReceipt(n: IncomingNotification, meta: InboundMeta, to: PeerIdentity): Promise<void> {
    try {
      await this.sender.sendDeliveryReceipt(n, to);
    } catch (e) {
      // The message is stored; a lost receipt only leaves the sender without "Delivered".
      this.log.warn('imessage.receipt-failed', { U: meta.uuid, code: errorCode(e) });
    }
  }

  private control(payload: Uint8Array): ReceivedNotification {
    let command: unknown;
    try {
      const parsed: unknown = JSON.parse(fromUtf8(payload));
      command = typeof parsed === 'object' && parsed !== null ? (parsed as { c?: unknown }).c : undefined;
    } catch (e) {
      return only(this.malformed(IDS_CONTROL_TOPIC, e));
    }
    switch (command) {
      case Command.IdsDevicesChanged:
        for (const handle of this.device.handles) this.directory.invalidate(handle);
        return only({ kind: 'devices-changed' });
      case Command.IdsHandlesChanged:
        return only({ kind: 'handles-changed' });
      case Command.IdsReregister:
        return only({ kind: 'reregister' });
      default:
        this.log.info('imessage.control-ignored', { c: typeof command === 'number' ? command : undefined });
        return nothing;
    }
  }

  /** An `E` this client cannot decrypt (e.g. a post-quantum scheme, §11): dropped, with an event saying so. */
  private unsupported(topic: string, dict: PlistDict, scheme: string): ReceivedNotification {
    const rest: PlistDict = {};
    for (const key of Object.keys(dict)) if (key !== 'E') setPlistKey(rest, key, dict[key]!);
    try {
      const meta = this.metaOf(parseIncoming(rest));
      this.log.warn('imessage.unsupported-encryption', { U: meta.uuid, E: scheme.slice(0, 32) });
      return only({ kind: 'unsupported-encryption', meta, encryption: scheme });
    } catch (e) {
      return only(this.malformed(topic, e));
    }
  }

  private metaOf(n: IncomingNotification): InboundMeta {
    return {
      command: n.command,
      uuid: uuidToString(n.uuid),
      senderUri: n.senderUri,
      targetUri: n.targetUri,
      senderToken: n.senderToken,
      timestampNs: n.timestampNs,
      fromSelf: isOwnHandle(this.device, n.senderUri),
      encryption: n.encryption,
    };
  }

  private undecryptable(meta: InboundMeta, code: string): InboundEvent {
    this.log.warn('imessage.undecryptable', { c: meta.command, U: meta.uuid, from: toHex(meta.senderToken.subarray(0, 8)), code });
    return { kind: 'undecryptable', meta, code };
  }

  private malformed(topic: string, e: unknown, meta?: InboundMeta): InboundEvent {
    const code = errorCode(e);
    this.log.warn('imessage.malformed', { topic, c: meta?.command, U: meta?.uuid, code });
    return { kind: 'malformed', topic, code, meta };
  }
}

/** Typed errors keep their code; anything else thrown while handling peer data is reported generically. */
function errorCode(e: unknown): string {
  return e instanceof CeruleanError ? e.code : 'internal-error';
}

function requirePayload(dict: PlistDict | undefined): PlistDict {
  if (!dict) throw new DecodeError('missing-payload', 'command needs an encrypted payload');
  return dict;
}

function isEmptyMessage(m: TextMessage): boolean {
  return (m.text ?? '') === '' && m.xhtml === undefined && Object.keys(m.extra).every((k) => k !== 'bid' && !k.startsWith('ia-'));
}

