// One open tunnel: a WebSocket and the TCP socket it was granted, bytes copied both ways and nothing else.
// Each direction has backpressure (stop reading one side while the other side's queue is above its high-water
// mark) and, when configured, a rate limit; both stop the reader rather than buffering, so memory per tunnel
// stays bounded whatever the two peers do.
import type { Socket } from 'node:net';
import { type RawData, WebSocket } from 'ws';
import { type CloseReason, TUNNEL_CLOSE } from './close-codes';
import type { BridgeMetrics } from './metrics';
import { TokenBucket } from './rate-limit';

export interface TunnelLimits {
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  readonly highWaterBytes: number;
  readonly lowWaterBytes: number;
}

export interface TunnelSummary {
  readonly reason: CloseReason;
  /** The WebSocket close code the tunnel ended with (sent or received). */
  readonly code: number;
  readonly durationMs: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  /** Message of the first socket error, if one ended the tunnel. */
  readonly error: string | undefined;
}

// After the client leaves, queued bytes still go to the destination; a destination that stops reading gets
// this long before the socket is dropped.
const UPSTREAM_LINGER_MS = 5_000;

// Reasons a reader is stopped; it reads again only when none is left.
const HELD_FOR_BACKPRESSURE = 1;
const HELD_FOR_RATE = 2;

