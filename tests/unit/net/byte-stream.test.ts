import { describe, expect, it } from 'vitest';
import { fromUtf8, utf8 } from '../../../lib/codec/bytes';
import { EncodeError } from '../../../lib/errors';
import { bridgeProtocols, openWebSocketStream, tunnelUrl, type ByteStream, type WebSocketLike } from '../../../lib/net/byte-stream';
import { ChunkQueue } from '../../../lib/net/chunk-queue';
import { closeCodeError, NetError } from '../../../lib/net/errors';

type Listener = (event: unknown) => void;

/** A WebSocket driven by the test: it opens, delivers and closes when told to. */
class FakeWebSocket implements WebSocketLike {
  static last: FakeWebSocket;
  binaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  readonly sent: Uint8Array[] = [];
  readonly closeCalls: Array<number | undefined> = [];
  private listeners = new Map<string, Listener[]>();

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.last = this;
  }

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(data: Uint8Array): void {
    this.sent.push(data.slice());
    this.bufferedAmount += data.length;
  }

  close(code?: number): void {
    this.closeCalls.push(code);
  }

  emit(type: string, event: unknown = {}): void {
    for (const l of this.listeners.get(type) ?? []) l(event);
  }

  open(): void {
    this.readyState = 1;
    this.emit('open');
  }

  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.emit('error');
    this.emit('close', { code, reason });
  }

  message(data: unknown): void {
    this.emit('message', { data });
  }
}

async function opened(options: Partial<Parameters<typeof openWebSocketStream>[0]> = {}): Promise<{ stream: ByteStream; ws: FakeWebSocket }> {
  const pending = openWebSocketStream({ url: 'wss://bridge.test/tunnel/x.com:443', WebSocketImpl: FakeWebSocket, timeoutMs: 1000, ...options });
  const ws = FakeWebSocket.last;
  ws.open();
  return { stream: await pending, ws };
}

const ab = (s: string) => utf8(s).slice().buffer;

async function rejection(p: Promise<unknown>): Promise<NetError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(NetError);
  return e as NetError;
}

describe('tunnelUrl and bridgeProtocols', () => {
  it('names host and port in the path, as the bridge reads it', () => {
    expect(tunnelUrl('wss://bridge.example', '17-courier.push.apple.com', 5223)).toBe(
      'wss://bridge.example/tunnel/17-courier.push.apple.com:5223',
    );
    expect(tunnelUrl('https://bridge.example/cerulean/?token=abc', 'albert.apple.com', 443)).toBe(
      'wss://bridge.example/cerulean/tunnel/albert.apple.com:443?token=abc',
    );
    expect(tunnelUrl('ws://127.0.0.1:8787', '2001:db8::1', 443)).toBe('ws://127.0.0.1:8787/tunnel/[2001:db8::1]:443');
  });

  it.each([['', 443], ['a/b', 443], ['a b', 443], ['a%2f', 443], ['x.com', 0], ['x.com', 65536], ['x.com', 1.5]])(
    'refuses %s:%s',
    (host, port) => {
      expect(() => tunnelUrl('wss://b', host, port)).toThrow(EncodeError);
    },
  );

  it('refuses a bridge URL that is not ws(s) or http(s)', () => {
    expect(() => tunnelUrl('not a url', 'x.com', 443)).toThrow(EncodeError);
    expect(() => tunnelUrl('ftp://b', 'x.com', 443)).toThrow(EncodeError);
  });

  it('offers the bridge protocol next to the token protocol', () => {
    expect(bridgeProtocols('0123456789abcdef._~-')).toEqual(['cerulean.bridge.v1', 'cerulean.token.0123456789abcdef._~-']);
    expect(() => bridgeProtocols('short')).toThrow(EncodeError);
    expect(() => bridgeProtocols('0123456789abcdef,x')).toThrow(EncodeError);
  });
});

