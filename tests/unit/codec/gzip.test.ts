import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex, utf8 } from '../../../lib/codec/bytes';
import { gunzip, gzip, isGzip, maybeGunzip } from '../../../lib/codec/gzip';
import { DecodeError } from '../../../lib/errors';
import vectors from '../../vectors';

// "hello" compressed by Python's gzip.GzipFile(mtime=0): header 1f8b 08 00 00000000 02 ff, deflate, CRC32, ISIZE.
const HELLO_GZ = '1f8b08000000000002ffcb48cdc9c9070086a6103605000000';

describe('gzip', () => {
  it('inflates a fixed gzip member', async () => {
    expect(new TextDecoder().decode(await gunzip(fromHex(HELLO_GZ)))).toBe('hello');
  });

  it('inflates the gzipped vector plaintexts to binary plists', async () => {
    for (const v of vectors.legacy.pair.filter((p) => p.gzipped)) {
      const out = await maybeGunzip(fromHex(v.plaintext));
      expect(toHex(out.subarray(0, 8))).toBe(toHex(utf8('bplist00')));
    }
  });

  it('applies the maybe-gzipped rule', async () => {
    const plain = utf8('bplist00 not compressed');
    expect(await maybeGunzip(plain)).toBe(plain);
    expect(isGzip(fromHex('1f8b'))).toBe(true);
    expect(isGzip(fromHex('1f'))).toBe(false);
  });

  it('round-trips random data', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (b) => {
        expect(await gunzip(await gzip(b))).toEqual(b);
      }),
      { numRuns: 50 },
    );
  });

  it('rejects corrupt input with DecodeError', async () => {
    await expect(gunzip(fromHex('1f8b0800'))).rejects.toBeInstanceOf(DecodeError);
    const bad = fromHex(HELLO_GZ);
    bad[bad.length - 5]! ^= 0xff; // CRC32
    await expect(gunzip(bad)).rejects.toBeInstanceOf(DecodeError);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (tail) => {
        const junk = new Uint8Array([0x1f, 0x8b, ...tail]);
        await gunzip(junk).then(
          () => undefined,
          (e) => expect(e).toBeInstanceOf(DecodeError),
        );
      }),
      { numRuns: 100 },
    );
  });

  it('stops a decompression bomb at the output limit', async () => {
    const bomb = await gzip(new Uint8Array(4 * 1024 * 1024)); // 4 MiB of zeros, a few KiB compressed
    expect(bomb.length).toBeLessThan(10_000);
    const err = await gunzip(bomb, 64 * 1024).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).code).toBe('gzip-too-large');
  });
});
