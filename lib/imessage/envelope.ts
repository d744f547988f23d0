// The plists that ride in courier send-message frames (imessage.md §1): the send envelope a device fans out
// (§1.2/§1.3), the per-device notification the server delivers in its place (§1.6), and the server's c:255
// acknowledgement (§1.7). Nothing here is end-to-end encrypted except the per-device `P` bytes.
import { parsePlist, type PlistDict, type PlistValue } from '../codec/plist';
import { encodeBinaryPlist } from '../codec/plist-binary';
import { readU32be } from '../codec/bytes';
import { randomBytes } from '../crypto/subtle';
import { DecodeError } from '../errors';
import { Command } from './commands';
import { asDict, DictWriter, FieldReader } from './fields';

export { isUuidString, randomUuid, randomUuidString, uuidFromString, uuidToString } from './uuid';

/** End-to-end schemes a receiver can dispatch on (§6); anything else is dropped. */
export type Encryption = 'pair' | 'pair-ec';

/** Push tokens (`t`) are always 32 bytes. */
export const TOKEN_LENGTH = 32;

const U32_MAX = 0xffffffff;
const INT_MAX = 0x7fffffff;

/** One destination device of a send (`dtl` entry, §1.3). */
export interface DtlEntry {
  /** tP: the destination handle URI that was looked up. */
  targetUri: string;
  /** t: the destination device's push token (32 bytes). */
  token: Uint8Array;
  /** sT: session token from the lookup. Senders always set it; a parser tolerates its absence so a server can
   *  answer 5032 for that entry alone. */
  sessionToken?: Uint8Array;
  /** D: ask the device for a delivery receipt (true for other people's devices). */
  deliveryReceipt?: boolean;
  /** P: this device's encrypted payload. */
  payload?: Uint8Array;
  /** E: this entry's scheme, overriding the envelope's. */
  encryption?: Encryption;
  /** cdv: certified-delivery version, when the device supports it. */
  certifiedDeliveryVersion?: number;
  extra: PlistDict;
}

/** A looked-up device of handle `uri`: what envelope builders turn into a `dtl` entry. */
export interface DeviceAddress {
  uri: string;
  token: Uint8Array;
  sessionToken: Uint8Array;
}

/** Send envelope, device → server (§1.2). */
export interface SendEnvelope {
  /** c */
  command: number;
  /** fcn: 1-based fan-out chunk number. */
  chunkNumber?: number;
  /** v: 8 on com.apple.madrid. */
  version: number;
  /** i: the courier message id as an unsigned 32-bit integer. */
  messageId: number;
  /** U: message UUID, 16 bytes; for receipts the acknowledged message's. */
  uuid: Uint8Array;
  /** sP: sender handle URI. */
  senderUri: string;
  /** dtl */
  destinations: DtlEntry[];
  /** E: default scheme for entries carrying P. */
  encryption?: Encryption;
  /** ua: `[<os>,<version>,<build>,<model>]`. */
  userAgent?: string;
  /** nr: the server sends no c:255 for this envelope. */
  noResponse?: boolean;
  /** eX: expiry in seconds; 0 on typing indicators. */
  expirySeconds?: number;
  /** e: send time, nanoseconds since 1970. */
  timestampNs?: bigint;
  /** htu: meaning unknown ([BG] sets it on typing). */
  htu?: boolean;
  extra: PlistDict;
}

/** What a recipient device receives for one `dtl` entry (§1.6). */
export interface IncomingNotification {
  /** c */
  command: number;
  /** U: message UUID. */
  uuid: Uint8Array;
  /** sP: sender handle. */
  senderUri: string;
  /** tP: which of my handles was addressed. */
  targetUri: string;
  /** t: the *sender's* push token. */
  senderToken: Uint8Array;
  /** e: server receive time, nanoseconds since 1970. */
  timestampNs: bigint;
  /** P: encrypted payload for this device. */
  payload?: Uint8Array;
  /** E: entry scheme, else the envelope's. */
  encryption?: Encryption;
  /** D: the sender wants a delivery receipt. */
  deliveryReceipt?: boolean;
  /** v, i, nr, eX, htu: copied from the envelope. */
  version?: number;
  messageId?: number;
  noResponse?: boolean;
  expirySeconds?: number;
  htu?: boolean;
  /** cdv / cdr: certified-delivery version and the server's opaque receipt. */
  certifiedDeliveryVersion?: number;
  certifiedDeliveryReceipt?: Uint8Array;
  extra: PlistDict;
}

