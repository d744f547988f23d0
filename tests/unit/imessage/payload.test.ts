import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex, utf8 } from '../../../lib/codec/bytes';
import { gzip, isGzip } from '../../../lib/codec/gzip';
import type { PlistValue } from '../../../lib/codec/plist';
import { encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import { encodeXmlPlist } from '../../../lib/codec/plist-xml';
import { DecodeError } from '../../../lib/errors';
import { decodePayload, encodePayload } from '../../../lib/imessage/payload';
import vectors from '../../vectors';
import { mutated, onlyDecodeErrorAsync } from './arbitraries';

// python3: plistlib.dumps({'t':'hi'}, fmt=FMT_BINARY, sort_keys=False).hex()
const HI_HEX = '62706c6973743030d101025174526869080b0d0000000000000101000000000000000300000000000000000000000000000010';

// Values that decode back to the identical JS value (no integral doubles, which come back as integers).
const canonical: fc.Arbitrary<PlistValue> = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.integer(),
  fc.boolean(),
  fc.uint8Array({ maxLength: 20 }),
  fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 3 }),
);

describe('payload layer', () => {
  it('encodes a dict as a binary plist, optionally gzipped', async () => {
    const plain = await encodePayload({ t: 'hi' });
    expect(toHex(plain)).toBe(HI_HEX);
    const zipped = await encodePayload({ t: 'hi' }, { gzip: true });
    expect(isGzip(zipped)).toBe(true);
    expect(await decodePayload(zipped)).toEqual({ t: 'hi' });
  });

  it('receiver rule: maybe-gunzip, then binary or XML plist', async () => {
    expect(await decodePayload(fromHex(HI_HEX))).toEqual({ t: 'hi' });
    expect(await decodePayload(encodeXmlPlist({ t: 'hi', n: 1 }))).toEqual({ t: 'hi', n: 1 });
    expect(await decodePayload(await gzip(encodeXmlPlist({ t: 'x' })))).toEqual({ t: 'x' });
    for (const v of vectors.legacy.pair) {
      const d = await decodePayload(fromHex(v.plaintext));
      expect(d['t']).toBe(v.text);
    }
  });

  it('rejects non-dicts, garbage, bad gzip and bombs with DecodeError', async () => {
    await expect(decodePayload(encodeBinaryPlist([1]))).rejects.toMatchObject({ code: 'not-a-dict' });
    await expect(decodePayload(utf8('hello'))).rejects.toThrow(DecodeError);
    await expect(decodePayload(fromHex('1f8b08000000'))).rejects.toThrow(DecodeError);
    const bomb = await gzip(new Uint8Array(4096));
    await expect(decodePayload(bomb, { maxInflated: 1024 })).rejects.toMatchObject({ code: 'gzip-too-large' });
  });

  it('round-trips random dicts and throws only DecodeError on random or mutated bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 5 }), canonical, { maxKeys: 4, noNullPrototype: true }), fc.boolean(), async (d, z) => {
        expect(await decodePayload(await encodePayload(d, { gzip: z }))).toEqual(d);
      }),
      { numRuns: 100 },
    );
    const valid = await encodePayload({ t: 'hello', p: ['mailto:a@x.com'] });
    for (const arb of [fc.uint8Array({ maxLength: 150 }), mutated(valid)]) {
      await fc.assert(fc.asyncProperty(arb, async (b) => void (await onlyDecodeErrorAsync(() => decodePayload(b)))), { numRuns: 150 });
    }
  });
});
