// The receive side of a stream: chunks pushed by a transport callback, pulled by read(). A transport that
// cannot be paused (a browser WebSocket) is bounded by `limit`: the owner checks `size` and fails the
// connection instead of buffering without end.

type Reader = { resolve: (chunk: Uint8Array | null) => void; reject: (e: Error) => void };

export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private bytes = 0;
  private finished = false;
  private error: Error | undefined;
  private readers: Reader[] = [];
  private spaceWaiters: Array<{ below: number; wake: () => void }> = [];

  /** Bytes pushed and not yet read. */
  get size(): number {
    return this.bytes;
  }

  get ended(): boolean {
    return this.finished;
  }

  push(chunk: Uint8Array): void {
    if (this.finished || chunk.length === 0) return;
    const reader = this.readers.shift();
    if (reader) {
      reader.resolve(chunk);
      return;
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** No more data: queued chunks are still read, then null (or `error`). The first end wins. */
  end(error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.error = error;
    for (const r of this.readers.splice(0)) error ? r.reject(error) : r.resolve(null);
    this.wakeSpaceWaiters();
  }

  /** Ends and drops unread data: the reader has gone away. */
  discard(): void {
    this.chunks = [];
    this.bytes = 0;
    this.end();
  }

  read(): Promise<Uint8Array | null> {
    const chunk = this.chunks.shift();
    if (chunk) {
      this.bytes -= chunk.length;
      this.wakeSpaceWaiters();
      return Promise.resolve(chunk);
    }
    if (this.finished) return this.error ? Promise.reject(this.error) : Promise.resolve(null);
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  /** Resolves once fewer than `below` bytes are queued, or the queue has ended. */
  whenBelow(below: number): Promise<void> {
    if (this.bytes < below || this.finished) return Promise.resolve();
    return new Promise((wake) => this.spaceWaiters.push({ below, wake }));
  }

  private wakeSpaceWaiters(): void {
    this.spaceWaiters = this.spaceWaiters.filter((w) => {
      if (this.bytes < w.below || this.finished) {
        w.wake();
        return false;
      }
      return true;
    });
  }
}
