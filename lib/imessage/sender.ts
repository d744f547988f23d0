// Outgoing fan-out (imessage.md §1.4–1.7): look up every recipient and the sender's own handle, encrypt the payload
// separately for each device (pair-ec when both sides have NGM keys, else pair, §6), split the destination list
// into envelopes the courier accepts, send them, and collect the server's per-device c:255 statuses. Devices whose
// session token or keys went stale (5032) are looked up again and sent to once more, as [BG] does.
import { toHex } from '../codec/bytes';
import type { PlistDict } from '../codec/plist';
import { pairEcEncrypt } from '../crypto/pair-ec';
import { pairEncrypt } from '../crypto/pair';
import { CeruleanError } from '../errors';
import { Command, ENVELOPE_VERSION } from './commands';
import { editMessage, unsendMessage, buildEdit } from './edit';
import {
  AckStatus,
  encodeEnvelope,
  nowNs,
  randomMessageId,
  randomUuid,
  uuidFromString,
  uuidToString,
  type DtlEntry,
  type Encryption,
  type IncomingNotification,
  type SendEnvelope,
  type ServerAck,
} from './envelope';
import { buildGroupChange, changeMembers, renameGroup as renamePayload } from './group';
import { buildTextMessage, textMessage, type ThreadOrigin } from './message';
import { encodePayload } from './payload';
import {
  handleKey,
  identitiesFor,
  isOwnHandle,
  MADRID_TOPIC,
  sameHandle,
  silentEngineLog,
  type CounterStore,
  type EngineLog,
  type IdentityDirectory,
  type LocalDevice,
  type MessageTransport,
  type PeerIdentity,
} from './ports';
import { deliveryReceiptEnvelope } from './receipts';
import { buildTapback, tapback, type TapbackReaction, type TapbackTarget } from './tapback';
import { buildTypingPayload, typingStartPayload, typingStopPayload } from './typing';

/** The courier's usual "large message" size (connect-ack field 8): the most an envelope may encode to. */
export const DEFAULT_MAX_ENVELOPE_BYTES = 15360;
/** [BG]'s bound on `dtl` entries per envelope. */
export const MAX_ENTRIES_PER_ENVELOPE = 20;
/** [BG]: wait this long for every c:255 … */
export const ACK_SETTLE_MS = 1000;
/** … and at most this long in all for one success per handle. */
export const ACK_MAX_MS = 20_000;

/** Statuses that mean "your lookup of this device is stale": look the handle up again and resend (§1.7, §9). */
const STALE_STATUSES: ReadonlySet<number> = new Set([
  AckStatus.BadSignature,
  AckStatus.BadSessionToken,
  AckStatus.ExpiredSessionToken,
]);

export type SendErrorCode = 'not-on-imessage';

export class SendError extends CeruleanError {
  declare readonly code: SendErrorCode;
  constructor(code: SendErrorCode, message: string) {
    super(code, message);
  }
}

export interface SendRequest {
  /** c */
  command: number;
  /** sP: one of this device's handles. */
  senderUri: string;
  /** Conversation participants as URIs, with or without the sender. */
  participants: string[];
  /** Encrypted per device; omitted for payload-less commands (receipts, 1:1 typing start). */
  payload?: PlistDict;
  /** Overrides the gzip policy (shouldGzip). */
  gzip?: boolean;
  /** U as an upper-case UUID string; a fresh one by default. Receipts pass the acknowledged message's. */
  uuid?: string;
  /** nr: ask for no c:255 (the send then resolves as soon as the envelopes are out). */
  noResponse?: boolean;
  /** 'others' (default): D = true for other people's devices, false for own; 'none': no D at all. */
  deliveryReceipts?: 'others' | 'none';
  /** Send a copy to the sender's other devices (default true). */
  includeOwnDevices?: boolean;
  /** eX */
  expiry?: number;
  /** htu */
  htu?: boolean;
  /** e, nanoseconds since 1970. */
  timestampNs?: bigint;
  /** Envelope keys the model does not name. */
  extraEnvelopeKeys?: PlistDict;
}

