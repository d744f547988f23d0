import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { fromHex, fromUtf8, utf8 } from '../../../lib/codec/bytes';
import { crc32, listZip, readZipEntry, type ZipEntry } from '../../../lib/codec/zip';
import { DecodeError } from '../../../lib/errors';

const NAME = 'Payload/A.bundle/carrier.plist';
const TEXT = 'hello hello hello hello';
// Written by Python's zipfile (2024-05-13 12:00:00): one stored and one deflated entry holding TEXT.
const STORED = fromHex(
  '504b03041400000000000060ad58e3513d8d17000000170000001e0000005061796c6f61642f412e62756e646c652f636172726965722e706c69737468656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f' +
    '504b010214031400000000000060ad58e3513d8d17000000170000001e00000000000000000000008001000000005061796c6f61642f412e62756e646c652f636172726965722e706c697374' +
    '504b050600000000010001004c000000530000000000',
);
const DEFLATED = fromHex(
  '504b03041400000008000060ad58e3513d8d0a000000170000001e0000005061796c6f61642f412e62756e646c652f636172726965722e706c697374cb48cdc9c957c8402701' +
    '504b010214031400000008000060ad58e3513d8d0a000000170000001e00000000000000000000008001000000005061796c6f61642f412e62756e646c652f636172726965722e706c697374' +
    '504b050600000000010001004c000000460000000000',
);
/** Offsets of fields in the one-entry vectors: the central header starts after the local header and data. */
const centralOf = (zip: Uint8Array) => zip.length - 22 - 76;

function expectZipError(f: () => unknown, code: string | RegExp = /^(bad-zip|zip-too-large)$/): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    expect((e as DecodeError).code).toMatch(code);
    return;
  }
  expect.unreachable('no error');
}

function onlyEntry(zip: Uint8Array): ZipEntry {
  const entries = listZip(zip);
  expect(entries).toHaveLength(1);
  return entries[0]!;
}

function with32(zip: Uint8Array, at: number, value: number): Uint8Array {
  const out = zip.slice();
  new DataView(out.buffer).setUint32(at, value, true);
  return out;
}

function with16(zip: Uint8Array, at: number, value: number): Uint8Array {
  const out = zip.slice();
  new DataView(out.buffer).setUint16(at, value, true);
  return out;
}

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32(utf8('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(utf8(TEXT))).toBe(0x8d3d51e3);
  });
});

describe('listZip / readZipEntry on fixed archives', () => {
  it('reads a stored entry', () => {
    const e = onlyEntry(STORED);
    expect(e).toEqual({ name: NAME, method: 0, flags: 0, crc32: 0x8d3d51e3, compressedSize: 23, size: 23, localOffset: 0 });
    expect(fromUtf8(readZipEntry(STORED, e, 1024))).toBe(TEXT);
  });

  it('reads a deflated entry', () => {
    const e = onlyEntry(DEFLATED);
    expect(e).toMatchObject({ name: NAME, method: 8, compressedSize: 10, size: 23 });
    expect(fromUtf8(readZipEntry(DEFLATED, e, 1024))).toBe(TEXT);
  });

  it('reads what fflate writes, with many entries and a comment', () => {
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 50; i++) files[`dir/file-${i}.txt`] = utf8(`file ${i} `.repeat(i + 1));
    const zip = zipSync(files, { comment: 'a comment at the end' });
    const entries = listZip(zip);
    expect(entries.map((e) => e.name)).toEqual(Object.keys(files));
    for (const e of entries) expect(readZipEntry(zip, e, 1 << 20)).toEqual(files[e.name]);
  });

  it('bounds the number of entries', () => {
    const zip = zipSync({ a: utf8('1'), b: utf8('2'), c: utf8('3') });
    expect(listZip(zip, { maxEntries: 3 })).toHaveLength(3);
    expectZipError(() => listZip(zip, { maxEntries: 2 }), 'zip-too-large');
  });
});

