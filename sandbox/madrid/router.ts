// iMessage routing (imessage.md §1.4–1.7, §7, §10): a device's send envelope is checked, split into one notification
// per `dtl` entry, rewritten as §1.6 says and handed to the courier, which delivers it live or stores it for the
// device. The server never looks into `P`; it logs metadata only (c, U, token prefixes, statuses).
//
// Per-entry c:255 statuses (the send as a whole is rejected with one c:255 without `t` and s 5008 when `sP`/`dtl`
// are malformed, 1006 when the sending device is not registered with `sP`):
//   0    delivered, stored for an offline device, a duplicate of one already accepted, or a typing indicator
//        (`eX:0`) dropped because the device is offline (never stored)
//   5008 `tP` missing, or `P` not data · 5006 `t` not 32 bytes, or a token the courier does not know
//   5032 `sT` missing, not minted by a lookup of (sP → tP, t), expired, or `t` no longer registered for `tP`
//   5031 `P` larger than maxPayloadBytes, or a notification too large to push · 5004 the device's queue is full
//   5001 the courier failed
// Duplicates are recognised by (U, sending token, destination token, c) for dedupWindowMs, persisted so a resend
// across a restart is not delivered twice. The sending token is part of the key: two people's receipts for the
// same message carry the same U and c and go to the same device.
import { concat, toHex, utf8 } from '../../lib/codec/bytes';
import { encodeBinaryPlist, isDict, setPlistKey, type PlistDict, type PlistValue } from '../../lib/codec/plist';
import { Command } from '../../lib/imessage/commands';
import { encodeServerAck, TOKEN_LENGTH } from '../../lib/imessage/envelope';
import type { Clock, Log } from '../context';
import type { Courier, DeliveryResult } from '../courier/courier';
import type { UpstreamMessage, UpstreamReply } from '../courier/deps';
import { comparableUri, type DeviceRegistration, type Registrations } from '../ids/registrations';
import { checkSessionToken } from '../ids/session-tokens';
import type { MacKeys } from '../pki';
import type { Store, Table } from '../store';

export const RouteStatus = {
  Ok: 0,
  /** ⚠ The notes suggest it for an unauthenticated sender; no client distinguishes it from other failures. */
  SenderNotRegistered: 1006,
  InternalError: 5001,
  ServerTooBusy: 5004,
  BadPushToken: 5006,
  MissingRequiredKey: 5008,
  PushPayloadTooBig: 5031,
  BadSignature: 5032,
} as const;

export interface RouterOptions {
  /** The IDS service whose registrations authenticate senders and destinations. */
  service: string;
  /** Largest `P` accepted per entry (bytes). */
  maxPayloadBytes: number;
  /** How long an accepted (U, sender, destination, c) is remembered. */
  dedupWindowMs: number;
}

export interface RouterDeps {
  courier: Courier;
  keys: MacKeys;
  registrations: Registrations;
  store: Store;
  clock: Clock;
  log: Log;
}

/** Keys of the envelope that never reach a recipient, and those each entry supplies itself (§1.6). */
const DROPPED = new Set(['dtl', 'fcn', 'sT']);
const PER_ENTRY = new Set(['tP', 't', 'P', 'E', 'D', 'e', 'cdv', 'cdr']);
const CDR_PURPOSE = 'madrid-certified-delivery';
const DEDUP_TABLE = 'madrid.dedup';
/** Bound on remembered sends, whatever the window: the oldest are forgotten first. */
const MAX_DEDUP_ENTRIES = 200_000;
/** A legacy 0x0A item carries at most 0xFFFF payload bytes. */
const MAX_NOTIFICATION_BYTES = 0xffff;
const U_LENGTH = 16;

interface Send {
  msg: UpstreamMessage;
  reply: UpstreamReply;
  envelope: PlistDict;
  command: number;
  uuid: Uint8Array;
  senderUri: string;
  noResponse: boolean;
  /** Service registrations must list this sub-service (sends on a sub-service topic such as SMS relay). */
  subService: string | undefined;
  meta: Record<string, unknown>;
}

export class MadridRouter {
  private readonly dedup: RecentSends;

  constructor(
    private readonly deps: RouterDeps,
    private readonly options: RouterOptions,
  ) {
    this.dedup = new RecentSends(deps.store.table<number>(DEDUP_TABLE), deps.clock, deps.log, options.dedupWindowMs);
  }

