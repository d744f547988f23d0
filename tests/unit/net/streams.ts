// In-memory ByteStreams for lib/net unit tests: bytes fed by the test (optionally in answer to each write).
import { utf8 } from '../../../lib/codec/bytes';
import type { ByteStream, CloseInfo } from '../../../lib/net/byte-stream';
import { ChunkQueue } from '../../../lib/net/chunk-queue';
import type { NetError } from '../../../lib/net/errors';

export type Chunk = string | Uint8Array;

export const bytesOf = (c: Chunk): Uint8Array => (typeof c === 'string' ? utf8(c) : c);

export class ScriptedStream implements ByteStream {
  readonly written: Uint8Array[] = [];
  readonly closed: Promise<CloseInfo>;
  isClosed = false;
  private readonly queue = new ChunkQueue();
  private settle!: (info: CloseInfo) => void;

  /** `onWrite` may answer each write, e.g. with the next scripted response. */
  constructor(private readonly onWrite?: (bytes: Uint8Array, stream: ScriptedStream) => void) {
    this.closed = new Promise((r) => (this.settle = r));
  }

  feed(...chunks: Chunk[]): this {
    for (const c of chunks) this.queue.push(bytesOf(c));
    return this;
  }

  end(error?: NetError): this {
    this.queue.end(error);
    this.settle(error ? { error } : {});
    return this;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.isClosed) throw new Error('write after close');
    this.written.push(bytes.slice());
    this.onWrite?.(bytes, this);
  }

  read(): Promise<Uint8Array | null> {
    return this.queue.read();
  }

  close(): void {
    this.isClosed = true;
    this.queue.discard();
    this.settle({});
  }
}

/** A stream that answers the n-th write with responses[n] (each a list of chunks), then ends if asked. */
export function serverStream(responses: Chunk[][], endAfter = false): ScriptedStream {
  let n = 0;
  return new ScriptedStream((_, s) => {
    const next = responses[n++];
    if (next) s.feed(...next);
    if (endAfter && n === responses.length) s.end();
  });
}

/** Splits `data` at the given offsets into chunks. */
export function splitAt(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < data.length))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, data.length]) {
    out.push(data.slice(prev, p));
    prev = p;
  }
  return out;
}