/** One destination device and what became of it. */
export interface DestinationResult {
  uri: string;
  token: Uint8Array;
  encryption?: Encryption;
  /** The c:255 status; undefined when none came (nr, or the wait ran out). */
  status?: number;
  /** Why the device was left out of the envelopes: an encryption error code, or 'too-large'. */
  error?: string;
  /** The status is from the resend after a stale-lookup status. */
  resent?: boolean;
}

export interface SendResult {
  /** U, upper-case UUID string. */
  uuid: string;
  results: DestinationResult[];
}

export interface SenderOptions {
  device: LocalDevice;
  transport: MessageTransport;
  directory: IdentityDirectory;
  counters: CounterStore;
  log?: EngineLog;
  /** The courier's large message size from its connect-ack. */
  maxEnvelopeBytes?: number;
  ackSettleMs?: number;
  ackMaxMs?: number;
}

/** Who a chat message goes to. */
export interface ChatTarget {
  senderUri: string;
  /** Everyone in the chat; the sender is added to `p` when missing. */
  participants: string[];
  groupId?: string;
  groupName?: string;
}

/** Gzip policy: text messages only ([PY]); tapbacks, typing and metadata go uncompressed. */
export function shouldGzip(command: number, payload: PlistDict): boolean {
  return command === Command.Message && typeof payload['t'] === 'string' && !Object.prototype.hasOwnProperty.call(payload, 'amt');
}

/** `p` of an outgoing payload: the participants with the sender kept in (§8), each handle once. */
export function chatParticipants(senderUri: string, participants: readonly string[]): string[] {
  const out: string[] = [];
  for (const uri of [...participants, senderUri]) if (!out.some((u) => sameHandle(u, uri))) out.push(uri);
  return out;
}

interface Target {
  identity: PeerIdentity;
  /** D of its entry. */
  deliveryReceipt?: boolean;
}

/** A device the round got as far as addressing: its entry, or why it has none. */
interface Addressed {
  identity: PeerIdentity;
  entry?: DtlEntry;
  error?: string;
}

const tokenKey = (token: Uint8Array): string => toHex(token);
const resultKey = (uri: string, token: Uint8Array): string => `${handleKey(uri)}|${tokenKey(token)}`;

export class MessageSender {
  private readonly device: LocalDevice;
  private readonly transport: MessageTransport;
  private readonly directory: IdentityDirectory;
  private readonly counters: CounterStore;
  private readonly log: EngineLog;
  private readonly maxEnvelopeBytes: number;
  private readonly ackSettleMs: number;
  private readonly ackMaxMs: number;
  /** Sends waiting for c:255, by hex U (several can share a U: a resend, or receipts for one message). */
  private readonly waiting = new Map<string, Set<AckWait>>();

  constructor(o: SenderOptions) {
    this.device = o.device;
    this.transport = o.transport;
    this.directory = o.directory;
    this.counters = o.counters;
    this.log = o.log ?? silentEngineLog;
    this.maxEnvelopeBytes = o.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
    this.ackSettleMs = o.ackSettleMs ?? ACK_SETTLE_MS;
    this.ackMaxMs = o.ackMaxMs ?? ACK_MAX_MS;
  }

  /** Routes a c:255 notification to the send it acknowledges. */
  handleServerAck(ack: ServerAck): void {
    const waits = this.waiting.get(toHex(ack.uuid));
    if (!waits) {
      this.log.info('imessage.ack-unmatched', { U: toHex(ack.uuid), s: ack.status });
      return;
    }
    for (const wait of waits) wait.accept(ack);
  }

