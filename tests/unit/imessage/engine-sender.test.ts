// The sending half of the engine against the in-memory network: scheme choice per device, the sent copy on the
// sender's other device, receipts, tapbacks, replies, edits, groups, typing, stale lookups (5032), not-on-iMessage,
// chunking and the c:255 wait.
import { beforeAll, describe, expect, it } from 'vitest';
import { equalBytes, toHex } from '../../../lib/codec/bytes';
import type { PlistDict } from '../../../lib/codec/plist';
import { Command } from '../../../lib/imessage/commands';
import { isGzip } from '../../../lib/codec/gzip';
import { parseNgmPublicIdentity } from '../../../lib/crypto/identity-ngm';
import { pairEcDecrypt } from '../../../lib/crypto/pair-ec';
import { AckStatus, decodeEnvelope, randomUuidString, type DtlEntry } from '../../../lib/imessage/envelope';
import { parsePeerIdentities } from '../../../lib/imessage/peer-identity';
import type { PeerIdentity } from '../../../lib/imessage/ports';
import {
  chatParticipants,
  chunkEnvelopes,
  MAX_ENTRIES_PER_ENVELOPE,
  MessageSender,
  SendError,
  shouldGzip,
  type DestinationResult,
} from '../../../lib/imessage/sender';
import { FakeNetwork, MemoryCounters, UA, type FakeDevice } from './fake-network';

const ALICE = 'mailto:alice@example.com';
const BOB = 'tel:+15550001111';
const DAVE = 'mailto:dave@example.com';
const CHAT = 'C0FFEE00-1111-4222-8333-444455556666';
const GROUP = 'ABCDEF01-2345-4678-89AB-CDEF01234567';

let net: FakeNetwork;
let alice1: FakeDevice; // NGM keys
let alice2: FakeDevice; // pair only
let bob: FakeDevice;
let dave: FakeDevice;

beforeAll(async () => {
  net = new FakeNetwork();
  [alice1, alice2, bob, dave] = await Promise.all([
    net.addDevice('alice1', [ALICE], { ngm: true }),
    net.addDevice('alice2', [ALICE], { ngm: false }),
    net.addDevice('bob', [BOB], { ngm: true }),
    net.addDevice('dave', [DAVE], { ngm: true }),
  ]);
});

/** Runs `fn`, lets the network drain, and returns what each device received meanwhile. */
async function during<T>(fn: () => Promise<T>) {
  const marks = new Map(net.devices.map((d) => [d, d.events.length]));
  const sentMark = net.sent.length;
  const value = await fn();
  await net.idle();
  expect(net.errors).toEqual([]);
  const events = (d: FakeDevice) => d.events.slice(marks.get(d) ?? 0);
  return { value, events, sent: net.sent.slice(sentMark) };
}

function resultFor(results: DestinationResult[], device: FakeDevice): DestinationResult | undefined {
  return results.find((r) => equalBytes(r.token, device.token));
}

function entryFor(entries: DtlEntry[], device: FakeDevice): DtlEntry | undefined {
  return entries.find((e) => equalBytes(e.token, device.token));
}