export class Tunnel {
  private readonly startedAt = performance.now();
  private lastActivity = this.startedAt;
  private bytesFromClient = 0;
  private bytesToClient = 0;
  private tcpHeld = 0;
  private wsHeld = 0;
  private reason: CloseReason | undefined;
  private code = 0;
  private error: string | undefined;
  private wsClosed = false;
  /** Sends to the client whose completion callback has not run yet. */
  private sendsInFlight = 0;
  /** The destination has closed and the bridge waits for its last bytes to reach the client before closing. */
  private closeWhenFlushed = false;
  private tcpClosed = false;
  private finished = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private tcpRateTimer: NodeJS.Timeout | undefined;
  private wsRateTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly toClientBucket: TokenBucket | undefined;
  private readonly fromClientBucket: TokenBucket | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly tcp: Socket,
    private readonly limits: TunnelLimits,
    private readonly metrics: BridgeMetrics,
    private readonly onEnd: (summary: TunnelSummary) => void,
  ) {
    if (limits.bytesPerSecond > 0) {
      this.toClientBucket = new TokenBucket(limits.bytesPerSecond, limits.burstBytes);
      this.fromClientBucket = new TokenBucket(limits.bytesPerSecond, limits.burstBytes);
    }
    tcp.setNoDelay(true);
    tcp.on('data', this.onTcpData);
    tcp.on('end', this.onTcpEnd);
    tcp.on('error', this.onTcpError);
    tcp.on('close', this.onTcpClose);
    ws.on('message', this.onWsMessage);
    ws.on('error', this.onWsError);
    ws.on('close', this.onWsClose);
    this.idleTimer = setTimeout(this.onIdleTimer, limits.idleTimeoutMs);
  }

  /** Closes the tunnel because the bridge is stopping (close code 1001). */
  shutdown(): void {
    this.end('shutdown');
  }

  /** Drops both sockets at once; for the end of a shutdown grace period. */
  terminate(): void {
    this.ws.terminate();
    this.tcp.destroy();
  }

  /** Keeps intermediaries from timing out a quiet tunnel; does not count as activity. */
  ping(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }

  private readonly onTcpData = (chunk: Buffer): void => {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const n = chunk.length;
    this.bytesToClient += n;
    this.metrics.addBytes('destination_to_client', n);
    this.lastActivity = performance.now();
    this.sendsInFlight++;
    this.ws.send(chunk, this.afterWsSend);
    if (this.ws.bufferedAmount > this.limits.highWaterBytes && !(this.tcpHeld & HELD_FOR_BACKPRESSURE)) {
      this.holdTcp(HELD_FOR_BACKPRESSURE);
      this.metrics.paused('destination');
    }
    const wait = this.toClientBucket?.take(n) ?? 0;
    if (wait > 0) {
      this.holdTcp(HELD_FOR_RATE);
      clearTimeout(this.tcpRateTimer);
      this.tcpRateTimer = setTimeout(this.onTcpRateTimer, wait);
    }
  };

  // Runs as each queued chunk reaches the kernel; the queue only shrinks here.
  private readonly afterWsSend = (err?: Error): void => {
    this.sendsInFlight--;
    if (this.closeWhenFlushed) {
      this.lastActivity = performance.now();
      if (this.sendsInFlight === 0) this.end('upstream-closed');
    } else if (!err && this.tcpHeld & HELD_FOR_BACKPRESSURE && this.ws.bufferedAmount <= this.limits.lowWaterBytes) {
      this.releaseTcp(HELD_FOR_BACKPRESSURE);
    }
  };

  private readonly onTcpRateTimer = (): void => {
    this.tcpRateTimer = undefined;
    this.releaseTcp(HELD_FOR_RATE);
  };

  private readonly onWsMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      this.end('text-frame');
      return;
    }
    if (this.reason !== undefined) return;
    const chunk = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const n = chunk.length;
    this.bytesFromClient += n;
    this.metrics.addBytes('client_to_destination', n);
    this.lastActivity = performance.now();
    // Measured against the bridge's own high-water mark rather than write()'s answer: Node's socket default
    // (16 KiB) is below one WebSocket message, which would stop and restart the client for every message.
    this.tcp.write(chunk, this.afterTcpWrite);
    if (this.tcp.writableLength > this.limits.highWaterBytes && !(this.wsHeld & HELD_FOR_BACKPRESSURE)) {
      this.holdWs(HELD_FOR_BACKPRESSURE);
      this.metrics.paused('client');
    }
    // ws may still emit messages it had already read after pause(); each one grows the debt, so the timer is
    // re-armed for the whole of it.
    const wait = this.fromClientBucket?.take(n) ?? 0;
    if (wait > 0) {
      this.holdWs(HELD_FOR_RATE);
      clearTimeout(this.wsRateTimer);
      this.wsRateTimer = setTimeout(this.onWsRateTimer, wait);
    }
  };

  // Runs as each chunk reaches the kernel, like afterWsSend on the other side.
  private readonly afterTcpWrite = (err?: Error | null): void => {
    if (!err && this.wsHeld & HELD_FOR_BACKPRESSURE && this.tcp.writableLength <= this.limits.lowWaterBytes) {
      this.releaseWs(HELD_FOR_BACKPRESSURE);
    }
  };

  private readonly onWsRateTimer = (): void => {
    this.wsRateTimer = undefined;
    this.releaseWs(HELD_FOR_RATE);
  };

  private holdTcp(flag: number): void {
    if (this.tcpHeld === 0) this.tcp.pause();
    this.tcpHeld |= flag;
  }

  private releaseTcp(flag: number): void {
    if (!(this.tcpHeld & flag)) return;
    this.tcpHeld &= ~flag;
    if (this.tcpHeld === 0 && !this.tcpClosed) this.tcp.resume();
  }

  private holdWs(flag: number): void {
    if (this.wsHeld === 0) this.ws.pause();
    this.wsHeld |= flag;
  }

  private releaseWs(flag: number): void {
    if (!(this.wsHeld & flag)) return;
    this.wsHeld &= ~flag;
    if (this.wsHeld === 0) this.ws.resume();
  }

  // Checked lazily: activity only stamps a time, and the timer re-arms for whatever is left.
  private readonly onIdleTimer = (): void => {
    const idle = performance.now() - this.lastActivity;
    if (idle >= this.limits.idleTimeoutMs) {
      this.idleTimer = undefined;
      this.end('idle-timeout');
    } else {
      this.idleTimer = setTimeout(this.onIdleTimer, this.limits.idleTimeoutMs - idle);
    }
  };

  private readonly onTcpEnd = (): void => {
    this.end('upstream-closed');
  };

  private readonly onTcpError = (err: Error): void => {
    this.error ??= err.message;
    this.end('upstream-error');
  };

  private readonly onTcpClose = (): void => {
    this.tcpClosed = true;
    this.end('upstream-closed');
    this.finishIfDone();
  };

  private readonly onWsError = (err: Error): void => {
    // ws closes the connection itself after an error (oversize message, bad frame); this only records why.
    this.error ??= err.message;
    this.reason ??= 'client-error';
  };

  private readonly onWsClose = (code: number): void => {
    this.wsClosed = true;
    this.reason ??= 'client-closed';
    this.code ||= code;
    this.clearIdle();
    // Let bytes already queued reach the destination, but not forever.
    if (!this.tcpClosed) {
      this.tcp.end();
      this.lingerTimer = setTimeout(() => this.tcp.destroy(), UPSTREAM_LINGER_MS);
    }
    this.finishIfDone();
  };

  /**
   * Starts closing for `reason`; the first reason is the one reported, except that any other reason cuts short
   * the wait for a closed destination's last bytes.
   */
  private end(reason: Exclude<CloseReason, 'client-closed' | 'client-error'>): void {
    if (this.reason !== undefined && !this.closeWhenFlushed) return;
    this.closeWhenFlushed = false;
    this.reason = reason;
    const frame = TUNNEL_CLOSE[reason];
    this.code = frame.code;
    // The destination's own close needs nothing more; the bridge's reasons drop it now.
    if (reason !== 'upstream-closed') this.tcp.destroy();
    // ws gives a closing client only a short while before dropping it, so the close frame waits until the
    // destination's last bytes are out; the idle timer, fed by that progress, bounds the wait.
    if (reason === 'upstream-closed' && this.sendsInFlight > 0) {
      this.closeWhenFlushed = true;
      return;
    }
    this.clearIdle();
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(frame.code, frame.reason);
  }

  private clearIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private finishIfDone(): void {
    if (this.finished || !this.wsClosed || !this.tcpClosed) return;
    this.finished = true;
    clearTimeout(this.tcpRateTimer);
    clearTimeout(this.wsRateTimer);
    clearTimeout(this.lingerTimer);
    this.onEnd({
      reason: this.reason ?? 'client-closed',
      code: this.code,
      durationMs: Math.round(performance.now() - this.startedAt),
      bytesFromClient: this.bytesFromClient,
      bytesToClient: this.bytesToClient,
      error: this.error,
    });
  }
}
