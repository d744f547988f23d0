// The store's schema as data: every version lists its full set of tables (primary key field and indexes) and may
// rewrite the records of some tables on the way up. The IndexedDB back end turns the difference between two
// versions into createObjectStore/createIndex calls; the file and memory back ends evaluate indexes themselves and
// only run the record rewrites. Adding version N+1 means appending to SCHEMA; never edit a published version.
import { StoreError } from './errors';

/** A record as the back ends see it: a plain object whose primary key is a string field. */
export type Row = Record<string, unknown>;

export interface IndexSpec {
  name: string;
  /** One field, or several for a compound key compared element by element. */
  keyPath: string | readonly string[];
}

export interface TableSpec {
  /** The string field that is the primary key. */
  keyPath: string;
  indexes: readonly IndexSpec[];
}

export interface SchemaVersion {
  version: number;
  tables: Readonly<Record<string, TableSpec>>;
  /** Per table, how a record stored under the previous version becomes one of this version. */
  upgrade?: Readonly<Record<string, (row: Row) => Row>>;
}

/** The tables ClientStore uses; every schema version must have them. */
export const TABLES = [
  'accounts',
  'keys',
  'devices',
  'chats',
  'messages',
  'outbox',
  'lookupCache',
  'counters',
  'kv',
] as const;

export type TableName = (typeof TABLES)[number];

const V1: SchemaVersion = {
  version: 1,
  tables: {
    accounts: { keyPath: 'id', indexes: [] },
    keys: { keyPath: 'accountId', indexes: [] },
    devices: { keyPath: 'id', indexes: [{ name: 'by-handle', keyPath: 'handle' }] },
    chats: { keyPath: 'id', indexes: [{ name: 'by-updated', keyPath: 'updatedAt' }] },
    messages: { keyPath: 'uuid', indexes: [{ name: 'by-chat-time', keyPath: ['chatId', 'time', 'uuid'] }] },
    outbox: { keyPath: 'id', indexes: [{ name: 'by-due', keyPath: 'nextAttemptAt' }] },
    lookupCache: { keyPath: 'handle', indexes: [{ name: 'by-hard-expiry', keyPath: 'hardExpiresAt' }] },
    counters: { keyPath: 'channel', indexes: [] },
    kv: { keyPath: 'key', indexes: [] },
  },
};

export const SCHEMA: readonly SchemaVersion[] = [V1];

/** Checks that a schema list is usable: versions 1, 2, 3, … each with every ClientStore table. */
export function checkSchema(schema: readonly SchemaVersion[]): SchemaVersion {
  if (schema.length === 0) throw new StoreError('bad-input', 'schema has no versions');
  schema.forEach((s, i) => {
    if (s.version !== i + 1) throw new StoreError('bad-input', `schema version ${i + 1} is missing`);
    for (const t of TABLES) if (!s.tables[t]) throw new StoreError('bad-input', `schema version ${s.version} lacks table ${t}`);
  });
  return schema[schema.length - 1]!;
}

/**
 * Rewrites in-memory tables stored at `fromVersion` to the last version of `schema`: tables a version adds start
 * empty, tables it drops go, and its `upgrade` functions run on every record.
 */
export function migrateTables(tables: Map<string, Map<string, Row>>, fromVersion: number, schema: readonly SchemaVersion[]): void {
  for (const step of schema.slice(fromVersion)) {
    for (const name of [...tables.keys()]) if (!step.tables[name]) tables.delete(name);
    for (const name of Object.keys(step.tables)) if (!tables.has(name)) tables.set(name, new Map());
    for (const [name, upgrade] of Object.entries(step.upgrade ?? {})) {
      const rows = tables.get(name);
      if (!rows) continue;
      const keyPath = step.tables[name]!.keyPath;
      for (const [key, row] of [...rows]) {
        let next: Row;
        try {
          next = upgrade(row);
        } catch (e) {
          throw new StoreError('migration-failed', `version ${step.version} could not upgrade a record of ${name}`, { cause: e });
        }
        if (next[keyPath] !== key) {
          throw new StoreError('migration-failed', `version ${step.version} changed a primary key in ${name}`);
        }
        rows.set(key, next);
      }
    }
  }
}

/** Field value(s) of an index key path, or undefined when the record has no valid key there (then it is not indexed). */
export function indexKeyOf(row: Row, keyPath: string | readonly string[]): IndexKey | undefined {
  if (typeof keyPath === 'string') return validKey(row[keyPath]);
  const parts: IndexKey[] = [];
  for (const p of keyPath) {
    const k = validKey(row[p]);
    if (k === undefined) return undefined;
    parts.push(k);
  }
  return parts;
}

/** A key both back ends order the same way: numbers < strings < arrays (IndexedDB's order). */
export type IndexKey = number | string | readonly IndexKey[];

function validKey(v: unknown): IndexKey | undefined {
  if (typeof v === 'number') return Number.isNaN(v) ? undefined : v;
  if (typeof v === 'string') return v;
  return undefined;
}

function rank(k: IndexKey): number {
  return typeof k === 'number' ? 0 : typeof k === 'string' ? 1 : 2;
}

/** IndexedDB's key comparison for the key types the schema uses. */
export function compareKeys(a: IndexKey, b: IndexKey): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === 'number' || typeof a === 'string') return a < (b as typeof a) ? -1 : a > (b as typeof a) ? 1 : 0;
  const bb = b as readonly IndexKey[];
  for (let i = 0; i < Math.min(a.length, bb.length); i++) {
    const c = compareKeys(a[i]!, bb[i]!);
    if (c !== 0) return c;
  }
  return a.length - bb.length;
}
