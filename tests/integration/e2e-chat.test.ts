// Issue #4, the whole stack before the PWA exists: the sandbox, the bridge, and headless CeruleanClients with file
// stores. Alice (an Apple ID with 2FA, on two devices), Bob and Carol (phone numbers) register through the bridge;
// then 1:1 and group chats, receipts, tapbacks, edits and unsends, Bob offline and back, the bridge killed in the
// middle of a conversation, a new device on Alice's account — and proof that the bridge never saw plaintext.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../lib/codec/bytes';
import { directChatId } from '../../lib/store/chat-id';
import type { MessageRecord } from '../../lib/store/types';
import {
  messageEvents,
  registerAppleId,
  registerPhone,
  startE2eWorld,
  WAIT,
  waitForMessage,
  type E2eWorld,
  type TestDevice,
} from './e2e-helpers';

const ALICE = 'alice@example.com';
const ALICE_PASSWORD = 'correct horse battery';
const BOB = '+15555550123';
const CAROL = '+15555550177';
const ALICE_URI = `mailto:${ALICE}`;
const BOB_URI = `tel:${BOB}`;
const CAROL_URI = `tel:${CAROL}`;

/** Every text sent in this file, to look for in the recorded bridge traffic at the end. */
const texts: string[] = [];
const text = (label: string): string => {
  const t = `${label} ${Math.random().toString(36).slice(2, 10)}`;
  texts.push(t);
  return t;
};

let world: E2eWorld;
let alice1: TestDevice;
let alice2: TestDevice;
let bob: TestDevice;
let carol: TestDevice;
let direct: string;

async function tokenOf(d: TestDevice): Promise<Uint8Array> {
  const [account] = await d.store.accounts.list();
  return account!.push!.token!;
}

beforeAll(async () => {
  world = await startE2eWorld({
    accounts: [{ appleId: ALICE, password: ALICE_PASSWORD, twoFactor: true }],
    phones: [{ number: BOB }, { number: CAROL }],
  });
});

afterAll(async () => {
  await world?.close();
});

