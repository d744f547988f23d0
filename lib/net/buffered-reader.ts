// Line and length reads over a ByteStream for the HTTP parser. Bytes past what a read asked for stay buffered
// for the next read (the next response on a kept-alive connection).
import { concat } from '../codec/bytes';
import type { ByteStream } from './byte-stream';
import type { ByteSink } from './byte-sink';
import { NetError } from './errors';

const EMPTY = new Uint8Array(0);

export class BufferedReader {
  private buf: Uint8Array = EMPTY;

  constructor(private readonly stream: ByteStream) {}

  /** Bytes received and not yet consumed. */
  get buffered(): number {
    return this.buf.length;
  }

  /**
   * The next line without its CRLF, or null when the stream ends before the line's first byte. A line longer
   * than `maxBytes` throws `tooLong()` once that many bytes are buffered, without waiting for its end.
   */
  async readLine(maxBytes: number, tooLong: () => NetError): Promise<Uint8Array | null> {
    let scanned = 0;
    for (;;) {
      const lf = this.buf.indexOf(0x0a, scanned);
      if (lf >= 0) {
        if (lf > maxBytes + 1) throw tooLong();
        if (lf === 0 || this.buf[lf - 1] !== 0x0d) throw new NetError('http-bad-response', 'a line ends without CR');
        const line = this.buf.subarray(0, lf - 1);
        this.buf = this.buf.subarray(lf + 1);
        return line;
      }
      if (this.buf.length > maxBytes + 1) throw tooLong();
      scanned = this.buf.length;
      const chunk = await this.stream.read();
      if (chunk === null) {
        if (this.buf.length === 0) return null;
        throw truncated();
      }
      this.buf = this.buf.length ? concat(this.buf, chunk) : chunk;
    }
  }

  /** Exactly `n` bytes; a stream that ends first is an error. */
  async readExact(n: number): Promise<Uint8Array> {
    while (this.buf.length < n) {
      const chunk = await this.stream.read();
      if (chunk === null) throw truncated();
      this.buf = concat(this.buf, chunk);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Moves exactly `n` bytes into `sink` as they arrive (n is never allocated up front). */
  async readInto(n: number, sink: ByteSink): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) {
        const chunk = await this.stream.read();
        if (chunk === null) throw truncated();
        this.buf = chunk;
      }
      const take = Math.min(left, this.buf.length);
      sink.push(this.buf.subarray(0, take));
      this.buf = this.buf.subarray(take);
      left -= take;
    }
  }

  /** Everything until the end of the stream into `sink`. */
  async readToEnd(sink: ByteSink): Promise<void> {
    for (;;) {
      if (this.buf.length) sink.push(this.buf);
      const chunk = await this.stream.read();
      if (chunk === null) {
        this.buf = EMPTY;
        return;
      }
      this.buf = chunk;
    }
  }
}

function truncated(): NetError {
  return new NetError('connection-closed', 'the server closed the connection in the middle of a response');
}
