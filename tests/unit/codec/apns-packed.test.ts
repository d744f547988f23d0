import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildAck,
  buildConnect,
  buildFilter,
  buildKeepAlive,
  buildNotification,
  buildSetState,
  parseAck,
  parseFilter,
  parseKeepAlive,
  parseNotification,
  parseSetState,
  type ApnsDirection,
} from '../../../lib/codec/apns-commands';
import { decodeFrame, encodeFrame, type ApnsFrame } from '../../../lib/codec/apns-frame';
import {
  apnsToPacked,
  DEFAULT_TABLE_BUDGET,
  PackedDecoder,
  PackedDict,
  PackedEncoder,
  PackedFrameDecoder,
  packedAlpn,
  packedBudgets,
  packedToApns,
  packedToPlist,
  plistToPacked,
  type PackedAttribute,
  type PackedFrame,
  type PackedValue,
  type PayloadCodec,
} from '../../../lib/codec/apns-packed';
import { concat, fromHex, toHex } from '../../../lib/codec/bytes';
import { PlistReal } from '../../../lib/codec/plist';
import { CeruleanError, DecodeError, EncodeError } from '../../../lib/errors';
import vectors from '../../vectors';

const TOKEN = fromHex('101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f');
const MADRID = fromHex('e4e6d952954168d0a5db02dbaf27cc35fc18d159');
const U16 = fromHex('000102030405060708090a0b0c0d0e0f');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CeruleanError ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

function onlyDecodeError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
}

/** Bytes of one attribute's value, encoded as the only attribute (short key 1) of a fresh frame. */
function valueHex(value: PackedValue): string {
  return toHex(new PackedEncoder().encode({ command: 1, attributes: [{ key: 1, value }] })).slice(6);
}

function decodeValue(hex: string): PackedValue {
  const body = fromHex('01' + hex);
  const frame = new PackedDecoder().decode(concat(Uint8Array.of(0x01, body.length), body));
  return frame.attributes[0]!.value;
}

function withoutCached(frame: PackedFrame): unknown {
  const strip = (v: PackedValue): unknown =>
    v instanceof PackedDict
      ? new PackedDict(v.entries.map((a) => ({ key: a.key, value: strip(a.value) }) as PackedAttribute))
      : Array.isArray(v)
        ? v.map(strip)
        : v;
  return { command: frame.command, attributes: frame.attributes.map((a) => ({ key: a.key, value: strip(a.value) })) };
}

