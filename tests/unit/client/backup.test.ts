// Encrypted backups: a full round trip between two memory stores (chats, messages with their reactions, edits,
// unsends and status times, contacts, the security log), importing without duplicates next to existing data, the
// file format decrypted by hand from its documented layout, a fixed backup file, and every way a file can be wrong:
// wrong passphrase, tampering, truncation, garbage, an iteration-count bomb, and well-encrypted but malformed bodies.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BACKUP_MAGIC,
  BackupError,
  exportBackup,
  importBackup,
  MAX_ITERATIONS,
  MIN_ITERATIONS,
} from '../../../lib/client/backup';
import { ContactBook } from '../../../lib/client/contacts';
import { SecurityLog } from '../../../lib/client/security-log';
import { concat, fromHex, readU32be, toHex, u32be, utf8 } from '../../../lib/codec/bytes';
import { gunzip, gzip } from '../../../lib/codec/gzip';
import type { PlistDict } from '../../../lib/codec/plist';
import { decodeBinaryPlist, encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import { subtle } from '../../../lib/crypto/subtle';
import { CeruleanError } from '../../../lib/errors';
import { directChatId } from '../../../lib/store/chat-id';
import type { ClientStore, MessageRecord } from '../../../lib/store/types';
import { memoryStore, PNG } from './fixtures';

const ME = 'mailto:me@example.com';
const BOB = 'tel:+15550001111';
const CAROL = 'mailto:carol@example.com';
const DIRECT = directChatId([ME, BOB]);
const GROUP = '6A1F0E52-8C1B-4D4B-9E3A-0C2B7A5D1E90';
const PASS = 'correct horse battery staple';
const FAST = { iterations: MIN_ITERATIONS };

let n = 0;
const uuid = () => `00000000-0000-4000-8000-${(++n).toString(16).padStart(12, '0').toUpperCase()}`;

/** A store with a bit of everything a backup carries. */
async function populate(store: ClientStore): Promise<void> {
  await store.chats.upsert({ id: DIRECT, participants: [ME, BOB] }, 1000);
  await store.chats.upsert({ id: GROUP, participants: [ME, BOB, CAROL], isGroup: true, name: 'Weekend' }, 1100);

  const read = uuid();
  await store.messages.saveOutgoing({ uuid: read, chatId: DIRECT, sender: ME, fromMe: true, time: 2000, text: 'Lunch?' });
  await store.messages.updateStatus(read, 'sent', 2001);
  await store.messages.updateStatus(read, 'delivered', 2002);
  await store.messages.updateStatus(read, 'read', 2003);
  await store.messages.addTapback(read, { sender: BOB, reaction: 'love', part: 0, time: 2010 });
  await store.messages.applyEdit(read, { part: 0, text: 'Lunch at one?', time: 2020 });

  const answer = uuid();
  await store.messages.saveIncoming({ uuid: answer, chatId: DIRECT, sender: BOB, fromMe: false, time: 2100, text: 'Sure' });
  await store.messages.addTapback(answer, { sender: ME, reaction: 'emoji', emoji: '🍕', part: 0, time: 2110 });
  await store.chats.markRead(DIRECT, 2200);
  // Unread, and from another own device (sent, no times).
  await store.messages.saveIncoming({ uuid: uuid(), chatId: DIRECT, sender: BOB, fromMe: false, time: 2300, text: 'Where?' });
  await store.messages.saveIncoming({ uuid: uuid(), chatId: DIRECT, sender: ME, fromMe: true, time: 2400, text: 'From my Mac' });

  const parts = uuid();
  await store.messages.saveIncoming(
    {
      uuid: parts,
      chatId: GROUP,
      sender: CAROL,
      fromMe: false,
      time: 3000,
      parts: [
        { kind: 'text', part: 0, text: 'one' },
        { kind: 'text', part: 1, text: 'two' },
        { kind: 'raw', xml: '<img/>' },
      ],
      replyTo: 'r:0:0:3:' + answer,
    },
  );
  await store.messages.unsend(parts, { part: 1 });
  const gone = uuid();
  await store.messages.saveOutgoing({ uuid: gone, chatId: GROUP, sender: ME, fromMe: true, time: 3100, text: 'oops' });
  await store.messages.updateStatus(gone, 'sent', 3101);
  await store.messages.unsend(gone);
  const failed = uuid();
  await store.messages.saveOutgoing({ uuid: failed, chatId: GROUP, sender: ME, fromMe: true, time: 3200, text: 'lost' });
  await store.messages.updateStatus(failed, 'failed', 3201);

  await new ContactBook(store).put({ name: 'Bob', handles: [BOB], photo: { type: 'image/png', bytes: PNG } });
  await new ContactBook(store).put({ name: 'Carol', handles: [CAROL] });
  const log = new SecurityLog(store);
  const [entry] = await log.record([{ kind: 'new-device', handle: ME, pushToken: new Uint8Array(32).fill(7), own: true, deviceName: 'Mac', at: 4000 }]);
  await log.record([
    { kind: 'key-changed', handle: BOB, pushToken: new Uint8Array(32).fill(8), own: false, changed: ['identity'], before: { identity: 'a'.repeat(64) }, after: {}, wasVerified: false, at: 4100 },
  ]);
  await log.markSeen([entry!.id]);
}

interface Snapshot {
  chats: unknown[];
  messages: MessageRecord[];
  contacts: unknown[];
  securityLog: unknown[];
}

async function snapshot(store: ClientStore): Promise<Snapshot> {
  const chats = await store.chats.list();
  const messages: MessageRecord[] = [];
  for (const c of chats) messages.push(...(await store.messages.list(c.id, { limit: 1000 })));
  return { chats, messages, contacts: await new ContactBook(store).list(), securityLog: await new SecurityLog(store).list() };
}

async function failure(p: Promise<unknown>): Promise<BackupError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(BackupError);
  return e as BackupError;
}