/** c:255 server acknowledgement (§1.7). */
export interface ServerAck {
  /** U: UUID of the acknowledged send. */
  uuid: Uint8Array;
  /** t: destination token; absent when the status applies to the whole send. */
  token?: Uint8Array;
  /** s: 0 accepted, else an AckStatus code. */
  status: number;
  extra: PlistDict;
}

/** c:255 `s` values clients act on (§1.7). */
export const AckStatus = {
  Ok: 0,
  MessageRemoved: 1002,
  BadPushToken: 5006,
  MissingRequiredKey: 5008,
  NoPushTokenForId: 5030,
  PushPayloadTooBig: 5031,
  /** Stale session token or keys: re-look-up the handle and resend. */
  BadSignature: 5032,
  BadSessionToken: 5040,
  ExpiredSessionToken: 5041,
} as const;

/** A random courier message id (`i`), as [PY]/[BG] pick it. */
export function randomMessageId(): number {
  return readU32be(randomBytes(4));
}

/** Now in nanoseconds since 1970, the unit of `e`. */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function readEncryption(r: FieldReader, key: string): Encryption | undefined {
  const e = r.string(key);
  if (e === undefined || e === 'pair' || e === 'pair-ec') return e;
  return r.fail(key, '"pair" or "pair-ec"', 'unknown-encryption');
}

const readUuid = (r: FieldReader): Uint8Array => r.requiredData('U', 16, 'bad-uuid');

/** The `c` of any envelope-like dict, for dispatching before choosing a parser. */
export function readCommand(dict: PlistDict): number {
  return new FieldReader(dict, 'envelope').requiredInt('c', 0, INT_MAX);
}

export function buildDtlEntry(entry: DtlEntry): PlistDict {
  return new DictWriter()
    .set('tP', entry.targetUri)
    .set('t', entry.token)
    .set('sT', entry.sessionToken)
    .set('D', entry.deliveryReceipt)
    .set('P', entry.payload)
    .set('E', entry.encryption)
    .set('cdv', entry.certifiedDeliveryVersion)
    .finish(entry.extra);
}

export function parseDtlEntry(dict: PlistDict, index = 0): DtlEntry {
  const r = new FieldReader(dict, `dtl[${index}]`);
  return {
    targetUri: r.requiredString('tP'),
    token: r.requiredData('t', TOKEN_LENGTH, 'bad-token'),
    sessionToken: r.data('sT'),
    deliveryReceipt: r.bool('D'),
    payload: r.data('P'),
    encryption: readEncryption(r, 'E'),
    certifiedDeliveryVersion: r.int('cdv', 0, INT_MAX),
    extra: r.extra(),
  };
}

export function buildEnvelope(env: SendEnvelope): PlistDict {
  return new DictWriter()
    .set('c', env.command)
    .set('fcn', env.chunkNumber)
    .set('v', env.version)
    .set('i', env.messageId)
    .set('U', env.uuid)
    .set('sP', env.senderUri)
    .set('dtl', env.destinations.map(buildDtlEntry))
    .set('E', env.encryption)
    .set('ua', env.userAgent)
    .set('nr', env.noResponse)
    .set('eX', env.expirySeconds)
    .set('e', env.timestampNs)
    .set('htu', env.htu)
    .finish(env.extra);
}

export function parseEnvelope(dict: PlistDict): SendEnvelope {
  const r = new FieldReader(dict, 'envelope');
  return {
    command: r.requiredInt('c', 0, INT_MAX),
    chunkNumber: r.int('fcn', 0, INT_MAX),
    version: r.requiredInt('v', 0, INT_MAX),
    messageId: r.requiredInt('i', 0, U32_MAX),
    uuid: readUuid(r),
    senderUri: r.requiredString('sP'),
    destinations: r.requiredDicts('dtl').map(parseDtlEntry),
    encryption: readEncryption(r, 'E'),
    userAgent: r.string('ua'),
    noResponse: r.bool('nr'),
    expirySeconds: r.int('eX'),
    timestampNs: r.bigint('e'),
    htu: r.bool('htu'),
    extra: r.extra(),
  };
}

