// Downstream notifications (apns.md §6, §8.6–8): filters, delivery, acks, redelivery, store-and-forward, restarts,
// scoped tokens and the provider HTTP path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import {
  parseFilterResponse,
  parseNoStorage,
  parseNotification,
  parseScopedTokenResponse,
  type Notification,
} from '../../lib/codec/apns-commands';
import { toHex, utf8 } from '../../lib/codec/bytes';
import { createProviderHandler } from '../../sandbox/courier/provider';
import { harness, type Device, type Harness } from './courier-helpers';
import { createHash } from 'node:crypto';

const sha1 = (s: string) => new Uint8Array(createHash('sha1').update(s).digest());
const MADRID = 'com.apple.madrid';
const IDS = 'com.apple.private.ids';
const madrid = sha1(MADRID);
const ids = sha1(IDS);

let h: Harness;
afterEach(async () => h?.close());

function filter(d: Device, enabled: Uint8Array[], version?: bigint): void {
  d.client.send('filter', { token: d.token, enabled, version });
}

async function note(d: Device): Promise<Notification> {
  return parseNotification(await d.client.next(0x0a));
}

function ack(d: Device, n: Notification, status = 0): void {
  d.client.send('ack', { token: d.token, messageId: n.messageId, status });
}

describe('filter and delivery', () => {
  test('a filter with nothing stored gets 0x0E; a version gets a 0x09 response', async () => {
    h = await harness();
    const d = await h.device();
    filter(d, [madrid]);
    expect(parseNoStorage(await d.client.next(0x0e)).token).toEqual(d.token);
    expect(await d.client.none(0x09)).toBe(true);
    filter(d, [madrid, ids], 7n);
    const r = parseFilterResponse(await d.client.next(0x09));
    expect(r).toMatchObject({ version: 7n, status: 0 });
    expect(r.token).toEqual(d.token);
    await d.client.next(0x0e);
    expect(h.courier.connectionInfo(d.token)?.filter?.enabled.size).toBe(2);
  });

  test('alias items 7…11 count as their lists', async () => {
    h = await harness();
    const d = await h.device();
    d.client.send('filter', { token: d.token, enabledAlias: [madrid], pausedAlias: [ids] });
    await d.client.next(0x0e);
    const f = h.courier.connectionInfo(d.token)!.filter!;
    expect([...f.enabled]).toEqual([toHex(madrid)]);
    expect([...f.paused]).toEqual([toHex(ids)]);
  });

  test('a notification reaches a filtered connection with items 1–6 and is removed on ack', async () => {
    h = await harness();
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    const r = await h.courier.deliver(d.token, MADRID, utf8('hello'));
    expect(r).toEqual({ delivered: true, stored: true });
    const frame = await d.client.next(0x0a);
    expect(frame.items.map((i) => i.id)).toEqual([1, 2, 3, 4, 5, 6]);
    const n = parseNotification(frame);
    expect(n.token).toEqual(d.token);
    expect(n.topicHash).toEqual(madrid);
    expect(n.payload).toEqual(utf8('hello'));
    expect(n.timestampNs).toBe(BigInt(h.clock.now()) * 1_000_000n);
    expect(n.expiry).toBe(Math.floor(h.clock.now() / 1000) + 30 * 86400);
    expect(h.courier.pendingCount(d.token)).toBe(1);
    ack(d, n);
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(0);
    expect(h.store.size('courier.queue')).toBe(0);
  });

  test('topics outside the enabled list are held until a filter enables them', async () => {
    h = await harness();
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    expect(await h.courier.deliver(d.token, ids, utf8('{"c":34}'))).toEqual({ delivered: false, stored: true });
    expect(await d.client.none(0x0a)).toBe(true);
    filter(d, [madrid, ids]);
    const n = await note(d);
    expect(n.topicHash).toEqual(ids);
    expect(await d.client.none(0x0e)).toBe(true);
  });

  test('per-token FIFO, fresh ids, and a nack (status ≠ 0) removes nothing', async () => {
    h = await harness();
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    for (let i = 0; i < 20; i++) await h.courier.deliver(d.token, madrid, utf8(`m${i}`));
    const got: Notification[] = [];
    for (let i = 0; i < 20; i++) got.push(await note(d));
    expect(got.map((n) => new TextDecoder().decode(n.payload))).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(new Set(got.map((n) => n.messageId)).size).toBe(20);
    ack(d, got[0]!, 1);
    for (const n of got.slice(1)) ack(d, n);
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(1);
  });

  test('unknown tokens are refused; a topic hash must be 20 bytes', async () => {
    h = await harness();
    expect(await h.courier.deliver(new Uint8Array(32), MADRID, utf8('x'))).toMatchObject({ delivered: false, stored: false, reason: 'unknown-token' });
    await expect(h.courier.deliver(new Uint8Array(32), new Uint8Array(19), utf8('x'))).rejects.toThrow(/20 bytes/);
  });
});

