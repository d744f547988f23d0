// Typing indicators (imessage.md §7.3): c:100 envelopes with `eX: 0`. A 1:1 start carries no payload; group
// start/stop (and [RP]'s 1:1 stop) carry an encrypted payload whose `u` says whether typing began.
import type { PlistDict } from '../codec/plist';
import { Command, ENVELOPE_VERSION } from './commands';
import {
  nowNs,
  randomMessageId,
  randomUuid,
  type DeviceAddress,
  type Encryption,
  type IncomingNotification,
  type SendEnvelope,
} from './envelope';
import { DictWriter, FieldReader } from './fields';
import { GROUP_VERSION, PAYLOAD_VERSION, readChatFields, writeChatFields, type ChatFields } from './message';
import { decodePayload, encodePayload, type PayloadDecodeOptions, type PayloadEncodeOptions } from './payload';

export interface TypingPayload extends ChatFields {
  /** u: true while typing; absent on a stop. */
  typing?: boolean;
  /** gt: true for group typing. */
  groupTyping?: boolean;
  /** bid: bundle id for app typing. */
  bundleId?: string;
  /** tic: gzipped app icon. */
  appIcon?: Uint8Array;
  extra: PlistDict;
}

export function buildTypingPayload(t: TypingPayload): PlistDict {
  return writeChatFields(new DictWriter(), t)
    .set('u', t.typing)
    .set('gt', t.groupTyping)
    .set('bid', t.bundleId)
    .set('tic', t.appIcon)
    .finish(t.extra);
}

export function parseTypingPayload(dict: PlistDict): TypingPayload {
  const r = new FieldReader(dict, 'typing payload');
  return {
    ...readChatFields(r),
    typing: r.bool('u'),
    groupTyping: r.bool('gt'),
    bundleId: r.string('bid'),
    appIcon: r.data('tic'),
    extra: r.extra(),
  };
}

export async function encodeTypingPayload(t: TypingPayload, options?: PayloadEncodeOptions): Promise<Uint8Array> {
  return encodePayload(buildTypingPayload(t), options);
}

export async function decodeTypingPayload(bytes: Uint8Array, options?: PayloadDecodeOptions): Promise<TypingPayload> {
  return parseTypingPayload(await decodePayload(bytes, options));
}

interface TypingChat {
  participants: string[];
  groupId: string;
  groupName?: string;
}

/** `{p, gid, pv:0, gv:"8", n?, u:true, gt:true}` ([RP] group start; `gt` only in groups). */
export function typingStartPayload(o: TypingChat & { group?: boolean; bundleId?: string; appIcon?: Uint8Array }): TypingPayload {
  return {
    participants: o.participants,
    groupId: o.groupId,
    propertiesVersion: 0,
    groupVersion: GROUP_VERSION,
    groupName: o.groupName,
    typing: true,
    groupTyping: (o.group ?? true) ? true : undefined,
    bundleId: o.bundleId,
    appIcon: o.appIcon,
    extra: {},
  };
}

/** `{p, gid, pv:0, gv:"8", v:"1", n?}` — no `u` ([RP] stop). */
export function typingStopPayload(o: TypingChat): TypingPayload {
  return {
    participants: o.participants,
    groupId: o.groupId,
    propertiesVersion: 0,
    groupVersion: GROUP_VERSION,
    version: PAYLOAD_VERSION,
    groupName: o.groupName,
    extra: {},
  };
}

export interface TypingEnvelopeOptions {
  senderUri: string;
  /** Devices to tell; entries with `payload` carry an encrypted TypingPayload, entries without make a 1:1 start. */
  destinations: (DeviceAddress & { payload?: Uint8Array; encryption?: Encryption })[];
  encryption?: Encryption;
  userAgent?: string;
  uuid?: Uint8Array;
  messageId?: number;
  timestampNs?: bigint;
}

/** `{c:100, v:8, i, U:<fresh>, sP, eX:0, nr:true, htu:true, e, dtl}`; no D, not stored by the server. */
export function typingEnvelope(o: TypingEnvelopeOptions): SendEnvelope {
  return {
    command: Command.Message,
    version: ENVELOPE_VERSION,
    messageId: o.messageId ?? randomMessageId(),
    uuid: o.uuid ?? randomUuid(),
    senderUri: o.senderUri,
    destinations: o.destinations.map((d) => ({
      targetUri: d.uri,
      token: d.token,
      sessionToken: d.sessionToken,
      payload: d.payload,
      encryption: d.encryption,
      extra: {},
    })),
    encryption: o.encryption,
    userAgent: o.userAgent,
    noResponse: true,
    expirySeconds: 0,
    timestampNs: o.timestampNs ?? nowNs(),
    htu: true,
    extra: {},
  };
}

export type TypingState = 'started' | 'stopped' | 'not-typing' | 'needs-payload';

/**
 * The receiver rule: `eX` present and no `P` → started; `eX` with `P` → the decrypted payload's `u` decides
 * ('needs-payload' until it is given). A normal message (no `eX`) is 'not-typing' and implicitly ends typing.
 */
export function classifyTyping(incoming: IncomingNotification, decryptedPayload?: PlistDict): TypingState {
  if (incoming.command !== Command.Message || incoming.expirySeconds === undefined) return 'not-typing';
  if (incoming.payload === undefined) return 'started';
  if (decryptedPayload === undefined) return 'needs-payload';
  // Only `u` matters here; the rest of the payload is the chat's business.
  return new FieldReader(decryptedPayload, 'typing payload').bool('u') === true ? 'started' : 'stopped';
}
