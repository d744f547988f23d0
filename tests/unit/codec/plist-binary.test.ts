import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, fromHex, toHex, u64be, utf8 } from '../../../lib/codec/bytes';
import { gunzip } from '../../../lib/codec/gzip';
import { decodeBinaryPlist, encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import {
  PlistReal,
  PlistUID,
  isDict,
  narrowInteger,
  setPlistKey,
  type PlistDict,
  type PlistValue,
} from '../../../lib/codec/plist';
import { DecodeError, EncodeError } from '../../../lib/errors';
import vectors from '../../vectors';

const MAGIC = '62706c6973743030'; // "bplist00"

/** Trailer: 5 unused bytes, sortVersion 0, offsetIntSize, objectRefSize, numObjects, topObject, offsetTableOffset. */
function trailer(offsetSize: number, refSize: number, numObjects: bigint, top: bigint, tableOffset: bigint): string {
  return '0000000000' + '00' + toHex(Uint8Array.of(offsetSize, refSize)) + toHex(concat(u64be(numObjects), u64be(top), u64be(tableOffset)));
}

/** A plist from hand-written object bytes: offsets are laid out in order after the magic, 1-byte sizes. */
function assemble(objects: string[], top = 0, refSize = 1): Uint8Array {
  const offsets: number[] = [];
  let pos = 8;
  for (const o of objects) {
    offsets.push(pos);
    pos += o.replace(/\s/g, '').length / 2;
  }
  const table = toHex(Uint8Array.from(offsets));
  return fromHex(MAGIC + objects.join('') + table + trailer(1, refSize, BigInt(objects.length), BigInt(top), BigInt(pos)));
}

function decodeError(f: () => unknown): DecodeError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return e as DecodeError;
  }
  throw new Error('expected a DecodeError');
}

function encodeErrorCode(v: unknown): string {
  try {
    encodeBinaryPlist(v as PlistValue);
  } catch (e) {
    expect(e).toBeInstanceOf(EncodeError);
    return (e as EncodeError).code;
  }
  throw new Error('expected an EncodeError');
}