describe('tampering', () => {
  it('a changed byte of the data fails the CRC or the inflate', () => {
    for (const zip of [STORED, DEFLATED]) {
      const e = onlyEntry(zip);
      for (let i = 0; i < e.compressedSize; i++) {
        const t = zip.slice();
        t[30 + NAME.length + i]! ^= 0x01;
        expectZipError(() => readZipEntry(t, e, 1024), 'bad-zip');
      }
    }
  });

  it('a changed CRC is refused', () => {
    const t = with32(STORED, centralOf(STORED) + 16, 0x12345678);
    expectZipError(() => readZipEntry(t, onlyEntry(t), 1024), 'bad-zip');
  });

  it('a declared size smaller than the real one is a bomb, larger is refused', () => {
    const small = with32(DEFLATED, centralOf(DEFLATED) + 24, 5);
    expectZipError(() => readZipEntry(small, onlyEntry(small), 1024), 'zip-too-large');
    const large = with32(DEFLATED, centralOf(DEFLATED) + 24, 40);
    expectZipError(() => readZipEntry(large, onlyEntry(large), 1024), 'bad-zip');
    expectZipError(() => readZipEntry(DEFLATED, onlyEntry(DEFLATED), 22), 'zip-too-large');
  });

  it('stops a real bomb early: 32 MiB of zeros declared as 100 bytes', () => {
    const bomb = zipSync({ [NAME]: new Uint8Array(32 * 1024 * 1024) }, { level: 9 });
    const lying = with32(bomb, centralOf(bomb) + 24, 100);
    const started = Date.now();
    expectZipError(() => readZipEntry(lying, onlyEntry(lying), 1 << 20), 'zip-too-large');
    // Inflating all of it into a fixed buffer (what a one-shot unzip does) takes seconds; one slice takes milliseconds.
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('bad input', () => {
  it('refuses what is not a zip archive', () => {
    for (const b of [new Uint8Array(0), utf8('PK'), new Uint8Array(100), utf8('not a zip archive at all, but long enough to scan')]) {
      expectZipError(() => listZip(b), 'bad-zip');
    }
    expectZipError(() => listZip(STORED.subarray(0, STORED.length - 1)), 'bad-zip');
    expectZipError(() => listZip(STORED.subarray(40)), 'bad-zip');
  });

  it('refuses multi-disk, zip64 and out-of-range directories', () => {
    const eocd = STORED.length - 22;
    expectZipError(() => listZip(with16(STORED, eocd + 4, 1)));
    expectZipError(() => listZip(with16(STORED, eocd + 8, 2)));
    expectZipError(() => listZip(with16(STORED, eocd + 10, 0xffff)));
    expectZipError(() => listZip(with32(STORED, eocd + 16, 0xffffffff)));
    expectZipError(() => listZip(with32(STORED, eocd + 16, 1000)));
    expectZipError(() => listZip(with32(STORED, eocd + 12, 1000)));
    expectZipError(() => listZip(with32(STORED, centralOf(STORED) + 24, 0xffffffff)));
    expectZipError(() => listZip(with16(STORED, centralOf(STORED) + 28, 200)));
  });

  it('refuses entries it cannot read', () => {
    const c = centralOf(STORED);
    const encrypted = with16(STORED, c + 8, 1);
    expectZipError(() => readZipEntry(encrypted, onlyEntry(encrypted), 1024), 'bad-zip');
    const lzma = with16(STORED, c + 10, 14);
    expectZipError(() => readZipEntry(lzma, onlyEntry(lzma), 1024), 'bad-zip');
    const noLocal = with32(STORED, c + 42, 7);
    expectZipError(() => readZipEntry(noLocal, onlyEntry(noLocal), 1024), 'bad-zip');
    const pastEnd = with32(STORED, c + 20, 10_000);
    expectZipError(() => readZipEntry(pastEnd, onlyEntry(pastEnd), 1 << 20), 'bad-zip');
    const badName = with16(with16(STORED, c + 8, 0x0800), c + 46, 0xffff);
    expectZipError(() => listZip(badName), 'bad-zip');
  });

  it('random and mutated archives give only typed errors', () => {
    const readAll = (b: Uint8Array) => {
      for (const e of listZip(b, { maxEntries: 64 })) readZipEntry(b, e, 1 << 16);
    };
    const check = (b: Uint8Array) => {
      try {
        readAll(b);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), check), { numRuns: 200 });
    const base = zipSync({ 'Payload/X.bundle/carrier.plist': utf8(TEXT.repeat(4)), 'Payload/X.bundle/Info.plist': utf8('info') });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (edits) => {
        const b = base.slice();
        for (const [at, v] of edits) b[at] = v;
        check(b);
      }),
      { numRuns: 300 },
    );
  });
});
