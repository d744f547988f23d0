// Tapbacks (imessage.md §3.4): c:100 payloads whose `amt` names a reaction and `amk` the targeted message part.
import { parsePlist, type PlistDict } from '../codec/plist';
import { encodeBinaryPlist } from '../codec/plist-binary';
import { CeruleanError, DecodeError, EncodeError } from '../errors';
import { asDict, DictWriter, FieldReader } from './fields';
import { GROUP_VERSION, PAYLOAD_VERSION, readChatFields, writeChatFields, type ChatFields } from './message';
import { decodePayload, encodePayload, type PayloadDecodeOptions, type PayloadEncodeOptions } from './payload';
import { isUuidString } from './uuid';

export type TapbackReaction = 'love' | 'like' | 'dislike' | 'laugh' | 'emphasize' | 'question' | 'emoji' | 'sticker';

/** amt = 2000 + index; removing a reaction adds 1000. */
const REACTIONS: readonly TapbackReaction[] = ['love', 'like', 'dislike', 'laugh', 'emphasize', 'question', 'emoji', 'sticker'];
const AMT_BASE = 2000;
const AMT_REMOVE = 1000;

/** msi `amc` values: what kind of content was reacted to. */
export const TapbackContent = {
  Attachment: 0,
  Text: 1,
  Audio: 2,
  Image: 3,
  Contact: 4,
  Event: 5,
  Location: 6,
  Movie: 7,
  WalletPass: 8,
  Custom: 9,
} as const;

/** amk: `p:<part>/<GUID>` for a message part, `bp:<GUID>` for an app balloon. */
export type TapbackTarget = { kind: 'part'; part: number; uuid: string } | { kind: 'balloon'; uuid: string };

/** msi: a nested binary plist describing the target for the notification summary. */
export interface TapbackSummaryInfo {
  /** amc: TapbackContent value. */
  contentType: number;
  /** ams: the quoted text. */
  quotedText?: string;
  extra: PlistDict;
}

export interface Tapback extends ChatFields {
  reaction: TapbackReaction;
  /** True for amt 3000–3007 (reaction withdrawn). */
  remove: boolean;
  target: TapbackTarget;
  /** amrlc / amrln: start and length (UTF-16 units) of the targeted text range. */
  rangeStart?: number;
  rangeLength?: number;
  /** ame: the emoji of an emoji reaction (2006). */
  emoji?: string;
  summaryInfo?: TapbackSummaryInfo;
  /** t: human summary for clients without tapback support, e.g. `Loved “hi”`. */
  summary?: string;
  extra: PlistDict;
}

export function tapbackType(reaction: TapbackReaction, remove: boolean): number {
  return AMT_BASE + REACTIONS.indexOf(reaction) + (remove ? AMT_REMOVE : 0);
}

export function formatTapbackTarget(target: TapbackTarget): string {
  if (!isUuidString(target.uuid)) throw new EncodeError('bad-tapback-target', 'tapback target needs a UUID string');
  if (target.kind === 'balloon') return `bp:${target.uuid}`;
  if (!Number.isSafeInteger(target.part) || target.part < 0) {
    throw new EncodeError('bad-tapback-target', 'tapback part must be a non-negative integer');
  }
  return `p:${target.part}/${target.uuid}`;
}

export function parseTapbackTarget(amk: string): TapbackTarget {
  const part = /^p:([0-9]{1,9})\/(.+)$/.exec(amk);
  if (part && isUuidString(part[2]!)) return { kind: 'part', part: Number(part[1]), uuid: part[2]! };
  const balloon = /^bp:(.+)$/.exec(amk);
  if (balloon && isUuidString(balloon[1]!)) return { kind: 'balloon', uuid: balloon[1]! };
  throw new DecodeError('bad-tapback-target', 'amk is not p:<part>/<GUID> or bp:<GUID>');
}

function buildSummaryInfo(info: TapbackSummaryInfo): Uint8Array {
  return encodeBinaryPlist(new DictWriter().set('amc', info.contentType).set('ams', info.quotedText).finish(info.extra));
}

function parseSummaryInfo(bytes: Uint8Array): TapbackSummaryInfo {
  let dict: PlistDict;
  try {
    dict = asDict(parsePlist(bytes), 'tapback msi');
  } catch (e) {
    if (e instanceof CeruleanError) {
      throw new DecodeError('bad-tapback-info', 'tapback msi is not a plist dictionary', { cause: e });
    }
    throw e;
  }
  const r = new FieldReader(dict, 'tapback msi');
  return { contentType: r.requiredInt('amc'), quotedText: r.string('ams'), extra: r.extra() };
}