describe('binary plist fixed vectors (hand-derived from the format)', () => {
  it('{a: 1}', () => {
    const hex =
      MAGIC +
      'd1 01 02' + // obj 0 @8: dict of 1, key ref 1, value ref 2
      '51 61' + //    obj 1 @11: ASCII string of 1, "a"
      '10 01' + //    obj 2 @13: 1-byte int 1
      '08 0b 0d' + // offset table @15
      trailer(1, 1, 3n, 0n, 15n);
    expect(toHex(encodeBinaryPlist({ a: 1 }))).toBe(hex.replace(/\s/g, ''));
    expect(decodeBinaryPlist(fromHex(hex))).toStrictEqual({ a: 1 });
  });

  it('an array with UTF-16 strings (BMP and a surrogate pair)', () => {
    const hex =
      MAGIC +
      'a3 01 02 03' + //      obj 0 @8: array of 3
      '61 00e9' + //          obj 1 @12: UTF-16 string of 1 unit, "é"
      '62 d83d de00' + //     obj 2 @15: UTF-16 string of 2 units, U+1F600 as a surrogate pair
      '51 78' + //            obj 3 @20: ASCII "x"
      '08 0c 0f 14' + //      offset table @22
      trailer(1, 1, 4n, 0n, 22n);
    expect(toHex(encodeBinaryPlist(['é', '\u{1f600}', 'x']))).toBe(hex.replace(/\s/g, ''));
    expect(decodeBinaryPlist(fromHex(hex))).toStrictEqual(['é', '\u{1f600}', 'x']);
  });

  it('a top-level unsigned 64-bit integer takes the 16-byte form', () => {
    const hex = MAGIC + '14 0000000000000000 ffffffffffffffff' + '08' + trailer(1, 1, 1n, 0n, 25n);
    expect(toHex(encodeBinaryPlist(2n ** 64n - 1n))).toBe(hex.replace(/\s/g, ''));
    expect(decodeBinaryPlist(fromHex(hex))).toBe(2n ** 64n - 1n);
  });

  it('every scalar type, the count escape, and a shared string', () => {
    const value: PlistValue = [
      true,
      -1,
      1.5,
      Uint8Array.of(1, 2, 3),
      new PlistReal(2),
      'abcdefghijklmno',
      256,
      65536,
      2 ** 32,
      2n ** 64n - 1n,
      'é',
      new Date(Date.UTC(2001, 0, 2)),
      new PlistUID(300),
      'abcdefghijklmno',
      {},
    ];
    const hex =
      MAGIC +
      'af 10 0f 0102030405060708090a0b0c0d060e' + // @8 array, count 15 in a following int; the repeated string is ref 6 twice
      '09' + //                                     @26 true
      '13 ffffffffffffffff' + //                    @27 -1: negatives always take 8 bytes
      '23 3ff8000000000000' + //                    @36 real 1.5
      '43 010203' + //                              @45 data of 3
      '23 4000000000000000' + //                    @49 PlistReal(2): an 8-byte real
      '5f 10 0f 6162636465666768696a6b6c6d6e6f' + // @58 ASCII string of 15: count escape 0xF + int 0x10 0x0f
      '11 0100' + //                                @76 256 in 2 bytes
      '12 00010000' + //                            @79 65536 in 4 bytes
      '13 0000000100000000' + //                    @84 2^32 in 8 bytes
      '14 0000000000000000 ffffffffffffffff' + //   @93 2^64-1 in 16 bytes
      '61 00e9' + //                                @110 "é"
      '33 40f5180000000000' + //                    @113 date: 86400.0 s after 2001-01-01
      '81 012c' + //                                @122 UID 300 in 2 bytes
      'd0' + //                                     @125 empty dict
      '08 1a 1b 24 2d 31 3a 4c 4f 54 5d 6e 71 7a 7d' + // offset table @126
      trailer(1, 1, 15n, 0n, 126n);
    expect(toHex(encodeBinaryPlist(value))).toBe(hex.replace(/\s/g, ''));
    expect(decodeBinaryPlist(fromHex(hex))).toStrictEqual(value);
  });

  it('a dict of 261 objects needs 2-byte refs, and its 1441-byte object area 2-byte offsets', () => {
    const dict: PlistDict = {};
    for (let i = 0; i < 130; i++) dict['k' + String(i).padStart(3, '0')] = i;
    // Objects: 0 the dict, 1..130 the keys, 131..260 the values 0..129.
    const refs = (from: number) => Array.from({ length: 130 }, (_, i) => (from + i).toString(16).padStart(4, '0')).join('');
    const keys = Array.from({ length: 130 }, (_, i) => '54' + toHex(utf8('k' + String(i).padStart(3, '0')))).join('');
    const values = Array.from({ length: 130 }, (_, i) => '10' + i.toString(16).padStart(2, '0')).join('');
    // dict @8: df 10 82 + 260 refs of 2 bytes = 523 bytes; keys @531, 5 bytes each; values @1181, 2 bytes each.
    const offsets = [8, ...Array.from({ length: 130 }, (_, i) => 531 + 5 * i), ...Array.from({ length: 130 }, (_, i) => 1181 + 2 * i)];
    const table = offsets.map((o) => o.toString(16).padStart(4, '0')).join('');
    const hex = MAGIC + 'df1082' + refs(1) + refs(131) + keys + values + table + trailer(2, 2, 261n, 0n, 1441n);
    expect(toHex(encodeBinaryPlist(dict))).toBe(hex);
    expect(decodeBinaryPlist(fromHex(hex))).toStrictEqual(dict);
  });

  it('decodes the forms the encoder never writes', () => {
    const one = (obj: string) => decodeBinaryPlist(assemble([obj]));
    expect(one('22 3fc00000')).toBe(1.5); // 4-byte real
    expect(one('22 40000000')).toStrictEqual(new PlistReal(2));
    expect(one('13 0000000000000005')).toBe(5); // 8 bytes where 1 would do
    expect(one('14 00000000000000000000000000000005')).toBe(5);
    expect(one('14 ffffffffffffffffffffffffffffffff')).toBe(-1); // 16-byte ints are signed
    expect(one('13 7fffffffffffffff')).toBe(2n ** 63n - 1n);
    expect(one('13 8000000000000000')).toBe(-(2n ** 63n));
    expect(one('12 ffffffff')).toBe(2 ** 32 - 1);
    expect(one('80 05')).toStrictEqual(new PlistUID(5));
    expect(one('83 00010000')).toStrictEqual(new PlistUID(65536));
    expect(one('60')).toBe('');
    expect(one('4f 10 00')).toStrictEqual(new Uint8Array(0)); // count escape holding a small count
    expect(one('33 c1e0000000000000')).toStrictEqual(new Date(Date.UTC(2001, 0, 1) - 2 ** 31 * 1000));
    expect(one('33 3f50624dd2f1a9fc')).toStrictEqual(new Date(Date.UTC(2001, 0, 1, 0, 0, 0, 1))); // 0.001 s
  });

  it('keeps lone surrogates in UTF-16 strings, both ways', () => {
    const bytes = assemble(['62 d800 0041']);
    expect(decodeBinaryPlist(bytes)).toBe('\ud800A');
    expect(encodeBinaryPlist('\ud800A')).toStrictEqual(bytes);
  });

  it('writes a 300-unit string with a 2-byte count', () => {
    const s = 'y'.repeat(300);
    expect(toHex(encodeBinaryPlist(s).subarray(8, 12))).toBe('5f11012c');
  });
});

