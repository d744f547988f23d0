// A token bucket in bytes. Chunks arrive already read, so the bucket may go into debt: the caller forwards the
// chunk and then stops reading for as long as the debt takes to repay. Over any window the rate holds, and no
// chunk is ever held back or split.

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burstBytes: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burstBytes;
    this.last = now();
  }

  /** Spends `bytes`; returns how many milliseconds to pause reading before the next chunk (0: go on). */
  take(bytes: number): number {
    const t = this.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((t - this.last) * this.bytesPerSecond) / 1000);
    this.last = t;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSecond);
  }
}
