// The two wire framings of a courier connection (apns.md §2), chosen by ALPN alone: `apns-security-v3` (or no ALPN)
// is legacy TLV, `apns-pack-v1[:E:D]` is packed. Either way the connection logic sees legacy-form frames: packed
// frames are mapped to and from them here, with binary-plist payloads travelling as native packed trees.
import { FrameDecoder, encodeFrame, type ApnsFrame } from '../../lib/codec/apns-frame';
import {
  LEGACY_ALPN,
  PACKED_ALPN,
  PackedEncoder,
  PackedFrameDecoder,
  apnsToPacked,
  packedBudgets,
  packedToApns,
  packedToPlist,
  plistToPacked,
  type PackedValue,
  type PayloadCodec,
} from '../../lib/codec/apns-packed';
import { decodeBinaryPlist, encodeBinaryPlist } from '../../lib/codec/plist';

export interface CourierFraming {
  readonly packed: boolean;
  /** Legacy-form frames completed by this chunk; throws DecodeError on malformed or oversized input. */
  decode(chunk: Uint8Array): ApnsFrame[];
  encode(frame: ApnsFrame): Uint8Array;
}

/** What the server prefers, in order: packed when the client offers it. */
export const COURIER_ALPN_PROTOCOLS: readonly string[] = [PACKED_ALPN, LEGACY_ALPN];

/**
 * For a TLS server's ALPNCallback: packed when offered (unless `packed` is false), else legacy, else undefined
 * (a fatal alert). Node only lets a server pick one of the offered strings, so the `apns-pack-v1:E:D` form — never
 * offered by clients — cannot be selected through it; framingFor still understands it.
 */
export function selectCourierAlpn(offered: readonly string[], opts: { packed?: boolean } = {}): string | undefined {
  if (opts.packed !== false && offered.includes(PACKED_ALPN)) return PACKED_ALPN;
  return offered.includes(LEGACY_ALPN) ? LEGACY_ALPN : undefined;
}

const BPLIST_MAGIC = [0x62, 0x70, 0x6c, 0x69, 0x73, 0x74, 0x30, 0x30];

/** Binary-plist payloads become packed trees; anything else (JSON pushes, undecodable plists) stays data. */
export const plistPayloadCodec: PayloadCodec = {
  toPacked(payload: Uint8Array): PackedValue | undefined {
    if (payload.length < BPLIST_MAGIC.length || BPLIST_MAGIC.some((b, i) => payload[i] !== b)) return undefined;
    try {
      return plistToPacked(decodeBinaryPlist(payload));
    } catch {
      // Reals, dates and UIDs have no packed form; such a payload goes across as its bytes.
      return undefined;
    }
  },
  fromPacked(value: PackedValue): Uint8Array {
    return encodeBinaryPlist(packedToPlist(value));
  },
};

/** The framing for a negotiated ALPN protocol (false/null/'' = none = legacy). */
export function framingFor(alpn: string | false | null | undefined, opts: { maxFrameLength: number }): CourierFraming {
  const budgets = alpn ? packedBudgets(alpn) : undefined;
  if (!budgets) {
    const decoder = new FrameDecoder({ maxFrameLength: opts.maxFrameLength });
    return { packed: false, decode: (chunk) => decoder.push(chunk), encode: encodeFrame };
  }
  const mapping = { payload: plistPayloadCodec };
  const decoder = new PackedFrameDecoder({ tableBudget: budgets.toServer, maxFrameLength: opts.maxFrameLength });
  const encoder = new PackedEncoder({ tableBudget: budgets.toClient });
  return {
    packed: true,
    decode: (chunk) => decoder.push(chunk).map((f) => packedToApns(f, 'toServer', mapping)),
    encode: (frame) => encoder.encode(apnsToPacked(frame, 'toClient', mapping)),
  };
}
