// The conversion between WebCrypto's raw ECDSA signature (r ‖ s, fixed width) and the DER
// SEQUENCE{INTEGER r, INTEGER s} that "pair" carries on the wire.
import { der, DER_INTEGER, DER_SEQUENCE, expectDer, expectOnlyDer, readUnsignedInteger, unsignedInteger } from '../codec/der';
import { DecodeError, EncodeError } from '../errors';

/** WebCrypto's raw `r ‖ s` (two equal halves) → DER `SEQUENCE{INTEGER r, INTEGER s}`. */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new EncodeError('bad-ecdsa-signature', 'raw ECDSA signature must be two equal halves');
  }
  const half = raw.length / 2;
  return der(DER_SEQUENCE, unsignedInteger(raw.subarray(0, half)), unsignedInteger(raw.subarray(half)));
}

/**
 * DER ECDSA signature → raw `r ‖ s`, each left-padded to `size` bytes (32 for P-256). Rejects anything but a
 * strict encoding of two integers in 1..2^(8·size)-1; whether they are below the curve order is left to verify.
 */
export function ecdsaDerToRaw(sig: Uint8Array, size = 32): Uint8Array {
  const seq = expectOnlyDer(sig, DER_SEQUENCE);
  const r = expectDer(seq, DER_INTEGER);
  const s = expectDer(seq, DER_INTEGER, r.end);
  if (s.end !== seq.length) throw new DecodeError('der-trailing-bytes', 'bytes after s in ECDSA signature');
  const out = new Uint8Array(size * 2);
  for (const [i, el] of [r, s].entries()) {
    const m = readUnsignedInteger(el.content);
    if (m.length === 0) throw new DecodeError('bad-ecdsa-signature', 'ECDSA signature component is zero');
    if (m.length > size) throw new DecodeError('bad-ecdsa-signature', 'ECDSA signature component is too large');
    out.set(m, i * size + size - m.length);
  }
  return out;
}
