// One connection to the courier in legacy framing (apns.md §2.1): Connect and its response, then typed frames in
// both directions and the keep-alive. Reconnecting, tokens, topics and delivery bookkeeping belong to CourierClient;
// this class only reports what arrives and ends itself — exactly once, with the reason — when anything goes wrong.
import {
  buildMessage,
  parseMessage,
  type Ack,
  type ApnsMessage,
  type ApnsMessageType,
  type ConnectResponse,
  type MessageInput,
  type Notification,
} from '../codec/apns-commands';
import { encodeFrame, FrameDecoder } from '../codec/apns-frame';
import { LEGACY_ALPN } from '../codec/apns-packed';
import type { ByteStream } from '../net/byte-stream';
import { DecodeError } from '../errors';
import { ApnsError } from './errors';
import type { TimerHandle, Timers } from './timers';

/** A TLS connection to a courier host (lib/net's TlsConnection fits). */
export interface CourierStream extends ByteStream {
  /** The ALPN protocol the server chose; null or absent when it chose none (legacy framing either way). */
  readonly alpnProtocol?: string | null;
}

/** The only ALPN protocol offered: packed framing (apns-pack-v1) is not spoken by this client yet. */
export const COURIER_ALPN: readonly string[] = [LEGACY_ALPN];

export interface ConnectionSink {
  notification(n: Notification): void;
  /** The courier's answer to one of our upstream 0x0A. */
  upstreamAck(ack: Ack): void;
  noStorage(): void;
  /** Called once when the connection is over; `error` says why (absent after a plain close()). */
  end(error: ApnsError | undefined): void;
}

export interface ConnectionOptions {
  timers: Timers;
  keepAliveMs: number;
  keepAliveTimeoutMs: number;
}

let nextConnectionId = 1;

export class CourierConnection {
  /** Distinguishes connections in the client's bookkeeping. */
  readonly id = nextConnectionId++;
  /** Default limit (64 KiB): well above the courier's 15360-byte large-message size. */
  private readonly decoder = new FrameDecoder();
  private isEnded = false;
  private authenticated = false;
  private awaitingResponse: { resolve: (r: ConnectResponse) => void; reject: (e: ApnsError) => void } | undefined;
  private keepAliveTimer: TimerHandle | undefined;
  private keepAliveDeadline: TimerHandle | undefined;

  constructor(
    private readonly stream: CourierStream,
    private readonly sink: ConnectionSink,
    private readonly options: ConnectionOptions,
  ) {
    const alpn = stream.alpnProtocol;
    if (alpn && alpn !== LEGACY_ALPN) {
      // Reported on the next turn so the owner has this object in hand when `end` arrives.
      queueMicrotask(() =>
        this.close(new ApnsError('unsupported-framing', `the courier chose ALPN "${alpn}"; only ${LEGACY_ALPN} is spoken`)),
      );
      return;
    }
    void this.readLoop();
  }

  get ended(): boolean {
    return this.isEnded;
  }

