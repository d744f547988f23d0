// The behaviour every ClientStore must show, as one vitest suite that each implementation's test file runs against
// its own storage (IndexedDB in Chromium, the file store in Node, the memory store in both). Test code only: it is
// imported by tests, never by the app.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { subtle } from '../../../lib/crypto/subtle';
import { directChatId } from '../../../lib/store/chat-id';
import { StoreError, type StoreErrorCode } from '../../../lib/store/errors';
import type { AccountRecord, ClientStore, DeviceObservation, IdentityKeys, NewMessage } from '../../../lib/store/types';

export interface StoreUnderTest {
  /** A store over fresh, empty storage. */
  store: ClientStore;
  /** Opens the same storage again (the test closes the previous store first). */
  reopen(): Promise<ClientStore>;
}

interface Session {
  readonly store: ClientStore;
  /** Closes the current store and opens the storage again. */
  reopen(): Promise<ClientStore>;
}

const ALICE = 'mailto:alice@example.com';
const BOB = 'tel:+15550001111';
const CAROL = 'mailto:carol@example.com';
const ME = 'mailto:me@example.com';
const ME_PHONE = 'tel:+15559990000';
const ECDSA: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

let uuidCounter = 0;
/** Deterministic, distinct, sortable UUIDs (upper-case, as the store returns them). */
function uuid(n = ++uuidCounter): string {
  const hex = n.toString(16).padStart(12, '0').toUpperCase();
  return `00000000-0000-4000-8000-${hex}`;
}