/** Derived keys by passphrase, salt and iterations: each derivation costs a noticeable fraction of a second. */
const sealKeys = new Map<string, CryptoKey>();

/** The documented file layout, written independently of backup.ts: header ‖ AES-GCM(body) with the header as AAD. */
async function seal(body: Uint8Array, o: { passphrase?: string; iterations?: number; salt?: Uint8Array; iv?: Uint8Array; version?: number } = {}) {
  const iterations = o.iterations ?? MIN_ITERATIONS;
  const salt = o.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const iv = o.iv ?? crypto.getRandomValues(new Uint8Array(12));
  const header = concat(utf8(BACKUP_MAGIC), new Uint8Array([o.version ?? 1]), u32be(iterations), salt, iv);
  const cacheKey = `${o.passphrase ?? PASS}|${toHex(salt)}|${iterations}`;
  let key = sealKeys.get(cacheKey);
  if (!key) {
    const base = await subtle().importKey('raw', utf8(o.passphrase ?? PASS) as Uint8Array<ArrayBuffer>, 'PBKDF2', false, ['deriveKey']);
    key = await subtle().deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt: salt as Uint8Array<ArrayBuffer>, iterations }, base, { name: 'AES-GCM', length: 256 }, false, [
      'encrypt',
    ]);
    sealKeys.set(cacheKey, key);
  }
  const sealed = await subtle().encrypt({ name: 'AES-GCM', iv: iv as Uint8Array<ArrayBuffer>, additionalData: header as Uint8Array<ArrayBuffer> }, key, body as Uint8Array<ArrayBuffer>);
  return concat(header, new Uint8Array(sealed));
}

async function open(file: Uint8Array, passphrase = PASS): Promise<Uint8Array> {
  const iterations = readU32be(file, 9);
  const base = await subtle().importKey('raw', utf8(passphrase) as Uint8Array<ArrayBuffer>, 'PBKDF2', false, ['deriveKey']);
  const key = await subtle().deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt: file.slice(13, 29), iterations }, base, { name: 'AES-GCM', length: 256 }, false, [
    'decrypt',
  ]);
  const plain = await subtle().decrypt({ name: 'AES-GCM', iv: file.slice(29, 41), additionalData: file.slice(0, 41) }, key, file.slice(41));
  return new Uint8Array(plain);
}

const emptyBody = (extra: PlistDict = {}): PlistDict => ({ format: 'cerulean-backup', version: 1, chats: [], messages: [], contacts: [], securityLog: [], ...extra });

/**
 * A backup made by this code's first version (passphrase "correct horse", salt 00…0f, iv 10…1b): one 1:1 chat
 * with one incoming, read message and no contacts or log entries. Later versions must keep reading it.
 */