  /** Routes one decoded upstream envelope with command `command` (anything but c:96). */
  async handle(msg: UpstreamMessage, envelope: PlistDict, command: number, reply: UpstreamReply): Promise<void> {
    const meta = { topic: msg.topic, c: command, from: tokenPrefix(msg.senderToken) };
    if (command === Command.FlushQueue) {
      // The courier writes every pending notification as soon as a filter enables its topic and refills the
      // in-flight window on each ack, so by the time a device asks there is nothing held back to flush.
      this.deps.log.info('madrid.flush-request', meta);
      return;
    }
    if (command === Command.CertifiedDelivery) return this.certifiedDelivery(msg, envelope, meta);
    if (!('dtl' in envelope)) {
      this.deps.log.info('madrid.unrouted', meta);
      return;
    }
    const uuid = envelope['U'];
    if (!(uuid instanceof Uint8Array) || uuid.length !== U_LENGTH) {
      this.deps.log.warn('madrid.send-unanswerable', { ...meta, reason: 'no usable U' });
      return;
    }
    const send: Send = {
      msg,
      reply,
      envelope,
      command,
      uuid,
      senderUri: typeof envelope['sP'] === 'string' ? envelope['sP'] : '',
      noResponse: isTrue(envelope['nr']),
      subService: msg.topic === this.options.service ? undefined : msg.topic,
      meta: { ...meta, U: toHex(uuid) },
    };
    const dtl = envelope['dtl'];
    if (send.senderUri === '' || !Array.isArray(dtl)) return this.rejectSend(send, RouteStatus.MissingRequiredKey, 'malformed');
    if (!this.registeredFor(msg.senderToken, send.senderUri, send.subService)) {
      return this.rejectSend(send, RouteStatus.SenderNotRegistered, 'sender not registered');
    }
    const statuses = await Promise.all(dtl.map((entry, i) => this.routeEntry(send, entry, i)));
    this.deps.log.info('madrid.send', { ...send.meta, entries: dtl.length, statuses: statuses.filter((s) => s !== undefined) });
  }

  private async rejectSend(send: Send, status: number, reason: string): Promise<void> {
    this.deps.log.warn('madrid.send-rejected', { ...send.meta, status, reason });
    if (!send.noResponse) await send.reply.toSender(encodeServerAck({ uuid: send.uuid, status, extra: {} }));
  }

  /** One destination: validate, rewrite, deliver, ack. The status, or undefined for an entry that cannot be acked. */
  private async routeEntry(send: Send, raw: PlistValue, index: number): Promise<number | undefined> {
    const token = isDict(raw) ? raw['t'] : undefined;
    if (!isDict(raw) || !(token instanceof Uint8Array)) {
      // Without `t` there is nothing to put in a per-entry ack, and a c:255 without `t` would fail the whole send.
      this.deps.log.warn('madrid.entry-skipped', { ...send.meta, index, reason: 'no t' });
      return undefined;
    }
    const status = await this.deliverEntry(send, raw, token);
    if (!send.noResponse) await send.reply.toSender(encodeServerAck({ uuid: send.uuid, token, status, extra: {} }));
    return status;
  }

