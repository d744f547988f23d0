// Packed framing end to end (apns.md §2.2, §8.3), hostile input (a bad frame closes only its own connection), and
// many connections at once.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { parseAck, parseNotification } from '../../lib/codec/apns-commands';
import { concat, fromHex, utf8 } from '../../lib/codec/bytes';
import { PackedDict, PackedEncoder, apnsToPacked } from '../../lib/codec/apns-packed';
import { framingFor } from '../../sandbox/courier/framing';
import { encodeBinaryPlist, parsePlist } from '../../lib/codec/plist';
import type { UpstreamMessage } from '../../sandbox/courier/deps';
import { harness, issuePushCert, PACKED, TestClient, type Device, type Harness } from './courier-helpers';

const sha1 = (s: string) => new Uint8Array(createHash('sha1').update(s).digest());
const MADRID = 'com.apple.madrid';
const madrid = sha1(MADRID);

let h: Harness;
afterEach(async () => h?.close());

async function ready(d: Device): Promise<void> {
  d.client.send('filter', { token: d.token, enabled: [madrid] });
  await d.client.next(0x0e);
}

async function stillServes(d: Device): Promise<void> {
  d.client.send('keepAlive', {});
  await d.client.next(0x0d);
  expect((await h.courier.deliver(d.token, MADRID, utf8('ok'))).delivered).toBe(true);
  const n = parseNotification(await d.client.next(0x0a));
  d.client.send('ack', { token: d.token, messageId: n.messageId, status: 0 });
}

describe('packed framing (apns-pack-v1)', () => {
  test('connect, filter, a plist notification as a packed tree, ack, and a plist upstream', async () => {
    h = await harness();
    const seen: UpstreamMessage[] = [];
    h.courier.registerTopicBackend(MADRID, { handleUpstream: async (m) => void seen.push(m) });
    const d = await h.device({ alpn: PACKED });
    expect(d.client.packed).toBe(true);
    expect(h.courier.connectionInfo(d.token)?.packed).toBe(true);
    expect(d.token).toHaveLength(32);
    // The 0x08 really was packed: integers as integers, the token as data.
    const connectFrame = d.client.packedReceived.find((f) => f.command === 0x08)!;
    expect(connectFrame.attributes.find((a) => a.key === 1)!.value).toBe(0);
    expect(connectFrame.attributes.find((a) => a.key === 4)!.value).toBe(4096);
    await ready(d);

    const U = fromHex('00112233445566778899aabbccddeeff');
    const payload = encodeBinaryPlist({ c: 100, U, t: Uint8Array.of(1, 2), sP: 'mailto:a@example.com' });
    expect(await h.courier.deliver(d.token, MADRID, payload)).toEqual({ delivered: true, stored: true });
    const frame = await d.client.next(0x0a);
    const packed = d.client.packedReceived.find((f) => f.command === 0x0a)!;
    const tree = packed.attributes.find((a) => a.key === 3)!.value;
    expect(tree).toBeInstanceOf(PackedDict);
    expect((tree as PackedDict).entries.map((e) => e.key)).toEqual(['c', 'U', 't', 'sP']);
    expect(typeof packed.attributes.find((a) => a.key === 4)!.value).toBe('number');
    const n = parseNotification(frame);
    expect(parsePlist(n.payload)).toEqual({ c: 100, U, t: Uint8Array.of(1, 2), sP: 'mailto:a@example.com' });

    // Non-plist payloads travel as data.
    await h.courier.deliver(d.token, MADRID, utf8('{"c":34}'));
    await d.client.next(0x0a);
    const second = d.client.packedReceived.filter((f) => f.command === 0x0a)[1]!;
    expect(second.attributes.find((a) => a.key === 3)!.value).toEqual(utf8('{"c":34}'));

    d.client.send('ack', { token: d.token, messageId: n.messageId, status: 0 });
    await expect.poll(() => h.courier.pendingCount(d.token)).toBe(1);

    d.client.send('upstreamNotification', { messageId: 9, topicHash: madrid, senderToken: d.token, payload: encodeBinaryPlist({ c: 96, U, uris: ['tel:+15555550123'] }) });
    expect(parseAck(await d.client.next(0x0b))).toMatchObject({ messageId: 9, status: 0 });
    await expect.poll(() => seen.length).toBe(1);
    expect(parsePlist(seen[0]!.payload)).toEqual({ c: 96, U, uris: ['tel:+15555550123'] });

    // Table references keep working across many frames (tokens and hashes are cached).
    for (let i = 0; i < 5; i++) await stillServes(d);
  });

  test('a legacy-only client, or one offering no ALPN, gets legacy framing', async () => {
    h = await harness();
    const d = await h.device();
    expect(d.client.packed).toBe(false);
    expect(d.client.socket.alpnProtocol).toBe('apns-security-v3');
    const bare = await h.device({ alpn: [] });
    expect(bare.client.socket.alpnProtocol).toBe(false);
    await ready(bare);
  });

  test('the apns-pack-v1:E:D form sizes each direction’s value table', () => {
    // Node cannot select this ALPN string (clients never offer it), so the framing is exercised directly.
    const framing = framingFor('apns-pack-v1:64:4096', { maxFrameLength: 65536 });
    expect(framing.packed).toBe(true);
    const token = new Uint8Array(32).fill(1);
    // With a 64-byte client→server budget a 32-byte token (+32 overhead, +2 header) cannot be cached: sent inline
    // twice, the decoder must not have added it either.
    const enc = new PackedEncoder({ tableBudget: 64 });
    const frame = { command: 0x09, items: [{ id: 1, value: token }] };
    const bytes = [enc.encode(apnsToPacked(frame, 'toServer')), enc.encode(apnsToPacked(frame, 'toServer'))];
    expect(bytes[1]![2]).toBe(0x01);
    expect(framing.decode(concat(...bytes))).toEqual([frame, frame]);
    expect(() => framingFor('apns-pack-v1:x:y', { maxFrameLength: 65536 })).toThrow();
    expect(framingFor('apns-security-v3', { maxFrameLength: 65536 }).packed).toBe(false);
  });
});

