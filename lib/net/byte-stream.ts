// The bottom of the network path: a duplex byte stream, and one made from a WebSocket to the bridge. The bridge
// relays the WebSocket's binary messages to a TCP connection and back, so message boundaries mean nothing here.
import { EncodeError } from '../errors';
import { ChunkQueue } from './chunk-queue';
import { withDeadline } from './deadline';
import { closeCodeError, NetError } from './errors';

export interface CloseInfo {
  /** Why the stream ended; absent for a clean end of stream or a local close(). */
  error?: NetError;
}

export interface ByteStream {
  /**
   * Resolves once the transport has accepted the bytes and its send buffer is below its high-water mark.
   * Concurrent writes go out whole, in call order.
   */
  write(bytes: Uint8Array): Promise<void>;
  /** The next chunk, or null at a clean end of stream; rejects with a NetError when the stream failed. */
  read(): Promise<Uint8Array | null>;
  /** Closes both directions; unread data is dropped and pending reads get null. */
  close(): void;
  /** Settles (never rejects) once the stream is closed, for whatever reason. */
  readonly closed: Promise<CloseInfo>;
}

/** What this module needs of a WebSocket; the browser's WebSocket and the `ws` package's class both fit. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  // The DOM's and `ws`'s event types have nothing in common to name here; listeners read WebSocketEventLike.
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void;
}

/** The fields read from open/message/close events. */
interface WebSocketEventLike {
  readonly data?: unknown;
  readonly code?: number;
  readonly reason?: string;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface WebSocketStreamOptions {
  url: string;
  /** `globalThis.WebSocket` in browsers; the `ws` package's WebSocket class in Node. */
  WebSocketImpl: WebSocketConstructor;
  protocols?: string | string[];
  /** How long the WebSocket may take to open. */
  timeoutMs: number;
  /** write() waits while more than this many bytes sit in the WebSocket's send buffer. */
  highWaterMark?: number;
  /** Unread received bytes beyond this fail the stream with 'receive-overflow' (a WebSocket cannot be paused). */
  maxReceiveBuffer?: number;
  /** Writes are split into WebSocket messages of at most this size (the bridge limits message size). */
  maxMessageBytes?: number;
}

const OPEN = 1;
const DEFAULT_HIGH_WATER = 1024 * 1024;
// A WebSocket cannot tell the bridge to slow down, so on a fast link (loopback to the sandbox) bytes arrive faster
// than TLS decrypts them and queue here. The cap must exceed the largest response read in one go (HTTP bodies
// default to 16 MiB); it only bounds memory when the reader stops reading altogether.
const DEFAULT_MAX_RECEIVE = 64 * 1024 * 1024;
const DEFAULT_MAX_MESSAGE = 64 * 1024;
/** Browsers have no "drain" event for WebSockets, so a full send buffer is polled. */
const DRAIN_POLL_MS = 5;

/** The subprotocol the bridge speaks, and the prefix of the one that carries its access token. */
const BRIDGE_PROTOCOL = 'cerulean.bridge.v1';
const TOKEN_PROTOCOL_PREFIX = 'cerulean.token.';

/**
 * The tunnel URL for host:port on a bridge: `<bridge>/tunnel/<host>:<port>` (IPv6 in brackets), keeping any
 * query of the bridge URL. An http(s) bridge URL is taken as its ws(s) equivalent.
 */
export function tunnelUrl(bridgeUrl: string, host: string, port: number): string {
  if (!host || /[\s/?#@%\\]/.test(host)) throw new EncodeError('bad-destination', 'invalid destination host');
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new EncodeError('bad-destination', 'destination port must be 1..65535');
  }
  let url: URL;
  try {
    url = new URL(bridgeUrl);
  } catch (e) {
    throw new EncodeError('bad-bridge-url', 'the bridge URL is not a URL', { cause: e });
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new EncodeError('bad-bridge-url', 'the bridge URL must be ws(s) or http(s)');
  const target = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/tunnel/${target}:${port}`;
  return url.toString();
}

/** WebSocket subprotocols for a bridge that requires `token` (browsers cannot send an Authorization header). */
export function bridgeProtocols(token: string): string[] {
  if (!/^[A-Za-z0-9._~-]{16,512}$/.test(token)) {
    throw new EncodeError('bad-bridge-token', 'a bridge token is 16–512 characters of A-Z a-z 0-9 . _ ~ -');
  }
  return [BRIDGE_PROTOCOL, TOKEN_PROTOCOL_PREFIX + token];
}

export async function openWebSocketStream(options: WebSocketStreamOptions): Promise<ByteStream> {
  let ws: WebSocketLike;
  try {
    ws = new options.WebSocketImpl(options.url, options.protocols);
  } catch (e) {
    throw new NetError('bridge-unreachable', 'the bridge URL cannot be opened as a WebSocket', { cause: e });
  }
  const stream = new WebSocketStream(ws, options);
  await withDeadline(stream.opened, options.timeoutMs, () =>
    stream.fail(new NetError('bridge-timeout', 'the WebSocket to the bridge did not open in time')),
  );
  return stream;
}

class WebSocketStream implements ByteStream {
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseInfo>;
  private isOpen = false;
  private closeError: NetError | undefined;
  private isClosed = false;
  private readonly queue = new ChunkQueue();
  private readonly highWater: number;
  private readonly maxReceive: number;
  private readonly maxMessage: number;
  private writing: Promise<void> = Promise.resolve();
  private settleOpen!: (error?: NetError) => void;
  private settleClosed!: (info: CloseInfo) => void;

  constructor(
    private readonly ws: WebSocketLike,
    options: WebSocketStreamOptions,
  ) {
    this.highWater = options.highWaterMark ?? DEFAULT_HIGH_WATER;
    this.maxReceive = options.maxReceiveBuffer ?? DEFAULT_MAX_RECEIVE;
    this.maxMessage = Math.max(1, options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE);
    this.opened = new Promise((resolve, reject) => {
      this.settleOpen = (error) => (error ? reject(error) : resolve());
    });
    this.closed = new Promise((resolve) => (this.settleClosed = resolve));
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('open', () => {
      this.isOpen = true;
      this.settleOpen();
    });
    ws.addEventListener('message', (event: WebSocketEventLike) => this.onMessage(event.data));
    ws.addEventListener('close', (event: WebSocketEventLike) =>
      this.finish(closeCodeError(event.code ?? 1006, event.reason ?? '', this.isOpen)),
    );
    // 'close' always follows 'error' and carries the code. The listener must exist all the same: `ws` is an
    // EventEmitter, and an 'error' nobody listens to is thrown.
    ws.addEventListener('error', () => {});
  }

  write(bytes: Uint8Array): Promise<void> {
    // A write waiting for the buffer to drain must not let a later one slip its bytes in between.
    const op = this.writing.then(() => this.send(bytes));
    this.writing = op.catch(() => {});
    return op;
  }

  private async send(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length; off += this.maxMessage) {
      if (this.isClosed || this.ws.readyState !== OPEN) throw this.writeError();
      this.ws.send(bytes.subarray(off, off + this.maxMessage));
      while (this.ws.bufferedAmount > this.highWater) {
        if (this.isClosed) throw this.writeError();
        await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
      }
    }
  }

  read(): Promise<Uint8Array | null> {
    return this.queue.read();
  }

  close(): void {
    if (this.isClosed) return;
    this.queue.discard();
    this.finish(undefined);
    this.closeSocket();
  }

  /** Fails the stream with a locally detected error and returns it. */
  fail(error: NetError): NetError {
    this.finish(error);
    this.closeSocket();
    return error;
  }

  private onMessage(data: unknown): void {
    if (this.isClosed) return;
    if (!(data instanceof ArrayBuffer)) {
      this.fail(new NetError('bridge-error', 'the bridge sent a non-binary WebSocket message'));
      return;
    }
    this.queue.push(new Uint8Array(data));
    if (this.queue.size > this.maxReceive) {
      this.fail(new NetError('receive-overflow', `more than ${this.maxReceive} unread bytes from the tunnel`));
    }
  }

  private finish(error: NetError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = error;
    if (!this.isOpen) this.settleOpen(error ?? new NetError('bridge-unreachable', 'the WebSocket closed before opening'));
    this.queue.end(error);
    this.settleClosed(error ? { error } : {});
  }

  private closeSocket(): void {
    try {
      this.ws.close(1000);
    } catch {
      // Already closing or closed: the close we wanted is under way.
    }
  }

  private writeError(): NetError {
    return this.closeError ?? new NetError('connection-closed', 'the tunnel is closed');
  }
}