describe('packed framing: §2.2 examples', () => {
  const dir: ApnsDirection = 'toServer';
  const legacy: ApnsFrame[] = [
    buildSetState({ state: 1, interval: 0x7fffffff }),
    buildFilter({ token: TOKEN, enabled: [MADRID] }),
    buildFilter({ token: TOKEN, enabled: [MADRID] }),
    buildAck({ token: TOKEN, messageId: 0x12345678, status: 0 }),
    buildKeepAlive({}),
  ];
  const expected = [
    '14 08 01 81 02 a3 7f ff ff ff',
    `09 38 41 20 ${toHex(TOKEN)} 42 14 ${toHex(MADRID)}`,
    '09 04 81 01 82 00',
    '0b 0a 81 01 04 a3 12 34 56 78 08 80',
    '0c 00',
  ].map((h) => h.replace(/ /g, ''));

  it('encodes SetState, Filter #1, Filter #2, Ack and KeepAlive with one encoder carrying its tables', () => {
    const enc = new PackedEncoder();
    expect(legacy.map((f) => toHex(enc.encode(apnsToPacked(f, dir))))).toEqual(expected);
  });

  it('decodes them back with one decoder into the same typed fields', () => {
    const dec = new PackedDecoder();
    const back = expected.map((h) => packedToApns(dec.decode(fromHex(h)), dir));
    expect(parseSetState(back[0]!)).toEqual({ state: 1, interval: 0x7fffffff });
    expect(parseFilter(back[1]!)).toMatchObject({ token: TOKEN, enabled: [MADRID] });
    expect(parseFilter(back[2]!)).toMatchObject({ token: TOKEN, enabled: [MADRID] });
    expect(parseAck(back[3]!)).toEqual({ token: TOKEN, messageId: 0x12345678, status: 0 });
    expect(parseKeepAlive(back[4]!)).toEqual({});
    expect(back.map(encodeFrame)).toEqual(legacy.map(encodeFrame));
  });

  it('shows the decoded table use', () => {
    const dec = new PackedDecoder();
    dec.decode(fromHex(expected[0]!));
    expect(dec.decode(fromHex(expected[1]!)).attributes).toEqual([
      { key: 1, value: TOKEN, cached: true },
      { key: 2, value: MADRID, cached: true },
    ]);
    expect(dec.decode(fromHex(expected[2]!)).attributes).toEqual([
      { key: 1, value: TOKEN, cached: true },
      { key: 2, value: MADRID, cached: true },
    ]);
  });

  it('writes item ids ≥ 16 as one-byte literal keys, then as key references (Connect tail)', () => {
    const enc = new PackedEncoder();
    const connect = buildConnect({ state: 1, presenceFlags: 0x41, protocolVersion: 9 });
    expect(toHex(enc.encode(apnsToPacked(connect, dir)))).toBe('0708' + '0281' + '05a041' + '101089');
    expect(toHex(enc.encode(apnsToPacked(connect, dir)))).toBe('0707' + '0281' + '05a041' + '2089');
    const dec = new PackedDecoder();
    dec.decode(fromHex('0708' + '0281' + '05a041' + '101089'));
    expect(dec.decode(fromHex('0707' + '0281' + '05a041' + '2089')).attributes[2]).toEqual({
      key: 0x10,
      value: 9,
      cached: false,
    });
  });

  it('writes the payload example {c:100, U:<16B>, t:0102} and caches t', () => {
    const tree = plistToPacked({ c: 100, U: U16, t: fromHex('0102') });
    const enc = new PackedEncoder();
    const first = enc.encode({ command: 0x0a, attributes: [{ key: 3, value: tree }] });
    expect(toHex(first)).toBe('0a1e' + '03' + 'c3' + '1063a064' + '105510' + toHex(U16) + '5074020102');
    // Same payload again: keys come from the key table (c=2, U=1, t=0) and t's value is a reference.
    const second = enc.encode({ command: 0x0a, attributes: [{ key: 3, value: tree }] });
    expect(toHex(second)).toBe('0a19' + '03' + 'c3' + '22a064' + '2110' + toHex(U16) + 'a000');
    const dec = new PackedDecoder();
    for (const bytes of [first, second]) {
      const [attr] = dec.decode(bytes).attributes;
      expect(packedToPlist(attr!.value)).toEqual({ c: 100, U: U16, t: fromHex('0102') });
    }
  });

  it('carries every pypush vector through packed framing and back', () => {
    for (const d of ['toServer', 'toClient'] as const) {
      const enc = new PackedEncoder();
      const dec = new PackedDecoder();
      for (const v of vectors.apns_frames) {
        const frame = decodeFrame(fromHex(v.bytes));
        const packed = enc.encode(apnsToPacked(frame, d));
        expect(toHex(encodeFrame(packedToApns(dec.decode(packed), d)))).toBe(v.bytes);
      }
    }
  });
});