describe('fan-out and scheme choice', () => {
  it('1:1 text from the NGM device: pair-ec to Bob, pair to the key-less own device with D=false, never to itself', async () => {
    const { value: res, events, sent } = await during(() =>
      alice1.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'hello bob', groupId: CHAT }),
    );
    expect(res.results).toHaveLength(2);
    expect(resultFor(res.results, bob)).toMatchObject({ uri: BOB, encryption: 'pair-ec', status: AckStatus.Ok });
    expect(resultFor(res.results, alice2)).toMatchObject({ uri: ALICE, encryption: 'pair', status: AckStatus.Ok });
    expect(resultFor(res.results, alice1)).toBeUndefined();

    const [envelope] = sent.filter((s) => s.from === alice1 && s.envelope.command === Command.Message).map((s) => s.envelope);
    expect(envelope).toMatchObject({ chunkNumber: 1, version: 8, senderUri: ALICE, userAgent: UA });
    expect(envelope!.noResponse).toBeUndefined();
    expect(entryFor(envelope!.destinations, bob)).toMatchObject({ targetUri: BOB, deliveryReceipt: true, encryption: 'pair-ec' });
    expect(entryFor(envelope!.destinations, alice2)).toMatchObject({ targetUri: ALICE, deliveryReceipt: false, encryption: 'pair' });
    for (const entry of envelope!.destinations) expect(entry.sessionToken?.length).toBeGreaterThan(0);

    const [atBob] = events(bob);
    expect(atBob).toMatchObject({ kind: 'message', meta: { uuid: res.uuid, senderUri: ALICE, targetUri: BOB, encryption: 'pair-ec', fromSelf: false } });
    if (atBob?.kind !== 'message') throw new Error('no message');
    expect(atBob.message.text).toBe('hello bob');
    expect(atBob.message.participants).toEqual([BOB, ALICE]);
    expect(atBob.message.groupId).toBe(CHAT);
    expect(equalBytes(atBob.meta.senderToken, alice1.token)).toBe(true);

    // The sent copy: same U, from Alice's first device, D false, decrypted with pair.
    const copy = events(alice2).find((e) => e.kind === 'message');
    expect(copy).toMatchObject({ meta: { uuid: res.uuid, fromSelf: true, encryption: 'pair', targetUri: ALICE } });
    const raw = alice2.received(Command.Message).at(-1)!;
    expect(raw['D']).toBe(false);
    expect(equalBytes(raw['t'] as Uint8Array, alice1.token)).toBe(true);
    expect(raw['dtl']).toBeUndefined();
    expect(raw['sT']).toBeUndefined();
  });

  it('from the device without NGM keys everything goes pair, and the pair-ec counter is untouched', async () => {
    const { value: res, events } = await during(() =>
      alice2.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'from my second device', groupId: CHAT }),
    );
    expect(res.results.map((r) => r.encryption)).toEqual(['pair', 'pair']);
    expect(res.results.every((r) => r.status === AckStatus.Ok)).toBe(true);
    expect(alice2.counters.values.size).toBe(0);
    expect(events(bob).find((e) => e.kind === 'message')).toMatchObject({ meta: { encryption: 'pair', uuid: res.uuid } });
    expect(events(alice1).find((e) => e.kind === 'message')).toMatchObject({ meta: { encryption: 'pair', fromSelf: true } });
  });

  it('pair-ec counters advance per (own device key, peer device key, peer prekey), starting at 1', async () => {
    const key = toHex(alice1.keys.ngm!.deviceCompact) + toHex(bob.keys.ngm!.deviceCompact) + toHex(bob.keys.ngm!.prekeyCompact);
    expect([...alice1.counters.values.keys()]).toEqual([key]);
    const before = alice1.counters.values.get(key)!;
    await during(() => alice1.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'count', groupId: CHAT }));
    expect(alice1.counters.values.get(key)).toBe(before + 1);
  });

  it('a delivery receipt goes back to exactly the device that sent the message', async () => {
    const { value: res, events, sent } = await during(() =>
      alice1.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'did you get it?', groupId: CHAT }),
    );
    const receipts = sent.filter((s) => s.from === bob && s.envelope.command === Command.DeliveryReceipt).map((s) => s.envelope);
    expect(receipts).toHaveLength(1);
    const receipt = receipts[0]!;
    expect(receipt).toMatchObject({ senderUri: BOB, noResponse: true, chunkNumber: 1 });
    expect(receipt.destinations).toHaveLength(1);
    expect(receipt.destinations[0]).toMatchObject({ targetUri: ALICE, deliveryReceipt: false });
    expect(equalBytes(receipt.destinations[0]!.token, alice1.token)).toBe(true);
    expect(receipt.destinations[0]!.payload).toBeUndefined();

    const delivered = events(alice1).filter((e) => e.kind === 'delivery-receipt');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ meta: { uuid: res.uuid, senderUri: BOB, targetUri: ALICE } });
    expect(equalBytes(delivered[0]!.meta.senderToken, bob.token)).toBe(true);
    expect(events(alice2).some((e) => e.kind === 'delivery-receipt')).toBe(false);
    // The sent copy on Alice's own device asks for no receipt.
    expect(sent.some((s) => s.from === alice2 && s.envelope.command === Command.DeliveryReceipt)).toBe(false);
  });
});

