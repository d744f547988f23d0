// The browser back end: one IndexedDB database (via `idb`), one object store per table. Records go in by
// structured clone, so CryptoKeys are stored as keys: a non-extractable private key stays non-extractable and no
// script (ours included) can ever read its bytes. Upgrades turn the schema list into createObjectStore/createIndex
// calls plus record rewrites, all inside the versionchange transaction, so a failing step leaves the old version.
import { deleteDB, openDB, type IDBPDatabase, type IDBPObjectStore, type IDBPTransaction } from 'idb';
import type { BackendTx, KeyRange, QueryOptions, StoreBackend, TableRecords, TxMode } from './backend';
import { createClientStore } from './client-store';
import { StoreError } from './errors';
import { checkSchema, compareKeys, SCHEMA, type IndexKey, type Row, type SchemaVersion, type TableName } from './schema';
import type { ClientStore } from './types';

export const DEFAULT_DATABASE_NAME = 'cerulean';

export interface IndexedDbStoreOptions {
  /** Database name (default "cerulean"); one per origin is the norm, tests use their own. */
  name?: string;
  schema?: readonly SchemaVersion[];
}

type UpgradeTx = IDBPTransaction<unknown, string[], 'versionchange'>;

function toIdbKey(k: IndexKey): IDBValidKey {
  return typeof k === 'object' ? k.map(toIdbKey) : k;
}

/** The IDBKeyRange for a range, or null for one no key can fall in (IDBKeyRange.bound would throw). */
function toIdbRange(r: KeyRange | undefined): IDBKeyRange | undefined | null {
  if (!r || (r.lower === undefined && r.upper === undefined)) return undefined;
  if (r.lower !== undefined && r.upper !== undefined) {
    const c = compareKeys(r.lower, r.upper);
    if (c > 0 || (c === 0 && (r.lowerOpen || r.upperOpen))) return null;
    return IDBKeyRange.bound(toIdbKey(r.lower), toIdbKey(r.upper), r.lowerOpen ?? false, r.upperOpen ?? false);
  }
  if (r.lower !== undefined) return IDBKeyRange.lowerBound(toIdbKey(r.lower), r.lowerOpen ?? false);
  return IDBKeyRange.upperBound(toIdbKey(r.upper!), r.upperOpen ?? false);
}