describe('packed framing: encoding details', () => {
  it('writes tagged numbers at their boundaries', () => {
    expect(valueHex(new Uint8Array(62)).slice(0, 2)).toBe('3e');
    expect(valueHex(new Uint8Array(63)).slice(0, 4)).toBe('3f00');
    expect(valueHex(new Uint8Array(64)).slice(0, 4)).toBe('3f01');
    expect(valueHex(new Uint8Array(190)).slice(0, 4)).toBe('3f7f');
    expect(valueHex(new Uint8Array(191)).slice(0, 6)).toBe('3f8001');
    expect(valueHex('a'.repeat(30)).slice(0, 2)).toBe('5e');
    expect(valueHex('a'.repeat(31)).slice(0, 4)).toBe('5f00');
    expect(valueHex(Array(14).fill(true)).slice(0, 2)).toBe('de');
    expect(valueHex(Array(15).fill(true)).slice(0, 4)).toBe('df00');
    const enc = new PackedEncoder();
    const frame = (n: number) => toHex(enc.encode({ command: 2, attributes: [{ key: 1, value: new Uint8Array(n) }] }));
    // Body = 1 tag + 3 length bytes (3f + LEB128) + n.
    expect(frame(250).slice(0, 4)).toBe('02fe'); // 254
    expect(frame(251).slice(0, 6)).toBe('02ff00'); // 255
    expect(frame(252).slice(0, 6)).toBe('02ff01');
    expect(frame(379).slice(0, 8)).toBe('02ff8001'); // 383 = 255 + 128
  });

  it('writes integers, negatives, multi-byte magnitudes, bools and containers', () => {
    expect(valueHex(0)).toBe('80');
    expect(valueHex(31)).toBe('9f');
    expect(valueHex(32)).toBe('a020');
    expect(valueHex(255)).toBe('a0ff');
    expect(valueHex(256)).toBe('a10100');
    expect(valueHex(0x7fffffff)).toBe('a37fffffff');
    expect(valueHex(-1)).toBe('a801');
    expect(valueHex(-32)).toBe('a820');
    expect(valueHex(-256)).toBe('a90100');
    expect(valueHex(2n ** 53n)).toBe('a620000000000000');
    expect(valueHex(2n ** 64n - 1n)).toBe('a7ffffffffffffffff');
    expect(valueHex(-(2n ** 64n - 1n))).toBe('afffffffffffffffff');
    expect(valueHex(true)).toBe('e1');
    expect(valueHex(false)).toBe('e0');
    expect(valueHex([1, 'x'])).toBe('d2' + '81' + '4178');
    expect(valueHex(new PackedDict([{ key: 'k', value: new PackedDict([]) }]))).toBe('c1' + '106b' + 'c0');
    expect(valueHex('é')).toBe('42c3a9');

    expect(decodeValue('a7ffffffffffffffff')).toBe(2n ** 64n - 1n);
    expect(decodeValue('a61fffffffffffff')).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeValue('a620000000000000')).toBe(2n ** 53n);
    expect(decodeValue('ae1fffffffffffff')).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decodeValue('ae20000000000000')).toBe(-(2n ** 53n));
    expect(decodeValue('a10005')).toBe(5); // not minimal, still clear
    expect(Object.is(decodeValue('a800'), 0)).toBe(true);
  });

  it('refuses values it cannot write, and leaves its tables untouched when it does', () => {
    expect(codeOf(() => valueHex(2n ** 64n))).toBe('packed-int-range');
    expect(codeOf(() => valueHex(1.5))).toBe('packed-bad-int');
    expect(codeOf(() => valueHex(2 ** 53))).toBe('packed-bad-int');
    expect(codeOf(() => valueHex({} as PackedValue))).toBe('packed-bad-value');
    expect(codeOf(() => new PackedEncoder().encode({ command: 1, attributes: [{ key: '', value: 0 }] }))).toBe('packed-bad-key');
    expect(codeOf(() => new PackedEncoder().encode({ command: 1, attributes: [{ key: 256, value: 0 }] }))).toBe('packed-bad-key');
    expect(codeOf(() => new PackedEncoder().encode({ command: 256, attributes: [] }))).toBe('bad-frame');
    let deep: PackedValue = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    expect(codeOf(() => valueHex(deep))).toBe('packed-too-deep');
    const cyclic: PackedValue[] = [];
    cyclic.push(cyclic);
    const attempt = { command: 1, attributes: [{ key: 1, value: cyclic, cached: true }] };
    expect(codeOf(() => new PackedEncoder().encode(attempt))).toBe('packed-too-deep');

    const enc = new PackedEncoder();
    const dec = new PackedDecoder();
    expect(() =>
      enc.encode({
        command: 9,
        attributes: [
          { key: 1, value: TOKEN, cached: true },
          { key: 'newkey', value: 1 },
          { key: 2, value: 1.5 },
        ],
      }),
    ).toThrow(EncodeError);
    // The failed frame never reached the peer: the next one must not reference its table entries.
    const next = enc.encode({ command: 9, attributes: [{ key: 1, value: TOKEN, cached: true }, { key: 'newkey', value: 1 }] });
    expect(toHex(next)).toBe('092a' + '4120' + toHex(TOKEN) + '156e65776b6579' + '81');
    expect(dec.decode(next).attributes[0]).toEqual({ key: 1, value: TOKEN, cached: true });
  });

  it('evicts keys first-in first-out after 32', () => {
    const enc = new PackedEncoder();
    const dec = new PackedDecoder();
    const keys = Array.from({ length: 33 }, (_, i) => `a${i}`);
    dec.decode(enc.encode({ command: 1, attributes: keys.map((key) => ({ key, value: 0 })) }));
    const again = enc.encode({ command: 1, attributes: [{ key: 'a0', value: 0 }, { key: 'a32', value: 0 }] });
    expect(toHex(again)).toBe('0106' + '11613080' + '2180');
    expect(dec.decode(again).attributes.map((a) => a.key)).toEqual(['a0', 'a32']);
  });

  it('keeps the value table within its budget, evicting the oldest entry', () => {
    const enc = new PackedEncoder();
    const dec = new PackedDecoder();
    const token = (i: number) => new Uint8Array(32).fill(i);
    const send = (value: Uint8Array) => {
      const bytes = enc.encode({ command: 0x0b, attributes: [{ key: 1, value, cached: true }] });
      expect(dec.decode(bytes).attributes[0]!.value).toEqual(value);
      return toHex(bytes);
    };
    // Each entry costs 33 + 32 = 65: 63 fit in 4096, the 64th pushes out token 0.
    for (let i = 0; i < 64; i++) expect(send(token(i)).slice(0, 8)).toBe('0b224120');
    expect(send(token(1))).toBe('0b02813e');
    expect(send(token(63))).toBe('0b028100');
    expect(send(token(0)).slice(0, 8)).toBe('0b224120');
  });

  it('references old entries with multi-byte indices', () => {
    const enc = new PackedEncoder({ tableBudget: 1 << 20 });
    const dec = new PackedDecoder({ tableBudget: 1 << 20 });
    for (let i = 0; i < 300; i++) {
      dec.decode(enc.encode({ command: 1, attributes: [{ key: 1, value: i + 1000, cached: true }] }));
    }
    const bytes = enc.encode({ command: 1, attributes: [{ key: 1, value: 1000, cached: true }] });
    expect(toHex(bytes)).toBe('0103' + '81ff2c');
    expect(dec.decode(bytes).attributes[0]!.value).toBe(1000);
  });

  it('appends over-budget entries uncounted on decode and never creates them on encode', () => {
    const dec = new PackedDecoder({ tableBudget: 40 });
    const big = new Uint8Array(20).fill(7);
    // 21 encoded bytes cost 53 > 40: kept, uncounted.
    expect(dec.decode(fromHex(`0a18 4114${toHex(big)} 8200`)).attributes.map((a) => a.value)).toEqual([big, big]);
    // A counted 34-byte entry fits beside it.
    expect(dec.decode(fromHex('0a05 4301aa 8401')).attributes.map((a) => a.value)).toEqual([fromHex('aa'), big]);
    // The next one evicts from the front: the uncounted entry (free), then aa.
    expect(dec.decode(fromHex('0a05 4501bb 8600')).attributes[1]!.value).toEqual(fromHex('bb'));
    expect(codeOf(() => new PackedDecoder({ tableBudget: 40 }).decode(fromHex('0a02 8100')))).toBe('packed-bad-value-ref');

    const enc = new PackedEncoder({ tableBudget: 40 });
    expect(toHex(enc.encode({ command: 0x0a, attributes: [{ key: 1, value: big, cached: true }] }))).toBe(
      '0a16' + '0114' + toHex(big),
    );
  });
});

