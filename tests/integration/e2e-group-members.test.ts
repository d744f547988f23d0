// Group membership changes through the whole stack (sandbox, bridge, headless CeruleanClients with file stores):
// Alice (an Apple ID) makes a group with Bob and Carol (phone numbers), adds Dave, who gets the messages sent after
// that, then removes Carol, whose chat shows she is out and who gets nothing more. Along the way: both sides of a
// conversation compute the same verification code, a new device on Alice's account lands in her security log
// before it is announced, and signing out wipes a file store.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../lib/codec/bytes';
import { registerAppleId, registerPhone, startE2eWorld, WAIT, waitForMessage, type E2eWorld, type TestDevice } from './e2e-helpers';

const ALICE = 'alice@example.com';
const ALICE_PASSWORD = 'correct horse battery';
const BOB = '+15555550123';
const CAROL = '+15555550177';
const DAVE = '+15555550199';
const ALICE_URI = `mailto:${ALICE}`;
const BOB_URI = `tel:${BOB}`;
const CAROL_URI = `tel:${CAROL}`;
const DAVE_URI = `tel:${DAVE}`;

/** How long a removed member is watched for a message the others already have. */
const QUIET_MS = 1500;

let world: E2eWorld;
let alice: TestDevice;
let bob: TestDevice;
let carol: TestDevice;
let dave: TestDevice;
let groupId: string;

const sorted = (...uris: string[]) => [...uris].sort();

/** Waits until `d`'s copy of the group has exactly these members. */
async function membersAt(d: TestDevice, members: string[]): Promise<void> {
  await vi.waitFor(async () => expect((await d.client.chat(groupId))?.participants).toEqual(members), WAIT);
}

beforeAll(async () => {
  world = await startE2eWorld({
    accounts: [{ appleId: ALICE, password: ALICE_PASSWORD, twoFactor: true }],
    phones: [{ number: BOB }, { number: CAROL }, { number: DAVE }],
  });
});

afterAll(async () => {
  await world?.close();
});