function token(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function expectStoreError(p: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(StoreError);
  expect((e as StoreError).code).toBe(code);
}

function ecdsaPair(): Promise<CryptoKeyPair> {
  return subtle().generateKey(ECDSA, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

async function signsAndVerifies(pair: CryptoKeyPair): Promise<boolean> {
  const data = new Uint8Array([1, 2, 3]);
  const sig = await subtle().sign(SIGN, pair.privateKey, data);
  return subtle().verify(SIGN, pair.publicKey, sig, data);
}

function account(id: string, handles: string[], extra: Partial<AccountRecord> = {}): AccountRecord {
  return { id, userIds: [`P:${id}`], handles, authCertificates: [], idCertificates: [], createdAt: 1000, updatedAt: 1000, ...extra };
}

function incoming(chatId: string, time: number, extra: Partial<NewMessage> = {}): NewMessage {
  return { uuid: uuid(), chatId, sender: ALICE, fromMe: false, time, text: `at ${time}`, ...extra };
}

export function runStoreConformance(makeStore: () => Promise<StoreUnderTest>): void {
  async function session(body: (s: Session) => Promise<void>): Promise<void> {
    const made = await makeStore();
    let current = made.store;
    const s: Session = {
      get store() {
        return current;
      },
      async reopen() {
        await current.close();
        current = await made.reopen();
        return current;
      },
    };
    try {
      await body(s);
    } finally {
      await current.destroy();
    }
  }

  const chatA = directChatId([ME, ALICE]);
  const chatInit = { id: chatA, participants: [ME, ALICE] };

  describe('accounts and keys', () => {
    it('stores accounts with their CryptoKeys and certificates across a reopen', () =>
      session(async (s) => {
        const authKey = await ecdsaPair();
        const pushKey = await ecdsaPair();
        const a = account('acct-1', ['MAILTO:Me@Example.com', ME_PHONE], {
          appleId: 'me@example.com',
          authKey,
          authCertificates: [{ userId: 'P:acct-1', certificate: new Uint8Array([0x30, 1, 2]), notAfter: 5000 }],
          idCertificates: [{ userId: 'P:acct-1', certificate: new Uint8Array([0x30, 3]), notAfter: 6000 }],
          push: { keyPair: pushKey, certificate: new Uint8Array([0x30, 9]), token: token(7) },
          registrationExpiresAt: 9000,
          device: {
            deviceName: 'Cerulean',
            hardwareVersion: 'Macmini9,1',
            softwareName: 'macOS',
            softwareVersion: '13.5',
            softwareBuildId: '22G74',
            uuid: '11111111-2222-3333-4444-555555555555',
            setupAt: 1234,
          },
        });
        await s.store.accounts.put(a);
        await s.store.accounts.put(account('acct-2', [BOB]));
        const store = await s.reopen();
        const got = await store.accounts.get('acct-1');
        expect(got?.handles).toEqual([ME, ME_PHONE]);
        expect(got?.idCertificates[0]?.certificate).toEqual(new Uint8Array([0x30, 3]));
        expect(got?.push?.token).toEqual(token(7));
        expect(got?.device?.setupAt).toBe(1234);
        expect(got?.authKey?.privateKey.type).toBe('private');
        expect(await signsAndVerifies(got!.authKey!)).toBe(true);
        expect(await signsAndVerifies(got!.push!.keyPair)).toBe(true);
        expect((await store.accounts.list()).map((x) => x.id)).toEqual(['acct-1', 'acct-2']);
        await store.accounts.delete('acct-2');
        expect(await store.accounts.get('acct-2')).toBeUndefined();
        await expectStoreError(store.accounts.delete('acct-2'), 'not-found');
      }));

    it('keeps identity keys usable (ECDSA, ECDH, RSA-OAEP) and deletes them with the account', () =>
      session(async (s) => {
        await s.store.accounts.put(account('acct-1', [ME]));
        const [signing, encryption, deviceKey, prekey] = await Promise.all([
          ecdsaPair(),
          subtle().generateKey(
            { name: 'RSA-OAEP', hash: 'SHA-1', modulusLength: 1280, publicExponent: new Uint8Array([1, 0, 1]) },
            true,
            ['encrypt', 'decrypt'],
          ) as Promise<CryptoKeyPair>,
          ecdsaPair(),
          subtle().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']) as Promise<CryptoKeyPair>,
        ]);
        const keys: IdentityKeys = {
          accountId: 'acct-1',
          legacy: { signing, encryption, blob: new Uint8Array([0x30, 0x81]), hash: new Uint8Array(32).fill(5) },
          ngm: {
            deviceKey,
            prekey,
            deviceCompact: new Uint8Array(32).fill(1),
            prekeyCompact: new Uint8Array(32).fill(2),
            prekeyTimestamp: 1_700_000_000.5,
            publicDevicePrekey: new Uint8Array(109),
            ktLoggableData: new Uint8Array(40),
          },
          updatedAt: 10,
        };
        await s.store.keys.put(keys);
        const store = await s.reopen();
        const got = (await store.keys.get('acct-1'))!;
        expect(got.ngm?.prekeyTimestamp).toBe(1_700_000_000.5);
        expect(got.legacy?.hash).toEqual(new Uint8Array(32).fill(5));
        expect(await signsAndVerifies(got.legacy!.signing)).toBe(true);
        expect(await signsAndVerifies(got.ngm!.deviceKey)).toBe(true);
        const secret = new Uint8Array([42]);
        const ct = await subtle().encrypt({ name: 'RSA-OAEP' }, got.legacy!.encryption.publicKey, secret);
        expect(new Uint8Array(await subtle().decrypt({ name: 'RSA-OAEP' }, got.legacy!.encryption.privateKey, ct))).toEqual(secret);
        const peer = (await subtle().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits'])) as CryptoKeyPair;
        const z1 = await subtle().deriveBits({ name: 'ECDH', public: peer.publicKey }, got.ngm!.prekey.privateKey, 256);
        const z2 = await subtle().deriveBits({ name: 'ECDH', public: got.ngm!.prekey.publicKey }, peer.privateKey, 256);
        expect(new Uint8Array(z1)).toEqual(new Uint8Array(z2));
        expect(got.ngm!.prekey.privateKey.usages).toEqual(['deriveBits']);
        await store.keys.delete('acct-1');
        expect(await store.keys.get('acct-1')).toBeUndefined();
        await expectStoreError(store.keys.delete('acct-1'), 'not-found');
        await store.keys.put(keys);
        await store.accounts.delete('acct-1');
        expect(await store.keys.get('acct-1')).toBeUndefined();
      }));

    it('rejects keys for an unknown account and malformed records', () =>
      session(async (s) => {
        const pair = await ecdsaPair();
        const keys = { accountId: 'nobody', legacy: undefined, updatedAt: 1 };
        await expectStoreError(s.store.keys.put(keys), 'not-found');
        await s.store.accounts.put(account('acct-1', [ME]));
        await expectStoreError(s.store.keys.put({ ...keys, accountId: 'acct-1', ngm: { deviceKey: pair } } as never), 'bad-input');
        await expectStoreError(
          s.store.keys.put({ accountId: 'acct-1', legacy: { signing: { privateKey: pair.publicKey, publicKey: pair.publicKey } }, updatedAt: 1 } as never),
          'bad-input',
        );
        await expectStoreError(s.store.accounts.put({ ...account('x', [ME]), handles: 'mailto:me' } as never), 'bad-input');
        await expectStoreError(s.store.accounts.put(account('x', ['not a uri'])), 'bad-input');
        await expectStoreError(s.store.accounts.put(account('', [ME])), 'bad-input');
        await expectStoreError(s.store.accounts.put(account('x', [ME], { createdAt: Number.NaN })), 'bad-input');
        await expectStoreError(
          s.store.accounts.put(account('x', [ME], { push: { keyPair: pair, certificate: new Uint8Array(1), token: new Uint8Array(31) } })),
          'bad-input',
        );
        await expectStoreError(s.store.accounts.put(account('x', [ME], { authKey: { privateKey: 'k' } as never })), 'bad-input');
        expect((await s.store.accounts.list()).map((a) => a.id)).toEqual(['acct-1']);
      }));
  });

  describe('chats and messages', () => {
    it('derives one direct chat id from the participants in any order and case', () => {
      expect(directChatId([ALICE, ME])).toBe(directChatId(['mailto:ME@example.com', 'MAILTO:Alice@Example.com', ME]));
      expect(directChatId([ALICE, ME])).not.toBe(directChatId([BOB, ME]));
      expect(() => directChatId([])).toThrow(StoreError);
      expect(() => directChatId(['no-scheme'])).toThrow(StoreError);
    });

    it('lists messages in (time, uuid) order with pagination both ways', () =>
      session(async (s) => {
        const times = [50, 10, 40, 20, 30, 20, 60];
        const saved = [];
        for (const t of times) saved.push((await s.store.messages.saveIncoming(incoming(chatA, t), chatInit)).message);
        const sorted = [...saved].sort((a, b) => a.time - b.time || (a.uuid < b.uuid ? -1 : 1));
        const all = await s.store.messages.list(chatA);
        expect(all.map((m) => m.uuid)).toEqual(sorted.map((m) => m.uuid));
        const newest3 = await s.store.messages.list(chatA, { limit: 3 });
        expect(newest3.map((m) => m.time)).toEqual([40, 50, 60]);
        const older = await s.store.messages.list(chatA, { limit: 3, before: newest3[0] });
        expect(older.map((m) => m.uuid)).toEqual(sorted.slice(1, 4).map((m) => m.uuid));
        const after = await s.store.messages.list(chatA, { limit: 2, after: sorted[1] });
        expect(after.map((m) => m.uuid)).toEqual(sorted.slice(2, 4).map((m) => m.uuid));
        expect(await s.store.messages.list(chatA, { after: sorted[5], before: sorted[1] })).toEqual([]);
        expect(await s.store.messages.list('no-such-chat')).toEqual([]);
        await expectStoreError(s.store.messages.list(chatA, { limit: 0 }), 'bad-input');
        await expectStoreError(s.store.messages.list(chatA, { before: { time: -1, uuid: uuid() } }), 'bad-input');
      }));

    it('creates chats on first message, tracks last message, unread counts and order', () =>
      session(async (s) => {
        const chatB = directChatId([ME, BOB]);
        const group = { id: 'GROUP-GID-1', participants: [ME, ALICE, BOB], name: 'Trip', isGroup: true };
        await expectStoreError(s.store.messages.saveIncoming(incoming(chatA, 1)), 'not-found');
        await expectStoreError(s.store.messages.saveIncoming(incoming(chatA, 1), { ...chatInit, id: chatB }), 'bad-input');
        await s.store.messages.saveIncoming(incoming(chatA, 100), chatInit);
        const late = incoming(chatA, 50, { text: 'late' });
        await s.store.messages.saveIncoming(late);
        await s.store.messages.saveIncoming(incoming(chatB, 200, { sender: BOB }), { id: chatB, participants: [BOB, ME] });
        await s.store.messages.saveIncoming(incoming(group.id, 150, { sender: BOB }), group);
        await s.store.messages.saveIncoming(incoming(chatA, 120, { fromMe: true, sender: ME, text: 'mine' }));
        const a = (await s.store.chats.get(chatA))!;
        expect(a.unreadCount).toBe(2);
        expect(a.lastMessage).toMatchObject({ time: 120, preview: 'mine', sender: ME });
        expect(a.participants).toEqual([ALICE, ME]);
        expect(a.isGroup).toBe(false);
        expect((await s.store.chats.get(group.id))?.name).toBe('Trip');
        expect((await s.store.chats.list()).map((c) => c.id)).toEqual([chatB, group.id, chatA]);
        expect((await s.store.chats.list({ limit: 1 })).map((c) => c.id)).toEqual([chatB]);
        expect(await s.store.chats.totalUnread()).toBe(4);
        const read = await s.store.chats.markRead(chatA, 999);
        expect(read).toHaveLength(2);
        expect(read[0]).toBe(late.uuid.toUpperCase());
        expect((await s.store.messages.get(late.uuid))).toMatchObject({ status: 'read', readAt: 999 });
        expect(await s.store.chats.markRead(chatA)).toEqual([]);
        expect(await s.store.chats.totalUnread()).toBe(2);
        const renamed = await s.store.chats.upsert({ ...group, name: 'Trip 2' });
        expect(renamed).toMatchObject({ name: 'Trip 2', unreadCount: 1, isGroup: true });
        await expectStoreError(s.store.chats.markRead('nope'), 'not-found');
        await expectStoreError(s.store.chats.upsert({ id: 'x', participants: 'me' } as never), 'bad-input');
      }));

    it('de-duplicates by UUID (case-insensitively) without double counting or losing status', () =>
      session(async (s) => {
        const m = incoming(chatA, 10, { uuid: 'abcdef01-2345-4678-9abc-def012345678' });
        expect((await s.store.messages.saveIncoming(m, chatInit)).saved).toBe(true);
        expect(await s.store.messages.has('ABCDEF01-2345-4678-9ABC-DEF012345678')).toBe(true);
        expect(await s.store.messages.has(uuid())).toBe(false);
        await s.store.messages.updateStatus(m.uuid, 'read', 20);
        const again = await s.store.messages.saveIncoming({ ...m, text: 'changed', status: 'delivered' });
        expect(again.saved).toBe(false);
        expect(again.message).toMatchObject({ text: 'at 10', status: 'read', uuid: m.uuid.toUpperCase() });
        expect((await s.store.chats.get(chatA))?.unreadCount).toBe(1);
        await expectStoreError(s.store.messages.has('not-a-uuid'), 'bad-input');
      }));

    it('loses no message when many saves race, and keeps the newest status', () =>
      session(async (s) => {
        await s.store.chats.upsert(chatInit, 1);
        const msgs = Array.from({ length: 40 }, (_, i) => incoming(chatA, 1000 + ((i * 7) % 40)));
        const results = await Promise.all([
          ...msgs.map((m) => s.store.messages.saveIncoming(m)),
          ...msgs.slice(0, 10).map((m) => s.store.messages.saveIncoming(m)),
        ]);
        expect(results.filter((r) => r.saved)).toHaveLength(40);
        expect(await s.store.messages.list(chatA, { limit: 100 })).toHaveLength(40);
        const chat = (await s.store.chats.get(chatA))!;
        expect(chat.unreadCount).toBe(40);
        expect(chat.lastMessage?.time).toBe(1039);
        const target = msgs[0]!.uuid;
        const statuses = ['delivered', 'read', 'sent', 'delivered', 'sending'] as const;
        await Promise.all(statuses.map((st, i) => s.store.messages.updateStatus(target, st, i)));
        expect((await s.store.messages.get(target))?.status).toBe('read');
      }));

    it('moves statuses only forward (failed → sending is a retry)', () =>
      session(async (s) => {
        const m = { ...incoming(chatA, 5), fromMe: true, sender: ME };
        const { message } = await s.store.messages.saveOutgoing(m, { chat: chatInit });
        expect(message.status).toBe('sending');
        expect((await s.store.messages.updateStatus(m.uuid, 'failed', 6)).status).toBe('failed');
        expect((await s.store.messages.updateStatus(m.uuid, 'sending', 7)).status).toBe('sending');
        expect(await s.store.messages.updateStatus(m.uuid, 'delivered', 8)).toMatchObject({ status: 'delivered', deliveredAt: 8 });
        expect((await s.store.messages.updateStatus(m.uuid, 'sent', 9)).status).toBe('delivered');
        expect((await s.store.messages.updateStatus(m.uuid, 'failed', 9)).status).toBe('delivered');
        expect(await s.store.messages.updateStatus(m.uuid, 'read', 10)).toMatchObject({ status: 'read', readAt: 10 });
        await expectStoreError(s.store.messages.updateStatus(uuid(), 'read'), 'not-found');
        await expectStoreError(s.store.messages.updateStatus(m.uuid, 'lost' as never), 'bad-input');
      }));

    it('applies tapbacks, edits and unsends idempotently, newest first', () =>
      session(async (s) => {
        const m = incoming(chatA, 1);
        await s.store.messages.saveIncoming(m, chatInit);
        await s.store.messages.addTapback(m.uuid, { sender: BOB, reaction: 'love', part: 0, time: 10 });
        await s.store.messages.addTapback(m.uuid, { sender: BOB, reaction: 'like', part: 0, time: 20 });
        await s.store.messages.addTapback(m.uuid, { sender: BOB, reaction: 'laugh', part: 0, time: 15 });
        await s.store.messages.addTapback(m.uuid, { sender: CAROL, reaction: 'emoji', emoji: '🔥', part: 0, time: 12 });
        let got = await s.store.messages.addTapback(m.uuid, { sender: ME, reaction: 'question', time: 13 });
        expect(got.tapbacks.map((t) => `${t.sender}:${t.reaction}`).sort()).toEqual([`${CAROL}:emoji`, `${ME}:question`, `${BOB}:like`]);
        got = await s.store.messages.addTapback(m.uuid, { sender: BOB, reaction: 'like', part: 0, time: 30, remove: true });
        expect(got.tapbacks).toHaveLength(2);
        await s.store.messages.applyEdit(m.uuid, { part: 0, text: 'second', time: 40 });
        await s.store.messages.applyEdit(m.uuid, { part: 0, text: 'first', time: 30 });
        got = await s.store.messages.applyEdit(m.uuid, { part: 0, text: 'second', time: 40 });
        expect(got.edits.map((e) => e.text)).toEqual(['first', 'second']);
        got = await s.store.messages.unsend(m.uuid, { part: 1 });
        got = await s.store.messages.unsend(m.uuid, { part: 1 });
        expect(got).toMatchObject({ unsentParts: [1], unsent: false });
        expect((await s.store.messages.unsend(m.uuid)).unsent).toBe(true);
        await expectStoreError(s.store.messages.addTapback(m.uuid, { sender: BOB, reaction: 'wow', time: 1 } as never), 'bad-input');
        await expectStoreError(s.store.messages.addTapback(uuid(), { sender: BOB, reaction: 'love', time: 1 }), 'not-found');
        await expectStoreError(s.store.messages.applyEdit(m.uuid, { part: -1, text: 'x', time: 1 }), 'bad-input');
      }));

    it('deletes messages and chats, keeping the chat summary right', () =>
      session(async (s) => {
        const first = incoming(chatA, 1);
        const second = incoming(chatA, 2);
        await s.store.messages.saveIncoming(first, chatInit);
        await s.store.messages.saveIncoming(second);
        await s.store.messages.delete(second.uuid);
        expect(await s.store.chats.get(chatA)).toMatchObject({ unreadCount: 1, lastMessage: { uuid: first.uuid } });
        await s.store.messages.delete(first.uuid);
        const empty = (await s.store.chats.get(chatA))!;
        expect(empty.lastMessage).toBeUndefined();
        expect(empty.unreadCount).toBe(0);
        await s.store.messages.saveIncoming(incoming(chatA, 3));
        await s.store.chats.delete(chatA);
        expect(await s.store.chats.get(chatA)).toBeUndefined();
        expect(await s.store.messages.list(chatA)).toEqual([]);
        await expectStoreError(s.store.chats.delete(chatA), 'not-found');
        await expectStoreError(s.store.messages.delete(first.uuid), 'not-found');
      }));
  });

  describe('outbox', () => {
    it('stores an outgoing message and its outbox item atomically', () =>
      session(async (s) => {
        const m = { ...incoming(chatA, 5), fromMe: true, sender: ME };
        const { outboxItem } = await s.store.messages.saveOutgoing(m, { chat: chatInit, outbox: { kind: 'message', payload: { c: 100 } }, at: 5 });
        expect(outboxItem).toMatchObject({ messageUuid: m.uuid, chatId: chatA, attempts: 0, nextAttemptAt: 5 });
        expect((await s.store.chats.get(chatA))?.unreadCount).toBe(0);
        // A duplicate aborts the whole transaction: no second outbox item appears.
        await expectStoreError(s.store.messages.saveOutgoing(m, { outbox: { kind: 'message', payload: null } }), 'duplicate');
        expect(await s.store.outbox.list()).toHaveLength(1);
        await expectStoreError(
          s.store.messages.saveOutgoing({ ...m, uuid: uuid() }, { outbox: { id: outboxItem!.id, kind: 'message', payload: null } }),
          'duplicate',
        );
        expect(await s.store.messages.list(chatA)).toHaveLength(1);
        await expectStoreError(s.store.messages.saveOutgoing({ ...m, uuid: uuid(), fromMe: false }), 'bad-input');
      }));

    it('hands out due items in order with a lease, and survives a reopen', () =>
      session(async (s) => {
        const a = await s.store.outbox.enqueue({ id: 'a', kind: 'receipt', payload: new Uint8Array([1]), nextAttemptAt: 300 }, 0);
        await s.store.outbox.enqueue({ id: 'b', kind: 'receipt', payload: 'x', nextAttemptAt: 100 }, 0);
        await s.store.outbox.enqueue({ id: 'c', kind: 'receipt', payload: ['y'], nextAttemptAt: 200 }, 0);
        expect(a.createdAt).toBe(0);
        await expectStoreError(s.store.outbox.enqueue({ id: 'a', kind: 'receipt', payload: null }), 'duplicate');
        expect(await s.store.outbox.takeDue(99)).toEqual([]);
        expect(await s.store.outbox.nextDueAt()).toBe(100);
        const first = await s.store.outbox.takeDue(200, { leaseMs: 1000 });
        expect(first.map((i) => i.id)).toEqual(['b', 'c']);
        expect(first.every((i) => i.attempts === 1 && i.nextAttemptAt === 1200)).toBe(true);
        const store = await s.reopen();
        expect((await store.outbox.takeDue(300, { limit: 5 })).map((i) => i.id)).toEqual(['a']);
        expect(await store.outbox.takeDue(1199)).toEqual([]);
        expect((await store.outbox.takeDue(1200, { limit: 1 })).map((i) => i.id)).toEqual(['b']);
        const retried = await store.outbox.retry('c', 5000, 'timeout');
        expect(retried).toMatchObject({ nextAttemptAt: 5000, lastError: 'timeout', attempts: 1 });
        expect((await store.outbox.get('a'))?.payload).toEqual(new Uint8Array([1]));
        // c retries at 5000; a and b are leased until 30 300 and 31 200 (default lease 30 s).
        expect((await store.outbox.list()).map((i) => i.id)).toEqual(['c', 'a', 'b']);
        await expectStoreError(store.outbox.retry('zz', 1), 'not-found');
        await expectStoreError(store.outbox.takeDue(-5), 'bad-input');
      }));

    it('completing or failing an item moves its message', () =>
      session(async (s) => {
        const sent = { ...incoming(chatA, 5), fromMe: true, sender: ME };
        const lost = { ...incoming(chatA, 6), fromMe: true, sender: ME };
        const r1 = await s.store.messages.saveOutgoing(sent, { chat: chatInit, outbox: { kind: 'message', payload: null } });
        const r2 = await s.store.messages.saveOutgoing(lost, { outbox: { kind: 'message', payload: null } });
        await s.store.outbox.complete(r1.outboxItem!.id, 77);
        await s.store.outbox.fail(r2.outboxItem!.id, 'no route');
        expect(await s.store.messages.get(sent.uuid)).toMatchObject({ status: 'sent', sentAt: 77 });
        expect(await s.store.messages.get(lost.uuid)).toMatchObject({ status: 'failed', error: 'no route' });
        expect(await s.store.outbox.list()).toEqual([]);
        expect(await s.store.outbox.nextDueAt()).toBeUndefined();
        await expectStoreError(s.store.outbox.complete(r1.outboxItem!.id), 'not-found');
      }));
  });

  describe('devices and security events', () => {
    const idKey = (n: number): DeviceObservation => ({ pushToken: token(n), identityKey: new Uint8Array([n, 1]), ngmDeviceKey: new Uint8Array([n, 2]) });

    it('sets a baseline on a contact\'s first lookup, then reports new devices and key changes', () =>
      session(async (s) => {
        expect(await s.store.devices.recordLookup(ALICE, [idKey(1), idKey(2)], 100)).toEqual([]);
        expect(await s.store.devices.recordLookup(ALICE, [idKey(1), idKey(2)], 200)).toEqual([]);
        await s.store.devices.setVerified(ALICE, token(1), true);
        const changed = { ...idKey(1), identityKey: new Uint8Array([9, 9]) };
        const events = await s.store.devices.recordLookup('MAILTO:Alice@example.com', [changed, idKey(2), { ...idKey(3), deviceName: 'iPad' }], 300);
        expect(events).toHaveLength(2);
        expect(events[0]).toMatchObject({ kind: 'key-changed', handle: ALICE, own: false, changed: ['identity'], wasVerified: true, at: 300 });
        expect(events[0]!.pushToken).toEqual(token(1));
        expect(events[1]).toMatchObject({ kind: 'new-device', handle: ALICE, own: false, deviceName: 'iPad', at: 300 });
        const d1 = (await s.store.devices.get(ALICE, token(1)))!;
        expect(d1).toMatchObject({ verified: false, firstSeen: 100, lastSeen: 300, keyChangedAt: 300, present: true });
        // A device that leaves and comes back is not new.
        await s.store.devices.recordLookup(ALICE, [changed, idKey(3)], 400);
        expect((await s.store.devices.get(ALICE, token(2)))?.present).toBe(false);
        expect(await s.store.devices.recordLookup(ALICE, [changed, idKey(2), idKey(3)], 500)).toEqual([]);
        expect((await s.store.devices.list(ALICE)).map((d) => d.pushToken[0])).toEqual([1, 2, 3]);
        // A prekey rotation is reported as such, so the UI can weigh it.
        const rotated = await s.store.devices.recordLookup(ALICE, [{ ...changed, ngmPrekey: new Uint8Array([7]) }, idKey(2), idKey(3)], 600);
        expect(rotated).toMatchObject([{ kind: 'key-changed', changed: ['ngmPrekey'] }]);
        await s.store.devices.forget(ALICE);
        expect(await s.store.devices.recordLookup(ALICE, [idKey(4)], 700)).toEqual([]);
      }));

    it('alerts on a new device under the user\'s own handles, never about this device', () =>
      session(async (s) => {
        const pushKey = await ecdsaPair();
        await s.store.accounts.put(account('me', [ME, ME_PHONE], { push: { keyPair: pushKey, certificate: new Uint8Array(1), token: token(50) } }));
        expect(await s.store.devices.recordLookup(ME, [idKey(50), idKey(51)], 10)).toEqual([]);
        // First lookup of the other own handle: the known devices are not new, an unknown one is.
        const second = await s.store.devices.recordLookup(ME_PHONE, [idKey(50), idKey(51), idKey(52)], 20);
        expect(second).toMatchObject([{ kind: 'new-device', handle: ME_PHONE, own: true }]);
        expect(second[0]!.pushToken).toEqual(token(52));
        const third = await s.store.devices.recordLookup(ME, [{ ...idKey(50), identityKey: new Uint8Array([0]) }, idKey(51), idKey(53)], 30);
        expect(third).toMatchObject([{ kind: 'new-device', own: true }]);
        expect(third[0]!.pushToken).toEqual(token(53));
        const store = await s.reopen();
        expect((await store.devices.list(ME)).map((d) => [d.pushToken[0], d.firstSeen])).toEqual([
          [50, 10],
          [51, 10],
          [53, 30],
        ]);
      }));

    it('rejects bad lookups and unknown devices', () =>
      session(async (s) => {
        await expectStoreError(s.store.devices.recordLookup('alice', []), 'bad-input');
        await expectStoreError(s.store.devices.recordLookup(ALICE, [{ pushToken: new Uint8Array(0) }]), 'bad-input');
        await expectStoreError(s.store.devices.recordLookup(ALICE, [{ pushToken: 'abc' }] as never), 'bad-input');
        await expectStoreError(s.store.devices.recordLookup(ALICE, {} as never), 'bad-input');
        await expectStoreError(s.store.devices.setVerified(ALICE, token(1), true), 'not-found');
        await expectStoreError(s.store.devices.setVerified(ALICE, token(1), 'yes' as never), 'bad-input');
      }));
  });

  describe('lookup cache, counters, kv', () => {
    it('serves lookup cache entries fresh, then stale, then not at all', () =>
      session(async (s) => {
        const identity = { pushToken: token(1), sessionToken: new Uint8Array([1, 2]), identityKey: new Uint8Array([3]), sessionTokenExpiresAt: 900 };
        await s.store.lookupCache.put({ handle: ALICE, identities: [identity], fetchedAt: 0, softExpiresAt: 100, hardExpiresAt: 200 });
        await s.store.lookupCache.put({ handle: BOB, identities: [], fetchedAt: 0, softExpiresAt: 300, hardExpiresAt: 400 });
        expect(await s.store.lookupCache.get(ALICE, 50)).toMatchObject({ stale: false, entry: { identities: [identity] } });
        expect((await s.store.lookupCache.get(ALICE, 100))?.stale).toBe(true);
        expect(await s.store.lookupCache.get(ALICE, 200)).toBeUndefined();
        expect(await s.store.lookupCache.purgeExpired(250)).toBe(1);
        expect(await s.store.lookupCache.purgeExpired(250)).toBe(0);
        await s.store.lookupCache.invalidate(BOB);
        expect(await s.store.lookupCache.get(BOB, 0)).toBeUndefined();
        await s.store.lookupCache.put({ handle: CAROL, identities: [], fetchedAt: 0, softExpiresAt: 1, hardExpiresAt: 2 });
        await s.store.lookupCache.clear();
        expect(await s.store.lookupCache.get(CAROL, 0)).toBeUndefined();
        await expectStoreError(s.store.lookupCache.put({ handle: ALICE, identities: [], fetchedAt: 0, softExpiresAt: 5, hardExpiresAt: 4 }), 'bad-input');
        const noSessionToken = { handle: ALICE, identities: [{ pushToken: token(1) }], fetchedAt: 0, softExpiresAt: 1, hardExpiresAt: 2 };
        await expectStoreError(s.store.lookupCache.put(noSessionToken as never), 'bad-input');
      }));

    it('persists pair-ec counters and notices regressions', () =>
      session(async (s) => {
        expect(await s.store.counters.next('a|b')).toBe(1);
        expect(await s.store.counters.next('a|b')).toBe(2);
        expect(await Promise.all([s.store.counters.next('x'), s.store.counters.next('x'), s.store.counters.next('x')])).toEqual([1, 2, 3]);
        expect(await s.store.counters.observe('a|b', 5)).toBe('ok');
        expect(await s.store.counters.observe('a|b', 5)).toBe('regression');
        const store = await s.reopen();
        expect(await store.counters.next('a|b')).toBe(3);
        expect(await store.counters.get('a|b')).toEqual({ channel: 'a|b', lastSent: 3, lastReceived: 5 });
        expect(await store.counters.observe('a|b', 4)).toBe('regression');
        await expectStoreError(store.counters.observe('a|b', 2 ** 32), 'bad-input');
        await expectStoreError(store.counters.next(''), 'bad-input');
      }));

    it('keeps settings of any storable shape', () =>
      session(async (s) => {
        const tricky = JSON.parse('{"$b":"not bytes","__proto__":{"x":1},"nested":{"$k":[1,{"$o":null}]}}') as Record<string, never>;
        const values = { bridge: 'wss://bridge.example', push: true, n: -1.5, none: null, bytes: new Uint8Array([0, 255]), list: [1, 'two', [3]], tricky };
        for (const [k, v] of Object.entries(values)) await s.store.kv.set(k, v);
        const store = await s.reopen();
        for (const [k, v] of Object.entries(values)) expect(await store.kv.get(k)).toEqual(v);
        const back = (await store.kv.get('tricky')) as Record<string, unknown>;
        expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
        expect(Object.keys(back)).toEqual(['$b', '__proto__', 'nested']);
        expect((await store.kv.keys()).sort()).toEqual(Object.keys(values).sort());
        await store.kv.delete('push');
        expect(await store.kv.get('push')).toBeUndefined();
        await expectStoreError(store.kv.set('k', undefined as never), 'bad-input');
        await expectStoreError(store.kv.set('k', Number.NaN), 'bad-input');
        await expectStoreError(store.kv.set('k', (() => 1) as never), 'bad-input');
        await expectStoreError(store.kv.set('k', new Date(0) as never), 'bad-input');
        await expectStoreError(store.kv.set('k', [undefined] as never), 'bad-input');
      }));
  });

  describe('lifecycle and hostile input', () => {
    it('persists every table across a reopen and destroy wipes them all', () =>
      session(async (s) => {
        await s.store.accounts.put(account('me', [ME]));
        await s.store.messages.saveIncoming(incoming(chatA, 1), chatInit);
        await s.store.outbox.enqueue({ kind: 'k', payload: null });
        await s.store.devices.recordLookup(ALICE, [{ pushToken: token(1) }]);
        await s.store.lookupCache.put({ handle: ALICE, identities: [], fetchedAt: 0, softExpiresAt: 10, hardExpiresAt: 20 });
        await s.store.counters.next('c');
        await s.store.kv.set('k', 1);
        let store = await s.reopen();
        expect(store.schemaVersion).toBeGreaterThanOrEqual(1);
        expect(await store.accounts.list()).toHaveLength(1);
        expect(await store.chats.list()).toHaveLength(1);
        expect(await store.outbox.list()).toHaveLength(1);
        await store.destroy();
        store = await s.reopen();
        expect(await store.accounts.list()).toEqual([]);
        expect(await store.chats.list()).toEqual([]);
        expect(await store.messages.list(chatA)).toEqual([]);
        expect(await store.outbox.list()).toEqual([]);
        expect(await store.devices.list(ALICE)).toEqual([]);
        expect(await store.lookupCache.get(ALICE, 0)).toBeUndefined();
        expect(await store.counters.get('c')).toBeUndefined();
        expect(await store.kv.keys()).toEqual([]);
      }));

    it('refuses calls after close', () =>
      session(async (s) => {
        const store = s.store;
        await store.close();
        await expectStoreError(store.kv.get('k'), 'closed');
        await expectStoreError(store.messages.saveIncoming(incoming(chatA, 1), chatInit), 'closed');
        await s.reopen();
      }));

    it('answers arbitrary arguments with StoreError, never another exception', () =>
      session(async (s) => {
        const calls: Array<(x: unknown, y: unknown) => Promise<unknown>> = [
          (x) => s.store.accounts.put(x as never),
          (x) => s.store.keys.put(x as never),
          (x, y) => s.store.devices.recordLookup(x as never, y as never),
          (x, y) => s.store.chats.upsert(x as never, y as never),
          (x, y) => s.store.messages.saveIncoming(x as never, y as never),
          (x, y) => s.store.messages.saveOutgoing(x as never, y as never),
          (x, y) => s.store.messages.list(x as never, y as never),
          (x, y) => s.store.messages.addTapback(x as never, y as never),
          (x, y) => s.store.outbox.enqueue(x as never, y as never),
          (x, y) => s.store.outbox.takeDue(x as never, y as never),
          (x) => s.store.lookupCache.put(x as never),
          (x, y) => s.store.counters.observe(x as never, y as never),
          (x, y) => s.store.kv.set(x as never, y as never),
        ];
        const junk = fc.oneof(fc.anything({ withTypedArray: true, withNullPrototype: true, withMap: true, withDate: true }), fc.constant(undefined));
        await fc.assert(
          fc.asyncProperty(fc.nat(calls.length - 1), junk, junk, async (i, x, y) => {
            try {
              await calls[i]!(x, y);
            } catch (e) {
              if (!(e instanceof StoreError)) throw e;
            }
          }),
          { numRuns: 150 },
        );
      }));
  });
}