describe('packed framing: bad input', () => {
  const cases: [string, string][] = [
    ['0a02 8100', 'packed-bad-value-ref'],
    ['0a02 2080', 'packed-bad-key-ref'],
    ['0a02 c180', 'packed-bad-attribute'],
    ['0a03 0102aa', 'truncated'],
    ['0a01 01', 'truncated'],
    ['0a03 0180', 'truncated'],
    ['0a', 'truncated'],
    ['0a02 0180 00', 'trailing-bytes'],
    ['0a03 0141ff', 'bad-utf8'],
    ['0a02 0160', 'packed-bad-value'],
    ['0a03 01b001', 'packed-bad-value'],
    ['0a02 01e2', 'packed-bad-value'],
    ['0a02 01f1', 'packed-bad-value'],
    ['0a04 41c10180', 'packed-cached-dict'],
    ['0a05 41d1c10180', 'packed-cached-dict'],
    ['0a03 01df7f', 'truncated'],
    ['0a03 111080', 'truncated'],
    ['0a04 11fffe80', 'bad-utf8'],
    ['0aff 80808080808080 8000', 'packed-varint'],
    ['0aff 80feffff0f', 'frame-too-large'],
  ];

  it.each(cases)('rejects %s with %s', (hex, code) => {
    expect(codeOf(() => new PackedDecoder().decode(fromHex(hex)))).toBe(code);
  });

  it('limits nesting depth and expansion through table references', () => {
    const deep = '01' + 'd1'.repeat(70) + '80';
    expect(codeOf(() => new PackedDecoder().decode(fromHex(`0a${(deep.length / 2).toString(16)}${deep}`)))).toBe(
      'packed-too-deep',
    );
    const enc = new PackedEncoder();
    const bomb = enc.encode({
      command: 0x0a,
      attributes: Array.from({ length: 40 }, () => ({ key: 3, value: new Uint8Array(500), cached: true })),
    });
    expect(bomb.length).toBeLessThan(600);
    expect(new PackedDecoder().decode(bomb).attributes).toHaveLength(40);
    expect(codeOf(() => new PackedDecoder({ maxDecodedBytes: 10_000 }).decode(bomb))).toBe('packed-expansion');
  });

  it('stays failed after an error, since its tables no longer match the sender', () => {
    const dec = new PackedDecoder();
    expect(codeOf(() => dec.decode(fromHex('0a028100')))).toBe('packed-bad-value-ref');
    expect(codeOf(() => dec.decode(fromHex('0c00')))).toBe('stream-failed');
  });

  it('maps integers and trees to legacy items only when they fit', () => {
    const tooWide: PackedFrame = { command: 0x14, attributes: [{ key: 1, value: 256 }] };
    expect(codeOf(() => packedToApns(tooWide, 'toServer'))).toBe('packed-int-range');
    const negative: PackedFrame = { command: 0x0b, attributes: [{ key: 4, value: -1 }] };
    expect(codeOf(() => packedToApns(negative, 'toServer'))).toBe('packed-int-range');
    const tree: PackedFrame = { command: 0x0a, attributes: [{ key: 3, value: new PackedDict([]) }] };
    expect(codeOf(() => packedToApns(tree, 'toClient'))).toBe('packed-payload-tree');
    const wrongPlace: PackedFrame = { command: 0x0a, attributes: [{ key: 4, value: [1] }] };
    expect(codeOf(() => packedToApns(wrongPlace, 'toClient'))).toBe('packed-type');
    // Unknown items: narrowest integer width; containers and multi-byte keys have no legacy form.
    const unknown: PackedFrame = {
      command: 0x22,
      attributes: [
        { key: 1, value: 5 },
        { key: 2, value: 0x1234 },
        { key: 3, value: 0x10000 },
        { key: 4, value: -2 },
        { key: 5, value: true },
        { key: 6, value: 'hi' },
        { key: 7, value: [1] },
        { key: 'xy', value: 1 },
      ],
    };
    expect(packedToApns(unknown, 'toClient').items.map((i) => [i.id, toHex(i.value)])).toEqual([
      [1, '05'],
      [2, '1234'],
      [3, '00010000'],
      [4, 'fffffffffffffffe'],
      [5, '01'],
      [6, '6869'],
    ]);
    // A legacy item of the wrong width crosses as data and the typed parser still rejects it.
    const odd = apnsToPacked({ command: 0x14, items: [{ id: 1, value: fromHex('0001') }] }, 'toServer');
    expect(odd.attributes[0]!.value).toEqual(fromHex('0001'));
    expect(codeOf(() => parseSetState(packedToApns(odd, 'toServer')))).toBe('bad-item-width');
  });

  it('sends payloads as packed trees through a payload codec', () => {
    const codec: PayloadCodec = {
      toPacked: (b) => (b[0] === 0x62 ? new PackedDict([{ key: 'raw', value: b }]) : undefined),
      fromPacked: (v) => {
        if (!(v instanceof PackedDict) || !(v.entries[0]?.value instanceof Uint8Array)) throw new DecodeError('x', 'x');
        return v.entries[0].value;
      },
    };
    const n = buildNotification({ token: TOKEN, topicHash: MADRID, payload: fromHex('62706c'), messageId: 7 });
    const packed = apnsToPacked(n, 'toClient', { payload: codec });
    expect(packed.attributes[2]!.value).toBeInstanceOf(PackedDict);
    const wire = new PackedEncoder().encode(packed);
    const back = packedToApns(new PackedDecoder().decode(wire), 'toClient', { payload: codec });
    expect(parseNotification(back)).toEqual({ token: TOKEN, topicHash: MADRID, payload: fromHex('62706c'), messageId: 7 });
    const plain = apnsToPacked({ ...n, items: n.items.map((i) => (i.id === 3 ? { id: 3, value: fromHex('00') } : i)) }, 'toClient', {
      payload: codec,
    });
    expect(plain.attributes[2]!.value).toEqual(fromHex('00'));
  });

  it('converts property lists only where a packed form exists', () => {
    expect(codeOf(() => plistToPacked({ r: 1.5 }))).toBe('packed-unsupported');
    expect(codeOf(() => plistToPacked([new Date(0)]))).toBe('packed-unsupported');
    expect(codeOf(() => plistToPacked(new PlistReal(1)))).toBe('packed-unsupported');
    const hostile = packedToPlist(new PackedDict([{ key: '__proto__', value: 'x' }, { key: 'a', value: 1 }, { key: 'a', value: 2 }]));
    expect(Object.getPrototypeOf(hostile)).toBe(Object.prototype);
    expect(Object.keys(hostile as object)).toEqual(['__proto__', 'a']);
    expect((hostile as Record<string, unknown>).a).toBe(2);
  });
});