describe('group membership changes end to end', () => {
  it('registers Alice, Bob, Carol and Dave', async () => {
    alice = await world.device('alice');
    bob = await world.device('bob');
    carol = await world.device('carol');
    dave = await world.device('dave');
    await Promise.all([
      registerAppleId(world, alice, ALICE, ALICE_PASSWORD),
      registerPhone(world, bob, BOB),
      registerPhone(world, carol, CAROL),
      registerPhone(world, dave, DAVE),
    ]);
    expect(alice.client.registrationInfo()).toMatchObject({ handles: [ALICE_URI], expiresAt: expect.any(Number), renewAt: expect.any(Number) });
    const info = alice.client.registrationInfo();
    expect(info.renewAt!).toBeLessThan(info.expiresAt!);
  });

  it('Alice makes a group with Bob and Carol; everyone gets the first message', async () => {
    const group = await alice.client.createGroup([BOB_URI, CAROL_URI], 'Book club');
    groupId = group.id;
    const first = await alice.client.sendText(groupId, 'Chapter one by Friday');
    for (const d of [bob, carol]) expect(await waitForMessage(d, first.uuid)).toMatchObject({ chatId: groupId, sender: ALICE_URI });
    for (const d of [alice, bob, carol]) await membersAt(d, sorted(ALICE_URI, BOB_URI, CAROL_URI));
  });

  it('Alice adds Dave: every member sees him, and he gets the messages sent from then on', async () => {
    const added = await alice.client.addMembers(groupId, [DAVE]);
    const four = sorted(ALICE_URI, BOB_URI, CAROL_URI, DAVE_URI);
    expect(added.participants).toEqual(four);
    for (const d of [bob, carol, dave]) await membersAt(d, four);
    await vi.waitFor(() => expect(dave.events.chat.some((e) => e.chat.id === groupId)).toBe(true), WAIT);
    expect(await dave.client.chat(groupId)).toMatchObject({ isGroup: true, name: 'Book club' });

    const welcome = await alice.client.sendText(groupId, 'Welcome, Dave');
    for (const d of [bob, carol, dave]) expect(await waitForMessage(d, welcome.uuid)).toMatchObject({ chatId: groupId, sender: ALICE_URI });
    // Bob's client learned the new list from the change and sends to Dave too.
    const fromBob = await bob.client.sendText(groupId, 'Hi Dave');
    for (const d of [alice, carol, dave]) expect(await waitForMessage(d, fromBob.uuid)).toMatchObject({ chatId: groupId, sender: BOB_URI });
    // Only what was sent after he joined.
    expect((await dave.client.messages(groupId)).map((m) => m.uuid)).toEqual([welcome.uuid, fromBob.uuid]);
    expect(await alice.store.outbox.list()).toEqual([]);
  });

  it('Alice removes Carol: her chat shows she is out, and she gets nothing more', async () => {
    const removed = await alice.client.removeMembers(groupId, [CAROL_URI]);
    const three = sorted(ALICE_URI, BOB_URI, DAVE_URI);
    expect(removed.participants).toEqual(three);
    for (const d of [bob, carol, dave]) await membersAt(d, three);
    // Carol's copy no longer lists her own handle: that is how her app knows she was removed.
    expect((await carol.client.chat(groupId))?.participants).not.toContain(CAROL_URI);

    const after = [await alice.client.sendText(groupId, 'Carol has left the club'), await dave.client.sendText(groupId, 'Noted')];
    for (const m of after) {
      for (const d of [alice, bob, dave].filter((x) => x.client.handles[0] !== m.sender)) await waitForMessage(d, m.uuid);
    }
    await new Promise((r) => setTimeout(r, QUIET_MS));
    for (const m of after) expect(await carol.store.messages.get(m.uuid)).toBeUndefined();
    await expect(carol.client.sendText(groupId, 'wait, what?')).rejects.toMatchObject({ code: 'not-a-member' });
    // Her history stays.
    expect((await carol.client.messages(groupId)).length).toBeGreaterThanOrEqual(3);
    await expect(alice.client.removeMembers(groupId, [BOB_URI])).rejects.toMatchObject({ code: 'bad-input' });
  });

  it('Alice and Bob compute the same verification code', async () => {
    const atAlice = await alice.client.verificationCode(BOB_URI);
    const atBob = await bob.client.verificationCode(ALICE_URI);
    expect(atAlice).toMatchObject({ code: expect.stringMatching(/^(\d{5} ){11}\d{5}$/), ownDevices: 1, theirDevices: 1 });
    expect(atBob?.code).toBe(atAlice?.code);
    expect(await alice.client.verificationCode(DAVE_URI)).not.toEqual(atAlice);
  });

  it("a new device on Alice's account is in her security log before it is announced", async () => {
    const logged: boolean[] = [];
    alice.client.on('security', (e) => {
      void alice.client.securityLog().then((log) => logged.push(log.some((x) => toHex(x.pushToken) === toHex(e.pushToken))));
    });
    const second = await world.device('alice-2');
    await registerAppleId(world, second, ALICE, ALICE_PASSWORD);
    const [account] = await second.store.accounts.list();
    const token = toHex(account!.push!.token!);
    await vi.waitFor(async () => {
      const entries = (await alice.client.securityLog()).filter((e) => e.kind === 'new-device' && toHex(e.pushToken) === token);
      expect(entries).toMatchObject([{ own: true, seen: false }]);
    }, WAIT);
    await vi.waitFor(() => expect(logged).toContain(true), WAIT);
    expect(logged).not.toContain(false);
    const [entry] = await alice.client.securityLog();
    await alice.client.markSecuritySeen([entry!.id]);
    expect((await alice.client.securityLog())[0]).toMatchObject({ id: entry!.id, seen: true });
    await second.close();
  });

  it('signing out wipes the file store', async () => {
    await dave.client.contacts.put({ name: 'Alice', handles: [ALICE_URI] });
    await dave.client.signOut();
    await expect(dave.client.chats()).rejects.toMatchObject({ code: 'closed' });
    const again = await world.device('dave');
    expect(again.client.registered).toBe(false);
    expect(await again.client.chats()).toEqual([]);
    expect(await again.client.contacts.list()).toEqual([]);
    await again.close();
  });
});
