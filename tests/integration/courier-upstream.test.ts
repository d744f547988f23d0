// Upstream 0x0A to topic backends (apns.md §6, §8.9; imessage.md §1.1, §10.1) and the minor commands (§8.10):
// keep-alives, state, pub-sub, unknown commands, idle disconnect.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { parseAck, parseNotification, parsePubSub } from '../../lib/codec/apns-commands';
import { u32be, utf8 } from '../../lib/codec/bytes';
import type { TopicBackend, UpstreamMessage } from '../../sandbox/courier/deps';
import { harness, TestClient, type Device, type Harness } from './courier-helpers';

const sha1 = (s: string) => new Uint8Array(createHash('sha1').update(s).digest());
const MADRID = 'com.apple.madrid';
const madrid = sha1(MADRID);

let h: Harness;
afterEach(async () => h?.close());

function recorder(onMessage?: (m: UpstreamMessage, reply: (p: Uint8Array) => Promise<void>) => Promise<void>): TopicBackend & { seen: UpstreamMessage[] } {
  const seen: UpstreamMessage[] = [];
  return {
    seen,
    async handleUpstream(msg, reply) {
      seen.push(msg);
      await onMessage?.(msg, (p) => reply.toSender(p));
    },
  };
}

function upstream(d: Device, messageId: number, payload: Uint8Array, topicHash = madrid): void {
  d.client.send('upstreamNotification', { messageId, topicHash, senderToken: d.token, payload });
}

async function ackFor(d: Device) {
  return parseAck(await d.client.next(0x0b));
}

describe('upstream', () => {
  test('handed to the topic backend with the authenticated sender and acked with the same id', async () => {
    h = await harness();
    const backend = recorder(async (m, reply) => reply(utf8(`re:${new TextDecoder().decode(m.payload)}`)));
    h.courier.registerTopicBackend(MADRID, backend);
    const d = await h.device();
    d.client.send('filter', { token: d.token, enabled: [madrid] });
    await d.client.next(0x0e);
    upstream(d, 0x12345678, utf8('lookup'));
    expect(await ackFor(d)).toMatchObject({ messageId: 0x12345678, status: 0 });
    const reply = parseNotification(await d.client.next(0x0a));
    expect(reply.payload).toEqual(utf8('re:lookup'));
    expect(reply.token).toEqual(d.token);
    expect(backend.seen).toHaveLength(1);
    expect(backend.seen[0]).toEqual({ topic: MADRID, topicHash: madrid, senderToken: d.token, payload: utf8('lookup'), messageId: u32be(0x12345678) });
  });

  test('the sender token is the connection’s, whatever item 2 claims', async () => {
    h = await harness();
    const backend = recorder();
    h.courier.registerTopicBackend(MADRID, backend);
    const d = await h.device();
    d.client.send('upstreamNotification', { messageId: 1, topicHash: madrid, senderToken: new Uint8Array(32).fill(9), payload: utf8('x') });
    await ackFor(d);
    await expect.poll(() => backend.seen.length).toBe(1);
    expect(backend.seen[0]!.senderToken).toEqual(d.token);
  });

  test('backend calls keep arrival order and a failing backend does not hurt the connection', async () => {
    h = await harness();
    const order: string[] = [];
    h.courier.registerTopicBackend(MADRID, recorder(async (m) => {
      const text = new TextDecoder().decode(m.payload);
      await new Promise((r) => setTimeout(r, text === 'slow' ? 30 : 0));
      order.push(text);
      if (text === 'boom') throw new Error('backend exploded');
    }));
    const d = await h.device();
    for (const [i, p] of ['slow', 'boom', 'fast'].entries()) upstream(d, i + 1, utf8(p));
    for (let i = 1; i <= 3; i++) expect((await ackFor(d)).messageId).toBe(i);
    await expect.poll(() => order).toEqual(['slow', 'boom', 'fast']);
    d.client.send('keepAlive', {});
    await d.client.next(0x0d);
  });

  test('over the large-message size → ack status 3, not routed; at the limit → routed', async () => {
    h = await harness();
    const backend = recorder();
    h.courier.registerTopicBackend(MADRID, backend);
    const d = await h.device();
    upstream(d, 1, new Uint8Array(15361));
    expect(await ackFor(d)).toMatchObject({ messageId: 1, status: 3 });
    upstream(d, 2, new Uint8Array(15360));
    expect(await ackFor(d)).toMatchObject({ messageId: 2, status: 0 });
    await expect.poll(() => backend.seen.length).toBe(1);
    expect(backend.seen[0]!.payload).toHaveLength(15360);
  });

  test('an unknown topic is acked 0 and dropped', async () => {
    h = await harness();
    const d = await h.device();
    upstream(d, 5, utf8('x'), sha1('com.example.nobody'));
    expect(await ackFor(d)).toMatchObject({ messageId: 5, status: 0 });
  });

  test('ackTooEarly answers 0x80 before the first 0x09 or 0x14', async () => {
    h = await harness({ ackTooEarly: true });
    const backend = recorder();
    h.courier.registerTopicBackend(MADRID, backend);
    const d = await h.device();
    upstream(d, 1, utf8('early'));
    expect((await ackFor(d)).status).toBe(0x80);
    d.client.send('setState', { state: 1, interval: 0x7fffffff });
    upstream(d, 2, utf8('now'));
    expect((await ackFor(d)).status).toBe(0);
    expect(h.courier.connectionInfo(d.token)!.client.activeState).toEqual({ state: 1, interval: 0x7fffffff });
    const other = await h.device();
    other.client.send('filter', { token: other.token, enabled: [madrid] });
    upstream(other, 3, utf8('after filter'));
    expect((await ackFor(other)).status).toBe(0);
  });

  test('forced upstream ack status', async () => {
    h = await harness();
    const backend = recorder();
    h.courier.registerTopicBackend(MADRID, backend);
    const d = await h.device();
    h.courier.faults.upstreamAckStatus = 3;
    upstream(d, 1, utf8('x'));
    expect((await ackFor(d)).status).toBe(3);
    h.courier.faults.upstreamAckStatus = 0x80;
    upstream(d, 2, utf8('x'));
    expect((await ackFor(d)).status).toBe(0x80);
    expect(backend.seen).toHaveLength(0);
  });
});

