// Delivery, read and certified-delivery receipts (imessage.md §7.1, §7.2). All are payload-less envelopes, so
// everything in them is visible to the server.
import type { PlistDict } from '../codec/plist';
import { encodeBinaryPlist } from '../codec/plist-binary';
import { DecodeError } from '../errors';
import { Command, ENVELOPE_VERSION } from './commands';
import {
  decodeEnvelopeDict,
  nowNs,
  randomMessageId,
  TOKEN_LENGTH,
  type DeviceAddress,
  type IncomingNotification,
  type SendEnvelope,
} from './envelope';
import { DictWriter, FieldReader } from './fields';

export interface DeliveryReceiptContext {
  /** ua of this client. */
  userAgent: string;
  /** sT of the sending device, from our lookup of the incoming `sP`. */
  sessionToken: Uint8Array;
  messageId?: number;
}

/** Whether an incoming notification asks for a c:101 (§7.1): send it after the payload was decrypted and stored. */
export function wantsDeliveryReceipt(incoming: IncomingNotification): boolean {
  return incoming.deliveryReceipt === true;
}

/** c:101 to the one device that sent `incoming`: sP/tP swapped, D false, no c:255 wanted. */
export function deliveryReceiptEnvelope(incoming: IncomingNotification, ctx: DeliveryReceiptContext): SendEnvelope {
  return {
    command: Command.DeliveryReceipt,
    chunkNumber: 1,
    version: ENVELOPE_VERSION,
    messageId: ctx.messageId ?? randomMessageId(),
    userAgent: ctx.userAgent,
    uuid: incoming.uuid,
    senderUri: incoming.targetUri,
    noResponse: true,
    destinations: [
      {
        targetUri: incoming.senderUri,
        token: incoming.senderToken,
        sessionToken: ctx.sessionToken,
        deliveryReceipt: false,
        extra: {},
      },
    ],
    extra: {},
  };
}

export interface ReadReceiptOptions {
  /** U of the newest message read ("read up to U"). */
  uuid: Uint8Array;
  senderUri: string;
  /** Every device of every participant, own other devices included. */
  destinations: DeviceAddress[];
  userAgent: string;
  messageId?: number;
  timestampNs?: bigint;
  /** [BG] sets nr, [RP] omits it; default true. */
  noResponse?: boolean;
}

/** c:102 (§7.2); D is set for other people's devices (tP ≠ sP). */
export function readReceiptEnvelope(o: ReadReceiptOptions): SendEnvelope {
  return {
    command: Command.ReadReceipt,
    chunkNumber: 1,
    version: ENVELOPE_VERSION,
    messageId: o.messageId ?? randomMessageId(),
    userAgent: o.userAgent,
    timestampNs: o.timestampNs ?? nowNs(),
    uuid: o.uuid,
    senderUri: o.senderUri,
    noResponse: o.noResponse ?? true,
    destinations: o.destinations.map((d) => ({
      targetUri: d.uri,
      token: d.token,
      sessionToken: d.sessionToken,
      deliveryReceipt: d.uri !== o.senderUri,
      extra: {},
    })),
    extra: {},
  };
}

/** c:109, device → server, answering a notification that carried cdv + cdr (§7.1). Not a fan-out: no dtl. */
export interface CertifiedDelivery {
  version: number;
  messageId: number;
  /** U of the delivered message. */
  uuid: Uint8Array;
  /** t: the sending device's token (the incoming `t`). */
  token: Uint8Array;
  /** cdr: the server's opaque receipt, returned unchanged. */
  receipt: Uint8Array;
  /** cdv */
  receiptVersion: number;
  userAgent?: string;
  noResponse?: boolean;
  /** sP / tP / gd ([RP]): set to also have the original sender notified. */
  senderUri?: string;
  targetUri?: string;
  notifySender?: boolean;
  extra: PlistDict;
}

export function buildCertifiedDelivery(c: CertifiedDelivery): PlistDict {
  return new DictWriter()
    .set('c', Command.CertifiedDelivery)
    .set('cdr', c.receipt)
    .set('cdv', c.receiptVersion)
    .set('U', c.uuid)
    .set('t', c.token)
    .set('i', c.messageId)
    .set('ua', c.userAgent)
    .set('v', c.version)
    .set('nr', c.noResponse)
    .set('tP', c.targetUri)
    .set('sP', c.senderUri)
    .set('gd', c.notifySender)
    .finish(c.extra);
}

export function parseCertifiedDelivery(dict: PlistDict): CertifiedDelivery {
  const r = new FieldReader(dict, 'certified delivery');
  if (r.requiredInt('c') !== Command.CertifiedDelivery) {
    throw new DecodeError('wrong-command', 'certified delivery: c is not 109');
  }
  return {
    receipt: r.requiredData('cdr'),
    receiptVersion: r.requiredInt('cdv', 0),
    uuid: r.requiredData('U', 16, 'bad-uuid'),
    token: r.requiredData('t', TOKEN_LENGTH, 'bad-token'),
    messageId: r.requiredInt('i', 0, 0xffffffff),
    userAgent: r.string('ua'),
    version: r.requiredInt('v', 0),
    noResponse: r.bool('nr'),
    targetUri: r.string('tP'),
    senderUri: r.string('sP'),
    notifySender: r.bool('gd'),
    extra: r.extra(),
  };
}

export function encodeCertifiedDelivery(c: CertifiedDelivery): Uint8Array {
  return encodeBinaryPlist(buildCertifiedDelivery(c));
}

export function decodeCertifiedDelivery(bytes: Uint8Array): CertifiedDelivery {
  return parseCertifiedDelivery(decodeEnvelopeDict(bytes));
}

/** The c:109 for `incoming`, or undefined when it carried no certified-delivery receipt. */
export function certifiedDeliveryFor(
  incoming: IncomingNotification,
  ctx: { userAgent: string; messageId?: number; notifySender: boolean },
): CertifiedDelivery | undefined {
  if (incoming.certifiedDeliveryReceipt === undefined || incoming.certifiedDeliveryVersion === undefined) return undefined;
  return {
    receipt: incoming.certifiedDeliveryReceipt,
    receiptVersion: incoming.certifiedDeliveryVersion,
    uuid: incoming.uuid,
    token: incoming.senderToken,
    messageId: ctx.messageId ?? randomMessageId(),
    userAgent: ctx.userAgent,
    version: ENVELOPE_VERSION,
    noResponse: true,
    ...(ctx.notifySender ? { targetUri: incoming.senderUri, senderUri: incoming.targetUri, notifySender: true } : {}),
    extra: {},
  };
}
