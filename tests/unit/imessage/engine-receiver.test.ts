// The receiving half of the engine: the independent pypush / pair-ec vectors through the whole receive path,
// fixed notification bytes, routing of c:255 / c:97 / IDS control notices, de-duplication, tampering, unknown
// sender devices, stale keys, unsupported schemes, and property tests that hostile bytes only ever become events.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { equalBytes, fromBase64, fromHex, utf8 } from '../../../lib/codec/bytes';
import type { PlistDict } from '../../../lib/codec/plist';
import { encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import { generateLegacyIdentity, importLegacyIdentity, type LegacyIdentity } from '../../../lib/crypto/identity-legacy';
import { generateNgmIdentity, importNgmIdentity } from '../../../lib/crypto/identity-ngm';
import { Command } from '../../../lib/imessage/commands';
import {
  buildIncoming,
  decodeEnvelope,
  encodeIncoming,
  encodeServerAck,
  randomUuid,
  uuidFromString,
  uuidToString,
  type IncomingNotification,
} from '../../../lib/imessage/envelope';
import { parsePeerIdentity } from '../../../lib/imessage/peer-identity';
import { IDS_CONTROL_TOPIC, MADRID_TOPIC, type LocalDevice, type PeerIdentity } from '../../../lib/imessage/ports';
import { MessageReceiver, type InboundEvent } from '../../../lib/imessage/receiver';
import { MessageSender } from '../../../lib/imessage/sender';
import vectors from '../../vectors';
import { RUNS, mutated } from './arbitraries';
import { FakeNetwork, MemoryCounters, MemoryLog, MemorySeen, UA, type FakeDevice } from './fake-network';

const ALICE = 'mailto:alice@example.com';
const BOB = 'mailto:bob@example.com';
const CHAT = 'C0FFEE00-1111-4222-8333-444455556666';
const E_NS = 1712345678901234567n;
const ALICE_TOKEN = new Uint8Array(32).fill(0xaa);

// python3: plistlib.dumps({'c':101,'U':bytes(range(16)),'sP':'mailto:bob@example.com','tP':'mailto:alice@example.com',
//   't':b'\xbb'*32,'e':1712345678901234567,'v':8,'nr':True}, fmt=plistlib.FMT_BINARY, sort_keys=False).hex()
const DELIVERY_RECEIPT_HEX =
  '62706c6973743030d80102030405060708090a0b0c0d0e0f1051635155527350527450517451655176526e7210654f1010000102030405060708090a' +
  '0b0c0d0e0f5f10166d61696c746f3a626f62406578616d706c652e636f6d5f10186d61696c746f3a616c696365406578616d706c652e636f6d4f1020' +
  'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb1317c3795293954b8710080908191b1d20232527292c2e415a7598a1a3' +
  '00000000000001010000000000000011000000000000000000000000000000a4';
// {"c":34}
const DEVICES_CHANGED_HEX = '7b2263223a33347d';

const ALLOWED_ON_BAD_INPUT = new Set<InboundEvent['kind']>([
  'malformed',
  'undecryptable',
  'unsupported-encryption',
  // A mutation that only touches metadata (U, e, D…) still decrypts.
  'message',
  'typing',
  'other',
  'delivery-receipt',
  'read-receipt',
  'peer-cache-invalidate',
  'delivery-failure',
]);

describe('the pypush and pair-ec vectors through the receive path', () => {
  let bobDevice: LocalDevice;
  let alice: PeerIdentity;
  let sent: Uint8Array[];
  let receiver: MessageReceiver;

  beforeAll(async () => {
    const { legacy, ngm } = vectors;
    const [bobLegacy, bobNgm] = await Promise.all([
      importLegacyIdentity(fromBase64(legacy.bob.signing_private_pkcs8), fromBase64(legacy.bob.encryption_private_pkcs8)),
      importNgmIdentity(fromBase64(ngm.bob.device_private_pkcs8), fromBase64(ngm.bob.prekey_private_pkcs8), ngm.bob.prekey_timestamp, {
        prekeySignature: fromHex(ngm.bob.public_device_prekey).subarray(36, 100),
      }),
    ]);
    bobDevice = { pushToken: new Uint8Array(32).fill(0xbb), handles: [BOB], legacy: bobLegacy, ngm: bobNgm, userAgent: UA };
    // Alice as a lookup would return her: the published blobs of the vectors.
    alice = await parsePeerIdentity(ALICE, {
      'push-token': ALICE_TOKEN,
      'session-token': fromHex('5e55'),
      'client-data': {
        'public-message-identity-key': fromHex(legacy.alice.public_message_identity_key),
        'public-message-ngm-device-prekey-data-key': fromHex(ngm.alice.public_device_prekey),
      },
      'kt-loggable-data': fromHex(ngm.alice.kt_loggable_data),
    });
    sent = [];
    const directory = { lookup: async () => new Map([[ALICE, [alice]]]), invalidate: () => {} };
    const sender = new MessageSender({
      device: bobDevice,
      transport: { send: async (_topic, bytes) => void sent.push(bytes) },
      directory,
      counters: new MemoryCounters(),
    });
    receiver = new MessageReceiver({ device: bobDevice, directory, seen: new MemorySeen(), sender });
  });

  function notification(payload: Uint8Array, encryption: 'pair' | 'pair-ec', uuid: Uint8Array): IncomingNotification {
    return {
      command: Command.Message,
      uuid,
      senderUri: ALICE,
      targetUri: BOB,
      senderToken: ALICE_TOKEN,
      payload,
      encryption,
      deliveryReceipt: true,
      timestampNs: E_NS,
      extra: {},
    };
  }

  it('pair: every vector payload becomes a message event, then a c:101 to Alice', async () => {
    for (const v of vectors.legacy.pair) {
      const uuid = uuidFromString(v.message_id);
      const received = await receiver.handleNotification(MADRID_TOPIC, encodeIncoming(notification(fromHex(v.payload), 'pair', uuid)));
      expect(received.events).toHaveLength(1);
      const [event] = received.events;
      if (event?.kind !== 'message') throw new Error(`expected a message, got ${event?.kind}`);
      expect(event.message.text).toBe(v.text);
      expect(event.message.participants).toEqual(v.participants);
      expect(event.meta).toEqual({
        command: 100,
        uuid: v.message_id,
        senderUri: ALICE,
        targetUri: BOB,
        senderToken: ALICE_TOKEN,
        timestampNs: E_NS,
        fromSelf: false,
        encryption: 'pair',
      });
      sent.length = 0;
      await received.commit();
      expect(sent).toHaveLength(1);
      const receipt = decodeEnvelope(sent[0]!);
      expect(receipt).toMatchObject({ command: 101, chunkNumber: 1, version: 8, senderUri: BOB, noResponse: true, userAgent: UA });
      expect(uuidToString(receipt.uuid)).toBe(v.message_id);
      expect(receipt.destinations).toEqual([{ targetUri: ALICE, token: ALICE_TOKEN, sessionToken: fromHex('5e55'), deliveryReceipt: false, extra: {} }]);
    }
  });

  it('pair: the tampered vector is undecryptable and answered with nothing', async () => {
    const received = await receiver.handleNotification(
      MADRID_TOPIC,
      encodeIncoming(notification(fromHex(vectors.legacy.pair_tampered), 'pair', randomUuid())),
    );
    expect(received.events).toEqual([expect.objectContaining({ kind: 'undecryptable', code: 'bad-signature' })]);
    sent.length = 0;
    await received.commit();
    expect(sent).toEqual([]);
  });

  it('pair-ec: the vector payloads decrypt; the message-less one is reported as a malformed payload', async () => {
    const kinds: string[] = [];
    for (const v of vectors.ngm.pair_ec) {
      const received = await receiver.handleNotification(MADRID_TOPIC, encodeIncoming(notification(fromHex(v.payload), 'pair-ec', randomUuid())));
      const [event] = received.events;
      kinds.push(event!.kind === 'malformed' ? `malformed:${event.code}` : event!.kind);
      if (event?.kind === 'message') {
        expect(event.message.text).toBe(vectors.legacy.pair.find((p) => p.plaintext === v.plaintext)!.text);
      }
    }
    expect(kinds.filter((k) => k === 'message').length).toBe(vectors.ngm.pair_ec.length - 1);
    expect(kinds.filter((k) => k.startsWith('malformed')).length).toBe(1);
  });

  it('fixed bytes: a c:101 for one of my messages needs no lookup or decryption', async () => {
    const aliceDevice: LocalDevice = { ...bobDevice, pushToken: ALICE_TOKEN, handles: [ALICE] };
    const looked: string[][] = [];
    const r = new MessageReceiver({
      device: aliceDevice,
      directory: { lookup: async (_s, h) => (looked.push(h), new Map()), invalidate: () => {} },
      seen: new MemorySeen(),
      sender: { handleServerAck: () => {}, sendDeliveryReceipt: async () => {} },
    });
    const received = await r.handleNotification(MADRID_TOPIC, fromHex(DELIVERY_RECEIPT_HEX));
    expect(received.events).toEqual([
      {
        kind: 'delivery-receipt',
        meta: {
          command: 101,
          uuid: '00010203-0405-0607-0809-0A0B0C0D0E0F',
          senderUri: BOB,
          targetUri: ALICE,
          senderToken: new Uint8Array(32).fill(0xbb),
          timestampNs: E_NS,
          fromSelf: false,
          encryption: undefined,
        },
      },
    ]);
    expect(looked).toEqual([]);
    // Receipts are idempotent and share U with the message: the same one again is reported again.
    expect((await r.handleNotification(MADRID_TOPIC, fromHex(DELIVERY_RECEIPT_HEX))).events).toHaveLength(1);
  });
});

describe('routing', () => {
  let legacy: LegacyIdentity;
  beforeAll(async () => {
    legacy = await generateLegacyIdentity();
  });

  function receiverWith(over: Partial<ConstructorParameters<typeof MessageReceiver>[0]> = {}) {
    const invalidated: string[] = [];
    const acks: unknown[] = [];
    const log = new MemoryLog();
    const receiver = new MessageReceiver({
      device: { pushToken: ALICE_TOKEN, handles: [ALICE, 'tel:+15550002222'], legacy, userAgent: UA },
      directory: { lookup: async () => new Map(), invalidate: (h) => void invalidated.push(h) },
      seen: new MemorySeen(),
      sender: { handleServerAck: (a) => void acks.push(a), sendDeliveryReceipt: async () => {} },
      log,
      ...over,
    });
    return { receiver, invalidated, acks, log };
  }

  it('IDS control {"c":34}: devices changed, own handles invalidated; c:66 and c:32; others ignored', async () => {
    const { receiver, invalidated } = receiverWith();
    expect((await receiver.handleNotification(IDS_CONTROL_TOPIC, fromHex(DEVICES_CHANGED_HEX))).events).toEqual([{ kind: 'devices-changed' }]);
    expect(invalidated).toEqual([ALICE, 'tel:+15550002222']);
    expect((await receiver.handleNotification(IDS_CONTROL_TOPIC, utf8('{"c":66}'))).events).toEqual([{ kind: 'handles-changed' }]);
    expect((await receiver.handleNotification(IDS_CONTROL_TOPIC, utf8('{"c":32,"x":1}'))).events).toEqual([{ kind: 'reregister' }]);
    expect((await receiver.handleNotification(IDS_CONTROL_TOPIC, utf8('{"c":92}'))).events).toEqual([]);
    expect((await receiver.handleNotification(IDS_CONTROL_TOPIC, utf8('null'))).events).toEqual([]);
    for (const bad of [utf8('{"c":'), new Uint8Array([0xff, 0xfe])]) {
      const [event] = (await receiver.handleNotification(IDS_CONTROL_TOPIC, bad)).events;
      expect(event).toMatchObject({ kind: 'malformed', topic: IDS_CONTROL_TOPIC });
    }
  });

  it('c:255 goes to the sender, c:97 to the lookup callback, unknown topics are ignored', async () => {
    const replies: PlistDict[] = [];
    const { receiver, acks } = receiverWith({ onLookupReply: (r) => void replies.push(r) });
    const ack = encodeServerAck({ uuid: new Uint8Array(16).fill(1), token: ALICE_TOKEN, status: 5032, extra: {} });
    expect((await receiver.handleNotification(MADRID_TOPIC, ack)).events).toEqual([]);
    expect(acks).toEqual([{ uuid: new Uint8Array(16).fill(1), token: ALICE_TOKEN, status: 5032, extra: {} }]);
    const reply = encodeBinaryPlist({ c: 97, U: new Uint8Array(16), s: 0 });
    expect((await receiver.handleNotification(MADRID_TOPIC, reply)).events).toEqual([]);
    expect(replies).toEqual([{ c: 97, U: new Uint8Array(16), s: 0 }]);
    expect((await receiver.handleNotification('com.example.other', reply)).events).toEqual([]);
    const [bad] = (await receiver.handleNotification(MADRID_TOPIC, encodeBinaryPlist({ c: 255, U: new Uint8Array(3) }))).events;
    expect(bad).toMatchObject({ kind: 'malformed', code: 'bad-uuid' });
  });

  it('an unknown E is dropped with an event; a notification for a handle that is not mine is malformed', async () => {
    const { receiver } = receiverWith();
    const base: IncomingNotification = {
      command: 100,
      uuid: new Uint8Array(16).fill(2),
      senderUri: BOB,
      targetUri: ALICE,
      senderToken: new Uint8Array(32).fill(3),
      payload: new Uint8Array([1, 2, 3]),
      timestampNs: E_NS,
      extra: { E: 'pair-pq' },
    };
    const [event] = (await receiver.handleNotification(MADRID_TOPIC, encodeBinaryPlist(buildIncoming(base)))).events;
    expect(event).toMatchObject({ kind: 'unsupported-encryption', encryption: 'pair-pq', meta: { senderUri: BOB } });
    const [other] = (await receiver.handleNotification(MADRID_TOPIC, encodeIncoming({ ...base, targetUri: 'mailto:eve@example.com', extra: {} }))).events;
    expect(other).toMatchObject({ kind: 'malformed', code: 'not-my-handle' });
  });

  it('c:120 reports the failed message and drops stale keys on reason 802', async () => {
    const { receiver, invalidated } = receiverWith();
    const failed = new Uint8Array(16).fill(9);
    const bytes = encodeIncoming({
      command: Command.DeliveryFailure,
      uuid: new Uint8Array(16).fill(4),
      senderUri: BOB,
      targetUri: ALICE,
      senderToken: new Uint8Array(32).fill(3),
      timestampNs: E_NS,
      extra: { fU: failed, fR: 2, fRM: 'ec-com.apple.messageprotection-802' },
    });
    const [event] = (await receiver.handleNotification(MADRID_TOPIC, bytes)).events;
    expect(event).toMatchObject({ kind: 'delivery-failure', failedUuid: uuidToString(failed), reason: 2, reasonText: 'ec-com.apple.messageprotection-802' });
    expect(invalidated).toEqual([BOB]);
  });
});

describe('on the network', () => {
  const NET_ALICE = 'mailto:alice@example.com';
  const NET_BOB = 'tel:+15550001111';
  let net: FakeNetwork;
  let alice1: FakeDevice;
  let alice2: FakeDevice;
  let bob: FakeDevice;

  beforeAll(async () => {
    net = new FakeNetwork();
    [alice1, alice2, bob] = await Promise.all([
      net.addDevice('alice1', [NET_ALICE], { ngm: true }),
      net.addDevice('alice2', [NET_ALICE], { ngm: false }),
      net.addDevice('bob', [NET_BOB], { ngm: true }),
    ]);
  });

  const text = (from: FakeDevice, uri: string, to: string, t: string) =>
    from.sender.sendText({ senderUri: uri, participants: [to], text: t, groupId: CHAT });

  it('a duplicate notification is ignored and not answered twice', async () => {
    const res = await text(alice1, NET_ALICE, NET_BOB, 'once');
    await net.idle();
    const original = bob.inbox.filter((r) => r.topic === MADRID_TOPIC).at(-1)!;
    const receiptsBefore = net.sentBy(bob, Command.DeliveryReceipt).length;
    const again = await bob.receiver.handleNotification(original.topic, original.bytes);
    expect(again.events).toEqual([]);
    await again.commit();
    expect(net.sentBy(bob, Command.DeliveryReceipt).length).toBe(receiptsBefore);
    expect(bob.eventsOf('message').filter((m) => m.meta.uuid === res.uuid)).toHaveLength(1);
    expect(bob.log.lines.some((l) => l.event === 'imessage.duplicate')).toBe(true);
  });

  it('until commit() the notification is not remembered: a redelivery after a failed store is processed again', async () => {
    await text(alice1, NET_ALICE, NET_BOB, 'store me');
    await net.idle();
    const original = bob.inbox.at(-1)!;
    // Pretend the first processing crashed before commit(): a fresh seen-store stands for the lost state.
    const fresh = new MessageReceiver({ device: bob.local, directory: bob.directory, seen: new MemorySeen(), sender: bob.sender });
    expect((await fresh.handleNotification(original.topic, original.bytes)).events[0]!.kind).toBe('message');
  });

  it('tampered payloads: undecryptable, no delivery receipt, both schemes', async () => {
    net.tamper = (payload, to) => {
      if (to !== bob) return payload;
      const out = payload.slice();
      out[out.length - 70]! ^= 0x01;
      return out;
    };
    try {
      const receipts = net.sentBy(bob, Command.DeliveryReceipt).length;
      await text(alice1, NET_ALICE, NET_BOB, 'pair-ec, tampered');
      await text(alice2, NET_ALICE, NET_BOB, 'pair, tampered');
      await net.idle();
      const [ec, pair] = bob.eventsOf('undecryptable').slice(-2);
      expect(ec).toMatchObject({ code: 'bad-signature', meta: { encryption: 'pair-ec' } });
      expect(pair).toMatchObject({ code: 'bad-signature', meta: { encryption: 'pair' } });
      expect(net.sentBy(bob, Command.DeliveryReceipt).length).toBe(receipts);
      expect(net.errors).toEqual([]);
    } finally {
      net.tamper = undefined;
    }
  });

  it('an unknown sender token: one forced re-lookup, then undecryptable', async () => {
    await net.idle();
    const forced = bob.directory.forcedLookups();
    const stranger = encodeIncoming({
      command: Command.Message,
      uuid: randomUuid(),
      senderUri: NET_ALICE,
      targetUri: NET_BOB,
      senderToken: new Uint8Array(32).fill(0x5a),
      payload: new Uint8Array(200).fill(1),
      encryption: 'pair',
      deliveryReceipt: true,
      timestampNs: E_NS,
      extra: {},
    });
    const received = await bob.receiver.handleNotification(MADRID_TOPIC, stranger);
    expect(received.events).toEqual([expect.objectContaining({ kind: 'undecryptable', code: 'unknown-sender-device' })]);
    expect(bob.directory.forcedLookups()).toBe(forced + 1);
    expect(bob.directory.lookups.at(-1)).toEqual({ selfUri: NET_BOB, handles: [NET_ALICE], force: true });
  });

  it('a new device of a known handle is found by the forced re-lookup', async () => {
    await text(alice1, NET_ALICE, NET_BOB, 'prime bob cache');
    await net.idle();
    const alice3 = await net.addDevice('alice3', [NET_ALICE], { ngm: true });
    const forced = bob.directory.forcedLookups();
    await text(alice3, NET_ALICE, NET_BOB, 'from a brand new device');
    await net.idle();
    expect(bob.eventsOf('message').at(-1)).toMatchObject({ message: { text: 'from a brand new device' } });
    expect(equalBytes(bob.eventsOf('message').at(-1)!.meta.senderToken, alice3.token)).toBe(true);
    expect(bob.directory.forcedLookups()).toBe(forced + 1);
    net.removeDevice(alice3);
  });

  it('rotated NGM keys: the key validator mismatch triggers one re-lookup, then the message decrypts', async () => {
    await text(alice1, NET_ALICE, NET_BOB, 'old keys');
    await net.idle();
    alice1.rotateNgm(await generateNgmIdentity());
    // Bob's cached session token for alice1 goes stale too: his receipt must use the one from the re-lookup.
    net.expireSessions(alice1);
    const forced = bob.directory.forcedLookups();
    const res = await text(alice1, NET_ALICE, NET_BOB, 'new keys');
    await net.idle();
    expect(bob.eventsOf('message').at(-1)).toMatchObject({ message: { text: 'new keys' }, meta: { encryption: 'pair-ec' } });
    expect(bob.directory.forcedLookups()).toBe(forced + 1);
    expect(alice1.eventsOf('delivery-receipt').at(-1)?.meta.uuid).toBe(res.uuid);
  });

  it('property: random bytes on any topic only ever produce typed events', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(MADRID_TOPIC, IDS_CONTROL_TOPIC), fc.uint8Array({ maxLength: 200 }), async (topic, bytes) => {
        const received = await bob.receiver.handleNotification(topic, bytes);
        for (const e of received.events) expect(['malformed', 'devices-changed', 'handles-changed', 'reregister']).toContain(e.kind);
      }),
      RUNS,
    );
  });

  it('property: mutated real notifications (both schemes, receipts, typing) never throw', async () => {
    await text(alice1, NET_ALICE, NET_BOB, 'seed pair-ec');
    await text(alice2, NET_ALICE, NET_BOB, 'seed pair');
    await alice1.sender.sendTyping({ senderUri: NET_ALICE, participants: [NET_BOB], groupId: CHAT, typing: true });
    await net.idle();
    const seeds = bob.inbox.slice(-3).map((r) => r.bytes);
    expect(seeds).toHaveLength(3);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...seeds).chain(mutated), async (bytes) => {
        const received = await bob.receiver.handleNotification(MADRID_TOPIC, bytes);
        for (const e of received.events) expect(ALLOWED_ON_BAD_INPUT).toContain(e.kind);
      }),
      { numRuns: 120 },
    );
    expect(net.errors).toEqual([]);
  });

  it('property: a tampered P at any byte but the unchecked last key-validator byte is never accepted', async () => {
    await text(alice1, NET_ALICE, NET_BOB, 'target');
    await net.idle();
    const dict = bob.received(Command.Message).at(-1)!;
    const payload = dict['P'] as Uint8Array;
    await fc.assert(
      fc.asyncProperty(fc.nat(payload.length - 2), fc.integer({ min: 1, max: 255 }), async (at, flip) => {
        const bad = payload.slice();
        bad[at]! ^= flip;
        const bytes = encodeBinaryPlist({ ...dict, P: bad, U: randomUuid() });
        const [event] = (await bob.receiver.handleNotification(MADRID_TOPIC, bytes)).events;
        expect(['undecryptable', 'malformed']).toContain(event!.kind);
      }),
      { numRuns: 60 },
    );
  });
});
