// The Node file store: the shared conformance suite, then what only a disk store has to get right — the key
// vault, journal and snapshot recovery (torn tails, damage, compaction), locking, upgrading a v1 file written
// out below, and a real crash (a child writing in a loop is killed with SIGKILL; nothing it saw acknowledged
// is lost).
import { spawn } from 'node:child_process';
import { appendFile, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64 } from '../../lib/codec/bytes';
import { subtle } from '../../lib/crypto/subtle';
import { runStoreConformance } from '../unit/store/conformance';
import { StoreError, type StoreErrorCode } from '../../lib/store/errors';
import { passphraseKeyVault } from '../../lib/store/key-vault';
import type { AccountRecord, ClientStore } from '../../lib/store/types';
import { openFileStore, type FileStoreOptions } from '../../lib/store-node/file-store';
import { upgradeFixture, withBrokenUpgrade, withPinned } from '../unit/store/schema-v2';

const vault = passphraseKeyVault('correct horse battery staple', { iterations: 1000 });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cerulean-client-store-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a store that the test's cleanup closes (closing twice is harmless). */
async function open(dir: string, options: Omit<FileStoreOptions, 'dir'> = { vault }): Promise<ClientStore> {
  const store = await openFileStore({ dir, ...options });
  cleanups.push(() => store.close());
  return store;
}

async function expectStoreError(p: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(StoreError);
  expect((e as StoreError).code).toBe(code);
}

/** What a crash would leave: the files as they are now, copied elsewhere while the store is still open. */
async function crashImage(dir: string): Promise<string> {
  const copy = await freshDir();
  await cp(dir, copy, { recursive: true });
  await rm(path.join(copy, 'LOCK'), { force: true });
  return copy;
}

function account(authKey?: CryptoKeyPair): AccountRecord {
  return {
    id: 'me',
    userIds: ['P:me'],
    handles: ['mailto:me@example.com'],
    ...(authKey && { authKey }),
    authCertificates: [],
    idCertificates: [],
    createdAt: 1,
    updatedAt: 1,
  };
}