  async send(req: SendRequest): Promise<SendResult> {
    const uuid = req.uuid === undefined ? randomUuid() : uuidFromString(req.uuid);
    const others = chatParticipants(req.senderUri, req.participants).filter(
      (uri) => !sameHandle(uri, req.senderUri) && !isOwnHandle(this.device, uri),
    );
    const recipients = (req.includeOwnDevices ?? true) ? [...others, req.senderUri] : others;
    if (!isOwnHandle(this.device, req.senderUri)) this.log.warn('imessage.sender-not-own-handle', { sP: req.senderUri });
    if (recipients.length === 0) return { uuid: uuidToString(uuid), results: [] };

    const found = await this.directory.lookup(req.senderUri, recipients);
    if (others.length > 0 && others.every((uri) => identitiesFor(found, uri).length === 0)) {
      throw new SendError('not-on-imessage', 'no other participant has an iMessage device');
    }
    const plaintext =
      req.payload && (await encodePayload(req.payload, { gzip: req.gzip ?? shouldGzip(req.command, req.payload) }));
    const sentAt = nowNs();
    const results = new Map<string, DestinationResult>();
    const first = await this.round(req, uuid, plaintext, this.targets(req, found, recipients, new Set()), {});
    for (const r of first) results.set(resultKey(r.uri, r.token), r);
    if (req.noResponse) return { uuid: uuidToString(uuid), results: [...results.values()] };

    const staleHandles = recipients.filter((uri) =>
      first.some((r) => sameHandle(r.uri, uri) && r.status !== undefined && STALE_STATUSES.has(r.status)),
    );
    if (staleHandles.length > 0) {
      for (const uri of staleHandles) this.directory.invalidate(uri);
      const fresh = await this.directory.lookup(req.senderUri, staleHandles, { force: true });
      // Devices already accepted keep their status; everything else the fresh lookup lists gets the message again.
      const delivered = new Set(first.filter((r) => r.status === AckStatus.Ok).map((r) => tokenKey(r.token)));
      const retry = { rc: 1, oe: sentAt };
      const second = await this.round(req, uuid, plaintext, this.targets(req, fresh, staleHandles, delivered), retry);
      for (const r of second) results.set(resultKey(r.uri, r.token), { ...r, resent: true });
      this.log.info('imessage.resent', { U: toHex(uuid), handles: staleHandles.length, devices: second.length });
    }
    return { uuid: uuidToString(uuid), results: [...results.values()] };
  }

  /** Devices to address: each at most once per send, never this device, only with a key we can encrypt to. */
  private targets(req: SendRequest, found: Map<string, PeerIdentity[]>, handles: string[], exclude: Set<string>): Target[] {
    const used = new Set(exclude).add(tokenKey(this.device.pushToken));
    const out: Target[] = [];
    for (const uri of handles) {
      const isOwn = sameHandle(uri, req.senderUri) || isOwnHandle(this.device, uri);
      for (const identity of identitiesFor(found, uri)) {
        const key = tokenKey(identity.pushToken);
        if (used.has(key) || (!identity.legacy && !(identity.ngm && this.device.ngm))) continue;
        used.add(key);
        out.push({ identity, deliveryReceipt: req.deliveryReceipts === 'none' ? undefined : !isOwn });
      }
    }
    return out;
  }

  /** Encrypts for every target, sends the envelopes and waits for their c:255s. */
  private async round(
    req: SendRequest,
    uuid: Uint8Array,
    plaintext: Uint8Array | undefined,
    targets: Target[],
    extra: PlistDict,
  ): Promise<DestinationResult[]> {
    const addressed = await Promise.all(targets.map((t) => this.address(t, plaintext)));
    const base: Omit<SendEnvelope, 'destinations' | 'messageId' | 'chunkNumber'> = {
      command: req.command,
      version: ENVELOPE_VERSION,
      uuid,
      senderUri: req.senderUri,
      userAgent: this.device.userAgent,
      noResponse: req.noResponse || undefined,
      expirySeconds: req.expiry,
      timestampNs: req.timestampNs,
      htu: req.htu,
      extra: { ...req.extraEnvelopeKeys, ...extra },
    };
    const { envelopes, tooLarge } = chunkEnvelopes(
      base,
      addressed.flatMap((a) => (a.entry ? [a.entry] : [])),
      this.maxEnvelopeBytes,
    );
    const sentEntries = addressed.filter((a) => a.entry && !tooLarge.has(a.entry));
    const wait = req.noResponse ? undefined : this.expectAcks(uuid, sentEntries);
    try {
      for (const { bytes, messageId } of envelopes) await this.transport.send(MADRID_TOPIC, bytes, messageId);
      await wait?.done;
    } finally {
      if (wait) this.stopWaiting(uuid, wait);
    }
    return addressed.map((a) => ({
      uri: a.identity.uri,
      token: a.identity.pushToken,
      encryption: a.entry?.encryption,
      status: wait?.statusOf(a.identity.pushToken),
      error: a.error ?? (a.entry && tooLarge.has(a.entry) ? 'too-large' : undefined),
    }));
  }