describe('receipts, reactions, replies, edits', () => {
  it('read receipt: c:102 with U of the message to every device of every participant, own devices included', async () => {
    const uuid = randomUuidString();
    const { events, sent } = await during(() => alice1.sender.sendReadReceipt({ senderUri: ALICE, participants: [BOB], uuid }));
    const [envelope] = sent.map((s) => s.envelope);
    expect(envelope).toMatchObject({ command: Command.ReadReceipt, noResponse: true, senderUri: ALICE });
    expect(envelope!.timestampNs).toBeTypeOf('bigint');
    expect(entryFor(envelope!.destinations, bob)).toMatchObject({ deliveryReceipt: true });
    expect(entryFor(envelope!.destinations, alice2)).toMatchObject({ deliveryReceipt: false });
    expect(envelope!.destinations.every((d) => d.payload === undefined)).toBe(true);
    expect(events(bob)).toEqual([expect.objectContaining({ kind: 'read-receipt', meta: expect.objectContaining({ uuid, fromSelf: false }) })]);
    expect(events(alice2)).toEqual([expect.objectContaining({ kind: 'read-receipt', meta: expect.objectContaining({ uuid, fromSelf: true }) })]);
  });

  it('tapback from Bob reaches both of Alice devices', async () => {
    const { value: msg } = await during(() => alice1.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'like me', groupId: CHAT }));
    const { events } = await during(() =>
      bob.sender.sendTapback({
        senderUri: BOB,
        participants: [ALICE],
        groupId: CHAT,
        reaction: 'love',
        target: { kind: 'part', part: 0, uuid: msg.uuid },
        quotedText: 'like me',
      }),
    );
    for (const device of [alice1, alice2]) {
      const tapback = events(device).find((e) => e.kind === 'tapback');
      if (tapback?.kind !== 'tapback') throw new Error(`${device.name} got no tapback`);
      expect(tapback.tapback).toMatchObject({ reaction: 'love', remove: false, target: { kind: 'part', part: 0, uuid: msg.uuid } });
      expect(tapback.tapback.summary).toBe('Loved “like me”');
    }
  });

  it('reply carries the thread origin', async () => {
    const origin = { part: 0, start: 0, length: 5, uuid: randomUuidString() };
    const { events } = await during(() =>
      bob.sender.sendReply({ senderUri: BOB, participants: [ALICE], groupId: CHAT, text: 'answer', replyTo: origin }),
    );
    const reply = events(alice1).find((e) => e.kind === 'message');
    if (reply?.kind !== 'message') throw new Error('no reply');
    expect(reply.message.threadOrigin).toBe(`r:0:0:5:${origin.uuid}`);
    expect(reply.message.text).toBe('answer');
  });

  it('edit and unsend (c:118) reach the peer and the own other device, with no receipts asked', async () => {
    const { value: msg } = await during(() => alice1.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'tpyo', groupId: CHAT }));
    const { value: edit, events, sent } = await during(() =>
      alice1.sender.sendEdit({ senderUri: ALICE, participants: [BOB], targetUuid: msg.uuid, part: 0, text: 'typo' }),
    );
    expect(edit.uuid).not.toBe(msg.uuid);
    expect(sent[0]!.envelope.destinations.every((d) => d.deliveryReceipt === undefined)).toBe(true);
    for (const device of [bob, alice2]) {
      const e = events(device).find((x) => x.kind === 'edit');
      if (e?.kind !== 'edit') throw new Error(`${device.name} got no edit`);
      expect(e.edit).toMatchObject({ targetUuid: msg.uuid, part: 0, newText: 'typo' });
      expect(e.meta.uuid).toBe(edit.uuid);
    }
    const { events: after } = await during(() =>
      alice1.sender.sendUnsend({ senderUri: ALICE, participants: [BOB], targetUuid: msg.uuid, part: 0 }),
    );
    expect(after(bob).find((e) => e.kind === 'unsend')).toMatchObject({ unsend: { targetUuid: msg.uuid, part: 0, retracted: true } });
    expect(after(alice2).find((e) => e.kind === 'unsend')).toBeDefined();
  });
});

