import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeFrame,
  encodeFrame,
  FrameDecoder,
  type ApnsFrame,
} from '../../../lib/codec/apns-frame';
import { concat, fromHex, toHex } from '../../../lib/codec/bytes';
import { CeruleanError, DecodeError, EncodeError } from '../../../lib/errors';
import vectors from '../../vectors';

const TOKEN = fromHex('101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f');
const MADRID = fromHex('e4e6d952954168d0a5db02dbaf27cc35fc18d159');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CeruleanError ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

/** Runs fn; anything thrown must be a DecodeError. */
function onlyDecodeError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
}

const frameArb: fc.Arbitrary<ApnsFrame> = fc.record({
  command: fc.integer({ min: 0, max: 255 }),
  items: fc.array(fc.record({ id: fc.integer({ min: 0, max: 255 }), value: fc.uint8Array({ maxLength: 70 }) }), {
    maxLength: 6,
  }),
});

describe('legacy APNs frames: fixed bytes', () => {
  it('writes the §2.1 SetState, Filter and Ack examples byte for byte', () => {
    const setState = encodeFrame({
      command: 0x14,
      items: [
        { id: 1, value: fromHex('01') },
        { id: 2, value: fromHex('7fffffff') },
      ],
    });
    expect(toHex(setState)).toBe('14' + '0000000b' + '01' + '0001' + '01' + '02' + '0004' + '7fffffff');

    const filter = encodeFrame({
      command: 0x09,
      items: [
        { id: 1, value: TOKEN },
        { id: 2, value: MADRID },
      ],
    });
    expect(toHex(filter)).toBe(
      '09' + '0000003a' +
        '01' + '0020' + '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f' +
        '02' + '0014' + 'e4e6d952954168d0a5db02dbaf27cc35fc18d159',
    );

    const ack = encodeFrame({
      command: 0x0b,
      items: [
        { id: 1, value: TOKEN },
        { id: 4, value: fromHex('12345678') },
        { id: 8, value: fromHex('00') },
      ],
    });
    expect(toHex(ack)).toBe(
      '0b' + '0000002e' +
        '01' + '0020' + '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f' +
        '04' + '0004' + '12345678' +
        '08' + '0001' + '00',
    );
    expect(decodeFrame(ack)).toEqual({
      command: 0x0b,
      items: [
        { id: 1, value: TOKEN },
        { id: 4, value: fromHex('12345678') },
        { id: 8, value: fromHex('00') },
      ],
    });
  });

  it('writes an empty keep-alive as five bytes', () => {
    expect(toHex(encodeFrame({ command: 0x0c, items: [] }))).toBe('0c00000000');
    expect(decodeFrame(fromHex('0c00000000'))).toEqual({ command: 0x0c, items: [] });
  });

  it('rebuilds all six pypush vectors from their fields and decodes them back', () => {
    expect(vectors.apns_frames).toHaveLength(6);
    for (const v of vectors.apns_frames) {
      const items = v.fields.map(([id, hex]) => ({ id: Number(id), value: fromHex(String(hex)) }));
      expect(toHex(encodeFrame({ command: v.command, items }))).toBe(v.bytes);
      const back = decodeFrame(fromHex(v.bytes));
      expect(back.command).toBe(v.command);
      expect(back.items.map((i) => [i.id, toHex(i.value)])).toEqual(v.fields);
    }
  });

  it('keeps repeated and unknown items in order', () => {
    const f = decodeFrame(fromHex('09 00000010 02 0001 aa 02 0002 bbcc fe 0000 02 0001 dd'));
    expect(f.items.map((i) => [i.id, toHex(i.value)])).toEqual([
      [2, 'aa'],
      [2, 'bbcc'],
      [0xfe, ''],
      [2, 'dd'],
    ]);
  });
});

describe('legacy APNs frames: bad input', () => {
  it('refuses to encode what the format cannot hold', () => {
    expect(codeOf(() => encodeFrame({ command: 0x0a, items: [{ id: 256, value: new Uint8Array() }] }))).toBe('bad-frame');
    expect(codeOf(() => encodeFrame({ command: 0x0a, items: [{ id: -1, value: new Uint8Array() }] }))).toBe('bad-frame');
    expect(codeOf(() => encodeFrame({ command: 0x100, items: [] }))).toBe('bad-frame');
    expect(codeOf(() => encodeFrame({ command: 0x0a, items: [{ id: 3, value: new Uint8Array(65536) }] }))).toBe(
      'item-too-large',
    );
    expect(() => encodeFrame({ command: 0x0a, items: [{ id: 3, value: new Uint8Array(65536) }] })).toThrow(EncodeError);
    expect(encodeFrame({ command: 0x0a, items: [{ id: 3, value: new Uint8Array(65535) }] })).toHaveLength(5 + 3 + 65535);
  });

  it('rejects truncated, overlong and inconsistent frames', () => {
    expect(codeOf(() => decodeFrame(fromHex('0c0000')))).toBe('truncated');
    expect(codeOf(() => decodeFrame(fromHex('0c00000001')))).toBe('truncated');
    expect(codeOf(() => decodeFrame(fromHex('0c0000000000')))).toBe('trailing-bytes');
    expect(codeOf(() => decodeFrame(fromHex('0c00000002 0100')))).toBe('truncated-item');
    expect(codeOf(() => decodeFrame(fromHex('0c00000004 010002 aa')))).toBe('item-overflow');
    expect(codeOf(() => decodeFrame(fromHex('0cffffffff 010002 aa')))).toBe('truncated');
  });

  it('detects every single-byte tamper of the length fields', () => {
    const good = fromHex(vectors.apns_frames[3]!.bytes);
    for (const pos of [1, 2, 3, 4, 5 + 1, 5 + 2]) {
      for (const delta of [1, 0x80]) {
        const bad = good.slice();
        bad[pos] = (bad[pos]! + delta) & 0xff;
        expect(() => decodeFrame(bad), `pos ${pos}`).toThrow(DecodeError);
      }
    }
  });

  it('decodes only to DecodeError on random bytes and mutated vectors', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (b) => onlyDecodeError(() => decodeFrame(b))), {
      numRuns: 300,
    });
    const valid = vectors.apns_frames.map((v) => fromHex(v.bytes));
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (frame, edits, cut) => {
          const bad = frame.slice(0, frame.length - (cut % 4));
          for (const [pos, b] of edits) if (bad.length) bad[pos % bad.length] = b;
          onlyDecodeError(() => decodeFrame(bad));
          onlyDecodeError(() => new FrameDecoder().push(bad));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips random frames', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        expect(decodeFrame(encodeFrame(f))).toEqual(f);
      }),
      { numRuns: 200 },
    );
  });
});

