// Collects a body of unknown final size: grows by doubling up to a hard limit, so memory follows the bytes that
// actually arrived (never a length the server announced) and a body of a million one-byte chunks costs no more
// than one of a single chunk.
import { NetError } from './errors';

export class ByteSink {
  private buf = new Uint8Array(0);
  private used = 0;

  constructor(
    private readonly limit: number,
    private readonly what = 'the response body',
  ) {}

  get length(): number {
    return this.used;
  }

  push(bytes: Uint8Array): void {
    const need = this.used + bytes.length;
    if (need > this.limit) throw new NetError('http-body-too-large', `${this.what} exceeds ${this.limit} bytes`);
    if (need > this.buf.length) {
      const grown = new Uint8Array(Math.min(this.limit, Math.max(need, this.buf.length * 2, 4096)));
      grown.set(this.buf.subarray(0, this.used));
      this.buf = grown;
    }
    this.buf.set(bytes, this.used);
    this.used = need;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.used);
  }
}