describe('groups and typing', () => {
  it('group of three: the message reaches every member device, then a rename (c:190) reaches everyone else', async () => {
    const members = [ALICE, BOB, DAVE];
    const { value: res, events } = await during(() =>
      alice1.sender.sendText({ senderUri: ALICE, participants: members, text: 'hi all', groupId: GROUP, groupName: 'Trio' }),
    );
    expect(res.results).toHaveLength(3);
    for (const device of [bob, dave, alice2]) {
      const m = events(device).find((e) => e.kind === 'message');
      if (m?.kind !== 'message') throw new Error(`${device.name} got no message`);
      expect(m.message.groupId).toBe(GROUP);
      expect([...m.message.participants].sort()).toEqual([...members].sort());
      expect(m.message.groupName).toBe('Trio');
    }
    const { events: renamed, sent } = await during(() =>
      bob.sender.sendGroupRename({ senderUri: BOB, participants: members, groupId: GROUP, newName: 'Quartet soon', oldName: 'Trio' }),
    );
    expect(sent[0]!.envelope.command).toBe(Command.GroupChange);
    expect(sent[0]!.envelope.destinations).toHaveLength(3);
    for (const device of [alice1, alice2, dave]) {
      const g = renamed(device).find((e) => e.kind === 'group-change');
      if (g?.kind !== 'group-change') throw new Error(`${device.name} got no rename`);
      expect(g.change).toMatchObject({ kind: 'rename', newName: 'Quartet soon', oldName: 'Trio', groupId: GROUP });
      expect([...g.change.participants].sort()).toEqual([...members].sort());
    }
  });

  it('membership change goes to the union of old and new members', async () => {
    const { sent, events } = await during(() =>
      alice1.sender.sendGroupMembers({ senderUri: ALICE, participants: [ALICE, BOB], newParticipants: [ALICE, BOB, DAVE], groupId: GROUP, propertiesVersion: 2 }),
    );
    const tokens = sent[0]!.envelope.destinations.map((d) => toHex(d.token)).sort();
    expect(tokens).toEqual([alice2, bob, dave].map((d) => toHex(d.token)).sort());
    expect(events(dave).find((e) => e.kind === 'group-change')).toMatchObject({ change: { kind: 'members', propertiesVersion: 2 } });
  });

  it('1:1 typing: start has no payload, eX 0, nr and no D; stop carries a payload; own devices are not told', async () => {
    const { value: start, events, sent } = await during(() =>
      alice1.sender.sendTyping({ senderUri: ALICE, participants: [BOB], groupId: CHAT, typing: true }),
    );
    const envelope = sent[0]!.envelope;
    expect(envelope).toMatchObject({ command: Command.Message, expirySeconds: 0, noResponse: true, htu: true });
    expect(envelope.destinations).toHaveLength(1);
    expect(envelope.destinations[0]).toMatchObject({ targetUri: BOB });
    expect(envelope.destinations[0]!.payload).toBeUndefined();
    expect(envelope.destinations[0]!.deliveryReceipt).toBeUndefined();
    expect(start.results[0]!.status).toBeUndefined();
    expect(events(bob)).toEqual([expect.objectContaining({ kind: 'typing', typing: true })]);
    expect(events(alice2)).toEqual([]);

    const { events: stopped, sent: stopSent } = await during(() =>
      alice1.sender.sendTyping({ senderUri: ALICE, participants: [BOB], groupId: CHAT, typing: false }),
    );
    expect(stopSent[0]!.envelope.destinations[0]!.payload).toBeDefined();
    const stop = stopped(bob)[0];
    expect(stop).toMatchObject({ kind: 'typing', typing: false, payload: { groupId: CHAT } });
    // No receipt for typing.
    expect(net.sent.slice(-1)[0]!.envelope.command).toBe(Command.Message);
  });

  it('group typing start carries {u: true, gt: true}', async () => {
    const { events } = await during(() =>
      alice1.sender.sendTyping({ senderUri: ALICE, participants: [BOB, DAVE], groupId: GROUP, typing: true }),
    );
    for (const device of [bob, dave]) {
      expect(events(device)[0]).toMatchObject({ kind: 'typing', typing: true, payload: { typing: true, groupTyping: true, groupId: GROUP } });
    }
  });

  it('c:130 from a peer drops its cached lookups at the receiver', async () => {
    const before = alice1.directory.invalidated.length;
    const { events } = await during(() =>
      bob.sender.send({ command: Command.PeerCacheInvalidate, senderUri: BOB, participants: [ALICE], deliveryReceipts: 'none', noResponse: true }),
    );
    expect(events(alice1)).toEqual([expect.objectContaining({ kind: 'peer-cache-invalidate', meta: expect.objectContaining({ senderUri: BOB }) })]);
    expect(alice1.directory.invalidated.slice(before)).toEqual([BOB]);
  });
});