describe('FrameDecoder', () => {
  const stream = concat(...vectors.apns_frames.map((v) => fromHex(v.bytes)));
  const expected = vectors.apns_frames.map((v) => decodeFrame(fromHex(v.bytes)));

  it('returns several frames from one chunk and frames split at every byte position', () => {
    expect(new FrameDecoder().push(stream)).toEqual(expected);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(frames).toEqual(expected);
      expect(d.bufferedLength).toBe(0);
    }
  });

  it('handles a stream fed one byte at a time', () => {
    const d = new FrameDecoder();
    const frames: ApnsFrame[] = [];
    for (const b of stream) frames.push(...d.push(Uint8Array.of(b)));
    expect(frames).toEqual(expected);
  });

  it('reassembles a large frame from thousands of tiny chunks in linear time', () => {
    const big = encodeFrame({
      command: 0x0a,
      items: Array.from({ length: 4 }, (_, i) => ({ id: 3, value: new Uint8Array(15000).fill(i) })),
    });
    const d = new FrameDecoder();
    const started = performance.now();
    let out: ApnsFrame[] = [];
    for (let off = 0; off < big.length; off += 3) out = out.concat(d.push(big.subarray(off, off + 3)));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(out).toHaveLength(1);
    expect(encodeFrame(out[0]!)).toEqual(big);
  });

  it('matches any random split of a random stream', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (frames, cuts) => {
        const bytes = concat(...frames.map(encodeFrame));
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const d = new FrameDecoder();
        const got: ApnsFrame[] = [];
        let prev = 0;
        for (const p of [...points, bytes.length]) {
          got.push(...d.push(bytes.subarray(prev, p)));
          prev = p;
        }
        expect(got).toEqual(frames);
      }),
      { numRuns: 200 },
    );
  });

  it('fails at once on a header claiming 0xFFFFFFFF bytes, without buffering', () => {
    const d = new FrameDecoder();
    expect(codeOf(() => d.push(fromHex('0affffffff')))).toBe('frame-too-large');
    // Even the first length byte alone proves the frame is too large.
    const early = new FrameDecoder();
    expect(codeOf(() => early.push(fromHex('0aff')))).toBe('frame-too-large');
    expect(early.bufferedLength).toBe(2);
  });

  it('enforces the configured limit and never holds more than limit + 5 bytes', () => {
    const d = new FrameDecoder({ maxFrameLength: 16 });
    expect(d.push(fromHex('0c00000010 03000d'))).toEqual([]);
    expect(d.push(new Uint8Array(12))).toEqual([]);
    expect(d.bufferedLength).toBe(20);
    expect(d.push(new Uint8Array(1))).toHaveLength(1);
    expect(d.bufferedLength).toBe(0);
    expect(codeOf(() => new FrameDecoder({ maxFrameLength: 16 }).push(fromHex('0c00000011')))).toBe('frame-too-large');
    const large = encodeFrame({ command: 0x0a, items: [{ id: 3, value: new Uint8Array(15360) }] });
    expect(new FrameDecoder({ maxFrameLength: 15360 + 64 }).push(large)).toHaveLength(1);
    expect(codeOf(() => new FrameDecoder({ maxFrameLength: -1 }))).toBe('bad-option');
    expect(codeOf(() => new FrameDecoder({ maxFrameLength: 2 ** 31 }))).toBe('bad-option');
  });

  it('rejects item overflow inside a streamed frame and then stays failed', () => {
    const d = new FrameDecoder();
    expect(codeOf(() => d.push(fromHex('0a00000004 010002 aa')))).toBe('item-overflow');
    expect(codeOf(() => d.push(fromHex('0c00000000')))).toBe('stream-failed');
  });

  it('does not keep views of a chunk the caller reuses', () => {
    const d = new FrameDecoder();
    const chunk = fromHex('0c00000000 0b000000');
    expect(d.push(chunk)).toHaveLength(1);
    chunk.fill(0xee);
    const [f] = d.push(fromHex('04 080001 00'));
    expect(f).toEqual({ command: 0x0b, items: [{ id: 8, value: fromHex('00') }] });
    const whole = fromHex('0b00000004 080001 07');
    const [g] = new FrameDecoder().push(whole);
    whole.fill(0);
    expect(toHex(g!.items[0]!.value)).toBe('07');
  });

  it('only throws DecodeError on random chunk streams', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (chunks) => {
        const d = new FrameDecoder({ maxFrameLength: 1000 });
        onlyDecodeError(() => {
          for (const c of chunks) d.push(c);
        });
        expect(d.bufferedLength).toBeLessThanOrEqual(1005);
      }),
      { numRuns: 300 },
    );
  });
});