describe('other commands', () => {
  test('0x0C → 0x0D; 0x13/0x14/0x15/0x1B are recorded without a reply; 0x1D → 0x1D; unknown ignored', async () => {
    h = await harness();
    const d = await h.device();
    d.client.send('keepAlive', { carrier: 'WiFi', osVersion: '17.0' });
    expect((await d.client.next(0x0d)).items).toEqual([]);
    d.client.send('setState', { state: 1, interval: 0x7fffffff });
    d.client.send('setActiveInterval', { interval: 600 });
    d.client.send('transportAck', {});
    d.client.send('tracingAck', { topicHash: madrid, status: 0 });
    d.client.sendFrame({ command: 0x42, items: [{ id: 1, value: Uint8Array.of(1, 2, 3) }] });
    d.client.sendFrame({ command: 0x20, items: [{ id: 1, value: u32be(1) }] });
    d.client.send('pubSub', { requestId: 77, payload: Uint8Array.of(0x08, 0x01), token: d.token });
    const p = parsePubSub(await d.client.next(0x1d));
    expect(p).toMatchObject({ requestId: 77, status: 0 });
    expect(p.token).toEqual(d.token);
    d.client.send('flush', { wantPadding: 16 });
    expect((await d.client.next(0x10)).items).toEqual([{ id: 2, value: new Uint8Array(16) }]);
    // Nothing else came back.
    expect(d.client.received).toEqual([]);
    expect(h.courier.connectionInfo(d.token)!.client).toMatchObject({
      presenceFlags: 0x41,
      protocolVersion: 11,
      activeState: { state: 1, interval: 0x7fffffff },
      activeInterval: 600,
      transportAcks: 1,
      tracingAcks: 1,
    });
  });

  test('idle connections are closed; keep-alives reset the timer', async () => {
    h = await harness({ idleTimeoutMs: 60_000 });
    const quiet = await h.device();
    const chatty = await h.device();
    for (let i = 0; i < 3; i++) {
      h.clock.advance(40_000);
      chatty.client.send('keepAlive', {});
      await chatty.client.next(0x0d);
      await h.courier.tick();
    }
    expect(await quiet.client.waitClosed()).toBe(true);
    expect(chatty.client.isClosed).toBe(false);
    expect(h.courier.connectedTokens()).toEqual([chatty.token]);
  });

  test('a connection that never sends Connect is closed after the connect timeout', async () => {
    h = await harness({ connectTimeoutMs: 10_000 });
    const silent = await TestClient.open(h.server);
    h.clients.push(silent);
    await new Promise((r) => setTimeout(r, 20));
    h.clock.advance(9_000);
    await h.courier.tick();
    expect(silent.isClosed).toBe(false);
    h.clock.advance(1_000);
    await h.courier.tick();
    expect(await silent.waitClosed()).toBe(true);
  });
});
