// CourierClient against a scripted in-memory courier with hand-driven time: the exact frames it writes, token
// adoption, ack-after-handler, reconnect with back-off, resending of upstream messages, redelivery, keep-alive,
// connect statuses, and malformed input from the courier (always a typed reconnect, never a crash).
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CourierClient, type CourierClientOptions, type CourierEvents, type CourierNotification } from '../../../lib/apns/courier-client';
import { ApnsError, CertificateRejectedError } from '../../../lib/apns/errors';
import { encodeFrame } from '../../../lib/codec/apns-frame';
import { concat, fromHex, readU64be, toHex, u32be, utf8 } from '../../../lib/codec/bytes';
import { verifyCourierNonce } from '../../../lib/crypto/request-signing';
import { FakeTimers, ScriptedCourier, settle, type CourierEnd } from './scripted-courier';

const MADRID = 'com.apple.madrid';
const MADRID_HASH = fromHex('e4e6d952954168d0a5db02dbaf27cc35fc18d159');
const IDS = 'com.apple.private.ids';
const IDS_HASH = fromHex('02e81f9f8aeb0f9c06483e7a3f049a8227b3af41');
const SMS_HASH = fromHex('7f33122bf76e40a49f3cc6a15576822ad7ff1c2a');
const TOKEN = fromHex('101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f');
const TOKEN2 = fromHex('a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf');
// The client never parses its certificate; any DER-shaped bytes do.
const CERT = fromHex('3006020101020102');