describe('hostile input', () => {
  async function closes(bytes: Uint8Array, opts: { packed?: boolean; afterConnect?: boolean } = {}): Promise<void> {
    const alpn = opts.packed ? PACKED : undefined;
    let client: TestClient;
    if (opts.afterConnect) {
      client = (await h.device({ alpn })).client;
    } else {
      client = await TestClient.open(h.server, alpn);
      h.clients.push(client);
    }
    client.sendRaw(bytes);
    expect(await client.waitClosed(), `closes on ${Buffer.from(bytes).toString('hex')}`).toBe(true);
  }

  test('malformed frames and absurd lengths close that connection only', async () => {
    h = await harness();
    const bystander = await h.device();
    await ready(bystander);
    const cases: [Uint8Array, { packed?: boolean; afterConnect?: boolean }][] = [
      [fromHex('0affffffff'), {}], // 4 GiB declared
      [fromHex('0affffffff'), { afterConnect: true }],
      [fromHex('0a00100000'), { afterConnect: true }], // 1 MiB, over the frame limit
      [fromHex('0a0000000501001000ff'), { afterConnect: true }], // item runs past the frame
      [fromHex('0b0000000704000301020308000100'), { afterConnect: true }], // ack id of 3 bytes
      [fromHex('09000000050100030000ff'), { afterConnect: true }], // trailing garbage
      [fromHex('0700000000'), {}], // Connect without anything
      [new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'), {}],
      [fromHex('0affffffffffffffff7f'), { packed: true }], // packed length varint beyond any limit
      [fromHex('0c0281ff'), { packed: true, afterConnect: true }], // value reference into an empty table
      [fromHex('0b0204a3'), { packed: true, afterConnect: true }], // attribute runs past the frame
    ];
    for (const [bytes, opts] of cases) await closes(bytes, opts);
    await stillServes(bystander);
    expect(h.courier.connectedTokens()).toEqual([bystander.token]);
  });

  test('a frame trickling in byte by byte is still read', async () => {
    h = await harness();
    const d = await h.device();
    for (const b of fromHex('0c00000000')) {
      d.client.sendRaw(Uint8Array.of(b));
      await new Promise((r) => setTimeout(r, 2));
    }
    await d.client.next(0x0d);
  });
});

describe('scale', () => {
  test('200 concurrent connections each get their own notification', async () => {
    h = await harness();
    const identities = await Promise.all(Array.from({ length: 200 }, () => issuePushCert(h.ca)));
    const devices = await Promise.all(identities.map((identity, i) => h.device({ identity, alpn: i % 2 ? PACKED : undefined })));
    expect(h.courier.connectedTokens()).toHaveLength(200);
    await Promise.all(devices.map(ready));
    const results = await Promise.all(devices.map((d, i) => h.courier.deliver(d.token, MADRID, utf8(`to ${i}`))));
    expect(results.every((r) => r.delivered)).toBe(true);
    const got = await Promise.all(devices.map(async (d) => parseNotification(await d.client.next(0x0a))));
    got.forEach((n, i) => {
      expect(n.payload).toEqual(utf8(`to ${i}`));
      expect(n.token).toEqual(devices[i]!.token);
    });
  });
});
