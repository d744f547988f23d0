// The decrypted payload layer (imessage.md §3.6): a payload is a binary plist dict, optionally gzipped before
// encryption. Receivers gunzip when the gzip magic is present and accept binary or XML plists.
import { parsePlist, type PlistDict } from '../codec/plist';
import { encodeBinaryPlist } from '../codec/plist-binary';
import { DEFAULT_MAX_INFLATED, gzip, maybeGunzip } from '../codec/gzip';
import { asDict } from './fields';

export interface PayloadEncodeOptions {
  /** Gzip the plist. Senders differ ([BG] always, [RP] only plain text without `x`); receivers accept both. */
  gzip?: boolean;
}

export interface PayloadDecodeOptions {
  /** Cap on the gunzipped size. */
  maxInflated?: number;
}

export async function encodePayload(dict: PlistDict, options: PayloadEncodeOptions = {}): Promise<Uint8Array> {
  const plist = encodeBinaryPlist(dict);
  return options.gzip ? gzip(plist) : plist;
}

export async function decodePayload(bytes: Uint8Array, options: PayloadDecodeOptions = {}): Promise<PlistDict> {
  const plain = await maybeGunzip(bytes, options.maxInflated ?? DEFAULT_MAX_INFLATED);
  return asDict(parsePlist(plain), 'payload');
}