  private async address(target: Target, plaintext: Uint8Array | undefined): Promise<Addressed> {
    const { identity } = target;
    const entry: DtlEntry = {
      targetUri: identity.uri,
      token: identity.pushToken,
      sessionToken: identity.sessionToken,
      deliveryReceipt: target.deliveryReceipt,
      extra: {},
    };
    if (!plaintext) return { identity, entry };
    try {
      return { identity, entry: { ...entry, ...(await this.encryptFor(identity, plaintext)) } };
    } catch (e) {
      if (!(e instanceof CeruleanError)) throw e;
      this.log.warn('imessage.encrypt-failed', { uri: identity.uri, token: toHex(identity.pushToken.subarray(0, 8)), code: e.code });
      return { identity, error: e.code };
    }
  }

  /** pair-ec when this device and the peer both have NGM keys (§6), else pair; fresh randomness every call. */
  private async encryptFor(peer: PeerIdentity, plaintext: Uint8Array): Promise<{ payload: Uint8Array; encryption: Encryption }> {
    const ownNgm = this.device.ngm;
    if (ownNgm && peer.ngm) {
      const counter = await this.counters.next(ownNgm.deviceCompact, peer.ngm.deviceCompact, peer.ngm.prekeyCompact);
      return { payload: await pairEcEncrypt(plaintext, counter, ownNgm, peer.ngm), encryption: 'pair-ec' };
    }
    // targets() only lets through identities with a pair key when pair-ec is impossible.
    return { payload: await pairEncrypt(plaintext, this.device.legacy, peer.legacy!), encryption: 'pair' };
  }

  private expectAcks(uuid: Uint8Array, sent: Addressed[]): AckWait {
    const wait = new AckWait(
      sent.map((a) => ({ handle: handleKey(a.identity.uri), token: tokenKey(a.identity.pushToken) })),
      this.ackSettleMs,
      this.ackMaxMs,
    );
    const key = toHex(uuid);
    let set = this.waiting.get(key);
    if (!set) this.waiting.set(key, (set = new Set()));
    set.add(wait);
    return wait;
  }

  private stopWaiting(uuid: Uint8Array, wait: AckWait): void {
    wait.stop();
    const key = toHex(uuid);
    const set = this.waiting.get(key);
    set?.delete(wait);
    if (set?.size === 0) this.waiting.delete(key);
  }

  // ---- Helpers for each kind of send, built on the payload models ----------------------------------------------

  /** A text message (c:100); several strings become message parts. */
  sendText(
    o: ChatTarget & {
      text: string | readonly string[];
      subject?: string;
      effect?: string;
      replyTo?: ThreadOrigin;
      propertiesVersion?: number;
      uuid?: string;
    },
  ): Promise<SendResult> {
    const payload = buildTextMessage(
      textMessage({ ...o, participants: chatParticipants(o.senderUri, o.participants) }),
    );
    return this.send({ command: Command.Message, senderUri: o.senderUri, participants: o.participants, payload, uuid: o.uuid });
  }

  /** A threaded reply to a range of one part of an earlier message. */
  sendReply(o: ChatTarget & { text: string | readonly string[]; replyTo: ThreadOrigin; uuid?: string }): Promise<SendResult> {
    return this.sendText(o);
  }