  /** Sends Connect and resolves with the courier's 0x08, whatever its status. */
  handshake(connect: MessageInput<'connect'>, timeoutMs: number): Promise<ConnectResponse> {
    if (this.isEnded) return Promise.reject(closedError());
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(buildMessage('connect', connect));
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<ConnectResponse>((resolve, reject) => {
      const timer = this.options.timers.setTimeout(
        () => this.close(new ApnsError('connect-timeout', `no answer to Connect within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const settle = () => this.options.timers.clearTimeout(timer);
      this.awaitingResponse = {
        resolve: (r) => (settle(), resolve(r)),
        reject: (e) => (settle(), reject(e)),
      };
      this.write(bytes).catch(() => {});
    });
  }

  /**
   * Writes one frame. Frames go out whole and in call order, so callers need not wait for one before the next;
   * a failed write ends the connection (and rejects).
   */
  send<T extends ApnsMessageType>(type: T, fields: MessageInput<T>): Promise<void> {
    if (this.isEnded) return Promise.reject(closedError());
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(buildMessage(type, fields));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.write(bytes);
  }

  private write(bytes: Uint8Array): Promise<void> {
    return this.stream.write(bytes).catch((e: unknown) => {
      const error = new ApnsError('connection-closed', 'writing to the courier failed', { cause: e });
      this.close(error);
      throw error;
    });
  }

  /** Sends 0x0C every keepAliveMs; a 0x0D must answer each within keepAliveTimeoutMs or the connection ends. */
  startKeepAlive(): void {
    if (!this.isEnded && this.keepAliveTimer === undefined && this.keepAliveDeadline === undefined) this.scheduleKeepAlive();
  }

  /** Ends the connection (idempotent); the sink hears `end(error)` once. */
  close(error?: ApnsError): void {
    if (this.isEnded) return;
    this.isEnded = true;
    const { timers } = this.options;
    if (this.keepAliveTimer !== undefined) timers.clearTimeout(this.keepAliveTimer);
    if (this.keepAliveDeadline !== undefined) timers.clearTimeout(this.keepAliveDeadline);
    this.keepAliveTimer = this.keepAliveDeadline = undefined;
    this.stream.close();
    this.awaitingResponse?.reject(error ?? closedError());
    this.awaitingResponse = undefined;
    this.sink.end(error);
  }

  private scheduleKeepAlive(): void {
    const { timers, keepAliveMs, keepAliveTimeoutMs } = this.options;
    this.keepAliveTimer = timers.setTimeout(() => {
      this.keepAliveTimer = undefined;
      this.keepAliveDeadline = timers.setTimeout(
        () => this.close(new ApnsError('keep-alive-timeout', `no keep-alive answer within ${keepAliveTimeoutMs} ms`)),
        keepAliveTimeoutMs,
      );
      this.send('keepAlive', {}).catch(() => {});
    }, keepAliveMs);
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const chunk = await this.stream.read();
        if (this.isEnded) return;
        if (chunk === null) {
          this.close(new ApnsError('connection-closed', 'the courier closed the connection'));
          return;
        }
        for (const frame of this.decoder.push(chunk)) {
          this.dispatch(parseMessage(frame, 'toClient'));
          if (this.isEnded) return;
        }
      }
    } catch (e) {
      this.close(
        e instanceof ApnsError
          ? e
          : e instanceof DecodeError
            ? new ApnsError('protocol-error', `the courier sent a malformed frame: ${e.message}`, { cause: e })
            : new ApnsError('connection-closed', 'the connection to the courier failed', { cause: e }),
      );
    }
  }

  private dispatch(msg: ApnsMessage): void {
    switch (msg.type) {
      case 'connectResponse':
        // Only the first one means anything.
        if (this.awaitingResponse) {
          const waiter = this.awaitingResponse;
          this.awaitingResponse = undefined;
          this.authenticated = msg.fields.status === 0;
          waiter.resolve(msg.fields);
        }
        return;
      case 'notification':
        if (!this.authenticated) throw new ApnsError('protocol-error', 'the courier sent a notification before accepting Connect');
        this.sink.notification(msg.fields);
        return;
      case 'ack':
        if (this.authenticated) this.sink.upstreamAck(msg.fields);
        return;
      case 'keepAliveAck':
        if (this.keepAliveDeadline !== undefined) {
          this.options.timers.clearTimeout(this.keepAliveDeadline);
          this.keepAliveDeadline = undefined;
          this.scheduleKeepAlive();
        }
        return;
      case 'noStorage':
        if (this.authenticated) this.sink.noStorage();
        return;
      case 'redirect': {
        const reason = msg.fields.redirectReason;
        this.close(
          new ApnsError('redirected', `the courier redirected us${reason ? ` (${reason})` : ''}`, reason ? { reason } : {}),
        );
        return;
      }
      default:
        // Filter responses, scoped tokens, pub-sub and unknown commands: nothing this client asked for.
        return;
    }
  }
}

function closedError(): ApnsError {
  return new ApnsError('connection-closed', 'the courier connection is closed');
}
