// An in-memory courier for CourierClient unit tests: every connect() gives the client one end of a byte pipe and the
// test the other, where it reads the client's frames and writes the courier's. Time is a hand-driven fake.
import { buildMessage, parseMessageAs, type ApnsMessageType, type MessageFields, type MessageInput } from '../../../lib/codec/apns-commands';
import { encodeFrame, FrameDecoder, type ApnsFrame } from '../../../lib/codec/apns-frame';
import { LEGACY_ALPN } from '../../../lib/codec/apns-packed';
import type { CourierStream } from '../../../lib/apns/courier-connection';
import type { Timers } from '../../../lib/apns/timers';
import type { CloseInfo } from '../../../lib/net/byte-stream';
import { ChunkQueue } from '../../../lib/net/chunk-queue';
import { NetError } from '../../../lib/net/errors';

/** Timers that fire only when the test advances the clock. */
export class FakeTimers implements Timers {
  now = Date.UTC(2026, 0, 15, 12, 0, 0);
  private seq = 0;
  private readonly timers = new Map<number, { at: number; ms: number; callback: () => void }>();

  setTimeout(callback: () => void, ms: number): number {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + ms, ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Delays (as scheduled) of the timers still pending, soonest first. */
  pendingDelays(): number[] {
    return [...this.timers.values()].sort((a, b) => a.at - b.at).map((t) => t.ms);
  }

  /** Moves the clock forward, firing each due timer in time order. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = Math.max(this.now, due[1].at);
      due[1].callback();
    }
    this.now = until;
  }
}

/** Resolves after real macrotasks, letting WebCrypto and promise chains run. */
export const settle = (turns = 3): Promise<void> =>
  (async () => {
    for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 0));
  })();

/** The courier's side of one connection. */
export class CourierEnd {
  /** Raw bytes the client wrote, one entry per write. */
  readonly writes: Uint8Array[] = [];
  readonly frames: ApnsFrame[] = [];
  clientClosed = false;
  readonly clientStream: CourierStream;
  private readonly toClient = new ChunkQueue();
  private readonly decoder = new FrameDecoder();
  private read = 0;
  private waiters: Array<() => void> = [];
  private settleClosed!: (info: CloseInfo) => void;

  constructor(alpn: string | null) {
    const closed = new Promise<CloseInfo>((r) => (this.settleClosed = r));
    const end = this;
    this.clientStream = {
      alpnProtocol: alpn,
      closed,
      async write(bytes: Uint8Array) {
        if (end.clientClosed) throw new NetError('connection-closed', 'closed');
        end.writes.push(bytes.slice());
        end.frames.push(...end.decoder.push(bytes.slice()));
        for (const w of end.waiters.splice(0)) w();
      },
      read: () => this.toClient.read(),
      close: () => {
        if (end.clientClosed) return;
        end.clientClosed = true;
        end.toClient.discard();
        end.settleClosed({});
        for (const w of end.waiters.splice(0)) w();
      },
    };
  }

  /** The next frame the client sent that the test has not taken yet. */
  async nextFrame(timeoutMs = 5000): Promise<ApnsFrame> {
    const deadline = Date.now() + timeoutMs;
    while (this.read >= this.frames.length) {
      if (this.clientClosed) throw new Error('the client closed the connection');
      if (Date.now() > deadline) throw new Error('no frame from the client');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
    return this.frames[this.read++]!;
  }

  async expect<T extends ApnsMessageType>(type: T): Promise<MessageFields<T>> {
    return parseMessageAs(type, await this.nextFrame());
  }

  /** Frames the client sent and the test has not taken. */
  unread(): ApnsFrame[] {
    return this.frames.slice(this.read);
  }

  send<T extends ApnsMessageType>(type: T, fields: MessageInput<T>): void {
    this.sendBytes(encodeFrame(buildMessage(type, fields)));
  }

  sendBytes(bytes: Uint8Array): void {
    this.toClient.push(bytes.slice());
  }

  /** The courier hangs up cleanly (end of stream). */
  hangUp(): void {
    this.toClient.end();
    this.settleClosed({});
  }

  /** The network fails under the client. */
  drop(): void {
    const error = new NetError('connection-lost', 'dropped by the test');
    this.toClient.end(error);
    this.settleClosed({ error });
  }

  /**
   * Answers Connect as the courier does (status 0, sizes, optional token) and takes SetState and Filter.
   * Returns the Connect fields and the filter.
   */
  async accept(token?: Uint8Array): Promise<{ connect: MessageFields<'connect'>; filter: MessageFields<'filter'> }> {
    const connect = await this.expect('connect');
    this.send('connectResponse', {
      status: 0,
      ...(token ? { token } : {}),
      maxMessageSize: 4096,
      unknown5: Uint8Array.of(0, 2),
      capabilities: 0,
      largeMessageSize: 15360,
      serverTimeMs: 0n,
    });
    await this.expect('setState');
    const filter = await this.expect('filter');
    return { connect, filter };
  }
}

/** Hands out one CourierEnd per connect(); connect() can be made to fail. */
export class ScriptedCourier {
  readonly ends: CourierEnd[] = [];
  attempts = 0;
  /** connect() rejects while this is positive (and counts it down). */
  refuse = 0;
  alpn: string | null = LEGACY_ALPN;
  private taken = 0;

  readonly connect = async (): Promise<CourierStream> => {
    this.attempts++;
    if (this.refuse > 0) {
      this.refuse--;
      throw new NetError('connect-failed', 'refused by the test');
    }
    const end = new CourierEnd(this.alpn);
    this.ends.push(end);
    return end.clientStream;
  };

  /** The next connection the client opened that the test has not taken yet. */
  async nextConnection(timeoutMs = 5000): Promise<CourierEnd> {
    const deadline = Date.now() + timeoutMs;
    while (this.taken >= this.ends.length) {
      if (Date.now() > deadline) throw new Error('the client opened no connection');
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.ends[this.taken++]!;
  }

  /** Connections opened and not taken. */
  get untaken(): number {
    return this.ends.length - this.taken;
  }
}