let keys: CryptoKeyPair;
beforeAll(async () => {
  keys = (await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-1' },
    false,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
});

interface Harness {
  client: CourierClient;
  courier: ScriptedCourier;
  timers: FakeTimers;
  handled: CourierNotification[];
  tokens: Uint8Array[];
  events: { [K in keyof CourierEvents]: CourierEvents[K][] };
}

const clients: CourierClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function harness(overrides: Partial<CourierClientOptions> = {}): Harness {
  const courier = new ScriptedCourier();
  const timers = new FakeTimers();
  const handled: CourierNotification[] = [];
  const tokens: Uint8Array[] = [];
  const client = new CourierClient({
    connect: courier.connect,
    credentials: { privateKey: keys.privateKey, certificate: CERT },
    topics: [MADRID],
    onToken: (t) => void tokens.push(t),
    onNotification: (n) => void handled.push(n),
    timers,
    now: () => timers.now,
    random: () => 0,
    ...overrides,
  });
  clients.push(client);
  const events = { connected: [], disconnected: [], tokenChanged: [], noStorage: [], error: [] } as Harness['events'];
  for (const type of Object.keys(events) as (keyof CourierEvents)[]) {
    client.on(type, (e) => (events[type] as unknown[]).push(e));
  }
  return { client, courier, timers, handled, tokens, events };
}

/** Starts the client and completes its first connection. */
async function connected(h: Harness, token: Uint8Array | undefined = TOKEN): Promise<CourierEnd> {
  h.client.start();
  const end = await h.courier.nextConnection();
  await end.accept(token);
  await until(() => expect(h.client.state).toBe('connected'));
  return end;
}

/** Waits for the n-th disconnect, then lets the back-off timer fire and returns the next connection. */
async function reconnect(h: Harness, n: number): Promise<CourierEnd> {
  await until(() => expect(h.events.disconnected.length).toBe(n));
  h.timers.advance(h.events.disconnected[n - 1]!.retryInMs!);
  return h.courier.nextConnection();
}

function notification(id: number, topicHash = MADRID_HASH, payload = utf8('payload')) {
  return { token: TOKEN, topicHash, payload, messageId: id };
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** vi.waitFor with room for a loaded machine (its default gives up after 1 s). */
const until = <T>(check: () => T) => vi.waitFor(check, { timeout: 5000, interval: 5 });

const codeOf = (e: unknown) => (e instanceof ApnsError ? e.code : `not an ApnsError: ${String(e)}`);

describe('CourierClient: connecting', () => {
  it('writes Connect, SetState and Filter byte for byte and adopts the issued token', async () => {
    const h = harness();
    h.client.start();
    const end = await h.courier.nextConnection();
    const connect = await end.expect('connect');
    const wire = end.writes[0]!;
    // 07 | len | 02 0001 01 | 05 0004 00000041 | 0c 0008 cert | 0d 0011 nonce | 0e 0082 0101 sig — no token item.
    expect(toHex(wire.subarray(0, 30))).toBe('07000000af' + '02000101' + '05000400000041' + '0c0008' + '3006020101020102' + '0d0011');
    expect(wire.length).toBe(5 + 0xaf);
    const nonce = wire.subarray(30, 47);
    expect(nonce[0]).toBe(0x00);
    expect(readU64be(nonce, 1)).toBe(BigInt(h.timers.now));
    expect(toHex(wire.subarray(47, 52))).toBe('0e00820101');
    expect(connect.token).toBeUndefined();
    expect(connect.certificates).toEqual([CERT]);
    expect(await verifyCourierNonce(keys.publicKey, connect.nonce!, connect.signature!)).toBe(true);

    end.send('connectResponse', { status: 0, token: TOKEN, maxMessageSize: 4096, largeMessageSize: 15360 });
    await end.nextFrame();
    await end.nextFrame();
    // The apns.md §2.1 examples exactly.
    expect(toHex(end.writes[1]!)).toBe('140000000b' + '01000101' + '0200047fffffff');
    expect(toHex(end.writes[2]!)).toBe('090000003a' + '010020' + toHex(TOKEN) + '020014' + toHex(MADRID_HASH));

    expect(await h.client.whenConnected()).toEqual(TOKEN);
    expect(h.client.token).toEqual(TOKEN);
    expect(h.tokens).toEqual([TOKEN]);
    expect(h.events.connected).toEqual([{ token: TOKEN }]);
    expect(h.events.tokenChanged).toEqual([]);
  });

  it('offers a saved token first; keeps it when accepted silently, adopts a replacement and reports the change', async () => {
    const h = harness({ token: TOKEN });
    h.client.start();
    let end = await h.courier.nextConnection();
    const first = await end.accept(undefined);
    expect(toHex(end.writes[0]!.subarray(5, 44))).toBe('010020' + toHex(TOKEN) + '02000101');
    expect(first.connect.token).toEqual(TOKEN);
    await until(() => expect(h.client.state).toBe('connected'));
    expect(h.tokens).toEqual([]);
    expect(h.client.token).toEqual(TOKEN);

    end.drop();
    end = await reconnect(h, 1);
    const second = await end.accept(TOKEN2);
    expect(second.connect.token).toEqual(TOKEN);
    expect(second.filter.token).toEqual(TOKEN2);
    await until(() => expect(h.events.connected.length).toBe(2));
    expect(h.tokens).toEqual([TOKEN2]);
    expect(h.events.tokenChanged).toEqual([{ token: TOKEN2, previous: TOKEN }]);
    expect(h.events.connected[1]).toEqual({ token: TOKEN2 });

    // The next Connect offers the new token; an echo of it changes nothing.
    end.hangUp();
    end = await reconnect(h, 2);
    expect((await end.accept(TOKEN2)).connect.token).toEqual(TOKEN2);
    await until(() => expect(h.events.connected.length).toBe(3));
    expect(h.tokens).toEqual([TOKEN2]);
    expect(h.events.tokenChanged.length).toBe(1);
  });

  it('persists the token before it filters, and reports a failing onToken without giving up', async () => {
    const order: string[] = [];
    const h = harness({
      onToken: async () => {
        order.push('onToken');
        throw new Error('disk full');
      },
    });
    h.client.start();
    const end = await h.courier.nextConnection();
    await end.expect('connect');
    end.send('connectResponse', { status: 0, token: TOKEN });
    await end.expect('setState');
    order.push('setState');
    await until(() => expect(h.client.state).toBe('connected'));
    expect(order).toEqual(['onToken', 'setState']);
    expect(h.events.error.map(codeOf)).toEqual(['token-persist-failed']);
  });

  it('status 2 stops the client with CertificateRejectedError: no retry, sends and waiters rejected', async () => {
    const h = harness();
    const pending = h.client.send(MADRID, utf8('x'));
    const waiting = h.client.whenConnected();
    h.client.start();
    const end = await h.courier.nextConnection();
    await end.expect('connect');
    end.send('connectResponse', { status: 2 });
    await expect(pending).rejects.toBeInstanceOf(CertificateRejectedError);
    await expect(waiting).rejects.toMatchObject({ code: 'certificate-rejected', status: 2 });
    expect(h.client.state).toBe('stopped');
    expect(h.events.error).toHaveLength(1);
    expect(h.events.error[0]).toBeInstanceOf(CertificateRejectedError);
    expect(h.events.disconnected).toEqual([{ error: h.events.error[0] }]);
    expect(end.clientClosed).toBe(true);
    h.timers.advance(10 * 60_000);
    await settle();
    expect(h.courier.attempts).toBe(1);
    await expect(h.client.send(MADRID, utf8('y'))).rejects.toMatchObject({ code: 'certificate-rejected' });
  });

  it('another status is a refusal that backs off and retries; a redirect reason is kept', async () => {
    const h = harness();
    h.client.start();
    let end = await h.courier.nextConnection();
    await end.expect('connect');
    end.send('connectResponse', { status: 1 });
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(h.events.disconnected[0]).toMatchObject({ error: { code: 'connect-refused', status: 1 }, retryInMs: 1000 });
    end = await reconnect(h, 1);
    await end.expect('connect');
    end.send('connectResponse', { status: 3, redirectReason: 'try elsewhere' });
    await until(() => expect(h.events.disconnected.length).toBe(2));
    expect(h.events.disconnected[1]).toMatchObject({ error: { code: 'redirected', reason: 'try elsewhere' }, retryInMs: 2000 });
    end = await reconnect(h, 2);
    await end.accept(TOKEN);
    await until(() => expect(h.client.state).toBe('connected'));
  });

  it('a stale nonce is retried at once with the server clock, then backs off if refused again', async () => {
    const h = harness();
    h.client.start();
    let end = await h.courier.nextConnection();
    await end.expect('connect');
    const serverTime = h.timers.now + 10 * 60_000;
    end.send('connectResponse', { status: 1, staleNonceServerTimeMs: BigInt(serverTime) });
    end = await h.courier.nextConnection();
    expect(h.events.disconnected[0]).toMatchObject({ error: { code: 'stale-nonce' }, retryInMs: 0 });
    const again = await end.expect('connect');
    expect(readU64be(again.nonce!, 1)).toBe(BigInt(serverTime));
    end.send('connectResponse', { status: 1, staleNonceServerTimeMs: BigInt(serverTime) });
    await until(() => expect(h.events.disconnected.length).toBe(2));
    expect(h.events.disconnected[1]!.retryInMs).toBe(1000);
  });

  it('gives up on a silent courier after connectTimeoutMs and on a packed-framing ALPN', async () => {
    const h = harness({ connectTimeoutMs: 5000 });
    h.client.start();
    let end = await h.courier.nextConnection();
    await end.expect('connect');
    h.timers.advance(5000);
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(codeOf(h.events.disconnected[0]!.error)).toBe('connect-timeout');
    expect(end.clientClosed).toBe(true);

    h.courier.alpn = 'apns-pack-v1';
    end = await reconnect(h, 1);
    await until(() => expect(h.events.disconnected.length).toBe(2));
    expect(codeOf(h.events.disconnected[1]!.error)).toBe('unsupported-framing');
    expect(end.frames).toEqual([]);
  });

  it('gives up on a transport that does not open in time, and closes it if it opens later', async () => {
    const late = new ScriptedCourier();
    let open!: () => void;
    const h = harness({
      connectTimeoutMs: 5000,
      connect: () => new Promise((resolve) => (open = () => void late.connect().then(resolve))),
    });
    h.client.start();
    await until(() => expect(open).toBeDefined());
    h.timers.advance(5000);
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(codeOf(h.events.disconnected[0]!.error)).toBe('connect-timeout');
    open();
    const end = await late.nextConnection();
    await until(() => expect(end.clientClosed).toBe(true));
    expect(end.frames).toEqual([]);
  });

  it('refuses unusable options', () => {
    expect(() => harness({ keepAliveMs: -1 })).toThrow(/keepAliveMs/);
    expect(() => harness({ token: new Uint8Array(31) })).toThrow(/32 bytes/);
    expect(() => harness({ backoff: { jitter: 2 } })).toThrow(/jitter/);
    expect(() => harness({ credentials: { privateKey: keys.publicKey, certificate: CERT } })).toThrow(/signing key/);
  });
});

describe('CourierClient: back-off', () => {
  it('doubles from 1 s to 30 s while connecting fails', async () => {
    const h = harness();
    h.courier.refuse = 8;
    h.client.start();
    const delays: number[] = [];
    for (let i = 1; i <= 8; i++) {
      await until(() => expect(h.events.disconnected.length).toBe(i));
      delays.push(h.events.disconnected[i - 1]!.retryInMs!);
      h.timers.advance(delays[i - 1]!);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(h.events.disconnected.every((d) => codeOf(d.error) === 'connection-closed')).toBe(true);
    await (await h.courier.nextConnection()).accept(TOKEN);
    await until(() => expect(h.client.state).toBe('connected'));
  });

  it('jitters each delay down by up to half', async () => {
    const h = harness({ random: () => 0.99 });
    h.courier.refuse = 2;
    h.client.start();
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(h.events.disconnected[0]!.retryInMs).toBe(505);
    h.timers.advance(505);
    await until(() => expect(h.events.disconnected.length).toBe(2));
    expect(h.events.disconnected[1]!.retryInMs).toBe(1010);
  });

  it('a connection that stayed up resets the doubling; one that flapped does not', async () => {
    const h = harness({ keepAliveMs: 10 * 60_000 });
    h.courier.refuse = 2;
    h.client.start();
    await until(() => expect(h.events.disconnected.length).toBe(1));
    h.timers.advance(1000);
    let end = await reconnect(h, 2);
    await end.accept(TOKEN);
    await until(() => expect(h.client.state).toBe('connected'));
    end.drop(); // flapped: straight after connecting
    end = await reconnect(h, 3);
    expect(h.events.disconnected.map((d) => d.retryInMs)).toEqual([1000, 2000, 4000]);
    await end.accept(TOKEN);
    await until(() => expect(h.client.state).toBe('connected'));
    h.timers.advance(60_000);
    end.drop();
    await until(() => expect(h.events.disconnected.length).toBe(4));
    expect(h.events.disconnected[3]!.retryInMs).toBe(1000);
  });
});

describe('CourierClient: notifications', () => {
  it('acks only after the handler resolves, with the exact Ack frame', async () => {
    const gate = deferred();
    const seen: CourierNotification[] = [];
    const h = harness({ onNotification: (n) => (seen.push(n), gate.promise) });
    const end = await connected(h);
    end.send('notification', notification(0x12345678));
    await until(() => expect(seen.length).toBe(1));
    expect(seen[0]).toEqual({ topic: MADRID, topicHash: MADRID_HASH, token: TOKEN, payload: utf8('payload'), id: 0x12345678 });
    await settle();
    expect(end.unread()).toEqual([]);
    gate.resolve();
    await end.nextFrame();
    expect(toHex(end.writes.at(-1)!)).toBe('0b0000002e' + '010020' + toHex(TOKEN) + '04000412345678' + '08000100');
  });

  it('handles one at a time in arrival order and acks foreign topics without calling the handler', async () => {
    const gates = [deferred(), deferred()];
    const seen: number[] = [];
    const h = harness({ onNotification: (n) => (seen.push(n.id), gates[seen.length - 1]!.promise) });
    const end = await connected(h);
    end.send('notification', notification(1));
    end.send('notification', notification(2));
    end.send('notification', notification(3, SMS_HASH));
    expect((await end.expect('ack')).messageId).toBe(3);
    expect(seen).toEqual([1]);
    gates[0]!.resolve();
    expect((await end.expect('ack')).messageId).toBe(1);
    await until(() => expect(seen).toEqual([1, 2]));
    gates[1]!.resolve();
    expect((await end.expect('ack')).messageId).toBe(2);
  });

  it('ignores a redelivery of a message it is still handling, and acks it once', async () => {
    const gate = deferred();
    let calls = 0;
    const h = harness({ onNotification: () => (calls++, gate.promise) });
    const end = await connected(h);
    end.send('notification', notification(7));
    end.send('notification', notification(7));
    await settle();
    gate.resolve();
    expect((await end.expect('ack')).messageId).toBe(7);
    await settle();
    expect(calls).toBe(1);
    expect(end.unread()).toEqual([]);
  });

  it('a failing handler leaves the message unacked; the courier resends it and it is handled again', async () => {
    let calls = 0;
    const h = harness({
      onNotification: () => {
        if (++calls === 1) throw new Error('database locked');
      },
    });
    const end = await connected(h);
    end.send('notification', notification(9));
    await until(() => expect(h.events.error.length).toBe(1));
    expect(codeOf(h.events.error[0])).toBe('handler-failed');
    await settle();
    expect(end.unread()).toEqual([]);
    end.send('notification', notification(9));
    expect((await end.expect('ack')).messageId).toBe(9);
    expect(calls).toBe(2);
  });

  it('a message whose connection died before its ack is handled again when redelivered', async () => {
    const gate = deferred();
    const seen: number[] = [];
    const h = harness({ onNotification: (n) => (seen.push(n.id), seen.length === 1 ? gate.promise : undefined) });
    let end = await connected(h);
    end.send('notification', notification(42));
    end.send('notification', notification(43));
    await until(() => expect(seen).toEqual([42]));
    end.drop();
    await until(() => expect(h.events.disconnected.length).toBe(1));
    gate.resolve();
    await settle();
    // Neither was acked on the dead connection, and 43 (queued behind 42) was never handled.
    expect(end.frames.filter((f) => f.command === 0x0b)).toEqual([]);
    expect(seen).toEqual([42]);
    end = await reconnect(h, 1);
    await end.accept(undefined);
    end.send('notification', notification(42));
    end.send('notification', notification(43));
    expect((await end.expect('ack')).messageId).toBe(42);
    expect((await end.expect('ack')).messageId).toBe(43);
    expect(seen).toEqual([42, 42, 43]);
  });

  it('reports 0x0E, ignores frames it never asked for, and reconnects on a 0x17 redirect', async () => {
    const h = harness();
    let end = await connected(h);
    end.send('noStorage', { token: TOKEN });
    await until(() => expect(h.events.noStorage.length).toBe(1));
    end.send('filterResponse', { token: TOKEN, version: 1n, status: 0 });
    end.sendBytes(fromHex('770000000401000100'));
    end.send('redirect', { redirectReason: 'load' });
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(h.events.disconnected[0]!.error).toMatchObject({ code: 'redirected', reason: 'load' });
    end = await reconnect(h, 1);
    await end.accept(undefined);
    await until(() => expect(h.events.connected.length).toBe(2));
  });

  it('acks every notification, whichever turn it arrives in while the handler loop winds down', async () => {
    const h = harness();
    const end = await connected(h);
    let id = 0;
    // A second notification 0…30 microtasks after the first: one of these lands as the loop finds its inbox empty.
    for (let turns = 0; turns <= 30; turns++) {
      end.send('notification', notification(++id));
      for (let i = 0; i < turns; i++) await Promise.resolve();
      end.send('notification', notification(++id));
      await until(() => expect(end.frames.filter((f) => f.command === 0x0b)).toHaveLength(id));
    }
    expect(h.handled.map((n) => n.id)).toEqual(Array.from({ length: id }, (_, i) => i + 1));
  });

  it('caps the notifications it holds; the rest stay unacked for redelivery', async () => {
    const gate = deferred();
    const seen: number[] = [];
    const h = harness({ maxPendingNotifications: 2, onNotification: (n) => (seen.push(n.id), gate.promise) });
    const end = await connected(h);
    for (let id = 1; id <= 4; id++) end.send('notification', notification(id));
    await until(() => expect(seen).toEqual([1]));
    gate.resolve();
    expect((await end.expect('ack')).messageId).toBe(1);
    expect((await end.expect('ack')).messageId).toBe(2);
    expect((await end.expect('ack')).messageId).toBe(3);
    await settle();
    expect(seen).toEqual([1, 2, 3]);
  });
});

describe('CourierClient: upstream', () => {
  it('holds a send until connected and filtered, and resolves on ack status 0', async () => {
    const h = harness();
    const payload = utf8('{"c":100}');
    let done = false;
    const sent = h.client.send(MADRID, payload).then(() => (done = true));
    await settle();
    expect(h.courier.attempts).toBe(0);
    const end = await connected(h);
    const frame = await end.nextFrame();
    const id = frame.items.find((i) => i.id === 4)!.value;
    // 0a | len | 04 id | 01 topic hash | 02 our token | 03 payload — the codec's (pypush's) item order.
    expect(toHex(encodeFrame(frame))).toBe(
      '0a' + toHex(u32be(7 + 23 + 35 + 3 + payload.length)) + '040004' + toHex(id) + '010014' + toHex(MADRID_HASH) +
        '020020' + toHex(TOKEN) + '03' + toHex(new Uint8Array([0, payload.length])) + toHex(payload),
    );
    await settle();
    expect(done).toBe(false);
    end.send('ack', { messageId: new DataView(id.buffer, id.byteOffset).getUint32(0), status: 0 });
    await sent;
  });

  it('resends unacked messages with the same id after a reconnect, and sends those queued meanwhile', async () => {
    const h = harness();
    let end = await connected(h);
    const first = h.client.send(MADRID, utf8('one'));
    const sent = await end.expect('upstreamNotification');
    end.drop();
    await until(() => expect(h.events.disconnected.length).toBe(1));
    const second = h.client.send(IDS, utf8('two'));
    end = await reconnect(h, 1);
    await end.accept(undefined);
    const again = await end.expect('upstreamNotification');
    const next = await end.expect('upstreamNotification');
    expect(again).toEqual(sent);
    expect(next.topicHash).toEqual(IDS_HASH);
    expect(next.payload).toEqual(utf8('two'));
    end.send('ack', { messageId: next.messageId, status: 0 });
    end.send('ack', { messageId: again.messageId, status: 0 });
    await Promise.all([first, second]);
  });

  it("uses the caller's message id (an envelope's i) unless it is already in flight", async () => {
    const h = harness();
    const end = await connected(h);
    const first = h.client.send(MADRID, utf8('one'), { messageId: 0x12345678 });
    const second = h.client.send(MADRID, utf8('two'), { messageId: 0x12345678 });
    const a = await end.expect('upstreamNotification');
    const b = await end.expect('upstreamNotification');
    expect(a.messageId).toBe(0x12345678);
    expect(b.messageId).not.toBe(0x12345678);
    end.send('ack', { messageId: a.messageId, status: 0 });
    end.send('ack', { messageId: b.messageId, status: 0 });
    await Promise.all([first, second]);
  });

  it('sends in call order', async () => {
    const h = harness();
    const end = await connected(h);
    const topics = [MADRID, IDS, 'com.apple.private.alloy.sms', MADRID, IDS];
    topics.forEach((t, i) => void h.client.send(t, utf8(String(i))).catch(() => {}));
    const sent = [];
    for (let i = 0; i < topics.length; i++) sent.push(await end.expect('upstreamNotification'));
    expect(sent.map((u) => new TextDecoder().decode(u.payload))).toEqual(['0', '1', '2', '3', '4']);
    expect(sent.map((u) => toHex(u.topicHash))).toEqual([MADRID_HASH, IDS_HASH, SMS_HASH, MADRID_HASH, IDS_HASH].map(toHex));
  });

  it('maps ack statuses: 3 too large, 0x80 retried after a second, others rejected; no ack times out', async () => {
    const h = harness({ sendTimeoutMs: 20_000 });
    const end = await connected(h);
    const tooLarge = h.client.send(MADRID, utf8('a'));
    const early = h.client.send(MADRID, utf8('b'));
    const refused = h.client.send(MADRID, utf8('c'));
    const silent = h.client.send(MADRID, utf8('d'));
    const [a, b, c] = [await end.expect('upstreamNotification'), await end.expect('upstreamNotification'), await end.expect('upstreamNotification')];
    await end.expect('upstreamNotification');
    end.send('ack', { messageId: a.messageId, status: 3 });
    end.send('ack', { messageId: b.messageId, status: 0x80 });
    end.send('ack', { messageId: c.messageId, status: 9 });
    await expect(tooLarge).rejects.toMatchObject({ code: 'message-too-large', status: 3 });
    await expect(refused).rejects.toMatchObject({ code: 'send-rejected', status: 9 });
    await settle();
    expect(end.unread()).toEqual([]);
    h.timers.advance(1000);
    const retried = await end.expect('upstreamNotification');
    expect(retried.messageId).toBe(b.messageId);
    end.send('ack', { messageId: b.messageId, status: 0 });
    await early;
    h.timers.advance(20_000);
    await expect(silent).rejects.toMatchObject({ code: 'send-timeout' });
    // An ack for an id nobody waits for is ignored.
    end.send('ack', { messageId: 0xdeadbeef, status: 0 });
    await settle();
    expect(h.client.state).toBe('connected');
  });

  it('refuses what cannot be sent: oversized payloads and a full queue', async () => {
    const h = harness({ maxQueuedSends: 2 });
    await expect(h.client.send(MADRID, new Uint8Array(0x10000))).rejects.toMatchObject({ code: 'message-too-large' });
    const held = [h.client.send(MADRID, utf8('1')), h.client.send(MADRID, utf8('2'))];
    await expect(h.client.send(MADRID, utf8('3'))).rejects.toMatchObject({ code: 'send-queue-full' });
    await h.client.close();
    for (const p of held) await expect(p).rejects.toMatchObject({ code: 'client-closed' });
  });
});

describe('CourierClient: keep-alive, topics, close', () => {
  it('sends 0x0C every keepAliveMs and reconnects when one goes unanswered', async () => {
    const h = harness({ keepAliveMs: 60_000, keepAliveTimeoutMs: 15_000 });
    let end = await connected(h);
    h.timers.advance(60_000);
    await end.expect('keepAlive');
    expect(toHex(end.writes.at(-1)!)).toBe('0c00000000');
    end.send('keepAliveAck', {});
    await until(() => expect(h.timers.pendingDelays()).toContain(60_000));
    h.timers.advance(60_000);
    await end.expect('keepAlive');
    h.timers.advance(14_999);
    await settle();
    expect(end.clientClosed).toBe(false);
    h.timers.advance(1);
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(codeOf(h.events.disconnected[0]!.error)).toBe('keep-alive-timeout');
    expect(end.clientClosed).toBe(true);
    end = await reconnect(h, 1);
    await end.accept(undefined);
    await until(() => expect(h.client.state).toBe('connected'));
  });

  it('updateTopics sends a new full filter at once or on the next connection; old topics keep their name', async () => {
    const h = harness();
    const end = await connected(h);
    h.client.updateTopics([IDS]);
    const filter = await end.expect('filter');
    expect(filter.token).toEqual(TOKEN);
    expect(filter.enabled).toEqual([IDS_HASH]);
    end.send('notification', notification(5));
    await until(() => expect(h.handled.length).toBe(1));
    expect(h.handled[0]!.topic).toBe(MADRID);

    // Changed while offline: the next connection filters on the new set.
    end.drop();
    await until(() => expect(h.events.disconnected.length).toBe(1));
    h.client.updateTopics([MADRID, IDS]);
    const next = await reconnect(h, 1);
    expect((await next.accept(undefined)).filter.enabled).toEqual([MADRID_HASH, IDS_HASH]);
  });

  it('close() lets the notification in hand finish and ack, then rejects what is left', async () => {
    const gate = deferred();
    const seen: number[] = [];
    const h = harness({ onNotification: (n) => (seen.push(n.id), gate.promise) });
    const end = await connected(h);
    const unsent = h.client.send(MADRID, utf8('later'));
    await end.expect('upstreamNotification');
    end.send('notification', notification(1));
    end.send('notification', notification(2));
    await until(() => expect(seen).toEqual([1]));
    let closed = false;
    const closing = h.client.close().then(() => (closed = true));
    await settle();
    expect(closed).toBe(false);
    expect(end.clientClosed).toBe(false);
    gate.resolve();
    await closing;
    expect((await end.expect('ack')).messageId).toBe(1);
    expect(end.unread()).toEqual([]);
    expect(end.clientClosed).toBe(true);
    expect(seen).toEqual([1]);
    await expect(unsent).rejects.toMatchObject({ code: 'client-closed' });
    await expect(h.client.whenConnected()).rejects.toMatchObject({ code: 'client-closed' });
    expect(h.client.state).toBe('closed');
    expect(h.events.disconnected).toEqual([{}]);
  });

  it('a throwing listener is reported as an error event and does not disturb the client', async () => {
    const h = harness();
    h.client.on('connected', () => {
      throw new Error('listener bug');
    });
    await connected(h);
    expect(h.events.error.map(codeOf)).toEqual(['listener-failed']);
  });
});

describe('CourierClient: malformed courier input', () => {
  const cases: Array<[string, string]> = [
    ['a frame longer than the limit', '0a7fffffff'],
    ['an item that runs past its frame', '0a00000004' + '0100ff00'],
    ['a notification with a 5-byte topic hash', '0a00000036' + '010020' + toHex(TOKEN) + '020005' + '0102030405' + '03000170' + '04000400000001'],
    ['a notification without its payload', '0a00000041' + '010020' + toHex(TOKEN) + '020014' + toHex(MADRID_HASH) + '04000400000001'],
    ['a keep-alive ack with a wide item', '0d00000005' + '0100020001'],
  ];

  it.each(cases)('%s ends the connection with protocol-error and the client reconnects', async (_, hex) => {
    const h = harness();
    let end = await connected(h);
    end.sendBytes(fromHex(hex));
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(codeOf(h.events.disconnected[0]!.error)).toBe('protocol-error');
    expect(end.clientClosed).toBe(true);
    end = await reconnect(h, 1);
    await end.accept(undefined);
    await until(() => expect(h.events.connected.length).toBe(2));
  });

  it('a notification before Connect is accepted is a protocol error', async () => {
    const h = harness();
    h.client.start();
    const end = await h.courier.nextConnection();
    await end.expect('connect');
    end.send('notification', notification(1));
    await until(() => expect(h.events.disconnected.length).toBe(1));
    expect(codeOf(h.events.disconnected[0]!.error)).toBe('protocol-error');
    expect(h.handled).toEqual([]);
  });

  it('random and mutated courier bytes only ever cause typed reconnects', async () => {
    const valid = [
      encodeFrame({ command: 0x0a, items: [{ id: 1, value: TOKEN }, { id: 2, value: MADRID_HASH }, { id: 3, value: utf8('p') }, { id: 4, value: u32be(1) }] }),
      encodeFrame({ command: 0x0b, items: [{ id: 4, value: u32be(1) }, { id: 8, value: new Uint8Array([0]) }] }),
      fromHex('0d00000000'),
      fromHex('0e00000023' + '010020' + toHex(TOKEN)),
    ];
    const mutated = fc
      .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
      .map(([frame, edits]) => {
        const out = frame.slice();
        for (const [at, v] of edits) out[at % out.length] = v;
        return out;
      });
    const input = fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), mutated), { minLength: 1, maxLength: 4 }).map((parts) => concat(...parts));
    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        const h = harness();
        const end = await connected(h);
        end.sendBytes(bytes);
        await settle(4);
        for (const d of h.events.disconnected) expect(d.error).toBeInstanceOf(ApnsError);
        for (const e of h.events.error) expect(e).toBeInstanceOf(ApnsError);
        expect(['connected', 'waiting', 'connecting']).toContain(h.client.state);
        await h.client.close();
      }),
      { numRuns: 60 },
    );
  });
});
