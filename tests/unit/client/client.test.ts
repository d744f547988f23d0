// The CeruleanClient additions without a network: a client opened over a memory store that already holds a
// registered device (account, keys, registration state), so membership changes, verification codes, the security
// log, registration info and sign-out can be checked against what they store. Nothing here connects anywhere.
import { describe, expect, it } from 'vitest';
import { CeruleanClient } from '../../../lib/client/client';
import type { CeruleanClientConfig } from '../../../lib/client/config';
import { ContactBook } from '../../../lib/client/contacts';
import { generateDeviceKeys, toStoredKeys, type DeviceKeys } from '../../../lib/client/keys';
import type { OutgoingPayload } from '../../../lib/client/outgoing';
import { SecurityLog } from '../../../lib/client/security-log';
import { presentDevices, verificationCode } from '../../../lib/client/verification';
import { CeruleanError } from '../../../lib/errors';
import { DEFAULT_DEVICE_VERSIONS } from '../../../lib/ids/device';
import type { WebSocketConstructor } from '../../../lib/net/byte-stream';
import { fingerprintsOf } from '../../../lib/store/security-events';
import { MemoryStorage } from '../../../lib/store/memory-store';
import type { AccountRecord, ClientStore } from '../../../lib/store/types';

const ME = 'tel:+15550000001';
const BOB = 'tel:+15550000002';
const CAROL = 'mailto:carol@example.com';
const DAVE = 'tel:+15550000004';
const TOKEN = new Uint8Array(32).fill(0x42);
const EXPIRES = 1_900_000_000_000;
const RENEW = 1_890_000_000_000;

let keys: DeviceKeys | undefined;

function config(store: ClientStore): CeruleanClientConfig {
  return {
    bridgeUrl: 'ws://127.0.0.1:9/never-used',
    WebSocketImpl: class {} as unknown as WebSocketConstructor,
    trustedRoots: ['not parsed unless a connection is made'],
    mode: 'sandbox',
    store,
    deviceInfo: { deviceName: 'Test' },
  };
}

/** A store as a registered device leaves it: account with push token, identity keys, registration state. */
async function registeredStore(storage = new MemoryStorage()): Promise<ClientStore> {
  const store = await storage.open();
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const account: AccountRecord = {
    id: 'account-1',
    userIds: ['P:+15550000001'],
    handles: [ME],
    authCertificates: [],
    idCertificates: [],
    push: { keyPair: pair, certificate: new Uint8Array([1]), token: TOKEN },
    registrationExpiresAt: EXPIRES,
    device: { ...DEFAULT_DEVICE_VERSIONS, deviceName: 'Test', uuid: '00000000-0000-4000-8000-000000000001', setupAt: 1 },
    createdAt: 1,
    updatedAt: 1,
  };
  await store.accounts.put(account);
  keys ??= await generateDeviceKeys();
  await store.keys.put(toStoredKeys(account.id, keys, 1));
  await store.kv.set('client/registration', { primaryHandle: ME, handleOwners: { [ME]: 'P:+15550000001' }, renewAt: RENEW, relay: { url: 'https://relay.invalid', code: 'x' } });
  return store;
}

async function outboxPayloads(store: ClientStore): Promise<OutgoingPayload[]> {
  return (await store.outbox.list()).map((i) => i.payload as unknown as OutgoingPayload);
}

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CeruleanError);
  return (e as CeruleanError).code;
}