describe('packed framing: ALPN', () => {
  it('reads budgets from the selected protocol', () => {
    expect(packedBudgets('apns-pack-v1')).toEqual({ toServer: DEFAULT_TABLE_BUDGET, toClient: 4096 });
    expect(packedBudgets('apns-pack-v1:8192:2048')).toEqual({ toServer: 8192, toClient: 2048 });
    expect(packedBudgets('apns-security-v3')).toBeUndefined();
    expect(packedBudgets('apns-pack-v10')).toBeUndefined();
    expect(codeOf(() => packedBudgets('apns-pack-v1:x:1'))).toBe('bad-alpn');
    expect(codeOf(() => packedBudgets('apns-pack-v1:1'))).toBe('bad-alpn');
    expect(codeOf(() => packedBudgets('apns-pack-v1:999999999:1'))).toBe('bad-alpn');
    expect(packedAlpn({ toServer: 4096, toClient: 4096 })).toBe('apns-pack-v1');
    expect(packedAlpn({ toServer: 100, toClient: 200 })).toBe('apns-pack-v1:100:200');
    expect(codeOf(() => new PackedEncoder({ tableBudget: -1 }))).toBe('bad-option');
  });
});

// ---------------------------------------------------------------------------------------------------------------

const intArb: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.integer({ min: -300, max: 300 }),
  fc.maxSafeInteger(),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: -(2n ** 64n - 1n), max: -(2n ** 53n) }),
);
const leafArb: fc.Arbitrary<PackedValue> = fc.oneof(
  fc.uint8Array({ maxLength: 70 }),
  fc.constantFrom(TOKEN, MADRID),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('WiFi', 'com.apple.madrid'),
  intArb,
  fc.boolean(),
);
const { value: valueArb } = fc.letrec<{ value: PackedValue; dict: PackedDict }>((tie) => ({
  value: fc.oneof({ maxDepth: 3, depthSize: 'small' }, leafArb, fc.array(tie('value'), { maxLength: 4 }), tie('dict')),
  dict: fc
    .array(
      fc.record({ key: fc.constantFrom('t', 'sP', 'c', 'U', 'ü', 'key'), value: tie('value'), cached: fc.boolean() }),
      { maxLength: 4 },
    )
    .map((entries) => new PackedDict(entries)),
}));
const attributeArb: fc.Arbitrary<PackedAttribute> = fc.record({
  key: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom('xy', 'longer-key', 'ключ')),
  value: valueArb,
  cached: fc.boolean(),
});
const packedFrameArb: fc.Arbitrary<PackedFrame> = fc.record({
  command: fc.integer({ min: 0, max: 255 }),
  attributes: fc.array(attributeArb, { maxLength: 5 }),
});

