import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, equalBytes, fromBase64, fromHex, fromUtf8, readU64be, toBase64, toHex, u64be } from '../../../lib/codec/bytes';
import { DecodeError } from '../../../lib/errors';
import vectors from '../../vectors';

describe('bytes', () => {
  it('hex and base64 match fixed encodings', () => {
    expect(toHex(new Uint8Array([0, 1, 0xab, 0xff]))).toBe('0001abff');
    expect(toBase64(new Uint8Array([0xfb, 0xff]))).toBe('+/8=');
    expect(toBase64(new TextEncoder().encode('hello'))).toBe('aGVsbG8=');
    expect(toHex(fromBase64('-_8'))).toBe('fbff');
    expect(toHex(u64be(0x0102030405060708n))).toBe('0102030405060708');
    expect(readU64be(fromHex('ffffffffffffffff'))).toBe(0xffffffffffffffffn);
    expect(toHex(concat(fromHex('01'), fromHex(''), fromHex('0203')))).toBe('010203');
    expect(equalBytes(fromHex('0102'), fromHex('0103'))).toBe(false);
  });

  it('round-trips random bytes and matches the vectors file base64', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      expect(fromBase64(toBase64(b))).toEqual(b);
      expect(fromHex(toHex(b))).toEqual(b);
    }));
    expect(toBase64(fromBase64(vectors.ids_signature.signature_b64))).toBe(vectors.ids_signature.signature_b64);
  });

  it('rejects bad input with typed errors', () => {
    expect(() => fromHex('abc')).toThrow(DecodeError);
    expect(() => fromHex('zz')).toThrow(DecodeError);
    expect(() => fromBase64('a')).toThrow(DecodeError);
    expect(() => fromBase64('ab$d')).toThrow(DecodeError);
    expect(() => fromUtf8(new Uint8Array([0xff]))).toThrow(DecodeError);
  });
});