describe('a registered client (offline)', () => {
  it('reports its registration', async () => {
    const client = await CeruleanClient.open(config(await registeredStore()));
    expect(client.registered).toBe(true);
    expect(client.registrationInfo()).toEqual({ handles: [ME], expiresAt: EXPIRES, renewAt: RENEW });
    expect(client.contacts).toBeInstanceOf(ContactBook);
    await client.close();
  });

  it('adds and removes group members, queueing c:190 changes to the old and new members', async () => {
    const store = await registeredStore();
    const client = await CeruleanClient.open(config(store));
    const group = await client.createGroup([BOB, CAROL], 'Trip');
    const renameItems = (await outboxPayloads(store)).length;

    const added = await client.addMembers(group.id, ['+1 555 000 0004']);
    expect(added.participants).toEqual([CAROL, ME, BOB, DAVE].sort());
    expect(added.name).toBe('Trip');
    expect((await client.chat(group.id))?.participants).toEqual(added.participants);
    const [addItem] = (await outboxPayloads(store)).slice(renameItems);
    expect(addItem).toMatchObject({ kind: 'members', chatId: group.id, participants: group.participants, newParticipants: added.participants, propertiesVersion: 1 });

    // Nothing to change: nothing queued.
    expect(await client.addMembers(group.id, [BOB])).toEqual(added);
    expect(await client.removeMembers(group.id, ['tel:+19999999999'])).toEqual(added);
    expect(await outboxPayloads(store)).toHaveLength(renameItems + 1);

    const removed = await client.removeMembers(group.id, ['MAILTO:Carol@Example.com']);
    expect(removed.participants).toEqual([ME, BOB, DAVE].sort());
    const [, removeItem] = (await outboxPayloads(store)).slice(renameItems);
    expect(removeItem).toMatchObject({ kind: 'members', participants: added.participants, newParticipants: removed.participants, propertiesVersion: 2 });

    expect(await code(client.removeMembers(group.id, [BOB]))).toBe('bad-input');
    expect(await code(client.removeMembers(group.id, [ME]))).toBe('bad-input');
    expect(await code(client.addMembers(group.id, ['not a handle']))).toBe('bad-input');
    expect(await code(client.addMembers(group.id, []))).toBe('bad-input');
    const direct = await client.chatWith(BOB);
    expect(await code(client.addMembers(direct.id, [CAROL]))).toBe('bad-input');
    expect(await code(client.addMembers('no-such-chat', [CAROL]))).toBe('not-found');
    await client.close();
  });

  it('refuses to send into a group this account was removed from', async () => {
    const store = await registeredStore();
    const client = await CeruleanClient.open(config(store));
    const group = await client.createGroup([BOB, CAROL]);
    await store.chats.upsert({ id: group.id, participants: [BOB, CAROL, DAVE], isGroup: true });
    expect(await code(client.sendText(group.id, 'still here?'))).toBe('not-a-member');
    expect(await code(client.addMembers(group.id, [ME]))).toBe('not-a-member');
    expect(await code(client.renameGroup(group.id, 'x'))).toBe('not-a-member');
    // Reading what is there still works; no receipt goes out.
    await store.messages.saveIncoming({ uuid: '00000000-0000-4000-8000-0000000000AA', chatId: group.id, sender: BOB, fromMe: false, time: 5, text: 'bye' });
    expect(await client.markRead(group.id)).toHaveLength(1);
    expect((await store.outbox.list()).filter((i) => i.kind === 'read')).toEqual([]);
    await client.close();
  });

  it('computes the verification code from this device’s own keys and the stored devices', async () => {
    const store = await registeredStore();
    const client = await CeruleanClient.open(config(store));
    expect(await client.verificationCode(BOB)).toBeUndefined();
    const bob = { pushToken: new Uint8Array(32).fill(2), identityKey: new Uint8Array([9]) };
    await store.devices.recordLookup(BOB, [bob]);
    const self = {
      pushToken: TOKEN,
      fingerprints: fingerprintsOf({ pushToken: TOKEN, identityKey: keys!.legacy.publicKey.blob, ngmDeviceKey: keys!.ngm.ktLoggableData, ngmPrekey: keys!.ngm.publicDevicePrekey }),
    };
    const expected = verificationCode(await presentDevices(store, [ME], self), [fingerprintsOf(bob)]);
    expect(await client.verificationCode(BOB)).toEqual(expected);
    expect(await client.verificationCode('+1 (555) 000-0002')).toEqual(expected);
    expect(expected).toMatchObject({ ownDevices: 1, theirDevices: 1 });
    await client.close();
  });

  it('lists and marks the security log', async () => {
    const store = await registeredStore();
    const [entry] = await new SecurityLog(store).record([{ kind: 'new-device', handle: ME, pushToken: new Uint8Array(32).fill(3), own: true, at: 7 }]);
    const client = await CeruleanClient.open(config(store));
    expect(await client.securityLog()).toEqual([entry]);
    await client.markSecuritySeen([entry!.id]);
    expect(await client.securityLog()).toEqual([{ ...entry, seen: true }]);
    await client.close();
  });

  it('signs out: everything is wiped and every later call fails with closed', async () => {
    const storage = new MemoryStorage();
    const store = await registeredStore(storage);
    const client = await CeruleanClient.open(config(store));
    await client.contacts.put({ name: 'Bob', handles: [BOB] });
    const events: string[] = [];
    client.on('connection', (e) => events.push(e.state));
    await client.signOut();
    expect(events).toEqual(['closed']);
    expect(client.registered).toBe(false);
    expect(() => client.registrationInfo()).toThrow(expect.objectContaining({ code: 'closed' }));
    expect(await code(client.signOut())).toBe('closed');
    expect(await code(client.securityLog())).toBe('closed');
    expect(await code(client.verificationCode(BOB))).toBe('closed');
    expect(await code(client.chats())).toBe('closed');
    expect(await code(client.contacts.list())).toBe('closed');
    expect(await code(client.start())).toBe('closed');

    const reopened = await storage.open();
    expect(await reopened.accounts.list()).toEqual([]);
    expect(await reopened.kv.keys()).toEqual([]);
  });
});

describe('an unregistered client', () => {
  it('has no registration, no code, an empty log, and signs out cleanly', async () => {
    const client = await CeruleanClient.open(config(await new MemoryStorage().open()));
    expect(client.registrationInfo()).toEqual({ handles: [] });
    expect(await client.verificationCode(BOB)).toBeUndefined();
    expect(await client.securityLog()).toEqual([]);
    expect(await code(client.addMembers('x', [BOB]))).toBe('not-found');
    await client.signOut();
    expect(await code(client.contacts.get('x'))).toBe('closed');
  });
});