describe('stale lookups and failures', () => {
  it('5032 for stale session tokens: invalidate, force one re-lookup, resend with the same U and rc/oe', async () => {
    await during(() => alice1.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'warm the cache', groupId: CHAT }));
    net.expireSessions(bob);
    const forced = alice1.directory.forcedLookups();
    const { value: res, events, sent } = await during(() =>
      alice1.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'after expiry', groupId: CHAT }),
    );
    expect(alice1.directory.forcedLookups()).toBe(forced + 1);
    expect(alice1.directory.invalidated.at(-1)).toBe(BOB);
    expect(resultFor(res.results, bob)).toMatchObject({ status: AckStatus.Ok, resent: true, encryption: 'pair-ec' });
    expect(resultFor(res.results, alice2)).toMatchObject({ status: AckStatus.Ok });
    expect(resultFor(res.results, alice2)!.resent).toBeUndefined();

    const messages = sent.filter((s) => s.from === alice1 && s.envelope.command === Command.Message).map((s) => s.envelope);
    expect(messages).toHaveLength(2);
    expect(toHex(messages[1]!.uuid)).toBe(toHex(messages[0]!.uuid));
    expect(messages[1]!.extra['rc']).toBe(1);
    expect(typeof messages[1]!.extra['oe']).toBe('bigint');
    expect(messages[1]!.destinations.map((d) => toHex(d.token))).toEqual([toHex(bob.token)]);
    expect(events(bob).filter((e) => e.kind === 'message')).toHaveLength(1);
  });

  it('5032 for a device that was replaced: the new device gets the message', async () => {
    const bobNet = new FakeNetwork();
    const [a, b1] = await Promise.all([bobNet.addDevice('a', [ALICE], { ngm: true }), bobNet.addDevice('b1', [BOB], { ngm: true })]);
    await a.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'one', groupId: CHAT });
    await bobNet.idle();
    bobNet.removeDevice(b1);
    const b2 = await bobNet.addDevice('b2', [BOB], b1.keys);
    const res = await a.sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'two', groupId: CHAT });
    await bobNet.idle();
    expect(bobNet.errors).toEqual([]);
    expect(resultFor(res.results, b1)).toMatchObject({ status: AckStatus.BadSignature });
    expect(resultFor(res.results, b2)).toMatchObject({ status: AckStatus.Ok, resent: true });
    expect(b2.events.find((e) => e.kind === 'message')).toMatchObject({ meta: { uuid: res.uuid } });
    expect(b1.events.filter((e) => e.kind === 'message')).toHaveLength(1);
  });

  it('not on iMessage: every other participant has zero identities', async () => {
    const err = await alice1.sender
      .sendText({ senderUri: ALICE, participants: ['mailto:nobody@example.com'], text: 'hello?', groupId: CHAT })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendError);
    expect((err as SendError).code).toBe('not-on-imessage');
    // One unreachable member of a group is not an error.
    const res = await alice1.sender.sendText({ senderUri: ALICE, participants: [BOB, 'mailto:nobody@example.com'], text: 'x', groupId: GROUP });
    expect(resultFor(res.results, bob)!.status).toBe(AckStatus.Ok);
    await net.idle();
  });

  it('a c:255 without t rejects the whole send', async () => {
    // alice1 claims a handle it is not registered with: the network answers one c:255 {s: 1006} without t.
    const res = await alice1.sender.send({
      command: Command.Message,
      senderUri: 'mailto:mallory@example.com',
      participants: [BOB],
      payload: { t: 'spoof', p: [BOB], v: '1' },
      includeOwnDevices: false,
    });
    expect(res.results).toHaveLength(1);
    expect(res.results[0]!.status).toBe(1006);
    expect(alice1.log.lines.some((l) => l.event === 'imessage.sender-not-own-handle')).toBe(true);
    await net.idle();
  });
});

