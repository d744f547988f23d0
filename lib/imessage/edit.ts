// Edit and unsend (imessage.md §3.5): c:118 payloads addressing one part of an earlier message. The envelope `U`
// is the edit's own fresh UUID; the target travels inside as `emg`.
import type { PlistDict } from '../codec/plist';
import { DecodeError } from '../errors';
import { DictWriter, FieldReader } from './fields';
import { PAYLOAD_VERSION } from './message';
import { decodePayload, encodePayload, type PayloadDecodeOptions, type PayloadEncodeOptions } from './payload';
import { buildXhtml, parseXhtml, type XhtmlPart } from './xhtml';

/** `et` values. */
export const EditType = { Edit: 1, Unsend: 2 } as const;

interface EditCommon {
  /** emg: GUID of the edited message. */
  targetUuid: string;
  /** epi: index of the edited part. */
  part: number;
  /** v: "1" ([BG]). */
  version?: string;
  extra: PlistDict;
}

export interface EditPayload extends EditCommon {
  kind: 'edit';
  /** epb: the part's new XHTML (`<html><body><span message-part="N">…</span></body></html>`). */
  newXhtml: string;
  /** t: the new plain text ([RP]). */
  newText?: string;
}

export interface UnsendPayload extends EditCommon {
  kind: 'unsend';
  /** rs: true on every unsend seen. */
  retracted?: boolean;
}

export type EditOrUnsend = EditPayload | UnsendPayload;

export function buildEdit(e: EditOrUnsend): PlistDict {
  const w = new DictWriter().set('emg', e.targetUuid).set('epi', e.part);
  if (e.kind === 'edit') {
    w.set('et', EditType.Edit).set('epb', e.newXhtml).set('t', e.newText);
  } else {
    w.set('et', EditType.Unsend).set('rs', e.retracted);
  }
  return w.set('v', e.version).finish(e.extra);
}

export function parseEdit(dict: PlistDict): EditOrUnsend {
  const r = new FieldReader(dict, 'edit payload');
  const targetUuid = r.requiredString('emg');
  const part = r.requiredInt('epi', 0);
  const et = r.requiredInt('et');
  const version = r.string('v');
  if (et === EditType.Edit) {
    const newXhtml = r.requiredString('epb');
    return { kind: 'edit', targetUuid, part, newXhtml, newText: r.string('t'), version, extra: r.extra() };
  }
  if (et === EditType.Unsend) {
    return { kind: 'unsend', targetUuid, part, retracted: r.bool('rs'), version, extra: r.extra() };
  }
  throw new DecodeError('unknown-edit-type', `et ${et} is neither edit (1) nor unsend (2)`);
}

export async function encodeEdit(e: EditOrUnsend, options?: PayloadEncodeOptions): Promise<Uint8Array> {
  return encodePayload(buildEdit(e), options);
}

export async function decodeEdit(bytes: Uint8Array, options?: PayloadDecodeOptions): Promise<EditOrUnsend> {
  return parseEdit(await decodePayload(bytes, options));
}

/** Replaces part `part` of message `targetUuid` with plain `text`. */
export function editMessage(o: { targetUuid: string; part: number; text: string }): EditPayload {
  return {
    kind: 'edit',
    targetUuid: o.targetUuid,
    part: o.part,
    newXhtml: buildXhtml([{ kind: 'text', part: o.part, text: o.text }]),
    newText: o.text,
    version: PAYLOAD_VERSION,
    extra: {},
  };
}

/** Withdraws part `part` of message `targetUuid`. */
export function unsendMessage(o: { targetUuid: string; part: number }): UnsendPayload {
  return { kind: 'unsend', targetUuid: o.targetUuid, part: o.part, retracted: true, version: PAYLOAD_VERSION, extra: {} };
}

/** The parts of an edit's new body. */
export function editParts(e: EditPayload): XhtmlPart[] {
  return parseXhtml(e.newXhtml);
}
