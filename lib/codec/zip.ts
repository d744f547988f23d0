// Reading single files out of a zip archive (PKWARE APPNOTE) whose bytes are untrusted, e.g. a downloaded carrier
// bundle. The central directory is the index (as every mainstream reader uses it), entries are bounded in number,
// and a file is inflated with fflate's streaming Inflate a small slice at a time, so a body that inflates past its
// declared size — a zip bomb — is stopped within a few megabytes of work instead of being run to its end. Stored and
// deflated files are read; the CRC-32 of what comes out must match. Zip64, multi-disk and encrypted archives are
// refused: the archives this reads are small single files.
import { Inflate } from 'fflate';
import { DecodeError } from '../errors';
import { fromUtf8 } from './bytes';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate (the only two read). */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  /** The declared inflated size. */
  size: number;
  /** Where the entry's local header starts. */
  localOffset: number;
}

export interface ZipLimits {
  /** Entries in the central directory. */
  maxEntries?: number;
}

const EOCD_SIG = 0x06054b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_UTF8 = 0x0800;
/** Compressed bytes handed to the inflater per step; one step inflates to at most ~1032 times this. */
const INFLATE_SLICE = 4096;
const DEFAULT_MAX_ENTRIES = 65_535;

const bad = (why: string) => new DecodeError('bad-zip', `zip: ${why}`);

function u16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** The central directory's entries, in order. */
export function listZip(zip: Uint8Array, limits: ZipLimits = {}): ZipEntry[] {
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const eocd = findEndOfCentralDirectory(zip);
  if (u16(zip, eocd + 4) !== 0 || u16(zip, eocd + 6) !== 0) throw bad('multi-disk archives are not supported');
  const count = u16(zip, eocd + 10);
  const cdSize = u32(zip, eocd + 12);
  const cdOffset = u32(zip, eocd + 16);
  if (u16(zip, eocd + 8) !== count) throw bad('multi-disk archives are not supported');
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw bad('zip64 archives are not supported');
  if (count > maxEntries) throw new DecodeError('zip-too-large', `zip: more than ${maxEntries} entries`);
  if (cdOffset + cdSize > eocd) throw bad('the central directory lies outside the archive');

  const entries: ZipEntry[] = [];
  let at = cdOffset;
  const end = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_SIZE > end || u32(zip, at) !== CENTRAL_SIG) throw bad('a central directory entry is malformed');
    const flags = u16(zip, at + 8);
    const nameLength = u16(zip, at + 28);
    const next = at + CENTRAL_SIZE + nameLength + u16(zip, at + 30) + u16(zip, at + 32);
    if (next > end) throw bad('a central directory entry runs past the directory');
    if (u16(zip, at + 34) !== 0) throw bad('multi-disk archives are not supported');
    const compressedSize = u32(zip, at + 20);
    const size = u32(zip, at + 24);
    const localOffset = u32(zip, at + 42);
    if (compressedSize === 0xffffffff || size === 0xffffffff || localOffset === 0xffffffff) throw bad('zip64 entries are not supported');
    const nameBytes = zip.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLength);
    entries.push({
      name: flags & FLAG_UTF8 ? utf8Name(nameBytes) : latin1(nameBytes),
      method: u16(zip, at + 10),
      flags,
      crc32: u32(zip, at + 16),
      compressedSize,
      size,
      localOffset,
    });
    at = next;
  }
  return entries;
}

/**
 * One entry's contents. `maxBytes` bounds the declared size (checked before any work) and the inflated output;
 * output beyond the declared size, a short output, or a CRC mismatch is an error.
 */
export function readZipEntry(zip: Uint8Array, entry: ZipEntry, maxBytes: number): Uint8Array {
  if (entry.flags & FLAG_ENCRYPTED) throw bad(`${entry.name} is encrypted`);
  if (entry.method !== 0 && entry.method !== 8) throw bad(`${entry.name} uses compression method ${entry.method}`);
  if (entry.size > maxBytes) throw new DecodeError('zip-too-large', `zip: ${entry.name} declares ${entry.size} bytes (limit ${maxBytes})`);
  const local = entry.localOffset;
  if (local + LOCAL_SIZE > zip.length || u32(zip, local) !== LOCAL_SIG) throw bad(`${entry.name} has no local header`);
  const start = local + LOCAL_SIZE + u16(zip, local + 26) + u16(zip, local + 28);
  if (start + entry.compressedSize > zip.length) throw bad(`${entry.name} runs past the archive`);
  const data = zip.subarray(start, start + entry.compressedSize);

  let out: Uint8Array;
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size) throw bad(`${entry.name}: stored sizes disagree`);
    out = data.slice();
  } else {
    out = inflateBounded(data, entry);
  }
  if (crc32(out) !== entry.crc32) throw bad(`${entry.name}: CRC-32 mismatch`);
  return out;
}

function inflateBounded(data: Uint8Array, entry: ZipEntry): Uint8Array {
  const out = new Uint8Array(entry.size);
  let length = 0;
  let overflow = false;
  let ended = false;
  const inflater = new Inflate((chunk, final) => {
    if (length + chunk.length > out.length) {
      overflow = true;
      return;
    }
    out.set(chunk, length);
    length += chunk.length;
    if (final) ended = true;
  });
  try {
    for (let off = 0; off < data.length && !overflow; off += INFLATE_SLICE) {
      const end = Math.min(off + INFLATE_SLICE, data.length);
      inflater.push(data.subarray(off, end), end === data.length);
    }
    if (data.length === 0) inflater.push(new Uint8Array(0), true);
  } catch (e) {
    throw new DecodeError('bad-zip', `zip: ${entry.name} is not valid deflate data`, { cause: e });
  }
  if (overflow) throw new DecodeError('zip-too-large', `zip: ${entry.name} inflates past its declared ${entry.size} bytes`);
  if (!ended || length !== entry.size) throw bad(`${entry.name} inflates to fewer bytes than declared`);
  return out;
}

function findEndOfCentralDirectory(zip: Uint8Array): number {
  // The record is 22 bytes plus a comment of at most 65535.
  const lowest = Math.max(0, zip.length - EOCD_SIZE - 0xffff);
  for (let at = zip.length - EOCD_SIZE; at >= lowest; at--) {
    if (u32(zip, at) === EOCD_SIG && at + EOCD_SIZE + u16(zip, at + 20) <= zip.length) return at;
  }
  throw bad('no end-of-central-directory record (not a zip archive)');
}

function utf8Name(b: Uint8Array): string {
  try {
    return fromUtf8(b);
  } catch {
    throw bad('an entry name flagged UTF-8 is not UTF-8');
  }
}

/** Names without the UTF-8 flag are CP437; the names this reads are ASCII, where the two agree. */
function latin1(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC, reflected 0xEDB88320), as zip stores it. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