describe('acks and redelivery', () => {
  test('an unacked notification is redelivered with the same id after the ack timeout', async () => {
    h = await harness({ ackTimeoutMs: 30_000 });
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    await h.courier.deliver(d.token, madrid, utf8('again'));
    const first = await note(d);
    h.clock.advance(29_000);
    await h.courier.tick();
    expect(await d.client.none(0x0a)).toBe(true);
    h.clock.advance(1_000);
    await h.courier.tick();
    const second = await note(d);
    expect(second.messageId).toBe(first.messageId);
    ack(d, second);
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(0);
    h.clock.advance(60_000);
    await h.courier.tick();
    expect(await d.client.none(0x0a)).toBe(true);
  });

  test('unacked notifications are redelivered on reconnect, in order', async () => {
    h = await harness();
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    for (const p of ['a', 'b', 'c']) await h.courier.deliver(d.token, madrid, utf8(p));
    const a = await note(d);
    ack(d, a);
    await note(d);
    await note(d);
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(2);
    d.client.close();
    await d.client.closed;
    const again = await h.device({ identity: d.identity, token: d.token });
    filter(again, [madrid]);
    expect(new TextDecoder().decode((await note(again)).payload)).toBe('b');
    expect(new TextDecoder().decode((await note(again)).payload)).toBe('c');
    expect(await again.client.none(0x0e)).toBe(true);
  });

  test('a connection with a large overdue backlog is closed; the messages stay stored', async () => {
    h = await harness({ maxInFlight: 2, maxUnackedBacklog: 3 });
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    for (let i = 0; i < 5; i++) await h.courier.deliver(d.token, madrid, utf8(`${i}`));
    await note(d);
    await note(d);
    expect(await d.client.none(0x0a)).toBe(true); // window of 2
    h.clock.advance(31_000);
    await h.courier.tick();
    expect(await d.client.waitClosed()).toBe(true);
    expect(h.courier.pendingCount(d.token)).toBe(5);
  });

  test('acks free the in-flight window', async () => {
    h = await harness({ maxInFlight: 1 });
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    for (let i = 0; i < 3; i++) await h.courier.deliver(d.token, madrid, utf8(`${i}`));
    for (let i = 0; i < 3; i++) {
      const n = await note(d);
      expect(new TextDecoder().decode(n.payload)).toBe(`${i}`);
      expect(await d.client.none(0x0a, 50)).toBe(true);
      ack(d, n);
    }
  });
});

describe('store and forward', () => {
  test('stored while offline, delivered after connect + filter', async () => {
    h = await harness();
    const d = await h.device();
    d.client.close();
    await d.client.closed;
    expect(await h.courier.deliver(d.token, MADRID, utf8('while you were out'))).toEqual({ delivered: false, stored: true });
    const again = await h.device({ identity: d.identity, token: d.token });
    expect(await again.client.none(0x0a)).toBe(true); // nothing before the filter
    filter(again, [madrid]);
    const n = await note(again);
    expect(n.payload).toEqual(utf8('while you were out'));
    expect(await again.client.none(0x0e)).toBe(true);
    ack(again, n);
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(0);
  });

  test('storeIfOffline:false is dropped when offline and not kept past the connection', async () => {
    h = await harness();
    const d = await h.device();
    expect(await h.courier.deliver(d.token, MADRID, utf8('typing'), { storeIfOffline: false })).toMatchObject({ delivered: false, stored: false, reason: 'offline' });
    filter(d, [madrid]);
    await d.client.next(0x0e);
    expect(await h.courier.deliver(d.token, MADRID, utf8('typing'), { storeIfOffline: false })).toEqual({ delivered: true, stored: false });
    await note(d);
    expect(h.store.size('courier.queue')).toBe(0);
    d.client.close();
    await d.client.closed;
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(0);
  });

  test('a full per-token queue refuses further deliveries', async () => {
    h = await harness({ maxStoredPerToken: 2 });
    const d = await h.device();
    await h.courier.deliver(d.token, MADRID, utf8('1'));
    await h.courier.deliver(d.token, MADRID, utf8('2'));
    expect(await h.courier.deliver(d.token, MADRID, utf8('3'))).toMatchObject({ stored: false, reason: 'queue-full' });
  });

  test('stored notifications expire after the TTL or their expiry', async () => {
    h = await harness({ storageTtlMs: 60_000 });
    const d = await h.device();
    d.client.close();
    await d.client.closed;
    await h.courier.deliver(d.token, MADRID, utf8('short'));
    await h.courier.deliver(d.token, MADRID, utf8('explicit'), { expiry: Math.floor(h.clock.now() / 1000) + 3600 });
    h.clock.advance(61_000);
    await h.courier.tick();
    expect(h.courier.pendingCount(d.token)).toBe(1);
    h.clock.advance(3600_000);
    await h.courier.tick();
    expect(h.courier.pendingCount(d.token)).toBe(0);
    expect(h.store.size('courier.queue')).toBe(0);
  });

  test('a restart loses nothing unacked, stored or in flight', async () => {
    h = await harness();
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    await h.courier.deliver(d.token, MADRID, utf8('in flight'));
    await note(d);
    d.client.close();
    await d.client.closed;
    await h.courier.deliver(d.token, MADRID, utf8('stored'));
    await h.restart();
    expect(h.courier.pendingCount(d.token)).toBe(2);
    const again = await h.device({ identity: d.identity, token: d.token });
    expect(again.response.token).toBeUndefined();
    filter(again, [madrid]);
    const got = [await note(again), await note(again)];
    expect(got.map((n) => new TextDecoder().decode(n.payload))).toEqual(['in flight', 'stored']);
    for (const n of got) ack(again, n);
    await expect.poll(() => h.store.size('courier.queue')).toBe(0);
  });
});