describe('openWebSocketStream', () => {
  it('opens a binary WebSocket with the given URL and protocols, and carries bytes both ways', async () => {
    const { stream, ws } = await opened({ protocols: ['cerulean.v1'] });
    expect(ws.url).toBe('wss://bridge.test/tunnel/x.com:443');
    expect(ws.protocols).toEqual(['cerulean.v1']);
    expect(ws.binaryType).toBe('arraybuffer');
    ws.message(ab('hello '));
    ws.message(ab('world'));
    expect(fromUtf8((await stream.read())!)).toBe('hello ');
    expect(fromUtf8((await stream.read())!)).toBe('world');
    await stream.write(utf8('ping'));
    expect(fromUtf8(ws.sent[0]!)).toBe('ping');
  });

  it('ends cleanly on close 1000 and 1005', async () => {
    for (const code of [1000, 1005]) {
      const { stream, ws } = await opened();
      ws.message(ab('last'));
      ws.serverClose(code);
      expect(fromUtf8((await stream.read())!)).toBe('last');
      expect(await stream.read()).toBeNull();
      expect(await stream.closed).toEqual({});
      expect((await rejection(stream.write(utf8('x')))).code).toBe('connection-closed');
    }
  });

  it.each([
    [4400, 'bridge-bad-destination'],
    [4401, 'bridge-unauthorized'],
    [4403, 'bridge-refused'],
    [4404, 'host-not-found'],
    [4408, 'idle-timeout'],
    [4429, 'bridge-limit'],
    [4502, 'connect-failed'],
    [4504, 'connect-timeout'],
    [1001, 'bridge-going-away'],
    [4999, 'bridge-error'],
    [1003, 'bridge-error'],
    [1009, 'bridge-error'],
    [1011, 'bridge-error'],
    [1006, 'connection-lost'],
  ])('maps close code %i after open to %s', async (closeCode, code) => {
    const { stream, ws } = await opened();
    const read = stream.read();
    ws.serverClose(closeCode, 'why');
    const err = await rejection(read);
    expect(err.code).toBe(code);
    expect(err.closeCode).toBe(closeCode);
    expect((await stream.closed).error).toBe(err);
    expect(await rejection(stream.write(utf8('x')))).toBe(err);
  });

  it('maps a refusal before open, and a failed upgrade', async () => {
    const refused = openWebSocketStream({ url: 'wss://b/t', WebSocketImpl: FakeWebSocket, timeoutMs: 1000 });
    FakeWebSocket.last.serverClose(4403);
    expect((await rejection(refused)).code).toBe('bridge-refused');
    const unreachable = openWebSocketStream({ url: 'wss://b/t', WebSocketImpl: FakeWebSocket, timeoutMs: 1000 });
    FakeWebSocket.last.serverClose(1006);
    expect((await rejection(unreachable)).code).toBe('bridge-unreachable');
  });

  it('times out opening and closes the socket', async () => {
    const pending = openWebSocketStream({ url: 'wss://b/t', WebSocketImpl: FakeWebSocket, timeoutMs: 20 });
    const ws = FakeWebSocket.last;
    expect((await rejection(pending)).code).toBe('bridge-timeout');
    expect(ws.closeCalls).toEqual([1000]);
  });

  it('turns a constructor failure (bad URL) into bridge-unreachable', async () => {
    class Throwing extends FakeWebSocket {
      constructor(url: string) {
        super(url);
        throw new SyntaxError('bad url');
      }
    }
    expect((await rejection(openWebSocketStream({ url: 'nope', WebSocketImpl: Throwing, timeoutMs: 100 }))).code).toBe('bridge-unreachable');
  });

  it('fails on a text message or an overflowing receive buffer', async () => {
    const text = await opened();
    text.ws.message('a string');
    expect((await rejection(text.stream.read())).code).toBe('bridge-error');
    expect(text.ws.closeCalls).toEqual([1000]);
    const flood = await opened({ maxReceiveBuffer: 10 });
    flood.ws.message(ab('123456'));
    flood.ws.message(ab('789012'));
    expect((await rejection(flood.stream.closed.then((i) => Promise.reject(i.error)))).code).toBe('receive-overflow');
  });

  it('splits writes into messages of at most maxMessageBytes', async () => {
    const { stream, ws } = await opened({ maxMessageBytes: 4 });
    await stream.write(utf8('0123456789'));
    expect(ws.sent.map(fromUtf8)).toEqual(['0123', '4567', '89']);
  });

  it('waits while the send buffer is above the high-water mark', async () => {
    const { stream, ws } = await opened({ highWaterMark: 8 });
    await stream.write(utf8('1234'));
    let done = false;
    const write = stream.write(utf8('567890')).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(done).toBe(false);
    expect(ws.sent).toHaveLength(2);
    ws.bufferedAmount = 0;
    await write;
    expect(done).toBe(true);
  });

  it('fails a write waiting on a full buffer when the tunnel closes', async () => {
    const { stream, ws } = await opened({ highWaterMark: 1 });
    const write = stream.write(utf8('stuck'));
    ws.serverClose(4502);
    expect((await rejection(write)).code).toBe('connect-failed');
  });

  it('closes locally: pending reads end, data is dropped, the socket is closed once', async () => {
    const { stream, ws } = await opened();
    const read = stream.read();
    stream.close();
    stream.close();
    expect(await read).toBeNull();
    ws.message(ab('late'));
    expect(await stream.read()).toBeNull();
    expect(ws.closeCalls).toEqual([1000]);
    expect(await stream.closed).toEqual({});
  });
});

describe('closeCodeError', () => {
  it('treats 1006 before open as an unreachable bridge and keeps the reason', () => {
    expect(closeCodeError(1006, '', false)?.code).toBe('bridge-unreachable');
    expect(closeCodeError(4403, 'host not allowed', true)?.message).toContain('host not allowed');
    expect(closeCodeError(1000, '', true)).toBeUndefined();
  });
});

describe('ChunkQueue', () => {
  it('hands chunks to waiting readers in order, then ends or fails', async () => {
    const q = new ChunkQueue();
    const first = q.read();
    q.push(utf8('a'));
    q.push(utf8('bc'));
    expect(fromUtf8((await first)!)).toBe('a');
    expect(q.size).toBe(2);
    const below = q.whenBelow(1);
    expect(fromUtf8((await q.read())!)).toBe('bc');
    await below;
    const err = new NetError('connection-lost', 'x');
    q.push(utf8('d'));
    q.end(err);
    q.end();
    expect(fromUtf8((await q.read())!)).toBe('d');
    await expect(q.read()).rejects.toBe(err);
    await expect(q.read()).rejects.toBe(err);
  });
});
