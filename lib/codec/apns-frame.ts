// Legacy APNs courier framing (ALPN `apns-security-v3`, also v2), protocol notes apns.md §2.1:
//   frame = cmd u8 | len u32 BE (bytes of all items) | item*      item = id u8 | ilen u16 BE | value[ilen]
// Items may repeat and unknown ids are kept; meaning lives in apns-commands.ts.
import { CeruleanError, DecodeError, EncodeError } from '../errors';
import { readU16be, readU32be } from './bytes';

export interface ApnsItem {
  id: number;
  value: Uint8Array;
}

export interface ApnsFrame {
  command: number;
  items: ApnsItem[];
}

export const FRAME_HEADER_LENGTH = 5;
const ITEM_HEADER_LENGTH = 3;
const MAX_ITEM_LENGTH = 0xffff;

/** Generous next to Apple's 15360-byte large-message size plus item overhead. */
export const DEFAULT_MAX_FRAME_LENGTH = 64 * 1024;

/** apsd refuses lengths ≥ 2^31; so does every limit here. */
export const ABSOLUTE_MAX_FRAME_LENGTH = 0x7fffffff;

function checkByte(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new EncodeError('bad-frame', `${what} must be a byte, got ${n}`);
}

export function encodeFrame(frame: ApnsFrame): Uint8Array {
  checkByte(frame.command, 'command');
  let length = 0;
  for (const item of frame.items) {
    checkByte(item.id, 'item id');
    if (item.value.length > MAX_ITEM_LENGTH) {
      throw new EncodeError('item-too-large', `item ${item.id} has ${item.value.length} bytes; the limit is 65535`);
    }
    length += ITEM_HEADER_LENGTH + item.value.length;
  }
  if (length > ABSOLUTE_MAX_FRAME_LENGTH) throw new EncodeError('frame-too-large', 'frame body exceeds 2^31-1 bytes');
  const out = new Uint8Array(FRAME_HEADER_LENGTH + length);
  const view = new DataView(out.buffer);
  out[0] = frame.command;
  view.setUint32(1, length);
  let off = FRAME_HEADER_LENGTH;
  for (const item of frame.items) {
    out[off] = item.id;
    view.setUint16(off + 1, item.value.length);
    out.set(item.value, off + ITEM_HEADER_LENGTH);
    off += ITEM_HEADER_LENGTH + item.value.length;
  }
  return out;
}

/** Items of a frame body; values are views into `body`, so callers pass bytes they own. */
function parseItems(body: Uint8Array): ApnsItem[] {
  const items: ApnsItem[] = [];
  let off = 0;
  while (off < body.length) {
    if (body.length - off < ITEM_HEADER_LENGTH) {
      throw new DecodeError('truncated-item', 'item header runs past the frame');
    }
    const id = body[off]!;
    const length = readU16be(body, off + 1);
    off += ITEM_HEADER_LENGTH;
    if (length > body.length - off) throw new DecodeError('item-overflow', `item ${id} runs past the frame`);
    items.push({ id, value: body.subarray(off, off + length) });
    off += length;
  }
  return items;
}

/** Exactly one frame, nothing after it. Item values are copies, never views of `bytes`. */
export function decodeFrame(bytes: Uint8Array): ApnsFrame {
  if (bytes.length < FRAME_HEADER_LENGTH) throw new DecodeError('truncated', 'frame header is incomplete');
  const length = readU32be(bytes, 1);
  const available = bytes.length - FRAME_HEADER_LENGTH;
  if (length > available) throw new DecodeError('truncated', `frame declares ${length} bytes, ${available} present`);
  if (length < available) throw new DecodeError('trailing-bytes', 'bytes follow the frame');
  return { command: bytes[0]!, items: parseItems(bytes.slice(FRAME_HEADER_LENGTH)) };
}

/** Validates a size option (a programming error, so not a DecodeError). */
export function checkLimit(name: string, n: number | undefined, fallback: number): number {
  const max = n ?? fallback;
  if (!Number.isInteger(max) || max < 0 || max > ABSOLUTE_MAX_FRAME_LENGTH) {
    throw new CeruleanError('bad-option', `${name} must be an integer in 0…2^31-1, got ${max}`);
  }
  return max;
}

/**
 * Bytes received but not yet framed. Chunks are kept as they arrive and joined only when a whole frame is taken,
 * so a frame trickling in one byte at a time costs linear, not quadratic, copying.
 */
export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** A copy of the first min(n, length) bytes, left in place. */
  peek(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.total));
    let off = 0;
    for (const c of this.chunks) {
      if (off === out.length) break;
      const part = c.subarray(0, out.length - off);
      out.set(part, off);
      off += part.length;
    }
    return out;
  }

  /** Removes and returns a fresh copy of the first n bytes (n ≤ length). */
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    let used = 0;
    while (off < n) {
      const c = this.chunks[used]!;
      const part = c.subarray(0, n - off);
      out.set(part, off);
      off += part.length;
      if (part.length === c.length) used++;
      else this.chunks[used] = c.subarray(part.length);
    }
    this.chunks.splice(0, used);
    this.total -= n;
    return out;
  }

  /** Stop holding views of a caller's buffer (which it may reuse) once a push has been processed. */
  detach(chunk: Uint8Array): void {
    const last = this.chunks.length - 1;
    if (last >= 0 && this.chunks[last]!.buffer === chunk.buffer) this.chunks[last] = this.chunks[last]!.slice();
  }
}

/**
 * Splits a TLS byte stream into legacy frames. The declared length is checked against the limit as soon as the
 * header bytes that carry it arrive, before any body is buffered, so at most limit+5 bytes are ever held. After a
 * DecodeError the stream is out of step and every later push fails too.
 */
export class FrameDecoder {
  private readonly max: number;
  private readonly queue = new ChunkQueue();
  private failed = false;

  constructor(opts: { maxFrameLength?: number } = {}) {
    this.max = checkLimit('maxFrameLength', opts.maxFrameLength, DEFAULT_MAX_FRAME_LENGTH);
  }

  /** Bytes held for a frame that is not complete yet. */
  get bufferedLength(): number {
    return this.queue.length;
  }

  push(chunk: Uint8Array): ApnsFrame[] {
    if (this.failed) throw new DecodeError('stream-failed', 'an earlier frame on this stream was malformed');
    try {
      this.queue.push(chunk);
      const frames: ApnsFrame[] = [];
      for (;;) {
        const header = this.queue.peek(FRAME_HEADER_LENGTH);
        this.checkLength(header);
        if (header.length < FRAME_HEADER_LENGTH) break;
        const total = FRAME_HEADER_LENGTH + readU32be(header, 1);
        if (this.queue.length < total) break;
        const bytes = this.queue.take(total);
        frames.push({ command: bytes[0]!, items: parseItems(bytes.subarray(FRAME_HEADER_LENGTH)) });
      }
      this.queue.detach(chunk);
      return frames;
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  /** Rejects as soon as the length bytes seen so far (missing ones taken as zero) already exceed the limit. */
  private checkLength(header: Uint8Array): void {
    let atLeast = 0;
    for (let i = 1; i < FRAME_HEADER_LENGTH; i++) atLeast = atLeast * 256 + (header[i] ?? 0);
    if (atLeast > this.max) {
      throw new DecodeError('frame-too-large', `frame declares at least ${atLeast} bytes; the limit is ${this.max}`);
    }
  }
}