describe('scoped tokens', () => {
  test('0x11 → 0x12 with a stable scoped token; a push to it arrives with item 1 = the scoped token', async () => {
    h = await harness();
    const d = await h.device();
    const topic = sha1('com.example.app');
    d.client.send('scopedTokenRequest', { baseToken: d.token, topicHash: topic, appId: 5 });
    const r = parseScopedTokenResponse(await d.client.next(0x12));
    expect(r.status).toBe(0);
    expect(r.scopedToken).toHaveLength(32);
    expect(r.topicHash).toEqual(topic);
    expect(r.appId).toBe(5);
    d.client.send('scopedTokenRequest', { baseToken: d.token, topicHash: topic });
    expect(parseScopedTokenResponse(await d.client.next(0x12)).scopedToken).toEqual(r.scopedToken);
    filter(d, [topic]);
    await d.client.next(0x0e);
    expect(await h.courier.deliver(r.scopedToken!, 'com.example.app', utf8('{}'))).toEqual({ delivered: true, stored: true });
    const n = await note(d);
    expect(n.token).toEqual(r.scopedToken);
    expect(n.topicHash).toEqual(topic);
    ack(d, n);
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(0);
    expect(await h.courier.deliver(r.scopedToken!, MADRID, utf8('{}'))).toMatchObject({ reason: 'token-not-for-topic' });
  });

  test("a scoped token for someone else's base token is refused", async () => {
    h = await harness();
    const a = await h.device();
    const b = await h.device();
    b.client.send('scopedTokenRequest', { baseToken: a.token, topicHash: madrid });
    const r = parseScopedTokenResponse(await b.client.next(0x12));
    expect(r.status).not.toBe(0);
    expect(r.scopedToken).toBeUndefined();
  });
});

describe('provider HTTP path', () => {
  let http: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => http?.close(resolve));
    http = undefined;
  });

  async function provider(): Promise<string> {
    const handle = createProviderHandler(h.courier);
    http = createServer((req, res) => {
      void handle(req, res).then((done) => {
        if (!done) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  }

  test('POST /3/device/<token> with apns-topic delivers; errors follow the provider API', async () => {
    h = await harness();
    const d = await h.device();
    filter(d, [madrid]);
    await d.client.next(0x0e);
    const url = await provider();
    const hex = toHex(d.token);
    const post = (path: string, headers: Record<string, string>, body: string | Uint8Array<ArrayBuffer> = '{"aps":{}}') =>
      fetch(url + path, { method: 'POST', headers, body });
    const ok = await post(`/3/device/${hex}`, { 'apns-topic': MADRID, 'apns-id': '123E4567-E89B-12D3-A456-4266554400AA' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('apns-id')).toBe('123e4567-e89b-12d3-a456-4266554400aa');
    expect((await note(d)).payload).toEqual(utf8('{"aps":{}}'));
    const reason = async (r: Response) => ((await r.json()) as { reason: string }).reason;
    const missing = await post(`/3/device/${hex}`, {});
    expect([missing.status, await reason(missing)]).toEqual([400, 'MissingTopic']);
    const bad = await post(`/3/device/${'00'.repeat(32)}`, { 'apns-topic': MADRID });
    expect([bad.status, await reason(bad)]).toEqual([400, 'BadDeviceToken']);
    const short = await post(`/3/device/abcd`, { 'apns-topic': MADRID });
    expect(short.status).toBe(400);
    const big = await post(`/3/device/${hex}`, { 'apns-topic': MADRID }, new Uint8Array(5000));
    expect([big.status, await reason(big)]).toEqual([413, 'PayloadTooLarge']);
    const get = await fetch(`${url}/3/device/${hex}`);
    expect(get.status).toBe(405);
    expect((await fetch(`${url}/other`)).status).toBe(404);
    // apns-expiration: 0 = deliver now or never.
    d.client.close();
    await d.client.closed;
    const once = await post(`/3/device/${hex}`, { 'apns-topic': MADRID, 'apns-expiration': '0' });
    expect(once.status).toBe(200);
    expect(h.courier.pendingCount(d.token)).toBe(1); // only the unacked first push
  });
});