  sendTapback(
    o: ChatTarget & { reaction: TapbackReaction; remove?: boolean; target: TapbackTarget; quotedText: string; emoji?: string },
  ): Promise<SendResult> {
    const payload = buildTapback(tapback({ ...o, participants: chatParticipants(o.senderUri, o.participants) }));
    return this.send({ command: Command.Message, senderUri: o.senderUri, participants: o.participants, payload });
  }

  /** c:118 edit of one part; the envelope gets its own fresh U. No delivery receipts: the edit is not a message. */
  sendEdit(o: ChatTarget & { targetUuid: string; part: number; text: string }): Promise<SendResult> {
    const payload = buildEdit(editMessage(o));
    return this.send({ command: Command.EditUnsend, senderUri: o.senderUri, participants: o.participants, payload, deliveryReceipts: 'none' });
  }

  sendUnsend(o: ChatTarget & { targetUuid: string; part: number }): Promise<SendResult> {
    const payload = buildEdit(unsendMessage(o));
    return this.send({ command: Command.EditUnsend, senderUri: o.senderUri, participants: o.participants, payload, deliveryReceipts: 'none' });
  }

  /** c:190 rename, to every member and the sender's other devices. */
  sendGroupRename(o: { senderUri: string; participants: string[]; groupId: string; newName: string; oldName?: string }): Promise<SendResult> {
    const participants = chatParticipants(o.senderUri, o.participants);
    const payload = buildGroupChange(renamePayload({ ...o, participants }));
    return this.send({ command: Command.GroupChange, senderUri: o.senderUri, participants, payload, deliveryReceipts: 'none' });
  }

  /** c:190 membership change, sent to the union of old and new members (§8). */
  sendGroupMembers(o: {
    senderUri: string;
    participants: string[];
    newParticipants: string[];
    groupId: string;
    propertiesVersion: number;
    groupName?: string;
  }): Promise<SendResult> {
    const participants = chatParticipants(o.senderUri, o.participants);
    const payload = buildGroupChange(changeMembers({ ...o, participants }));
    const everyone = chatParticipants(o.senderUri, [...participants, ...o.newParticipants]);
    return this.send({ command: Command.GroupChange, senderUri: o.senderUri, participants: everyone, payload, deliveryReceipts: 'none' });
  }

  /**
   * Typing indicator (§7.3), to the other participants only, never stored by the server (eX 0) and not acked (nr).
   * A 1:1 start carries no payload; a stop, and any group indicator, carry `{p, gid, …, u?}`.
   */
  sendTyping(o: ChatTarget & { groupId: string; typing: boolean }): Promise<SendResult> {
    const participants = chatParticipants(o.senderUri, o.participants);
    const group = participants.length > 2;
    const payload =
      o.typing && !group
        ? undefined
        : buildTypingPayload(
            o.typing ? typingStartPayload({ ...o, participants, group }) : typingStopPayload({ ...o, participants }),
          );
    return this.send({
      command: Command.Message,
      senderUri: o.senderUri,
      participants,
      payload,
      noResponse: true,
      deliveryReceipts: 'none',
      includeOwnDevices: false,
      expiry: 0,
      htu: true,
      timestampNs: nowNs(),
    });
  }

  /** c:102 "read up to `uuid`" to every device of every participant, own other devices included (§7.2). */
  sendReadReceipt(o: { senderUri: string; participants: string[]; uuid: string }): Promise<SendResult> {
    return this.send({
      command: Command.ReadReceipt,
      senderUri: o.senderUri,
      participants: o.participants,
      uuid: o.uuid,
      noResponse: true,
      timestampNs: nowNs(),
    });
  }

  /** c:101 to the one device that sent `incoming` (§7.1); `from` is that device's identity from our lookup. */
  async sendDeliveryReceipt(incoming: IncomingNotification, from: PeerIdentity): Promise<void> {
    const envelope = deliveryReceiptEnvelope(incoming, { userAgent: this.device.userAgent, sessionToken: from.sessionToken });
    await this.transport.send(MADRID_TOPIC, encodeEnvelope(envelope), envelope.messageId);
  }
}