function ecdsa(extractable: boolean): Promise<CryptoKeyPair> {
  return subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, extractable, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

const CHAT = { id: 'chat-1', participants: ['mailto:me@example.com', 'tel:+15550001111'] };
function message(n: number) {
  const uuid = `30000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
  return { uuid, chatId: CHAT.id, sender: 'tel:+15550001111', fromMe: false, time: n, text: `m${n}` };
}

describe('file store', () => {
  runStoreConformance(async () => {
    const dir = await freshDir();
    return { store: await openFileStore({ dir, vault }), reopen: () => openFileStore({ dir, vault }) };
  });

  describe('key vault', () => {
    it('stores private keys encrypted and hands them back non-extractable but usable', async () => {
      const dir = await freshDir();
      const pair = await ecdsa(true);
      const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', pair.privateKey));
      const jwk = await subtle().exportKey('jwk', pair.privateKey);
      let store = await open(dir);
      await store.accounts.put(account(pair));
      await store.close();
      const onDisk = (await readFile(path.join(dir, 'store.json'), 'utf8')) + (await readFile(path.join(dir, 'journal.jsonl'), 'utf8'));
      expect(onDisk).not.toContain(toBase64(pkcs8));
      expect(onDisk).not.toContain(jwk.d!);

      store = await open(dir);
      const back = (await store.accounts.get('me'))!.authKey!;
      expect(back.privateKey.extractable).toBe(false);
      await expect(subtle().exportKey('pkcs8', back.privateKey)).rejects.toThrow();
      expect(back.publicKey.extractable).toBe(true);
      expect(back.privateKey.algorithm).toEqual({ name: 'ECDSA', namedCurve: 'P-256' });
      const data = new Uint8Array([1, 2, 3]);
      const sig = await subtle().sign({ name: 'ECDSA', hash: 'SHA-256' }, back.privateKey, data);
      expect(await subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, pair.publicKey, sig, data)).toBe(true);
      // Loaded keys are non-extractable now, yet the store can still write them again (compaction, re-put).
      await store.accounts.put({ ...(await store.accounts.get('me'))!, handles: ['mailto:me@example.com', 'tel:+15550002222'] });
      await store.close();
      store = await open(dir);
      expect((await store.accounts.get('me'))?.handles).toHaveLength(2);
    });

    it('refuses the wrong passphrase, a missing vault, and keys it cannot export', async () => {
      const dir = await freshDir();
      const store = await open(dir);
      await store.accounts.put(account(await ecdsa(true)));
      await expectStoreError(store.accounts.put({ ...account(await ecdsa(false)), id: 'other' }), 'key-not-extractable');
      expect(await store.accounts.get('other')).toBeUndefined();
      await store.close();
      await expectStoreError(openFileStore({ dir, vault: passphraseKeyVault('wrong', { iterations: 1000 }) }), 'key-unwrap-failed');
      await expectStoreError(openFileStore({ dir }), 'no-key-vault');
      const bare = await open(await freshDir(), {});
      await expectStoreError(bare.accounts.put(account(await ecdsa(true))), 'no-key-vault');
      await bare.kv.set('fine', 1);
      expect(() => passphraseKeyVault('')).toThrow(StoreError);
      expect(() => passphraseKeyVault('x', { iterations: 10 })).toThrow(StoreError);
    });

    it('detects a tampered wrapped key', async () => {
      const dir = await freshDir();
      const store = await open(dir);
      await store.accounts.put(account(await ecdsa(true)));
      await store.close();
      const file = path.join(dir, 'store.json');
      const doc = JSON.parse(await readFile(file, 'utf8'));
      doc.tables.accounts.me.authKey.privateKey.$k.usages = ['sign', 'verify'];
      await writeFile(file, JSON.stringify(doc));
      await expectStoreError(openFileStore({ dir, vault }), 'key-unwrap-failed');
    });
  });

  describe('journal and snapshot', () => {
    it('makes each resolved commit durable in the journal, recoverable from a crash image', async () => {
      const dir = await freshDir();
      const store = await open(dir);
      await store.chats.upsert(CHAT, 1);
      for (let i = 0; i < 5; i++) await store.messages.saveIncoming(message(i));
      const journal = (await readFile(path.join(dir, 'journal.jsonl'), 'utf8')).trim().split('\n');
      expect(journal).toHaveLength(6);
      expect(JSON.parse(journal[5]!)).toMatchObject({ s: 6 });
      const image = await crashImage(dir);
      const recovered = await open(image);
      expect(await recovered.messages.list(CHAT.id)).toHaveLength(5);
      // Opening folded the journal into the snapshot.
      expect(await readFile(path.join(image, 'journal.jsonl'), 'utf8')).toBe('');
    });

    it('drops a torn last line and refuses damage before it', async () => {
      const dir = await freshDir();
      const store = await open(dir);
      await store.chats.upsert(CHAT, 1);
      await store.messages.saveIncoming(message(1));
      const image = await crashImage(dir);
      await appendFile(path.join(image, 'journal.jsonl'), '{"s":3,"o":[["kv","x",');
      const recovered = await open(image);
      expect(await recovered.messages.has(message(1).uuid)).toBe(true);
      expect(await recovered.kv.get('x')).toBeUndefined();
      await recovered.kv.set('after', 1);
      await recovered.close();
      await expect((await open(image)).kv.get('after')).resolves.toBe(1);

      const damaged = await crashImage(dir);
      const file = path.join(damaged, 'journal.jsonl');
      const lines = (await readFile(file, 'utf8')).split('\n');
      await writeFile(file, ['garbage', ...lines.slice(1)].join('\n'));
      await expectStoreError(openFileStore({ dir: damaged, vault }), 'corrupt');
      const gap = await crashImage(dir);
      await writeFile(path.join(gap, 'journal.jsonl'), `${lines[1]}\n`.replace('"s":2', '"s":9'));
      await expectStoreError(openFileStore({ dir: gap, vault }), 'corrupt');
    });

    it('refuses snapshots it cannot read or that are too new', async () => {
      for (const [text, code] of [
        ['not json', 'corrupt'],
        ['{"format":"something-else","version":1,"seq":0,"tables":{}}', 'corrupt'],
        ['{"format":"cerulean-client-store","version":1,"seq":0,"tables":{"kv":{"a":{"key":"b","value":1}}}}', 'corrupt'],
        ['{"format":"cerulean-client-store","version":1,"seq":0,"tables":{"kv":{"a":{"key":"a","value":{"$x":1}}}}}', 'corrupt'],
        ['{"format":"cerulean-client-store","version":1,"seq":0,"tables":{"kv":{"a":{"key":"a","value":{"$b":7}}}}}', 'corrupt'],
        ['{"format":"cerulean-client-store","version":1,"seq":0,"tables":{"kv":{"a":{"key":"a","value":{"$k":{"type":"private"}}}}}}', 'corrupt'],
        ['{"format":"cerulean-client-store","version":3,"seq":0,"tables":{}}', 'too-new'],
      ] as const) {
        const dir = await freshDir();
        await writeFile(path.join(dir, 'store.json'), text);
        await expectStoreError(openFileStore({ dir, vault }), code);
        expect(await readdir(dir)).not.toContain('LOCK');
      }
      const orphan = await freshDir();
      await writeFile(path.join(orphan, 'journal.jsonl'), '{"s":1,"o":[]}\n');
      await expectStoreError(openFileStore({ dir: orphan, vault }), 'corrupt');
    });

    it('compacts the journal into the snapshot and stays consistent', async () => {
      const dir = await freshDir();
      const store = await open(dir, { vault, compactAfterBytes: 2000 });
      await store.chats.upsert(CHAT, 1);
      await Promise.all(Array.from({ length: 200 }, (_, i) => store.messages.saveIncoming(message(i))));
      const journalSize = (await readFile(path.join(dir, 'journal.jsonl'))).length;
      expect(journalSize).toBeLessThan(20_000);
      const recovered = await open(await crashImage(dir));
      expect(await recovered.messages.list(CHAT.id, { limit: 1000 })).toHaveLength(200);
      expect((await recovered.chats.get(CHAT.id))?.unreadCount).toBe(200);
    });
  });

  describe('locking', () => {
    it('allows one open store per directory, and takes over a dead process\'s lock', async () => {
      const dir = await freshDir();
      const racing = await Promise.allSettled([openFileStore({ dir, vault }), openFileStore({ dir, vault })]);
      expect(racing.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const store = racing.find((r) => r.status === 'fulfilled')!.value;
      cleanups.push(() => store.close());
      await expectStoreError(openFileStore({ dir, vault }), 'locked');
      await store.close();
      await writeFile(path.join(dir, 'LOCK'), String(process.ppid));
      await expectStoreError(openFileStore({ dir, vault }), 'locked');
      await writeFile(path.join(dir, 'LOCK'), '2147483646');
      const again = await open(dir);
      await again.kv.set('ok', true);
      await expectStoreError(openFileStore({ dir: '' }), 'bad-input');
    });
  });

  describe('schema upgrade', () => {
    // A version 1 store as written by this code: one chat, three incoming messages, all unread.
    function v1File(): string {
      const [u1, u2, u3] = upgradeFixture.uuids;
      const msg = (uuid: string, i: number) => ({
        uuid,
        chatId: upgradeFixture.chatId,
        sender: 'tel:+15550001111',
        fromMe: false,
        time: 10 + i,
        text: `m${i}`,
        status: 'delivered',
        tapbacks: [],
        edits: [],
        unsent: false,
        unsentParts: [],
      });
      return JSON.stringify({
        format: 'cerulean-client-store',
        version: 1,
        seq: 4,
        tables: {
          accounts: {},
          keys: {},
          devices: {},
          chats: {
            [upgradeFixture.chatId]: {
              id: upgradeFixture.chatId,
              participants: ['mailto:me@example.com', 'tel:+15550001111'],
              isGroup: false,
              unreadCount: 3,
              createdAt: 1,
              updatedAt: 12,
              lastMessage: { uuid: u3, sender: 'tel:+15550001111', time: 12, preview: 'm2' },
            },
          },
          messages: { [u1!]: msg(u1!, 0), [u2!]: msg(u2!, 1), [u3!]: msg(u3!, 2) },
          outbox: {},
          lookupCache: {},
          counters: {},
          kv: { bytes: { key: 'bytes', value: { $b: 'AAEC' } } },
        },
      });
    }

    it('reads a v1 file and upgrades it to v2', async () => {
      const dir = await freshDir();
      await writeFile(path.join(dir, 'store.json'), v1File());
      const v1 = await open(dir);
      expect(v1.schemaVersion).toBe(1);
      await upgradeFixture.check(v1, false);
      expect(await v1.kv.get('bytes')).toEqual(new Uint8Array([0, 1, 2]));
      await v1.close();

      const v2 = await open(dir, { vault, schema: withPinned });
      expect(v2.schemaVersion).toBe(2);
      await upgradeFixture.check(v2, true);
      await v2.close();
      const doc = JSON.parse(await readFile(path.join(dir, 'store.json'), 'utf8'));
      expect(doc.version).toBe(2);
      await expectStoreError(openFileStore({ dir, vault }), 'too-new');
    });

    it('leaves the file at v1 when an upgrade step throws', async () => {
      const dir = await freshDir();
      await writeFile(path.join(dir, 'store.json'), v1File());
      await expectStoreError(openFileStore({ dir, vault, schema: withBrokenUpgrade }), 'migration-failed');
      expect(JSON.parse(await readFile(path.join(dir, 'store.json'), 'utf8')).version).toBe(1);
      const again = await open(dir);
      await upgradeFixture.check(again, false);
    });
  });

  it('loses nothing it acknowledged when the writer is killed with SIGKILL', async () => {
    const dir = await freshDir();
    const child = path.join(import.meta.dirname, 'store-file-writer.ts');
    const messages = new Set<string>();
    const outbox = new Set<string>();
    let counter = 0;
    for (let round = 0; round < 3; round++) {
      await new Promise<void>((resolve, reject) => {
        const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, String(round)], {
          cwd: path.resolve(import.meta.dirname, '../..'),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let buffered = '';
        let count = 0;
        let stderr = '';
        const killAt = 250 + round * 130;
        proc.stdout.on('data', (d: Uint8Array) => {
          buffered += new TextDecoder().decode(d);
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const line of lines) {
            const [kind, value] = line.split(' ');
            if (kind === 'message') messages.add(value!.toUpperCase());
            if (kind === 'outbox') outbox.add(value!);
            if (kind === 'counter') counter = Math.max(counter, Number(value));
            if (++count === killAt) proc.kill('SIGKILL');
          }
        });
        proc.stderr.on('data', (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
        proc.on('error', reject);
        proc.on('close', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited by itself: ${stderr}`))));
      });
    }
    expect(messages.size).toBeGreaterThan(400);
    const store = await open(dir, { vault: passphraseKeyVault('crash test', { iterations: 1000 }) });
    const stored = new Set((await store.messages.list('crash-chat', { limit: 10_000 })).map((m) => m.uuid));
    expect([...messages].filter((u) => !stored.has(u))).toEqual([]);
    const items = new Set((await store.outbox.list()).map((i) => i.id));
    expect([...outbox].filter((id) => !items.has(id))).toEqual([]);
    expect((await store.counters.get('channel'))!.lastSent).toBeGreaterThanOrEqual(counter);
    expect((await store.chats.get('crash-chat'))!.unreadCount).toBe(stored.size);
    const key = (await store.accounts.get('me'))!.authKey!;
    const data = new Uint8Array([5]);
    const sig = await subtle().sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, data);
    expect(await subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, key.publicKey, sig, data)).toBe(true);
  });
});