describe('end to end through the bridge', () => {
  it('registers Alice on two devices (Apple ID + 2FA) and Bob and Carol (phones); Alice 1 is told about Alice 2', async () => {
    alice1 = await world.device('alice1');
    await registerAppleId(world, alice1, ALICE, ALICE_PASSWORD);
    expect(alice1.client.handles).toEqual([ALICE_URI]);
    expect(alice1.events.registration.at(-1)).toMatchObject({ status: 'registered', handles: [ALICE_URI] });

    alice2 = await world.device('alice2');
    bob = await world.device('bob');
    carol = await world.device('carol');
    await Promise.all([registerAppleId(world, alice2, ALICE, ALICE_PASSWORD), registerPhone(world, bob, BOB), registerPhone(world, carol, CAROL)]);
    expect(bob.client.handles).toEqual([BOB_URI]);
    expect(carol.client.handles).toEqual([CAROL_URI]);

    // The sandbox's {"c":34} and Alice 2's c:130 make Alice 1 look her own handle up again.
    const alice2Token = toHex(await tokenOf(alice2));
    await vi.waitFor(() => {
      const seen = alice1.events.security.filter((e) => e.kind === 'new-device' && e.own && toHex(e.pushToken) === alice2Token);
      expect(seen).toHaveLength(1);
    }, WAIT);
    const devices = await alice1.client.devices();
    expect(devices.map((d) => toHex(d.pushToken)).sort()).toEqual([toHex(await tokenOf(alice1)), alice2Token].sort());
    expect(devices.filter((d) => d.current)).toHaveLength(1);
    // Alice 2's own baseline already had Alice 1: no alert there.
    expect(alice2.events.security.filter((e) => e.kind === 'new-device')).toEqual([]);
  });

  it('1:1: Bob gets it once, Alice 2 gets the sent copy, delivery and read receipts come back, Bob answers', async () => {
    const chat = await alice1.client.chatWith(BOB_URI);
    direct = chat.id;
    expect(direct).toBe(directChatId([ALICE_URI, BOB_URI]));
    const sent = await alice1.client.sendText(direct, text('Hello Bob'));
    expect(sent.status).toBe('sending');

    const atBob = await waitForMessage(bob, sent.uuid);
    expect(atBob).toMatchObject({ chatId: direct, sender: ALICE_URI, fromMe: false, text: sent.text });
    const copy = await waitForMessage(alice2, sent.uuid);
    expect(copy).toMatchObject({ chatId: direct, sender: ALICE_URI, fromMe: true, text: sent.text, status: 'sent' });
    await waitForMessage(alice1, sent.uuid, (m) => m.status === 'delivered');
    await vi.waitFor(() => expect(alice1.events.status.filter((s) => s.uuid === sent.uuid).map((s) => s.status)).toContain('delivered'), WAIT);
    expect((await bob.client.chat(direct))?.unreadCount).toBe(1);

    expect(await bob.client.markRead(direct)).toEqual([sent.uuid]);
    await waitForMessage(alice1, sent.uuid, (m) => m.status === 'read');
    await waitForMessage(alice2, sent.uuid, (m) => m.status === 'read');

    await alice1.client.setTyping(direct, true);
    await vi.waitFor(() => expect(bob.events.typing).toContainEqual({ chatId: direct, handle: ALICE_URI, typing: true }), WAIT);

    const reply = await bob.client.sendText(direct, text('Hi Alice'));
    for (const d of [alice1, alice2]) expect(await waitForMessage(d, reply.uuid)).toMatchObject({ sender: BOB_URI, fromMe: false, chatId: direct });
    await waitForMessage(bob, reply.uuid, (m) => m.status === 'delivered');
    for (const [d, uuid] of [[bob, sent.uuid], [alice2, sent.uuid], [alice1, reply.uuid], [alice2, reply.uuid]] as const) {
      expect(await messageEvents(d, uuid)).toBe(1);
    }
  });

  it('tapbacks, edits and unsends reach every device of the chat', async () => {
    const original = await alice1.client.sendText(direct, text('Lunch at noon?'));
    await waitForMessage(bob, original.uuid);
    await waitForMessage(alice2, original.uuid);

    await bob.client.sendTapback(original.uuid, 'love');
    const loved = (m: MessageRecord) => m.tapbacks.some((t) => t.sender === BOB_URI && t.reaction === 'love' && t.part === 0);
    await waitForMessage(alice1, original.uuid, loved);
    await waitForMessage(alice2, original.uuid, loved);

    const edited = text('Lunch at one?');
    await alice1.client.edit(original.uuid, edited);
    const hasEdit = (m: MessageRecord) => m.edits.at(-1)?.text === edited;
    await waitForMessage(bob, original.uuid, hasEdit);
    await waitForMessage(alice2, original.uuid, hasEdit);

    await alice1.client.unsend(original.uuid);
    await waitForMessage(bob, original.uuid, (m) => m.unsent);
    await waitForMessage(alice2, original.uuid, (m) => m.unsent);

    // Bob cannot edit Alice's message: the edit is dropped.
    await expect(bob.client.edit(original.uuid, 'forged')).rejects.toMatchObject({ code: 'not-own-message' });
  });

  it('a group: named, messages reach every member and every own device, in one chat', async () => {
    const group = await alice1.client.createGroup([BOB_URI, CAROL_URI], 'Weekend plans');
    for (const d of [bob, carol, alice2]) {
      await vi.waitFor(async () => expect(await d.client.chat(group.id)).toMatchObject({ name: 'Weekend plans', isGroup: true }), WAIT);
    }
    const first = await alice1.client.sendText(group.id, text('Hike on Saturday?'));
    for (const d of [bob, carol, alice2]) expect(await waitForMessage(d, first.uuid)).toMatchObject({ chatId: group.id, sender: ALICE_URI });
    const answer = await carol.client.sendText(group.id, text('Count me in'));
    for (const d of [alice1, alice2, bob]) expect(await waitForMessage(d, answer.uuid)).toMatchObject({ chatId: group.id, sender: CAROL_URI });
    const members = [ALICE_URI, BOB_URI, CAROL_URI].sort();
    for (const d of [alice1, alice2, bob, carol]) expect((await d.client.chat(group.id))?.participants).toEqual(members);

    await bob.client.renameGroup(group.id, 'Saturday hike');
    for (const d of [alice1, alice2, carol]) {
      await vi.waitFor(async () => expect((await d.client.chat(group.id))?.name).toBe('Saturday hike'), WAIT);
    }
  });

  it('Bob offline: messages wait at the server, and a new client on his store gets all of them, in order, once', async () => {
    await bob.close();
    const queued: string[] = [];
    for (const label of ['While you were out 1', 'While you were out 2', 'While you were out 3']) {
      const m = await alice1.client.sendText(direct, text(label));
      queued.push(m.uuid);
      await waitForMessage(alice1, m.uuid, (x) => x.status === 'sent');
    }
    bob = await world.device('bob');
    expect(bob.client.registered).toBe(true);
    await bob.client.start();
    for (const uuid of queued) await waitForMessage(bob, uuid);
    const order = (await bob.client.messages(direct, { limit: 100 })).map((m) => m.uuid);
    expect(order.filter((u) => queued.includes(u))).toEqual(queued);
    await vi.waitFor(() => expect(bob.events.message.map((e) => e.message.uuid)).toEqual(queued), WAIT);
    for (const uuid of queued) await waitForMessage(alice1, uuid, (m) => m.status === 'delivered');
  });

  it('the bridge dies mid-conversation: clients reconnect, nothing is lost or duplicated', async () => {
    const before = await alice1.client.sendText(direct, text('Before the outage'));
    await waitForMessage(bob, before.uuid);
    // Queued and the bridge gone at once: it may or may not have left before the connection died.
    const inFlight = await alice1.client.sendText(direct, text('Caught in the outage'));
    await world.killBridge();
    await vi.waitFor(() => expect(alice1.client.connectionState).toBe('disconnected'), WAIT);
    const during = [
      await alice1.client.sendText(direct, text('During the outage, from Alice')),
      await bob.client.sendText(direct, text('During the outage, from Bob')),
    ];
    await new Promise((r) => setTimeout(r, 300));
    await world.restartBridge();
    const after = await alice1.client.sendText(direct, text('After the outage'));
    const receiversOf = (m: MessageRecord) => (m.sender === BOB_URI ? [alice1, alice2] : [alice2, bob]);
    for (const m of [before, inFlight, ...during, after]) {
      for (const d of receiversOf(m)) {
        await waitForMessage(d, m.uuid);
        expect(await messageEvents(d, m.uuid)).toBe(1);
      }
      await waitForMessage(m.sender === BOB_URI ? bob : alice1, m.uuid, (x) => x.status === 'delivered');
    }
    for (const d of [alice1, alice2, bob]) {
      const uuids = (await d.client.messages(direct, { limit: 200 })).map((m) => m.uuid);
      expect(new Set(uuids).size).toBe(uuids.length);
    }
  });

  it('a message queued while offline survives a restart of its client and goes out afterwards', async () => {
    await world.killBridge();
    await vi.waitFor(() => expect(alice2.client.connectionState).toBe('disconnected'), WAIT);
    const queued = await alice2.client.sendText(direct, text('Written on the train'));
    await alice2.close();
    await world.restartBridge();
    alice2 = await world.device('alice2');
    expect((await alice2.store.outbox.list()).map((i) => i.messageUuid)).toEqual([queued.uuid]);
    await alice2.client.start();
    expect(await waitForMessage(bob, queued.uuid)).toMatchObject({ sender: ALICE_URI, text: queued.text });
    await waitForMessage(alice1, queued.uuid, (m) => m.fromMe);
    await waitForMessage(alice2, queued.uuid, (m) => m.status === 'delivered');
    expect(await alice2.store.outbox.list()).toEqual([]);
  });

  it("renewing Bob's registration extends it and keeps him reachable", async () => {
    const [before] = await bob.store.accounts.list();
    await bob.client.renew();
    const [after] = await bob.store.accounts.list();
    expect(after!.registrationExpiresAt!).toBeGreaterThan(before!.registrationExpiresAt!);
    expect(bob.events.registration.at(-1)).toMatchObject({ status: 'registered', handles: [BOB_URI] });
    const m = await alice1.client.sendText(direct, text('Still there?'));
    await waitForMessage(bob, m.uuid);
  });

  it("a new device on Alice's account raises new-device on both of her devices", async () => {
    const alice3 = await world.device('alice3');
    await registerAppleId(world, alice3, ALICE, ALICE_PASSWORD);
    const token = toHex(await tokenOf(alice3));
    for (const d of [alice1, alice2]) {
      await vi.waitFor(() => {
        expect(d.events.security.filter((e) => e.kind === 'new-device' && e.own && toHex(e.pushToken) === token)).toHaveLength(1);
      }, WAIT);
    }
    await alice3.close();
  });

  it('no device raised a message event twice for one message', () => {
    for (const d of [alice1, alice2, bob, carol]) {
      const uuids = d.events.message.map((e) => e.message.uuid);
      expect(new Set(uuids).size).toBe(uuids.length);
    }
  });

  it('the bridge saw only ciphertext: no text, handle, key or plist marker in any byte it forwarded', async () => {
    expect(world.proxy.bytes()).toBeGreaterThan(100_000);
    expect(world.proxy.tunnels.length).toBeGreaterThan(10);
    // The search does see what TLS leaves in the clear (the server names in ClientHello).
    expect(world.proxy.find('courier.push.apple.com').length).toBeGreaterThan(0);
    expect(world.proxy.find('identity.ess.apple.com').length).toBeGreaterThan(0);
    const secrets: Array<string | Uint8Array> = [...texts, ALICE, BOB, CAROL, 'bplist00', '<plist'];
    for (const d of [alice1, alice2, bob, carol]) {
      const [account] = await d.store.accounts.list();
      const keys = await d.store.keys.get(account!.id);
      secrets.push(keys!.legacy!.blob, keys!.ngm!.publicDevicePrekey, keys!.ngm!.ktLoggableData, account!.push!.token!);
    }
    for (const s of secrets) expect({ secret: typeof s === 'string' ? s : toHex(s), tunnels: world.proxy.find(s) }).toEqual({ secret: typeof s === 'string' ? s : toHex(s), tunnels: [] });
  });
});