describe('binary plist vectors made by Python plistlib', () => {
  it('decodes every legacy pair plaintext and re-encodes it byte for byte', async () => {
    expect(vectors.legacy.pair.length).toBeGreaterThan(0);
    for (const v of vectors.legacy.pair) {
      const bytes = v.gzipped ? await gunzip(fromHex(v.plaintext)) : fromHex(v.plaintext);
      const value = decodeBinaryPlist(bytes);
      expect(isDict(value)).toBe(true);
      const d = value as PlistDict;
      expect(d.t).toBe(v.text);
      expect(d.p).toStrictEqual(v.participants);
      expect(d.r).toBe(v.message_id);
      expect(toHex(encodeBinaryPlist(value))).toBe(toHex(bytes));
    }
  });
});

describe('binary plist bad input', () => {
  const good = encodeBinaryPlist({ a: [1, 'b'] });
  const end = good.length - 32;
  const patched = (at: number, hex: string) => {
    const b = good.slice();
    b.set(fromHex(hex), at);
    return b;
  };

  it('rejects broken headers and trailers', () => {
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'bplist-malformed'],
      [fromHex(MAGIC), 'bplist-malformed'],
      [patched(7, '31'), 'bplist-malformed'], // bplist01
      [patched(end + 6, '00'), 'bplist-malformed'], // offset size 0
      [patched(end + 6, '09'), 'bplist-malformed'],
      [patched(end + 7, '00'), 'bplist-malformed'], // ref size 0
      [patched(end + 7, '09'), 'bplist-malformed'],
      [patched(end + 8, '0000000000000000'), 'bplist-malformed'], // no objects
      [patched(end + 16, '00000000000000ff'), 'bplist-malformed'], // top object out of range
      [patched(end + 24, '0000000000000008'), 'bplist-malformed'], // table over the header
      [patched(end + 24, 'ffffffffffffffff'), 'bplist-malformed'], // table past the end (u64 overflow)
      [patched(end - 1, 'ff'), 'bplist-malformed'], // an offset inside the table
      [patched(end - 1, '02'), 'bplist-malformed'], // an offset inside the magic
    ];
    for (const [bytes, code] of cases) expect(decodeError(() => decodeBinaryPlist(bytes)).code).toBe(code);
  });

  it('fails fast on object counts the buffer cannot hold, without allocating', () => {
    for (const n of [2n ** 32n, 2n ** 64n - 1n, 2n ** 53n + 1n]) {
      const bytes = fromHex(MAGIC + '09' + '08' + trailer(1, 1, n, 0n, 9n));
      const t0 = performance.now();
      expect(decodeError(() => decodeBinaryPlist(bytes, { maxObjects: Infinity })).code).toBe('bplist-malformed');
      expect(decodeError(() => decodeBinaryPlist(bytes)).code).toBe('plist-too-many-objects');
      expect(performance.now() - t0).toBeLessThan(50);
    }
    // Container and string counts of 2^64-1 against a few bytes.
    for (const obj of ['af 13 ffffffffffffffff', 'df 13 ffffffffffffffff', '5f 13 ffffffffffffffff', '6f 12 ffffffff', '4f 13 ffffffffffffffff']) {
      expect(decodeError(() => decodeBinaryPlist(assemble([obj]))).message).toMatch(/count exceeds/);
    }
  });

  it('rejects bad objects', () => {
    const cases: [string[], string][] = [
      [['15 00'], 'bplist-malformed'], // 32-byte int
      [['13 0000'], 'bplist-malformed'], // int past the object area
      [['14 00000000000000010000000000000000'], 'plist-int-range'], // 2^64
      [['14 fffffffffffffffe0000000000000000'], 'plist-int-range'], // below -2^63
      [['21 0000'], 'bplist-malformed'], // 2-byte real
      [['32 00000000'], 'bplist-unsupported'], // 4-byte date
      [['33 7ff8000000000000'], 'plist-bad-date'], // NaN date
      [['33 7fefffffffffffff'], 'plist-bad-date'],
      [['52 61ff'], 'bplist-malformed'], // non-ASCII byte in an ASCII string
      [['62 00'], 'bplist-malformed'], // UTF-16 string with an odd byte count left
      [['5f 14 00'], 'bplist-malformed'], // count held in a 16-byte int
      [['5f 20 00'], 'bplist-malformed'], // count held in a real
      [['5f'], 'bplist-malformed'], // count escape at the end
      [['89 00'], 'bplist-malformed'], // 10-byte UID
      [['87 0020000000000000'], 'bplist-malformed'], // UID past 2^53
      [['00'], 'bplist-unsupported'], // null
      [['0f'], 'bplist-unsupported'], // fill
      [['c1 01', '09'], 'bplist-unsupported'], // set
      [['a1 05', '09'], 'bplist-malformed'], // ref out of range
      [['a1 00'], 'plist-cycle'], // array containing itself
      [['a1 01', 'a1 00'], 'plist-cycle'],
      [['d1 00 01', '09'], 'plist-cycle'], // dict whose key is itself
      [['d1 01 02', '10 01', '09'], 'bplist-malformed'], // non-string key
      [['d2 01 01 02 02', '51 61', '09'], 'plist-duplicate-key'],
      [['a2 01'], 'bplist-malformed'], // refs run into the offset table
    ];
    for (const [objects, code] of cases) {
      expect(decodeError(() => decodeBinaryPlist(assemble(objects))).code, objects.join(' | ')).toBe(code);
    }
  });

  it('keeps __proto__ an ordinary key', () => {
    const v = decodeBinaryPlist(assemble(['d1 01 02', '59 5f5f70726f746f5f5f', '09'])) as PlistDict;
    expect(Object.keys(v)).toStrictEqual(['__proto__']);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(toHex(encodeBinaryPlist(v))).toBe(toHex(assemble(['d1 01 02', '59 5f5f70726f746f5f5f', '09'])));
  });

  it('enforces depth, object and size limits', () => {
    // Six nested arrays: a1 01, a1 02, ..., a0.
    const nested = assemble(['a1 01', 'a1 02', 'a1 03', 'a1 04', 'a1 05', 'a0']);
    expect(decodeBinaryPlist(nested, { maxDepth: 6 })).toStrictEqual([[[[[[]]]]]]);
    expect(decodeError(() => decodeBinaryPlist(nested, { maxDepth: 5 })).code).toBe('plist-too-deep');
    expect(decodeError(() => decodeBinaryPlist(nested, { maxObjects: 5 })).code).toBe('plist-too-many-objects');
    expect(decodeError(() => decodeBinaryPlist(nested, { maxBytes: nested.length - 1 })).code).toBe('plist-too-large');
  });

  it('bounds the expansion of shared references (a billion-laughs DAG)', () => {
    // Object i is [i+1, i+1]: 40 levels would expand to 2^41 nodes.
    const levels = Array.from({ length: 40 }, (_, i) => 'a2' + (i + 1).toString(16).padStart(2, '0').repeat(2));
    const bomb = assemble([...levels, '51 78']);
    const t0 = performance.now();
    expect(decodeError(() => decodeBinaryPlist(bomb)).code).toBe('plist-too-many-objects');
    expect(performance.now() - t0).toBeLessThan(2000);
    // A shallow DAG expands into an ordinary tree.
    const small = assemble(['a2 01 01', 'a2 02 02', '51 78']);
    expect(decodeBinaryPlist(small)).toStrictEqual([
      ['x', 'x'],
      ['x', 'x'],
    ]);
  });
});