export function buildTapback(t: Tapback): PlistDict {
  const w = new DictWriter()
    .set('amt', tapbackType(t.reaction, t.remove))
    .set('amk', formatTapbackTarget(t.target))
    .set('amrlc', t.rangeStart)
    .set('amrln', t.rangeLength)
    .set('ame', t.emoji)
    .set('msi', t.summaryInfo && buildSummaryInfo(t.summaryInfo))
    .set('t', t.summary);
  return writeChatFields(w, t).finish(t.extra);
}

export function parseTapback(dict: PlistDict): Tapback {
  const r = new FieldReader(dict, 'tapback');
  const amt = r.requiredInt('amt');
  const remove = amt >= AMT_BASE + AMT_REMOVE;
  const reaction = REACTIONS[amt - AMT_BASE - (remove ? AMT_REMOVE : 0)];
  if (reaction === undefined) throw new DecodeError('not-a-tapback', `amt ${amt} is not a tapback type`);
  const msi = r.data('msi');
  return {
    reaction,
    remove,
    target: parseTapbackTarget(r.requiredString('amk')),
    rangeStart: r.int('amrlc', 0),
    rangeLength: r.int('amrln', 0),
    emoji: r.string('ame'),
    summaryInfo: msi && parseSummaryInfo(msi),
    summary: r.string('t'),
    ...readChatFields(r),
    extra: r.extra(),
  };
}

/** True when a decrypted c:100 payload is a tapback (carries an `amt`). */
export function isTapback(dict: PlistDict): boolean {
  return Object.prototype.hasOwnProperty.call(dict, 'amt');
}

export async function encodeTapback(t: Tapback, options?: PayloadEncodeOptions): Promise<Uint8Array> {
  return encodePayload(buildTapback(t), options);
}

export async function decodeTapback(bytes: Uint8Array, options?: PayloadDecodeOptions): Promise<Tapback> {
  return parseTapback(await decodePayload(bytes, options));
}

const ADDED: Record<TapbackReaction, string> = {
  love: 'Loved',
  like: 'Liked',
  dislike: 'Disliked',
  laugh: 'Laughed at',
  emphasize: 'Emphasized',
  question: 'Questioned',
  emoji: 'Reacted with an emoji to',
  sticker: 'Reacted with a sticker to',
};

const REMOVED: Record<TapbackReaction, string> = {
  love: 'Removed a heart from',
  like: 'Removed a like from',
  dislike: 'Removed a dislike from',
  laugh: 'Removed a laugh from',
  emphasize: 'Removed an exclamation from',
  question: 'Removed a question mark from',
  emoji: 'Removed an emoji from',
  sticker: 'Removed a sticker from',
};

/** The English fallback text old clients show, e.g. `Loved “hi”`; an emoji reaction names its emoji. */
export function tapbackSummary(reaction: TapbackReaction, remove: boolean, quotedText: string, emoji?: string): string {
  const quoted = `“${quotedText}”`;
  if (reaction === 'emoji' && emoji !== undefined) {
    return remove ? `Removed ${emoji} from ${quoted}` : `Reacted ${emoji} to ${quoted}`;
  }
  return `${(remove ? REMOVED : ADDED)[reaction]} ${quoted}`;
}

export interface TapbackOptions extends Omit<ChatFields, 'groupVersion' | 'version'> {
  reaction: TapbackReaction;
  remove?: boolean;
  /** The reacted-to message and part. */
  target: TapbackTarget;
  /** The text of the targeted part: quoted in the summary; its length is the default range. */
  quotedText: string;
  emoji?: string;
}

/** A text-part tapback with the usual defaults: whole-part range, msi {amc: text, ams}, English summary. */
export function tapback(o: TapbackOptions): Tapback {
  const remove = o.remove ?? false;
  if (o.reaction === 'emoji' && o.emoji === undefined) throw new EncodeError('missing-emoji', 'an emoji tapback needs its emoji');
  return {
    reaction: o.reaction,
    remove,
    target: o.target,
    rangeStart: 0,
    rangeLength: o.quotedText.length,
    emoji: o.emoji,
    summaryInfo: { contentType: TapbackContent.Text, quotedText: o.quotedText, extra: {} },
    summary: tapbackSummary(o.reaction, remove, o.quotedText, o.emoji),
    participants: o.participants,
    groupId: o.groupId,
    groupVersion: GROUP_VERSION,
    propertiesVersion: o.propertiesVersion ?? 0,
    version: PAYLOAD_VERSION,
    groupName: o.groupName,
    extra: {},
  };
}
