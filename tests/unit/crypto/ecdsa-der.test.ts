import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import { DecodeError, EncodeError } from '../../../lib/errors';
import { der, readDer, readUnsignedInteger, unsignedInteger } from '../../../lib/codec/der';
import { ecdsaDerToRaw, ecdsaRawToDer } from '../../../lib/crypto/ecdsa-der';
import { subtle } from '../../../lib/crypto/subtle';
import vectors from '../../vectors';

const zeros = (n: number) => '00'.repeat(n);
const N = p256.Point.CURVE().n;

function bigToBytes(v: bigint): Uint8Array {
  return fromHex(v.toString(16).padStart(64, '0'));
}

function expectDecodeError(f: () => unknown, code?: string) {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    if (code) expect((e as DecodeError).code).toBe(code);
    return;
  }
  throw new Error('expected a DecodeError');
}

describe('DER primitives', () => {
  it('encodes minimal lengths', () => {
    expect(toHex(der(0x04, new Uint8Array(0x7f))).slice(0, 4)).toBe('047f');
    expect(toHex(der(0x04, new Uint8Array(0x80))).slice(0, 6)).toBe('048180');
    expect(toHex(der(0x04, new Uint8Array(0xff))).slice(0, 6)).toBe('0481ff');
    expect(toHex(der(0x04, new Uint8Array(0x100))).slice(0, 8)).toBe('04820100');
    expect(toHex(der(0x04, new Uint8Array(0x10000))).slice(0, 10)).toBe('0483010000');
    expect(toHex(der(0x05))).toBe('0500');
  });

  it('reads short and long form lengths and rejects non-DER forms', () => {
    const long = fromHex('0481' + '80' + zeros(0x80));
    const el = readDer(long);
    expect(el.tag).toBe(4);
    expect(el.content.length).toBe(0x80);
    expect(el.end).toBe(long.length);
    expect(readDer(fromHex('02820100' + zeros(0x100))).content.length).toBe(0x100);
    expectDecodeError(() => readDer(fromHex('04817f' + zeros(0x7f))), 'der-bad-length'); // should be short form
    expectDecodeError(() => readDer(fromHex('0482007f' + zeros(0x7f))), 'der-bad-length'); // leading zero
    expectDecodeError(() => readDer(fromHex('048000')), 'der-bad-length'); // BER indefinite
    expectDecodeError(() => readDer(fromHex('04840000000100')), 'der-bad-length');
    expectDecodeError(() => readDer(fromHex('1f0100')), 'der-bad-tag');
    expectDecodeError(() => readDer(fromHex('0403aabb')), 'der-truncated');
    expectDecodeError(() => readDer(fromHex('0482ffff00')), 'der-truncated');
    expectDecodeError(() => readDer(fromHex('04')), 'der-truncated');
    expectDecodeError(() => readDer(fromHex('0481')), 'der-truncated');
  });

  it('encodes and reads unsigned integers strictly', () => {
    expect(toHex(unsignedInteger(fromHex('0000')))).toBe('020100');
    expect(toHex(unsignedInteger(fromHex('')))).toBe('020100');
    expect(toHex(unsignedInteger(fromHex('00007f')))).toBe('02017f');
    expect(toHex(unsignedInteger(fromHex('80')))).toBe('02020080');
    expect(toHex(readUnsignedInteger(fromHex('0080')))).toBe('80');
    expect(toHex(readUnsignedInteger(fromHex('00')))).toBe('');
    expectDecodeError(() => readUnsignedInteger(fromHex('')), 'der-bad-integer');
    expectDecodeError(() => readUnsignedInteger(fromHex('007f')), 'der-bad-integer');
    expectDecodeError(() => readUnsignedInteger(fromHex('80')), 'der-negative-integer');
  });
});