const FIXED_BACKUP = [
  '43524c4e42414b31010004baf0000102030405060708090a0b0c0d0e0f101112131415161718191a1ba2d93fac32adf0e1fffed9',
  'bf2859d26069721336924e0b458d039d1af75e369c099df391c2c42ca052666415336fe186e51a1e4b5762caf717e2887fd6242a',
  '24176efb66e43327bb083a395902337b80c683d5947183b637e814050a3f1ddbadbcbdf7922e8eb2db8413e166527135cc407b56',
  '4d938b243f76e1dd69104ac7b9b15dc10c9cf7e2cd1cd57d7f8de6000164c10b12bcdf8e325600bdc6eb72d5b6de3c84b694ac32',
  '3f50f282043fb9cadff64eaa09e57721e3fa8e480319c29b4603c56229a27ba5f692c8adc11a15c7e20dcf38abb7851f4a3f0f56',
  'cc581e3393df50617f904b50cc54ebdf92b0f7543fdb5fced2b43c43a530fb873e64a4d1e4d342c828499a1f24a40673cedc19cb',
  '45dddade3718215c506e0d9e22a907746e198736e53b4cdcb27957fe97b5e526364ed5ffcbdd8038f44f7780830fd3f46c82609a',
  'd5c0d8ba8bc2c534f7ecfde612768ef101b8569a1308b211104e1dc9e4f6408899c08fb4a050e076d61c8505889b5e5f4e4cc5be',
  '1485e2275ae56a9f071f80aa4a7e82f5984bc2a47707e507bbe896bd9617b4044b83834b97e1e46c484b677fcc235b9b8beeebce',
  '5478d034078844fc1223963020a7bf2a763608ed88dd80026a679cef72a865bb53fc61f80667bbc91d5c507defe4408ab759e266',
  '77b0240ccfa76231a34c7b95891874677d5373a8cb8039f742b2cd2e3e2b61555bf17cbbb9fbce45f7d44c189a8248dad3f8cdbd',
  '3ae295e59fcec7ebee4f0f8987214a2b7203ff',
].join('');

/** One populated store and its backup, made once: every export costs a key derivation. */
let made: Promise<{ source: ClientStore; file: Uint8Array }> | undefined;
function sourceBackup(): Promise<{ source: ClientStore; file: Uint8Array }> {
  made ??= (async () => {
    const source = await memoryStore();
    await populate(source);
    return { source, file: await exportBackup(source, PASS, FAST) };
  })();
  return made;
}