describe('chunking', () => {
  it('45 devices: three envelopes, same U, distinct i, fcn 1..3, at most 20 entries each; everyone decrypts', async () => {
    const chunkNet = new FakeNetwork();
    const a = await chunkNet.addDevice('a', [ALICE], { ngm: true });
    const own = await chunkNet.addDevice('a2', [ALICE], { ngm: false });
    const carol = await chunkNet.addDevice('carol0', ['mailto:carol@example.com'], { ngm: true });
    for (let i = 1; i < 45; i++) await chunkNet.addDevice(`carol${i}`, ['mailto:carol@example.com'], carol.keys);
    const res = await a.sender.sendText({ senderUri: ALICE, participants: ['mailto:carol@example.com'], text: 'to all 45', groupId: CHAT });
    await chunkNet.idle();
    expect(chunkNet.errors).toEqual([]);

    const envelopes = chunkNet.sentBy(a, Command.Message);
    expect(envelopes.map((e) => e.chunkNumber)).toEqual([1, 2, 3]);
    expect(envelopes.map((e) => e.destinations.length)).toEqual([20, 20, 6]);
    expect(new Set(envelopes.map((e) => toHex(e.uuid))).size).toBe(1);
    expect(new Set(envelopes.map((e) => e.messageId)).size).toBe(3);
    expect(res.results).toHaveLength(46);
    expect(res.results.every((r) => r.status === AckStatus.Ok)).toBe(true);
    const recipients = chunkNet.devices.filter((d) => d !== a);
    for (const d of recipients) expect(d.eventsOf('message').map((m) => m.meta.uuid)).toEqual([res.uuid]);
    expect(own.eventsOf('message')[0]!.meta.fromSelf).toBe(true);
    // 45 delivery receipts, each to the sending device only.
    expect(a.eventsOf('delivery-receipt')).toHaveLength(45);
  });

  it('splits by encoded size under the courier limit, and reports an entry too large on its own', async () => {
    const net4k = new FakeNetwork(4096);
    const a = await net4k.addDevice('a', [ALICE], { ngm: true });
    const peers = await Promise.all([1, 2, 3, 4, 5].map((i) => net4k.addDevice(`p${i}`, [BOB], { ngm: i % 2 === 0 })));
    const text = Array.from({ length: 900 }, (_, i) => String.fromCharCode(0x41 + ((i * 7919) % 26))).join('');
    const res = await a.sender.send({
      command: Command.Message,
      senderUri: ALICE,
      participants: [BOB],
      payload: { t: text, p: [BOB, ALICE], v: '1' },
      gzip: false,
    });
    await net4k.idle();
    const sizes = net4k.sent.filter((s) => s.from === a && s.envelope.command === Command.Message).map((s) => s.size);
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes.every((n) => n <= 4096)).toBe(true);
    expect(res.results.every((r) => r.status === AckStatus.Ok)).toBe(true);
    for (const p of peers) expect(p.eventsOf('message')).toHaveLength(1);

    const tiny = new MessageSender({
      device: a.local,
      transport: { send: async () => {} },
      directory: a.directory,
      counters: new MemoryCounters(),
      maxEnvelopeBytes: 600,
    });
    const tooBig = await tiny.send({ command: Command.Message, senderUri: ALICE, participants: [BOB], payload: { t: text }, gzip: false, noResponse: true });
    expect(tooBig.results.every((r) => r.error === 'too-large' && r.status === undefined)).toBe(true);
  });

  it('chunkEnvelopes: count bound, fcn numbering and fresh ids on fixed entries', () => {
    const entries: DtlEntry[] = Array.from({ length: 41 }, (_, i) => ({
      targetUri: BOB,
      token: new Uint8Array(32).fill(i),
      sessionToken: new Uint8Array([i]),
      deliveryReceipt: true,
      extra: {},
    }));
    const base = { command: 101, version: 8, uuid: new Uint8Array(16), senderUri: ALICE, extra: {} };
    const { envelopes, tooLarge } = chunkEnvelopes(base, entries, 15360);
    expect(tooLarge.size).toBe(0);
    const decoded = envelopes.map((e) => decodeEnvelope(e.bytes));
    expect(decoded.map((e) => e.messageId)).toEqual(envelopes.map((e) => e.messageId));
    expect(new Set(decoded.map((e) => e.messageId)).size).toBe(3);
    expect(decoded.map((e) => e.destinations.length)).toEqual([MAX_ENTRIES_PER_ENVELOPE, MAX_ENTRIES_PER_ENVELOPE, 1]);
    expect(decoded.map((e) => e.chunkNumber)).toEqual([1, 2, 3]);
    expect(decoded.flatMap((e) => e.destinations.map((d) => d.token[0]))).toEqual(entries.map((_, i) => i));
  });
});