describe('ECDSA raw <-> DER', () => {
  it('converts fixed signatures both ways', () => {
    const small = fromHex(zeros(31) + '01' + zeros(31) + '7f');
    expect(toHex(ecdsaRawToDer(small))).toBe('3006020101' + '02017f');
    expect(toHex(ecdsaDerToRaw(fromHex('3006020101' + '02017f')))).toBe(toHex(small));
    const high = fromHex('ff'.repeat(32) + '80' + zeros(31));
    const highDer = '3046' + '022100' + 'ff'.repeat(32) + '022100' + '80' + zeros(31);
    expect(toHex(ecdsaRawToDer(high))).toBe(highDer);
    expect(toHex(ecdsaDerToRaw(fromHex(highDer)))).toBe(toHex(high));
  });

  it('reads the signature of the first pair vector', () => {
    const payload = fromHex(vectors.legacy.pair[0]!.payload);
    const bodyLength = (payload[1]! << 8) | payload[2]!;
    const sig = payload.subarray(4 + bodyLength);
    expect(sig.length).toBe(payload[3 + bodyLength]);
    const raw = ecdsaDerToRaw(sig);
    expect(raw.length).toBe(64);
    expect(toHex(ecdsaRawToDer(raw))).toBe(toHex(sig));
  });

  it('rejects malformed or non-canonical signatures', () => {
    const bad: [string, string][] = [
      ['', 'der-truncated'],
      ['3106020101020101', 'der-unexpected-tag'],
      ['30060201010201', 'der-truncated'],
      ['300602010102010100', 'der-trailing-bytes'],
      ['3009020101020101050000', 'der-trailing-bytes'],
      ['300402010102', 'der-truncated'],
      ['3003020101', 'der-truncated'],
      ['308106' + '020101020101', 'der-bad-length'],
      ['30800201010201010000', 'der-bad-length'],
      ['30070202000102017f', 'der-bad-integer'],
      ['3006020181020101', 'der-negative-integer'],
      ['3006020100020101', 'bad-ecdsa-signature'],
      ['3006020101020100', 'bad-ecdsa-signature'],
      ['3006040101020101', 'der-unexpected-tag'],
      ['3026' + '022101' + zeros(32) + '020101', 'bad-ecdsa-signature'],
    ];
    for (const [hex, code] of bad) expectDecodeError(() => ecdsaDerToRaw(fromHex(hex)), code);
    expect(() => ecdsaRawToDer(new Uint8Array(63))).toThrow(EncodeError);
    expect(() => ecdsaRawToDer(new Uint8Array(0))).toThrow(EncodeError);
  });

  it('agrees with an independent encoder (noble) on random signatures', () => {
    const scalar = fc.bigInt({ min: 1n, max: N - 1n });
    fc.assert(
      fc.property(scalar, scalar, (r, s) => {
        const raw = new Uint8Array([...bigToBytes(r), ...bigToBytes(s)]);
        const ours = ecdsaRawToDer(raw);
        expect(toHex(ours)).toBe(toHex(p256.Signature.fromBytes(raw, 'compact').toBytes('der')));
        expect(ours.length).toBeLessThanOrEqual(72);
        expect(toHex(ecdsaDerToRaw(ours))).toBe(toHex(raw));
      }),
      { numRuns: 200 },
    );
  });

  it('accepts only canonical encodings: random and mutated inputs either fail typed or round-trip exactly', () => {
    const check = (input: Uint8Array) => {
      let raw: Uint8Array;
      try {
        raw = ecdsaDerToRaw(input);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        return;
      }
      expect(toHex(ecdsaRawToDer(raw))).toBe(toHex(input));
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), check), { numRuns: 300 });
    const valid = ecdsaRawToDer(fromHex('7f' + 'ab'.repeat(31) + '80' + 'cd'.repeat(31)));
    fc.assert(
      fc.property(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 3 }), (at, x, cut) => {
        const m = valid.slice(0, valid.length - cut);
        if (at < m.length) m[at]! ^= x;
        check(m);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips WebCrypto signatures and still verifies', async () => {
    const keys = await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const data = new Uint8Array([1, 2, 3]);
    for (let i = 0; i < 8; i++) {
      const raw = new Uint8Array(await subtle().sign({ name: 'ECDSA', hash: 'SHA-1' }, keys.privateKey, data));
      const back = ecdsaDerToRaw(ecdsaRawToDer(raw));
      expect(await subtle().verify({ name: 'ECDSA', hash: 'SHA-1' }, keys.publicKey, back as Uint8Array<ArrayBuffer>, data)).toBe(true);
    }
  });
});