  private async deliverEntry(send: Send, entry: PlistDict, token: Uint8Array): Promise<number> {
    const { keys, clock, courier, log } = this.deps;
    if (token.length !== TOKEN_LENGTH) return RouteStatus.BadPushToken;
    const targetUri = entry['tP'];
    const payload = entry['P'];
    if (typeof targetUri !== 'string' || (payload !== undefined && !(payload instanceof Uint8Array))) return RouteStatus.MissingRequiredKey;
    const sessionToken = entry['sT'];
    const binding = { senderUri: send.senderUri, receiverUri: targetUri, receiverToken: token };
    if (!(sessionToken instanceof Uint8Array) || checkSessionToken(keys, sessionToken, binding, clock.now()) !== 'ok') {
      return RouteStatus.BadSignature;
    }
    // A valid token for a device that has since deregistered must fail too, so the sender looks up again.
    if (!this.registeredFor(token, targetUri, send.subService)) return RouteStatus.BadSignature;
    if (payload && payload.length > this.options.maxPayloadBytes) return RouteStatus.PushPayloadTooBig;

    const key = dedupKey(send.uuid, send.msg.senderToken, token, send.command);
    if (!this.dedup.claim(key)) {
      log.info('madrid.duplicate', { ...send.meta, to: tokenPrefix(token) });
      return RouteStatus.Ok;
    }
    const notification = encodeBinaryPlist(this.rewrite(send, entry, targetUri, token));
    if (notification.length > MAX_NOTIFICATION_BYTES) {
      this.dedup.release(key);
      return RouteStatus.PushPayloadTooBig;
    }
    let result: DeliveryResult;
    try {
      result = await courier.deliver(token, send.msg.topic, notification, { storeIfOffline: !isZero(send.envelope['eX']) });
    } catch (e) {
      this.dedup.release(key);
      log.error('madrid.deliver-failed', { ...send.meta, to: tokenPrefix(token), error: e instanceof Error ? e.message : String(e) });
      return RouteStatus.InternalError;
    }
    const status = deliveryStatus(result);
    if (status === RouteStatus.Ok) this.dedup.commit(key);
    else this.dedup.release(key);
    log.info('madrid.deliver', { ...send.meta, to: tokenPrefix(token), delivered: result.delivered, stored: result.stored, status });
    return status;
  }

  /** §1.6: envelope keys minus dtl/fcn/sT, then the entry's tP/P/E/D(/cdv), the sender's token as `t`, server `e`. */
  private rewrite(send: Send, entry: PlistDict, targetUri: string, token: Uint8Array): PlistDict {
    const out: PlistDict = {};
    for (const [k, v] of Object.entries(send.envelope)) {
      if (!DROPPED.has(k) && !PER_ENTRY.has(k)) setPlistKey(out, k, v);
    }
    const set = (k: string, v: PlistValue | undefined) => v !== undefined && setPlistKey(out, k, v);
    set('tP', targetUri);
    set('t', send.msg.senderToken);
    set('P', entry['P']);
    set('E', entry['E'] ?? send.envelope['E']);
    set('D', entry['D']);
    set('e', BigInt(this.deps.clock.now()) * 1_000_000n);
    const cdv = entry['cdv'];
    if (cdv !== undefined) {
      set('cdv', cdv);
      set('cdr', this.certifiedReceipt(send.uuid, send.msg.senderToken, token, send.senderUri, targetUri));
    }
    return out;
  }

  /** The opaque `cdr`: binds the message, both devices and both handles, so only its recipient can redeem it. */
  private certifiedReceipt(uuid: Uint8Array, senderToken: Uint8Array, recipientToken: Uint8Array, senderUri: string, targetUri: string): Uint8Array {
    return this.deps.keys.mac(CDR_PURPOSE, uuid, senderToken, recipientToken, utf8(comparableUri(senderUri)), utf8(comparableUri(targetUri)));
  }

  /**
   * c:109 from a recipient (§7.1, §10 item 8): with `gd:true` and a `cdr` this server made for (U, t → this device,
   * sP ↔ tP swapped back), the original sender's device gets `{c:101, U, sP, tP, t:<recipient token>, e}`.
   * Without `gd` the receipt is only consumed.
   */
  private async certifiedDelivery(msg: UpstreamMessage, d: PlistDict, meta: Record<string, unknown>): Promise<void> {
    const { log, keys, courier, clock } = this.deps;
    const { U: uuid, t: senderToken, cdr, sP: recipientUri, tP: originalSenderUri } = d;
    if (!isTrue(d['gd'])) {
      log.info('madrid.certified-delivery', { ...meta, notify: false });
      return;
    }
    if (
      !(uuid instanceof Uint8Array) || uuid.length !== U_LENGTH ||
      !(senderToken instanceof Uint8Array) || senderToken.length !== TOKEN_LENGTH ||
      !(cdr instanceof Uint8Array) || typeof recipientUri !== 'string' || typeof originalSenderUri !== 'string'
    ) {
      log.warn('madrid.certified-delivery-malformed', meta);
      return;
    }
    const parts = [uuid, senderToken, msg.senderToken, utf8(comparableUri(originalSenderUri)), utf8(comparableUri(recipientUri))];
    if (!keys.verifyMac(CDR_PURPOSE, cdr, ...parts)) {
      log.warn('madrid.certified-delivery-bad-receipt', { ...meta, U: toHex(uuid) });
      return;
    }
    const key = dedupKey(uuid, msg.senderToken, senderToken, Command.DeliveryReceipt);
    if (!this.dedup.claim(key)) return;
    const receipt: PlistDict = {
      c: Command.DeliveryReceipt,
      U: uuid,
      sP: recipientUri,
      tP: originalSenderUri,
      t: msg.senderToken,
      e: BigInt(clock.now()) * 1_000_000n,
    };
    const result = await courier.deliver(senderToken, msg.topic, encodeBinaryPlist(receipt)).catch((e: unknown) => {
      log.error('madrid.deliver-failed', { ...meta, error: e instanceof Error ? e.message : String(e) });
      return undefined;
    });
    if (result && deliveryStatus(result) === RouteStatus.Ok) this.dedup.commit(key);
    else this.dedup.release(key);
    log.info('madrid.certified-delivery', { ...meta, U: toHex(uuid), notify: true, to: tokenPrefix(senderToken), delivered: result?.delivered });
  }

