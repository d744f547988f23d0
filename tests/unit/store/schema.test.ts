// The schema machinery shared by every back end: IndexedDB's key order, index keys, schema checks and the
// in-memory record migration.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../../lib/store/errors';
import { checkSchema, compareKeys, indexKeyOf, migrateTables, SCHEMA, TABLES, type IndexKey, type Row } from '../../../lib/store/schema';
import { V2, withBrokenUpgrade, withPinned } from './schema-v2';

describe('schema', () => {
  it('orders keys like IndexedDB: numbers < strings < arrays, arrays element-wise', () => {
    const sorted: IndexKey[] = [-Infinity, -1, 0, 2.5, Infinity, '', 'A', 'a', 'ab', [], ['a'], ['a', 1], ['a', 'b'], ['b']];
    const shuffled = [...sorted].reverse().sort(compareKeys);
    const compound = fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 3 })), { maxLength: 3 });
    expect(shuffled).toEqual(sorted);
    fc.assert(
      fc.property(compound, compound, (a, b) => {
        expect(Math.sign(compareKeys(a, b)) + Math.sign(compareKeys(b, a))).toBe(0);
        expect(compareKeys(a, a)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('indexes only valid keys', () => {
    const row: Row = { chatId: 'c', time: 5, uuid: 'u', flag: true, nan: Number.NaN };
    expect(indexKeyOf(row, ['chatId', 'time', 'uuid'])).toEqual(['c', 5, 'u']);
    expect(indexKeyOf(row, 'flag')).toBeUndefined();
    expect(indexKeyOf(row, 'nan')).toBeUndefined();
    expect(indexKeyOf(row, ['chatId', 'missing'])).toBeUndefined();
  });

  it('requires consecutive versions with every table', () => {
    expect(checkSchema(SCHEMA).version).toBe(1);
    expect(checkSchema(withPinned)).toBe(V2);
    expect(Object.keys(SCHEMA[0]!.tables).sort()).toEqual([...TABLES].sort());
    expect(() => checkSchema([])).toThrow(StoreError);
    expect(() => checkSchema([V2])).toThrow(StoreError);
    const { kv: _kv, ...withoutKv } = SCHEMA[0]!.tables;
    expect(() => checkSchema([{ version: 1, tables: withoutKv }])).toThrow(StoreError);
  });

  it('migrates tables in memory and reports failing steps', () => {
    const tables = new Map<string, Map<string, Row>>([['messages', new Map([['U1', { uuid: 'U1', sender: 's' }]])]]);
    migrateTables(tables, 1, withPinned);
    expect(tables.get('messages')?.get('U1')).toEqual({ uuid: 'U1', sender: 's', pinned: false });
    expect([...tables.keys()].sort()).toEqual([...TABLES].sort());
    const again = new Map<string, Map<string, Row>>([['messages', new Map([['U1', { uuid: 'U1' }]])]]);
    expect(() => migrateTables(again, 1, withBrokenUpgrade)).toThrow(expect.objectContaining({ code: 'migration-failed' }));
    const rekey = [SCHEMA[0]!, { ...V2, upgrade: { messages: (r: Row) => ({ ...r, uuid: 'other' }) } }];
    expect(() => migrateTables(new Map([['messages', new Map([['U1', { uuid: 'U1' }]])]]), 1, rekey)).toThrow(StoreError);
  });
});