describe('backup round trip', () => {
  it('restores everything into a new store', async () => {
    const { source, file } = await sourceBackup();
    const before = await snapshot(source);
    expect(toHex(file.subarray(0, 9))).toBe(toHex(concat(utf8('CRLNBAK1'), new Uint8Array([1]))));
    expect(readU32be(file, 9)).toBe(MIN_ITERATIONS);

    const target = await memoryStore();
    expect(await importBackup(target, file, PASS)).toEqual({ chats: 2, messages: 7, contacts: 2 });
    const after = await snapshot(target);
    // The failure reason of a failed message is not restored.
    expect(after).toEqual({ ...before, messages: before.messages.map(({ error: _error, ...m }) => m) });
    expect(after.chats.find((c) => (c as { id: string }).id === DIRECT)).toMatchObject({ unreadCount: 1 });

    // A second import adds nothing.
    expect(await importBackup(target, file, PASS)).toEqual({ chats: 0, messages: 0, contacts: 0 });
    expect(await snapshot(target)).toEqual(after);
  });

  it('keeps what the target store already has', async () => {
    const { source, file } = await sourceBackup();
    const [first] = await source.messages.list(DIRECT, { limit: 1 });

    const target = await memoryStore();
    await target.chats.upsert({ id: DIRECT, participants: [ME, BOB], name: 'Local name' }, 500);
    await target.messages.saveIncoming({ ...first!, text: 'local copy', status: 'delivered' });
    const newer = uuid();
    await target.messages.saveIncoming({ uuid: newer, chatId: DIRECT, sender: BOB, fromMe: false, time: 9000, text: 'new here' });
    await new ContactBook(target).put({ name: 'My Bob', handles: [BOB] });

    expect(await importBackup(target, file, PASS)).toEqual({ chats: 1, messages: 6, contacts: 1 });
    expect((await target.messages.get(first!.uuid))?.text).toBe('local copy');
    expect(await target.messages.get(newer)).toBeDefined();
    expect((await target.chats.get(DIRECT))?.name).toBe('Local name');
    expect((await new ContactBook(target).list()).map((c) => c.name)).toEqual(['Carol', 'My Bob']);
    expect(await target.messages.list(DIRECT)).toHaveLength(5);
  });

  it('restores a message that was still being sent as failed', async () => {
    const source = await memoryStore();
    await source.chats.upsert({ id: DIRECT, participants: [ME, BOB] });
    const pending = uuid();
    await source.messages.saveOutgoing({ uuid: pending, chatId: DIRECT, sender: ME, fromMe: true, time: 10, text: 'queued' });
    const target = await memoryStore();
    await importBackup(target, await exportBackup(source, PASS, FAST), PASS);
    expect((await target.messages.get(pending))?.status).toBe('failed');
  });

  it('writes the documented layout: header, then AES-GCM over gzip(binary plist)', async () => {
    const body = decodeBinaryPlist(await gunzip(await open((await sourceBackup()).file))) as PlistDict;
    expect(body).toMatchObject({ format: 'cerulean-backup', version: 1 });
    expect((body.chats as unknown[]).length).toBe(2);
    expect((body.messages as unknown[]).length).toBe(7);
    expect((body.contacts as PlistDict[])[0]).toMatchObject({ name: 'Bob', handles: [BOB], photo: { type: 'image/png', bytes: PNG } });
  });

  it('reads a fixed backup file', async () => {
    const target = await memoryStore();
    expect(await importBackup(target, fromHex(FIXED_BACKUP), 'correct horse')).toEqual({ chats: 1, messages: 1, contacts: 0 });
    expect(await target.messages.list(DIRECT)).toEqual([
      { uuid: '11111111-2222-4333-8444-555555555555', chatId: DIRECT, sender: BOB, fromMe: false, time: 1700000000000, text: 'Hi from 2024', status: 'read', readAt: 1700000001000, tapbacks: [], edits: [], unsent: false, unsentParts: [] },
    ]);
    expect((await target.chats.get(DIRECT))?.unreadCount).toBe(0);
  });
});