  private registeredFor(token: Uint8Array, uri: string, subService: string | undefined): boolean {
    const want = comparableUri(uri);
    return this.deps.registrations
      .forToken(this.options.service, token)
      // A device whose ID certificate lapsed is no longer registered: it neither sends nor receives.
      .some((r: DeviceRegistration) => this.deps.registrations.isCurrent(r) && (subService === undefined || r.subServices.includes(subService)) && r.uris.some((u) => comparableUri(u) === want));
  }
}

function deliveryStatus(r: DeliveryResult): number {
  if (r.delivered || r.stored) return RouteStatus.Ok;
  switch (r.reason) {
    case 'offline':
      return RouteStatus.Ok;
    case 'too-large':
      return RouteStatus.PushPayloadTooBig;
    case 'queue-full':
      return RouteStatus.ServerTooBusy;
    default:
      return RouteStatus.BadPushToken;
  }
}

/** `nr`, `gd`: booleans, or integer 1 as [PY] writes them. */
function isTrue(v: PlistValue | undefined): boolean {
  return v === true || v === 1 || v === 1n;
}

function isZero(v: PlistValue | undefined): boolean {
  return v === 0 || v === 0n;
}

function tokenPrefix(token: Uint8Array): string {
  return toHex(token.subarray(0, 8));
}

function dedupKey(uuid: Uint8Array, from: Uint8Array, to: Uint8Array, command: number): string {
  return `${toHex(concat(uuid, from, to))}.${command}`;
}

/**
 * Accepted sends, each remembered until its window ends: in memory for the checks, and in the store so a restart
 * keeps them. A key is claimed before its delivery starts (a concurrent duplicate then sees it) and either
 * committed (persisted) or released.
 */
class RecentSends {
  private readonly until = new Map<string, number>();
  private readonly claimed = new Set<string>();

  constructor(
    private readonly table: Table<number>,
    private readonly clock: Clock,
    private readonly log: Log,
    private readonly windowMs: number,
  ) {
    const now = clock.now();
    for (const [key, expiry] of table.entries()) {
      if (typeof expiry === 'number' && expiry > now) this.until.set(key, expiry);
      else this.forget(key);
    }
  }

  /** False if the key is remembered or being delivered; else claims it. */
  claim(key: string): boolean {
    this.prune();
    if (this.claimed.has(key) || this.until.has(key)) return false;
    this.claimed.add(key);
    return true;
  }

  commit(key: string): void {
    this.claimed.delete(key);
    const expiry = this.clock.now() + this.windowMs;
    this.until.set(key, expiry);
    this.table.put(key, expiry).catch((e: unknown) => this.failed(e));
    if (this.until.size > MAX_DEDUP_ENTRIES) this.forget(this.until.keys().next().value!);
  }

  release(key: string): void {
    this.claimed.delete(key);
  }

  // Entries are inserted with a constant window, so the oldest expire first.
  private prune(): void {
    const now = this.clock.now();
    for (const [key, expiry] of this.until) {
      if (expiry > now) break;
      this.forget(key);
    }
  }

  private forget(key: string): void {
    this.until.delete(key);
    this.table.delete(key).catch((e: unknown) => this.failed(e));
  }

  private failed(e: unknown): void {
    this.log.error('madrid.dedup-store-failed', { error: e instanceof Error ? e.message : String(e) });
  }
}
