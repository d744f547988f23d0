// The decrypted payload of a normal iMessage, command 100 (imessage.md §3.1), and the conversation fields it
// shares with tapbacks and typing payloads (p, gid, gv, pv, v, n).
import type { PlistDict } from '../codec/plist';
import { DecodeError, EncodeError } from '../errors';
import { DictWriter, FieldReader } from './fields';
import { decodePayload, encodePayload, type PayloadDecodeOptions, type PayloadEncodeOptions } from './payload';
import { isUuidString } from './uuid';
import { buildXhtml, parseXhtml, type XhtmlPart } from './xhtml';

/** `gv` every current client sends. */
export const GROUP_VERSION = '8';
/** `v` of message payloads. */
export const PAYLOAD_VERSION = '1';

/** Conversation identity carried by every c:100-style payload (§8). */
export interface ChatFields {
  /** p: every participant including the sender, as URIs. */
  participants: string[];
  /** gid: conversation UUID string (compare case-insensitively). */
  groupId?: string;
  /** gv: "8". */
  groupVersion?: string;
  /** pv: group properties version; 0 in 1:1. */
  propertiesVersion?: number;
  /** v: "1". */
  version?: string;
  /** n: group name. */
  groupName?: string;
}

export function readChatFields(r: FieldReader): ChatFields {
  return {
    participants: r.requiredStrings('p'),
    groupId: r.string('gid'),
    groupVersion: r.string('gv'),
    propertiesVersion: r.int('pv'),
    version: r.string('v'),
    groupName: r.string('n'),
  };
}

export function writeChatFields(w: DictWriter, f: ChatFields): DictWriter {
  return w
    .set('p', f.participants)
    .set('gid', f.groupId)
    .set('gv', f.groupVersion)
    .set('pv', f.propertiesVersion)
    .set('v', f.version)
    .set('n', f.groupName);
}

/** Text and reply fields of a c:100 payload; tapback keys (§3.4), `ia-N`, balloons etc. stay in `extra`. */
export interface TextMessage extends ChatFields {
  /** t: plain text, U+FFFC per attachment/object. Absent in a few c:100 payloads (e.g. [RP] typing stop). */
  text?: string;
  /** x: XHTML body (§3.2); see messageParts(). */
  xhtml?: string;
  /** r: ⚠ disputed: this message's own UUID ([PY]) or the previous message's ([BG]/[RP]). Identify messages by
   *  the envelope `U`, not by this. */
  referenceUuid?: string;
  /** s: subject line. */
  subject?: string;
  /** iid: send effect, e.g. `com.apple.MobileSMS.expressivesend.impact`. */
  effect?: string;
  /** tg: reply thread origin `r:<part>:<start>:<length>:<GUID>`; see parseThreadOrigin(). */
  threadOrigin?: string;
  extra: PlistDict;
}

export function buildTextMessage(m: TextMessage): PlistDict {
  const w = new DictWriter().set('t', m.text).set('x', m.xhtml);
  return writeChatFields(w, m)
    .set('r', m.referenceUuid)
    .set('s', m.subject)
    .set('iid', m.effect)
    .set('tg', m.threadOrigin)
    .finish(m.extra);
}

export function parseTextMessage(dict: PlistDict): TextMessage {
  const r = new FieldReader(dict, 'message payload');
  return {
    text: r.string('t'),
    xhtml: r.string('x'),
    ...readChatFields(r),
    referenceUuid: r.string('r'),
    subject: r.string('s'),
    effect: r.string('iid'),
    threadOrigin: r.string('tg'),
    extra: r.extra(),
  };
}

export async function encodeTextMessage(m: TextMessage, options?: PayloadEncodeOptions): Promise<Uint8Array> {
  return encodePayload(buildTextMessage(m), options);
}

export async function decodeTextMessage(bytes: Uint8Array, options?: PayloadDecodeOptions): Promise<TextMessage> {
  return parseTextMessage(await decodePayload(bytes, options));
}

/** Where a reply attaches: a range of one part of the thread's origin message. */
export interface ThreadOrigin {
  part: number;
  start: number;
  length: number;
  /** GUID of the origin message. */
  uuid: string;
}

const THREAD_ORIGIN = /^r:([0-9]{1,9}):([0-9]{1,9}):([0-9]{1,9}):(.+)$/;

export function formatThreadOrigin(o: ThreadOrigin): string {
  for (const n of [o.part, o.start, o.length]) {
    if (!Number.isSafeInteger(n) || n < 0 || n > 999_999_999) {
      throw new EncodeError('bad-thread-origin', 'thread origin numbers must be non-negative integers');
    }
  }
  if (!isUuidString(o.uuid)) throw new EncodeError('bad-thread-origin', 'thread origin needs a UUID string');
  return `r:${o.part}:${o.start}:${o.length}:${o.uuid}`;
}

export function parseThreadOrigin(tg: string): ThreadOrigin {
  const m = THREAD_ORIGIN.exec(tg);
  if (!m || !isUuidString(m[4]!)) throw new DecodeError('bad-thread-origin', 'tg is not r:<part>:<start>:<length>:<GUID>');
  return { part: Number(m[1]), start: Number(m[2]), length: Number(m[3]), uuid: m[4]! };
}

export interface TextMessageOptions {
  /** One string = one plain part (no `x`); several = message parts 0…N−1, sent with an `x` body. */
  text: string | readonly string[];
  participants: string[];
  groupId?: string;
  groupName?: string;
  /** Defaults to 0 (1:1). */
  propertiesVersion?: number;
  subject?: string;
  effect?: string;
  replyTo?: ThreadOrigin;
  referenceUuid?: string;
}

/** A plain-text message with the defaults every client sends (gv "8", v "1", pv 0). */
export function textMessage(o: TextMessageOptions): TextMessage {
  const parts = typeof o.text === 'string' ? [o.text] : o.text;
  return {
    // `t` is the concatenation of the parts: Apple derives it from one attributed string split into parts.
    text: parts.join(''),
    xhtml: parts.length > 1 ? buildXhtml(parts.map((text, part) => ({ kind: 'text', part, text }))) : undefined,
    participants: o.participants,
    groupId: o.groupId,
    groupVersion: GROUP_VERSION,
    propertiesVersion: o.propertiesVersion ?? 0,
    version: PAYLOAD_VERSION,
    groupName: o.groupName,
    referenceUuid: o.referenceUuid,
    subject: o.subject,
    effect: o.effect,
    threadOrigin: o.replyTo ? formatThreadOrigin(o.replyTo) : undefined,
    extra: {},
  };
}

/** The message's parts: from `x` when present, else `t` as the single part 0. */
export function messageParts(m: TextMessage): XhtmlPart[] {
  if (m.xhtml !== undefined) return parseXhtml(m.xhtml);
  return [{ kind: 'text', part: 0, text: m.text ?? '' }];
}