describe('packed framing: properties', () => {
  it('keeps encoder and decoder tables in step over random frame sequences, and a proxy re-encodes byte for byte', () => {
    fc.assert(
      fc.property(fc.array(packedFrameArb, { maxLength: 6 }), fc.integer({ min: 0, max: 600 }), (frames, budget) => {
        const enc = new PackedEncoder({ tableBudget: budget });
        const dec = new PackedDecoder({ tableBudget: budget });
        const proxy = new PackedEncoder({ tableBudget: budget });
        for (const f of frames) {
          const bytes = enc.encode(f);
          const back = dec.decode(bytes);
          expect(withoutCached(back)).toEqual(withoutCached(f));
          expect(proxy.encode(back)).toEqual(bytes);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('splits a packed stream the same way at any cut points', () => {
    fc.assert(
      fc.property(fc.array(packedFrameArb, { maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), (frames, cuts) => {
        const enc = new PackedEncoder();
        const stream = concat(...frames.map((f) => enc.encode(f)));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const d = new PackedFrameDecoder();
        const got: PackedFrame[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          got.push(...d.push(stream.subarray(prev, p)));
          prev = p;
        }
        expect(got.map(withoutCached)).toEqual(frames.map(withoutCached));
        expect(d.bufferedLength).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it('decodes random bytes and mutated streams to nothing but DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => onlyDecodeError(() => new PackedDecoder().decode(b))),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.array(packedFrameArb, { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        (frames, edits) => {
          const enc = new PackedEncoder({ tableBudget: 300 });
          const stream = concat(...frames.map((f) => enc.encode(f)));
          for (const [pos, b] of edits) stream[pos % stream.length] = b;
          const d = new PackedFrameDecoder({ tableBudget: 300, maxFrameLength: 4000 });
          onlyDecodeError(() => d.push(stream));
          expect(d.bufferedLength).toBeLessThanOrEqual(4000 + 10);
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 30 }), { maxLength: 6 }), (chunks) => {
        const d = new PackedFrameDecoder({ maxFrameLength: 500 });
        onlyDecodeError(() => {
          for (const c of chunks) d.push(c);
        });
        expect(d.bufferedLength).toBeLessThanOrEqual(510);
      }),
      { numRuns: 300 },
    );
  });
});

describe('PackedFrameDecoder', () => {
  it('fails at once on a header claiming 0xFFFFFFFF bytes', () => {
    const d = new PackedFrameDecoder();
    expect(codeOf(() => d.push(fromHex('0aff80feffff0f')))).toBe('frame-too-large');
    expect(codeOf(() => d.push(fromHex('0c00')))).toBe('stream-failed');
    // Partial header: the bytes seen so far already exceed the limit.
    expect(codeOf(() => new PackedFrameDecoder({ maxFrameLength: 1000 }).push(fromHex('0aff80fe')))).toBe('frame-too-large');
    expect(codeOf(() => new PackedFrameDecoder({ maxFrameLength: 100 }).push(fromHex('0aff')))).toBe('frame-too-large');
    expect(codeOf(() => new PackedFrameDecoder().push(fromHex('0aff8080808080808080')))).toBe('packed-varint');
  });

  it('feeds the §2.2 examples one byte at a time through one decoder', () => {
    const stream = fromHex(
      '14080181 02a37fffffff' + `093841 20${toHex(TOKEN)}42 14${toHex(MADRID)}` + '0904810182 00' + '0b0a8101 04a312345678 0880' + '0c00',
    );
    const d = new PackedFrameDecoder();
    const got: PackedFrame[] = [];
    for (const b of stream) got.push(...d.push(Uint8Array.of(b)));
    expect(got.map((f) => f.command)).toEqual([0x14, 0x09, 0x09, 0x0b, 0x0c]);
    expect(parseAck(packedToApns(got[3]!, 'toServer'))).toEqual({ token: TOKEN, messageId: 0x12345678, status: 0 });
  });

  it('holds at most the limit plus the header', () => {
    const d = new PackedFrameDecoder({ maxFrameLength: 300 });
    expect(d.push(fromHex('0aff2d 012a'))).toEqual([]); // 255 + 45 = 300
    expect(d.push(new Uint8Array(298 - 42))).toEqual([]);
    expect(d.push(new Uint8Array(42))).toHaveLength(1);
    expect(d.bufferedLength).toBe(0);
    expect(codeOf(() => new PackedFrameDecoder({ maxFrameLength: 300 }).push(fromHex('0aff2e')))).toBe('frame-too-large');
  });
});