describe('bad backups', () => {
  const backup = async () => (await sourceBackup()).file;

  it('a wrong passphrase is bad-passphrase, and nothing is written', async () => {
    const target = await memoryStore();
    expect((await failure(importBackup(target, await backup(), 'wrong'))).code).toBe('bad-passphrase');
    expect(await snapshot(target)).toEqual({ chats: [], messages: [], contacts: [], securityLog: [] });
  });

  it('any change to the header or the ciphertext is detected', async () => {
    const f = await backup();
    const cases = [
      [0, 'bad-backup'],
      [8, 'bad-backup'],
      [14, 'bad-passphrase'],
      [30, 'bad-passphrase'],
      [60, 'bad-passphrase'],
      [f.length - 1, 'bad-passphrase'],
    ] as const;
    await Promise.all(
      cases.map(async ([at, code]) => {
        const t = f.slice();
        t[at]! ^= 0x01;
        expect((await failure(importBackup(await memoryStore(), t, PASS))).code, `byte ${at}`).toBe(code);
      }),
    );
  });

  it('truncated files are rejected', async () => {
    const f = await backup();
    const cases = [
      [0, 'bad-backup'],
      [8, 'bad-backup'],
      [41, 'bad-backup'],
      [56, 'bad-backup'],
      [57, 'bad-passphrase'],
      [f.length - 1, 'bad-passphrase'],
    ] as const;
    await Promise.all(
      cases.map(async ([len, code]) => {
        expect((await failure(importBackup(await memoryStore(), f.subarray(0, len), PASS))).code, `length ${len}`).toBe(code);
      }),
    );
  });

  it('refuses iteration counts outside the allowed range before deriving anything', async () => {
    const f = (await backup()).slice();
    for (const iterations of [0xffffffff, MAX_ITERATIONS + 1, MIN_ITERATIONS - 1, 0]) {
      f.set(u32be(iterations), 9);
      const t0 = Date.now();
      expect((await failure(importBackup(await memoryStore(), f, PASS))).code).toBe('bad-backup');
      expect(Date.now() - t0).toBeLessThan(250);
    }
    await expect(exportBackup(await memoryStore(), PASS, { iterations: 1000 })).rejects.toMatchObject({ code: 'bad-input' });
    await expect(exportBackup(await memoryStore(), PASS, { iterations: MAX_ITERATIONS + 1 })).rejects.toMatchObject({ code: 'bad-input' });
    await expect(exportBackup(await memoryStore(), '')).rejects.toMatchObject({ code: 'bad-input' });
  });

  it('other versions and non-bytes are bad-backup', async () => {
    expect((await failure(importBackup(await memoryStore(), await seal(await gzip(encodeBinaryPlist(emptyBody())), { version: 2 }), PASS))).code).toBe('bad-backup');
    expect((await failure(importBackup(await memoryStore(), 'CRLNBAK1' as unknown as Uint8Array, PASS))).code).toBe('bad-backup');
  });

  it('a well-encrypted but malformed body is bad-backup, and nothing is written', async () => {
    const chat = { id: DIRECT, participants: [ME, BOB], isGroup: false, unreadCount: 0, createdAt: 1, updatedAt: 1 };
    const message = { uuid: uuid(), chatId: DIRECT, sender: BOB, fromMe: false, time: 5, status: 'delivered', tapbacks: [], edits: [], unsent: false, unsentParts: [] };
    const bodies: Array<[string, Uint8Array]> = [
      ['not gzip', utf8('plain text')],
      ['gzip of garbage', await gzip(utf8('not a plist'))],
      ['not a dict', await gzip(encodeBinaryPlist(['x']))],
      ['wrong format', await gzip(encodeBinaryPlist({ ...emptyBody(), format: 'other' }))],
      ['future body', await gzip(encodeBinaryPlist({ ...emptyBody(), version: 2 }))],
      ['missing list', await gzip(encodeBinaryPlist({ format: 'cerulean-backup', version: 1, chats: [] }))],
      ['orphan message', await gzip(encodeBinaryPlist(emptyBody({ messages: [message] })))],
      ['duplicate message', await gzip(encodeBinaryPlist(emptyBody({ chats: [chat], messages: [message, message] })))],
      ['bad status', await gzip(encodeBinaryPlist(emptyBody({ chats: [chat], messages: [{ ...message, status: 'lost' }] })))],
      ['bad handle', await gzip(encodeBinaryPlist(emptyBody({ chats: [{ ...chat, participants: ['bob'] }] })))],
      ['bad contact', await gzip(encodeBinaryPlist(emptyBody({ contacts: [{ id: 'c', name: 'X', handles: ['??'] }] })))],
      ['big photo', await gzip(encodeBinaryPlist(emptyBody({ contacts: [{ id: 'c', name: 'X', handles: [], photo: { type: 'image/png', bytes: new Uint8Array(300 * 1024) } }] })))],
      ['bad log entry', await gzip(encodeBinaryPlist(emptyBody({ securityLog: [{ kind: 'new-device' }] })))],
    ];
    const salt = new Uint8Array(16);
    await seal(new Uint8Array(0), { salt });
    // Each import derives its key: run them side by side.
    await Promise.all(
      bodies.map(async ([what, body]) => {
        const target = await memoryStore();
        const e = await failure(importBackup(target, await seal(body, { salt }), PASS));
        expect(e.code, what).toBe('bad-backup');
        expect(await target.chats.list(), what).toEqual([]);
      }),
    );
  });

  it('random bytes and random headers: only typed errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (b) => {
        const e = await importBackup(await memoryStore(), b, PASS).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(BackupError);
      }),
      { numRuns: 200 },
    );
    // Past the magic, version and iteration checks every case costs a key derivation: few runs.
    const prefix = concat(utf8(BACKUP_MAGIC), new Uint8Array([1]), u32be(MIN_ITERATIONS));
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (rest) => {
        const e = await importBackup(await memoryStore(), concat(prefix, rest), PASS).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(BackupError);
      }),
      { numRuns: 6 },
    );
  });

  it('mutated backups: only typed errors', async () => {
    const f = await backup();
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const t = f.slice();
        t[at % t.length]! ^= x;
        const e = await importBackup(await memoryStore(), t, PASS).catch((y: unknown) => y);
        expect(e).toBeInstanceOf(CeruleanError);
        expect(['bad-backup', 'bad-passphrase']).toContain((e as CeruleanError).code);
      }),
      { numRuns: 8 },
    );
  });
});