/**
 * Splits entries into envelopes of at most MAX_ENTRIES_PER_ENVELOPE entries that encode to at most `maxBytes`
 * (measured, since binary-plist overhead is not additive); each chunk gets a fresh `i` and fcn = index + 1. An
 * entry too large even alone is left out and reported.
 */
export function chunkEnvelopes(
  base: Omit<SendEnvelope, 'destinations' | 'messageId' | 'chunkNumber'>,
  entries: DtlEntry[],
  maxBytes: number,
): { envelopes: { bytes: Uint8Array; messageId: number }[]; tooLarge: Set<DtlEntry> } {
  const envelopes: { bytes: Uint8Array; messageId: number }[] = [];
  const tooLarge = new Set<DtlEntry>();
  const encode = (destinations: DtlEntry[], messageId: number) =>
    encodeEnvelope({ ...base, destinations, messageId, chunkNumber: envelopes.length + 1 });
  // Each entry is encoded once, alone, to learn what it adds; chunks are filled by that estimate, which can only
  // overshoot (shared strings are written once), and each chunk is encoded for real once, shrinking it in the rare
  // case that wider object references push it over. Encoding every candidate chunk would be quadratic in fan-out.
  const probeId = randomMessageId();
  const emptyLength = encode([], probeId).length;
  const costs = new Map<DtlEntry, number>();
  for (const entry of entries) {
    const alone = encode([entry], probeId).length;
    if (alone > maxBytes) tooLarge.add(entry);
    else costs.set(entry, alone - emptyLength);
  }
  let pending = entries.filter((e) => costs.has(e));
  while (pending.length > 0) {
    let take = 0;
    let estimate = emptyLength;
    while (take < pending.length && take < MAX_ENTRIES_PER_ENVELOPE && (take === 0 || estimate + costs.get(pending[take]!)! <= maxBytes)) {
      estimate += costs.get(pending[take]!)!;
      take++;
    }
    const messageId = randomMessageId();
    let bytes = encode(pending.slice(0, take), messageId);
    while (bytes.length > maxBytes && take > 1) bytes = encode(pending.slice(0, --take), messageId);
    envelopes.push({ bytes, messageId });
    pending = pending.slice(take);
  }
  return { envelopes, tooLarge };
}

/**
 * The c:255s of one send round. Done when every device has a status, or — once ackSettleMs has passed — when every
 * handle has at least one accepted device, or at ackMaxMs regardless ([BG]).
 */
class AckWait {
  private readonly statuses = new Map<string, number>();
  private readonly handles = new Map<string, string[]>();
  private readonly tokens = new Set<string>();
  private settled = false;
  private readonly timers: ReturnType<typeof setTimeout>[] = [];
  private finish!: () => void;
  readonly done: Promise<void>;

  constructor(devices: { handle: string; token: string }[], settleMs: number, maxMs: number) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    for (const { handle, token } of devices) {
      this.tokens.add(token);
      const list = this.handles.get(handle) ?? [];
      list.push(token);
      this.handles.set(handle, list);
    }
    this.timers.push(
      setTimeout(() => {
        this.settled = true;
        this.check();
      }, settleMs),
      setTimeout(() => this.stop(), maxMs),
    );
    this.check();
  }

  accept(ack: ServerAck): void {
    if (ack.token === undefined) {
      // A c:255 without `t` speaks for the whole send; only a failure changes anything.
      if (ack.status === AckStatus.Ok) return;
      for (const token of this.tokens) if (!this.statuses.has(token)) this.statuses.set(token, ack.status);
    } else {
      const token = tokenKey(ack.token);
      if (!this.tokens.has(token) || this.statuses.has(token)) return;
      this.statuses.set(token, ack.status);
    }
    this.check();
  }

  statusOf(token: Uint8Array): number | undefined {
    return this.statuses.get(tokenKey(token));
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.finish();
  }

  private check(): void {
    if (this.statuses.size === this.tokens.size) return this.stop();
    if (!this.settled) return;
    const everyHandle = [...this.handles.values()].every((tokens) =>
      tokens.some((t) => this.statuses.get(t) === AckStatus.Ok),
    );
    if (everyHandle) this.stop();
  }
}