describe('waiting for c:255', () => {
  const peersOf = (handle: string): Promise<PeerIdentity[]> => parsePeerIdentities(handle, net.lookupIdentities(ALICE, handle));

  it('without acks the send resolves after the maximum wait with no status', async () => {
    const identities = await peersOf(BOB);
    const sender = new MessageSender({
      device: alice1.local,
      transport: { send: async () => {} },
      directory: { lookup: async () => new Map([[BOB, identities]]), invalidate: () => {} },
      counters: new MemoryCounters(),
      ackSettleMs: 20,
      ackMaxMs: 120,
    });
    const started = Date.now();
    const res = await sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'into the void', groupId: CHAT });
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(res.results).toHaveLength(1);
    expect(res.results[0]!.status).toBeUndefined();
  });

  it('after the settle time, one success per handle is enough', async () => {
    const identities = [...(await peersOf(BOB)), ...(await peersOf(BOB))];
    // Two different devices of Bob, as far as this sender knows: give the second one another token.
    identities[1] = { ...identities[1]!, pushToken: new Uint8Array(32).fill(7) };
    const sender: MessageSender = new MessageSender({
      device: alice1.local,
      transport: {
        send: async (_topic, bytes) => {
          const env = decodeEnvelope(bytes);
          // Only the first device answers.
          queueMicrotask(() => sender.handleServerAck({ uuid: env.uuid, token: env.destinations[0]!.token, status: 0, extra: {} }));
        },
      },
      directory: { lookup: async () => new Map([[BOB, identities]]), invalidate: () => {} },
      counters: new MemoryCounters(),
      ackSettleMs: 30,
      ackMaxMs: 10_000,
    });
    const started = Date.now();
    const res = await sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'half heard', groupId: CHAT });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(res.results.map((r) => r.status)).toEqual([0, undefined]);
    // A late or unknown ack is only logged.
    sender.handleServerAck({ uuid: new Uint8Array(16), token: new Uint8Array(32), status: 0, extra: {} });
  });
});

describe('payload encoding', () => {
  it('each device gets its own ciphertext of the same plaintext; text is gzipped, tapbacks are not', async () => {
    const bobs = [...(await parsePeerIdentities(BOB, net.lookupIdentities(ALICE, BOB)))];
    bobs.push({ ...bobs[0]!, pushToken: new Uint8Array(32).fill(9) });
    const sent: Uint8Array[] = [];
    const sender = new MessageSender({
      device: alice1.local,
      transport: { send: async (_topic, bytes) => void sent.push(bytes) },
      directory: { lookup: async () => new Map([[BOB, bobs]]), invalidate: () => {} },
      counters: new MemoryCounters(),
      // Nobody acks here.
      ackSettleMs: 1,
      ackMaxMs: 1,
    });
    const alicePublic = await parseNgmPublicIdentity({
      publicDevicePrekey: alice1.keys.ngm!.publicDevicePrekey,
      ktLoggableData: alice1.keys.ngm!.ktLoggableData,
    });
    const open = async (entry: DtlEntry) => (await pairEcDecrypt(entry.payload!, bob.keys.ngm!, alicePublic)).message;

    await sender.sendText({ senderUri: ALICE, participants: [BOB], text: 'squeeze me', groupId: CHAT });
    const [first, second] = decodeEnvelope(sent[0]!).destinations;
    expect(toHex(first!.payload!)).not.toBe(toHex(second!.payload!));
    const [p1, p2] = await Promise.all([open(first!), open(second!)]);
    expect(toHex(p1)).toBe(toHex(p2));
    expect(isGzip(p1)).toBe(true);

    await sender.sendTapback({
      senderUri: ALICE,
      participants: [BOB],
      reaction: 'like',
      target: { kind: 'part', part: 0, uuid: randomUuidString() },
      quotedText: 'x',
    });
    const tapbackEntry = decodeEnvelope(sent.at(-1)!).destinations[0]!;
    expect(isGzip(await open(tapbackEntry))).toBe(false);
  });
});

describe('policy helpers', () => {
  it('gzip text messages only', () => {
    const text: PlistDict = { t: 'hi', p: [] };
    expect(shouldGzip(Command.Message, text)).toBe(true);
    expect(shouldGzip(Command.Message, { ...text, amt: 2000 })).toBe(false);
    expect(shouldGzip(Command.Message, { p: [], u: true })).toBe(false);
    expect(shouldGzip(Command.EditUnsend, text)).toBe(false);
  });

  it('chat participants keep the sender once, compared case-insensitively for e-mail', () => {
    expect(chatParticipants(ALICE, [BOB, 'mailto:Alice@Example.com'])).toEqual([BOB, 'mailto:Alice@Example.com']);
    expect(chatParticipants(ALICE, [BOB, BOB])).toEqual([BOB, ALICE]);
  });
});