function sameKeyPath(a: string | string[] | null, b: string | readonly string[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Creates, drops and re-indexes object stores so the database matches `step`. */
function applyStructure(db: IDBPDatabase, tx: UpgradeTx, step: SchemaVersion): void {
  for (const name of [...db.objectStoreNames]) if (!step.tables[name]) db.deleteObjectStore(name);
  for (const [name, spec] of Object.entries(step.tables)) {
    let store: IDBPObjectStore<unknown, string[], string, 'versionchange'>;
    if (db.objectStoreNames.contains(name)) {
      store = tx.objectStore(name);
      if (!sameKeyPath(store.keyPath, spec.keyPath)) {
        throw new StoreError('migration-failed', `version ${step.version} changes the primary key of ${name}`);
      }
    } else {
      store = db.createObjectStore(name, { keyPath: spec.keyPath });
    }
    for (const indexName of [...store.indexNames]) {
      const wanted = spec.indexes.find((i) => i.name === indexName);
      if (!wanted || !sameKeyPath(store.index(indexName).keyPath, wanted.keyPath)) store.deleteIndex(indexName);
    }
    for (const index of spec.indexes) {
      if (!store.indexNames.contains(index.name)) store.createIndex(index.name, index.keyPath as string | string[]);
    }
  }
}

/** Runs every record of the upgraded tables through the upgrade functions of the versions after `oldVersion`. */
async function rewriteRecords(tx: UpgradeTx, steps: readonly SchemaVersion[]): Promise<void> {
  const tables = new Set(steps.flatMap((s) => Object.keys(s.upgrade ?? {})));
  for (const name of tables) {
    const last = steps[steps.length - 1]!;
    if (!last.tables[name]) continue;
    const keyPath = last.tables[name].keyPath;
    let cursor = await tx.objectStore(name).openCursor();
    while (cursor) {
      let row = cursor.value as Row;
      for (const step of steps) {
        const upgrade = step.upgrade?.[name];
        if (!upgrade) continue;
        try {
          row = upgrade(row);
        } catch (e) {
          throw new StoreError('migration-failed', `version ${step.version} could not upgrade a record of ${name}`, { cause: e });
        }
      }
      if (row[keyPath] !== cursor.primaryKey) {
        throw new StoreError('migration-failed', `an upgrade changed a primary key in ${name}`);
      }
      await cursor.update(row);
      cursor = await cursor.continue();
    }
  }
}

function mapError(e: unknown, closed: boolean): StoreError {
  if (e instanceof StoreError) return e;
  const name = (e as { name?: unknown } | null)?.name;
  if (name === 'QuotaExceededError') return new StoreError('quota', 'the browser refused the write for lack of space', { cause: e });
  if (closed || name === 'InvalidStateError') return new StoreError('closed', 'the store is closed', { cause: e });
  if (name === 'DataCloneError') return new StoreError('bad-input', 'a value cannot be stored', { cause: e });
  return new StoreError('io', `IndexedDB failed (${String(name ?? 'unknown error')})`, { cause: e });
}

class IndexedDbTx implements BackendTx {
  constructor(private readonly tx: IDBPTransaction<unknown, TableName[], TxMode>) {}

  async get<T extends TableName>(table: T, key: string): Promise<TableRecords[T] | undefined> {
    return (await this.tx.objectStore(table).get(key)) as TableRecords[T] | undefined;
  }

  async put<T extends TableName>(table: T, row: TableRecords[T]): Promise<void> {
    await this.tx.objectStore(table).put!(row);
  }

  async delete(table: TableName, key: string): Promise<void> {
    await this.tx.objectStore(table).delete!(key);
  }

  async clear(table: TableName): Promise<void> {
    await this.tx.objectStore(table).clear!();
  }

  async all<T extends TableName>(table: T): Promise<TableRecords[T][]> {
    return (await this.tx.objectStore(table).getAll()) as TableRecords[T][];
  }

  async query<T extends TableName>(table: T, index: string, options: QueryOptions = {}): Promise<TableRecords[T][]> {
    const range = toIdbRange(options.range);
    if (range === null) return [];
    const source = this.tx.objectStore(table).index(index);
    if (!options.reverse) return (await source.getAll(range, options.limit)) as TableRecords[T][];
    const out: TableRecords[T][] = [];
    let cursor = await source.openCursor(range, 'prev');
    while (cursor && (options.limit === undefined || out.length < options.limit)) {
      out.push(cursor.value as TableRecords[T]);
      cursor = await cursor.continue();
    }
    return out;
  }
}

class IndexedDbBackend implements StoreBackend {
  closed = false;

  constructor(
    private readonly db: IDBPDatabase,
    private readonly name: string,
    readonly schemaVersion: number,
  ) {}

  async transact<T>(tables: readonly TableName[], mode: TxMode, body: (tx: BackendTx) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('closed', 'the store is closed');
    let tx: IDBPTransaction<unknown, TableName[], TxMode>;
    try {
      // Strict durability: a resolved write (a message, an outbox item) must survive a crash.
      tx = this.db.transaction([...tables], mode, { durability: mode === 'readwrite' ? 'strict' : 'default' });
    } catch (e) {
      throw mapError(e, this.closed);
    }
    const done = tx.done;
    done.catch(() => undefined);
    try {
      const result = await body(new IndexedDbTx(tx));
      await done;
      return result;
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // Already finished or aborting (a failed request aborts its transaction by itself).
      }
      throw mapError(e, this.closed);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.db.close();
  }

  async destroy(): Promise<void> {
    await this.close();
    try {
      await deleteDB(this.name);
    } catch (e) {
      throw mapError(e, false);
    }
  }
}

/** Opens (creating or upgrading) the database. Needs `indexedDB`: browsers, workers, service workers. */
export async function openIndexedDbStore(options: IndexedDbStoreOptions = {}): Promise<ClientStore> {
  if (typeof indexedDB === 'undefined') throw new StoreError('io', 'IndexedDB is not available here');
  const schema = options.schema ?? SCHEMA;
  const latest = checkSchema(schema);
  const name = options.name ?? DEFAULT_DATABASE_NAME;
  let upgradeError: unknown;
  let backend: IndexedDbBackend | undefined;
  let db: IDBPDatabase;
  try {
    db = await openDB(name, latest.version, {
      upgrade(database, oldVersion, _newVersion, tx) {
        // An aborted upgrade surfaces as openDB's rejection; the transaction's own promise would go unhandled.
        tx.done.catch(() => undefined);
        const steps = schema.slice(oldVersion);
        const fail = (e: unknown) => {
          upgradeError = e;
          try {
            tx.abort();
          } catch {
            // The transaction already failed.
          }
        };
        try {
          for (const step of steps) applyStructure(database, tx, step);
        } catch (e) {
          fail(e);
          return;
        }
        rewriteRecords(tx, steps).catch(fail);
      },
      // Another tab is upgrading or deleting the database: step aside rather than block it.
      blocking() {
        if (backend) backend.closed = true;
        db.close();
      },
      terminated() {
        if (backend) backend.closed = true;
      },
    });
  } catch (e) {
    if (upgradeError !== undefined) {
      if (upgradeError instanceof StoreError) throw upgradeError;
      throw new StoreError('migration-failed', 'the schema upgrade failed', { cause: upgradeError });
    }
    if ((e as { name?: unknown } | null)?.name === 'VersionError') {
      throw new StoreError('too-new', 'the database was written by a newer version of Cerulean', { cause: e });
    }
    throw mapError(e, false);
  }
  backend = new IndexedDbBackend(db, name, latest.version);
  return createClientStore(backend);
}