describe('binary plist encoder errors', () => {
  it('rejects values outside the model', () => {
    expect(encodeErrorCode(null)).toBe('plist-bad-type');
    expect(encodeErrorCode(undefined)).toBe('plist-bad-type');
    expect(encodeErrorCode({ a: undefined })).toBe('plist-bad-type');
    expect(encodeErrorCode(new Map())).toBe('plist-bad-type');
    expect(encodeErrorCode(new Int8Array(2))).toBe('plist-bad-type');
    expect(encodeErrorCode(() => 1)).toBe('plist-bad-type');
    expect(encodeErrorCode(2n ** 64n)).toBe('plist-int-range');
    expect(encodeErrorCode(-(2n ** 63n) - 1n)).toBe('plist-int-range');
    expect(encodeErrorCode(1e20)).toBe('plist-int-range');
    expect(encodeErrorCode(new PlistUID(-1))).toBe('plist-bad-uid');
    expect(encodeErrorCode(new PlistUID(1.5))).toBe('plist-bad-uid');
    expect(encodeErrorCode(new Date(NaN))).toBe('plist-bad-date');
  });

  it('rejects cycles and excessive nesting', () => {
    const a: PlistValue[] = [];
    a.push(a);
    expect(encodeErrorCode(a)).toBe('plist-cycle');
    let deep: PlistValue = [];
    for (let i = 0; i < 300; i++) deep = [deep];
    expect(encodeErrorCode(deep)).toBe('plist-too-deep');
    // A value shared without a cycle is fine and written once per occurrence.
    const shared = ['s'];
    expect(decodeBinaryPlist(encodeBinaryPlist([shared, shared]))).toStrictEqual([['s'], ['s']]);
  });

  it('accepts null-prototype dicts and writes integral numbers past 2^53 exactly', () => {
    const d = Object.create(null) as PlistDict;
    d.k = 2 ** 60;
    expect(decodeBinaryPlist(encodeBinaryPlist(d))).toStrictEqual({ k: 2n ** 60n });
  });
});

