// The security log over a memory store: entries newest first with stable ids, duplicates kept once, seen flags,
// the 500-entry bound, persistence, tolerance of damaged records, restore checks, and concurrent writers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CeruleanError } from '../../../lib/errors';
import { checkSecurityLogEntry, SECURITY_LOG_LIMIT, SecurityLog, securityEventId } from '../../../lib/client/security-log';
import { MemoryStorage } from '../../../lib/store/memory-store';
import type { SecurityEvent, StorableValue } from '../../../lib/store/types';
import { memoryStore } from './fixtures';

const BOB = 'tel:+15550001111';
const ME = 'mailto:me@example.com';
const token = (n: number) => new Uint8Array(32).fill(n);
const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);

const newDevice = (n: number, at: number): SecurityEvent => ({ kind: 'new-device', handle: ME, pushToken: token(n), own: true, deviceName: `Mac ${n}`, at });
const keyChange = (n: number, at: number): SecurityEvent => ({
  kind: 'key-changed',
  handle: BOB,
  pushToken: token(n),
  own: false,
  changed: ['identity'],
  before: { identity: FP_A },
  after: { identity: FP_B },
  wasVerified: true,
  at,
});

describe('SecurityLog', () => {
  it('keeps events newest first, unseen, with ids that never change', async () => {
    const log = new SecurityLog(await memoryStore());
    expect(await log.list()).toEqual([]);
    const first = await log.record([newDevice(1, 1000)]);
    await log.record([keyChange(2, 2000), newDevice(3, 2000)]);
    const list = await log.list();
    expect(list.map((e) => [e.kind, e.at, e.seen])).toEqual([
      ['key-changed', 2000, false],
      ['new-device', 2000, false],
      ['new-device', 1000, false],
    ]);
    expect(list[2]).toEqual({ ...newDevice(1, 1000), id: first[0]!.id, seen: false });
    expect((await log.list()).map((e) => e.id)).toEqual(list.map((e) => e.id));
    // The id is a function of the event: fixed here so stored ids stay valid across versions.
    // SHA-256("new-device\nmailto:me@example.com\n01…01\n1000\ntrue"), first 16 bytes.
    expect(first[0]!.id).toBe('495eef2dd81c501f1465c408508cb613');
    expect(securityEventId(newDevice(1, 1001))).not.toBe(first[0]!.id);
    expect(securityEventId(keyChange(2, 2000))).not.toBe(securityEventId({ ...keyChange(2, 2000), after: { identity: FP_A } } as SecurityEvent));
  });

  it('records the same event once', async () => {
    const log = new SecurityLog(await memoryStore());
    expect(await log.record([newDevice(1, 5), newDevice(1, 5)])).toHaveLength(1);
    expect(await log.record([newDevice(1, 5)])).toEqual([]);
    expect(await log.list()).toHaveLength(1);
  });

  it('marks entries seen', async () => {
    const log = new SecurityLog(await memoryStore());
    const [a, b] = await log.record([newDevice(1, 1), newDevice(2, 2)]);
    await log.markSeen([a!.id, 'unknown']);
    const seen = Object.fromEntries((await log.list()).map((e) => [e.id, e.seen]));
    expect(seen).toEqual({ [a!.id]: true, [b!.id]: false });
    await log.markSeen([]);
    expect((await log.list()).filter((e) => e.seen)).toHaveLength(1);
  });

  it(`keeps only the newest ${SECURITY_LOG_LIMIT}`, async () => {
    const log = new SecurityLog(await memoryStore());
    await log.record(Array.from({ length: SECURITY_LOG_LIMIT - 5 }, (_, i) => newDevice(i % 250, i)));
    await log.record(Array.from({ length: 10 }, (_, i) => keyChange(1, 10_000 + i)));
    const list = await log.list();
    expect(list).toHaveLength(SECURITY_LOG_LIMIT);
    expect(list[0]!.at).toBe(10_009);
    expect(list.at(-1)!.at).toBe(5);
  });

  it('persists across a reopen and drops damaged records instead of failing', async () => {
    const storage = new MemoryStorage();
    const store = await storage.open();
    await new SecurityLog(store).record([newDevice(1, 1), keyChange(2, 2)]);
    const stored = (await store.kv.get('client/security-log')) as StorableValue[];
    await store.kv.set('client/security-log', [...stored, { kind: 'new-device' }, 'junk', null]);
    await store.close();
    const reopened = new SecurityLog(await storage.open());
    expect((await reopened.list()).map((e) => e.kind)).toEqual(['key-changed', 'new-device']);
  });

  it('does not lose entries written at the same time through two logs over one store', async () => {
    const store = await memoryStore();
    const a = new SecurityLog(store);
    const b = new SecurityLog(store);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).record([newDevice(i, i)])));
    expect(await a.list()).toHaveLength(20);
  });

  it('restores checked entries, keeping local ones', async () => {
    const log = new SecurityLog(await memoryStore());
    const [local] = await log.record([newDevice(1, 1)]);
    await log.markSeen([local!.id]);
    const backup = [
      { ...newDevice(1, 1), id: local!.id, seen: false },
      { ...keyChange(2, 3), id: securityEventId(keyChange(2, 3)), seen: true },
    ];
    expect(await log.restore(backup)).toBe(1);
    expect((await log.list()).map((e) => [e.id, e.seen])).toEqual([
      [backup[1]!.id, true],
      [local!.id, true],
    ]);
    await expect(log.restore([{ ...backup[1], at: -1 }])).rejects.toMatchObject({ code: 'bad-input' });
  });
});

describe('checkSecurityLogEntry', () => {
  it('accepts both kinds and refuses bad fields', () => {
    const good = { ...keyChange(2, 3), id: 'x', seen: false };
    expect(checkSecurityLogEntry(good)).toEqual(good);
    for (const bad of [
      { ...good, kind: 'other' },
      { ...good, pushToken: new Uint8Array(0) },
      { ...good, handle: 'no-scheme' },
      { ...good, changed: ['everything'] },
      { ...good, after: { identity: 'not hex' } },
      { ...good, seen: 'yes' },
      { ...good, id: '' },
    ]) {
      expect(() => checkSecurityLogEntry(bad)).toThrow(CeruleanError);
    }
  });

  it('random values: an entry or a CeruleanError', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true }), (x) => {
        try {
          checkSecurityLogEntry(x);
        } catch (e) {
          expect(e).toBeInstanceOf(CeruleanError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