export function buildIncoming(n: IncomingNotification): PlistDict {
  return new DictWriter()
    .set('c', n.command)
    .set('v', n.version)
    .set('i', n.messageId)
    .set('U', n.uuid)
    .set('sP', n.senderUri)
    .set('tP', n.targetUri)
    .set('t', n.senderToken)
    .set('E', n.encryption)
    .set('P', n.payload)
    .set('D', n.deliveryReceipt)
    .set('nr', n.noResponse)
    .set('eX', n.expirySeconds)
    .set('e', n.timestampNs)
    .set('htu', n.htu)
    .set('cdv', n.certifiedDeliveryVersion)
    .set('cdr', n.certifiedDeliveryReceipt)
    .finish(n.extra);
}

export function parseIncoming(dict: PlistDict): IncomingNotification {
  const r = new FieldReader(dict, 'incoming notification');
  return {
    command: r.requiredInt('c', 0, INT_MAX),
    version: r.int('v', 0, INT_MAX),
    messageId: r.int('i', 0, U32_MAX),
    uuid: readUuid(r),
    senderUri: r.requiredString('sP'),
    targetUri: r.requiredString('tP'),
    senderToken: r.requiredData('t', TOKEN_LENGTH, 'bad-token'),
    encryption: readEncryption(r, 'E'),
    payload: r.data('P'),
    deliveryReceipt: r.bool('D'),
    noResponse: r.bool('nr'),
    expirySeconds: r.int('eX'),
    timestampNs: r.requiredBigint('e'),
    htu: r.bool('htu'),
    certifiedDeliveryVersion: r.int('cdv', 0, INT_MAX),
    certifiedDeliveryReceipt: r.data('cdr'),
    extra: r.extra(),
  };
}

export function buildServerAck(ack: ServerAck): PlistDict {
  return new DictWriter()
    .set('c', Command.ServerAck)
    .set('U', ack.uuid)
    .set('t', ack.token)
    .set('s', ack.status)
    .finish(ack.extra);
}

export function parseServerAck(dict: PlistDict): ServerAck {
  const r = new FieldReader(dict, 'server ack');
  if (r.requiredInt('c', 0, INT_MAX) !== Command.ServerAck) {
    throw new DecodeError('wrong-command', 'server ack: c is not 255');
  }
  return {
    uuid: readUuid(r),
    token: r.data('t', TOKEN_LENGTH, 'bad-token'),
    status: r.requiredInt('s'),
    extra: r.extra(),
  };
}

/** Parses courier payload bytes (binary or XML plist) that must hold a dict. */
export function decodeEnvelopeDict(bytes: Uint8Array): PlistDict {
  const value: PlistValue = parsePlist(bytes);
  return asDict(value, 'envelope');
}

export function encodeEnvelope(env: SendEnvelope): Uint8Array {
  return encodeBinaryPlist(buildEnvelope(env));
}

export function decodeEnvelope(bytes: Uint8Array): SendEnvelope {
  return parseEnvelope(decodeEnvelopeDict(bytes));
}

export function encodeIncoming(n: IncomingNotification): Uint8Array {
  return encodeBinaryPlist(buildIncoming(n));
}

export function decodeIncoming(bytes: Uint8Array): IncomingNotification {
  return parseIncoming(decodeEnvelopeDict(bytes));
}

export function encodeServerAck(ack: ServerAck): Uint8Array {
  return encodeBinaryPlist(buildServerAck(ack));
}

export function decodeServerAck(bytes: Uint8Array): ServerAck {
  return parseServerAck(decodeEnvelopeDict(bytes));
}

/** Effective scheme of a destination as the server resolves it (§6): entry E, else envelope E. */
export function effectiveEncryption(env: SendEnvelope, entry: DtlEntry): Encryption | undefined {
  return entry.encryption ?? env.encryption;
}