// ---- Property tests ------------------------------------------------------------------------------------------

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

const leaf: fc.Arbitrary<PlistValue> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.nat(0xffff).map((c) => String.fromCharCode(c)), maxLength: 6 }), // lone surrogates too
  fc.maxSafeInteger(),
  fc.integer({ min: -300, max: 70000 }),
  fc.bigInt({ min: INT64_MIN, max: UINT64_MAX }),
  fc.double().filter((x) => !Number.isInteger(x)),
  fc.oneof(fc.integer(), fc.constantFrom(-0, 2 ** 60, 1e300)).map((x) => new PlistReal(x)),
  fc.boolean(),
  fc.uint8Array({ maxLength: 20 }),
  fc.date({ min: new Date('1000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
  fc.oneof(fc.nat(300), fc.maxSafeNat()).map((n) => new PlistUID(n)),
);

const { tree } = fc.letrec<{ tree: PlistValue; array: PlistValue[]; dict: PlistDict }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('dict')),
  array: fc.array(tie('tree'), { maxLength: 5 }),
  dict: fc.dictionary(fc.string({ maxLength: 6 }), tie('tree'), { maxKeys: 5 }),
}));

/** What a decoder hands back for `v`: integers in their narrowest form, dicts as plain objects. */
function decodedForm(v: PlistValue): PlistValue {
  if (typeof v === 'number' && Number.isInteger(v)) return narrowInteger(BigInt(v));
  if (typeof v === 'bigint') return narrowInteger(v);
  if (Array.isArray(v)) return v.map(decodedForm);
  if (isDict(v)) {
    const out: PlistDict = {};
    for (const k of Object.keys(v)) setPlistKey(out, k, decodedForm(v[k] as PlistValue));
    return out;
  }
  return v;
}

function onlyDecodeErrors(bytes: Uint8Array): void {
  let value: PlistValue;
  try {
    value = decodeBinaryPlist(bytes);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return;
  }
  // Whatever decodes is inside the model, so it must encode again.
  encodeBinaryPlist(value);
}

describe('binary plist properties', () => {
  it('round-trips random trees, and re-encoding is stable', () => {
    fc.assert(
      fc.property(tree, (v) => {
        const bytes = encodeBinaryPlist(v);
        const back = decodeBinaryPlist(bytes);
        expect(back).toStrictEqual(decodedForm(v));
        expect(encodeBinaryPlist(back)).toStrictEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes give only DecodeErrors', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), onlyDecodeErrors), { numRuns: 300 });
    // With the magic in place the trailer checks are reached.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 34, maxLength: 120 }), (b) => onlyDecodeErrors(concat(fromHex(MAGIC), b))),
      { numRuns: 300 },
    );
  });

  it('mutated valid encodings give only DecodeErrors', () => {
    const edit = fc.record({ at: fc.nat(), byte: fc.nat(255), fromEnd: fc.boolean() });
    fc.assert(
      fc.property(tree, fc.array(edit, { minLength: 1, maxLength: 4 }), fc.nat(), (v, edits, cut) => {
        const b = encodeBinaryPlist(v).slice();
        for (const e of edits) {
          // Half the edits land in the trailer and offset table, where a single byte matters most.
          const i = e.fromEnd ? b.length - 1 - (e.at % Math.min(48, b.length)) : e.at % b.length;
          b[i] = e.byte;
        }
        onlyDecodeErrors(b);
        onlyDecodeErrors(b.subarray(0, cut % (b.length + 1)));
      }),
      { numRuns: 300 },
    );
  });
});
