// The Node back end (headless client, tests): the ClientStore tables in memory, made durable in a directory as
//
//   <dir>/store.json      the state as of commit `seq` (replaced atomically: write temp, fsync, rename, fsync dir)
//   <dir>/journal.jsonl   one line per commit after that: {"s":seq,"o":[[table,key,value|null] | [table], …]}
//   <dir>/LOCK            the pid of the process that has the store open
//
// A commit is applied in memory at once and its promise resolves only after its journal line is fsynced; commits
// that arrive during a sync share the next one. When the journal passes a size, and on close, the state is
// written as a new snapshot and the journal emptied; replay skips lines the snapshot already holds, so a crash
// between those steps is harmless. kill -9 at any point loses nothing whose promise resolved: at worst the last
// line is torn, and opening drops it.
//
// CryptoKeys cannot be serialised here, so a KeyVault wraps them (see lib/store/key-vault.ts): private keys must
// be extractable to be stored, and come back non-extractable when the store is opened.
import { mkdir, open, readFile, rename, rm, rmdir, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { StoreBackend } from '../store/backend';
import { createClientStore } from '../store/client-store';
import { StoreError } from '../store/errors';
import { checkWrappedKey, type KeyVault } from '../store/key-vault';
import { applyOps, MemoryTables, type CommitHook, type CommitOp, type TableMap } from '../store/memory-tables';
import { checkSchema, migrateTables, SCHEMA, type Row, type SchemaVersion } from '../store/schema';
import type { ClientStore } from '../store/types';
import { decodeValue, encodeValue, keysIn, storedKeysIn, type Json } from '../store/value-codec';

export interface FileStoreOptions {
  dir: string;
  /** Needed as soon as anything holding a CryptoKey (accounts, keys) is stored. */
  vault?: KeyVault;
  schema?: readonly SchemaVersion[];
  /** Fold the journal into a new snapshot once it is this large (default 4 MiB). */
  compactAfterBytes?: number;
}

const FORMAT = 'cerulean-client-store';
const SNAPSHOT = 'store.json';
const SNAPSHOT_TMP = 'store.json.tmp';
const JOURNAL = 'journal.jsonl';
const LOCK = 'LOCK';
const DEFAULT_COMPACT_AFTER = 4 * 1024 * 1024;
const NEWLINE = 0x0a;

// Directories open in this process; the LOCK file keeps other processes out.
const openDirs = new Set<string>();

function ioError(what: string, e: unknown): StoreError {
  return e instanceof StoreError ? e : new StoreError('io', `${what} failed`, { cause: e });
}

function errorCode(e: unknown): unknown {
  return (e as { code?: unknown } | null)?.code;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM';
  }
}

async function acquireLock(dir: string): Promise<void> {
  const file = path.join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' });
      return;
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw ioError('creating the lock file', e);
    }
    const pid = Number(await readFile(file, 'utf8').catch(() => ''));
    // A lock left by a process that died (kill -9), or by this process before a crash-free reopen, is stale.
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new StoreError('locked', `the store in ${dir} is open in process ${pid}`);
    }
    await rm(file, { force: true });
  }
  throw new StoreError('locked', `could not take the lock of ${dir}`);
}

async function readOptional(file: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw ioError(`reading ${path.basename(file)}`, e);
  }
}

interface Snapshot {
  version: number;
  seq: number;
  tables: Record<string, Record<string, unknown>>;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function parseSnapshot(bytes: Uint8Array): Snapshot {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new StoreError('corrupt', `${SNAPSHOT} is not JSON`, { cause: e });
  }
  if (!isObject(doc) || doc.format !== FORMAT) throw new StoreError('corrupt', `${SNAPSHOT} is not a Cerulean store`);
  const { version, seq, tables } = doc;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new StoreError('corrupt', `${SNAPSHOT} has no version`);
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    throw new StoreError('corrupt', `${SNAPSHOT} has no sequence number`);
  }
  if (!isObject(tables) || !Object.values(tables).every(isObject)) throw new StoreError('corrupt', `${SNAPSHOT} has no tables`);
  return { version, seq, tables: tables as Snapshot['tables'] };
}

interface JournalLine {
  s: number;
  o: unknown[];
}

/** Complete journal lines, and the byte length they span (anything after is a torn write to drop). */
function parseJournal(bytes: Uint8Array): { lines: JournalLine[]; goodLength: number } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const lines: JournalLine[] = [];
  let start = 0;
  let goodLength = 0;
  while (start < bytes.length) {
    const end = bytes.indexOf(NEWLINE, start);
    if (end < 0) break;
    let line: unknown;
    try {
      line = JSON.parse(decoder.decode(bytes.subarray(start, end)));
    } catch {
      line = undefined;
    }
    const ok = isObject(line) && typeof line.s === 'number' && Number.isSafeInteger(line.s) && Array.isArray(line.o);
    if (!ok) {
      // Only the last line can be damaged by a crash; damage earlier is not something replay may skip.
      if (end + 1 < bytes.length) throw new StoreError('corrupt', `${JOURNAL} is damaged before its last line`);
      break;
    }
    lines.push(line as unknown as JournalLine);
    start = end + 1;
    goodLength = start;
  }
  return { lines, goodLength };
}

function decodeOps(line: JournalLine): Array<{ table: string; key?: string; value?: unknown }> {
  return line.o.map((op) => {
    if (!Array.isArray(op) || typeof op[0] !== 'string') throw new StoreError('corrupt', `${JOURNAL} line ${line.s} is malformed`);
    if (op.length === 1) return { table: op[0] };
    if (op.length !== 3 || typeof op[1] !== 'string') throw new StoreError('corrupt', `${JOURNAL} line ${line.s} is malformed`);
    return { table: op[0], key: op[1], value: op[2] };
  });
}

interface Pending {
  line: string;
  resolve: () => void;
  reject: (e: StoreError) => void;
}

class FileBackend implements StoreBackend {
  readonly engine: MemoryTables;
  private pending: Pending[] = [];
  private writing: Promise<void> | null = null;
  private failure: StoreError | null = null;
  private closed = false;
  private journalBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly journal: FileHandle,
    private readonly tables: TableMap,
    readonly schemaVersion: number,
    private seq: number,
    private readonly keyForms: WeakMap<CryptoKey, Json>,
    private readonly vault: KeyVault | undefined,
    private readonly compactAfter: number,
    schema: SchemaVersion,
  ) {
    this.engine = new MemoryTables(tables, schema, this.commit);
  }

  transact: StoreBackend['transact'] = (tables, mode, body) => {
    if (this.failure) return Promise.reject(this.failure);
    return this.engine.transact(tables, mode, body);
  };

  private readonly keyForm = (key: CryptoKey): Json => {
    const form = this.keyForms.get(key);
    if (form === undefined) throw new StoreError('io', 'a stored key has no wrapped form');
    return form;
  };

  private readonly commit: CommitHook = async (ops) => {
    if (this.failure) throw this.failure;
    for (const op of ops) {
      if ('clear' in op || !op.row) continue;
      for (const key of keysIn(op.row)) {
        if (this.keyForms.has(key)) continue;
        if (!this.vault) throw new StoreError('no-key-vault', 'this file store has no KeyVault, so it cannot keep CryptoKeys');
        this.keyForms.set(key, encodeValue(await this.vault.wrap(key), this.keyForm));
      }
    }
    const encoded = ops.map((op: CommitOp) =>
      'clear' in op ? [op.table] : [op.table, op.key, op.row ? encodeValue(op.row, this.keyForm) : null],
    );
    const body = JSON.stringify(encoded);
    return () => this.enqueue(body);
  };

  private enqueue(body: string): Promise<void> {
    const line = `{"s":${++this.seq},"o":${body}}\n`;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      this.writing ??= this.drain().finally(() => {
        this.writing = null;
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0 && !this.failure) {
      const batch = this.pending.splice(0);
      try {
        const bytes = new TextEncoder().encode(batch.map((p) => p.line).join(''));
        await this.journal.write(bytes);
        await this.journal.datasync();
        this.journalBytes += bytes.length;
        if (this.journalBytes >= this.compactAfter) await this.compact();
        for (const p of batch) p.resolve();
      } catch (e) {
        this.failure = ioError('writing the journal', e);
        for (const p of [...batch, ...this.pending.splice(0)]) p.reject(this.failure);
      }
    }
  }

  /**
   * Writes the current state as the snapshot, then empties the journal. The state may already include commits
   * whose lines are still queued; they are journaled afterwards with numbers the snapshot covers, and replay
   * skips them.
   */
  private async compact(): Promise<void> {
    // Captured synchronously: the text is exactly the state after commit `seq`.
    const text = snapshotText(this.tables, this.schemaVersion, this.seq, this.keyForm);
    await writeSnapshot(this.dir, text);
    await this.journal.truncate(0);
    await this.journal.datasync();
    this.journalBytes = 0;
  }

  /** Waits until every commit issued so far is on disk (or the store has failed). */
  private async settle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.engine.close();
    await this.settle();
    try {
      if (!this.failure && this.journalBytes > 0) await this.compact();
    } finally {
      await this.release();
    }
  }

  async destroy(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.engine.close();
      await this.settle();
      await this.release();
    }
    try {
      for (const f of [SNAPSHOT, SNAPSHOT_TMP, JOURNAL, LOCK]) await rm(path.join(this.dir, f), { force: true });
      await rmdir(this.dir).catch(() => undefined);
    } catch (e) {
      throw ioError('deleting the store', e);
    }
  }

  private async release(): Promise<void> {
    await this.journal.close().catch(() => undefined);
    openDirs.delete(this.dir);
    await rm(path.join(this.dir, LOCK), { force: true }).catch(() => undefined);
  }
}

function snapshotText(tables: TableMap, version: number, seq: number, keyForm: (key: CryptoKey) => Json): string {
  const out = Object.fromEntries(
    [...tables].map(([name, rows]) => [name, Object.fromEntries([...rows].map(([key, row]) => [key, encodeValue(row, keyForm)]))]),
  );
  return JSON.stringify({ format: FORMAT, version, seq, tables: out });
}

async function writeSnapshot(dir: string, text: string): Promise<void> {
  const tmp = path.join(dir, SNAPSHOT_TMP);
  const handle = await open(tmp, 'w');
  try {
    await handle.write(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path.join(dir, SNAPSHOT));
  await syncDir(dir);
}

/** Unwraps every stored key of the snapshot and journal; the map goes from the stored form object to the key. */
async function unwrapKeys(docs: unknown[], vault: KeyVault | undefined, keyForms: WeakMap<CryptoKey, Json>): Promise<Map<Json, CryptoKey>> {
  const keys = new Map<Json, CryptoKey>();
  for (const doc of docs) {
    for (const form of storedKeysIn(doc)) {
      if (!vault) throw new StoreError('no-key-vault', 'the store holds keys; open it with its KeyVault');
      let wrapped;
      try {
        wrapped = checkWrappedKey(decodeValue(form, () => {
          throw new StoreError('corrupt', 'a wrapped key contains a key');
        }));
      } catch (e) {
        throw new StoreError('corrupt', 'a stored key is malformed', { cause: e });
      }
      const key = await vault.unwrap(wrapped);
      keys.set(form, key);
      keyForms.set(key, form);
    }
  }
  return keys;
}

function decodeRow(json: unknown, keys: Map<Json, CryptoKey>, table: string, keyPath: string | undefined, key: string): Row {
  const row = decodeValue(json, (form) => keys.get(form)!);
  if (typeof row !== 'object' || row === null || Array.isArray(row) || row instanceof Uint8Array) {
    throw new StoreError('corrupt', `a record of ${table} is not an object`);
  }
  if (keyPath !== undefined && (row as Row)[keyPath] !== key) {
    throw new StoreError('corrupt', `a record of ${table} is stored under the wrong key`);
  }
  return row as Row;
}

/** Opens (creating, recovering or upgrading) the store in `options.dir`. One process, one open store per directory. */
export async function openFileStore(options: FileStoreOptions): Promise<ClientStore> {
  if (typeof options !== 'object' || options === null || typeof options.dir !== 'string' || options.dir.length === 0) {
    throw new StoreError('bad-input', 'options.dir must be a directory path');
  }
  const schema = options.schema ?? SCHEMA;
  const latest = checkSchema(schema);
  const compactAfter = options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER;
  if (!Number.isSafeInteger(compactAfter) || compactAfter < 0) {
    throw new StoreError('bad-input', 'compactAfterBytes must be a non-negative integer');
  }
  const dir = path.resolve(options.dir);
  if (openDirs.has(dir)) throw new StoreError('locked', `the store in ${dir} is already open in this process`);
  // Claimed before the first await, so two opens racing in this process cannot both get past the lock.
  openDirs.add(dir);
  try {
    await mkdir(dir, { recursive: true });
    await acquireLock(dir);
  } catch (e) {
    openDirs.delete(dir);
    throw ioError('creating the store directory', e);
  }
  let journal: FileHandle | undefined;
  try {
    await rm(path.join(dir, SNAPSHOT_TMP), { force: true });
    const snapshotBytes = await readOptional(path.join(dir, SNAPSHOT));
    const journalBytes = (await readOptional(path.join(dir, JOURNAL))) ?? new Uint8Array(0);
    const snapshot = snapshotBytes ? parseSnapshot(snapshotBytes) : { version: 0, seq: 0, tables: {} };
    const { lines, goodLength } = parseJournal(journalBytes);
    if (!snapshotBytes && lines.length > 0) throw new StoreError('corrupt', `${JOURNAL} exists without ${SNAPSHOT}`);
    if (snapshot.version > latest.version) {
      throw new StoreError('too-new', `the store is at schema version ${snapshot.version}; this code knows up to ${latest.version}`);
    }

    const keyForms = new WeakMap<CryptoKey, Json>();
    const keys = await unwrapKeys([snapshot.tables, ...lines.map((l) => l.o)], options.vault, keyForms);
    const stored = schema[snapshot.version - 1];
    const keyPathOf = (table: string) => stored?.tables[table]?.keyPath;
    const tables: TableMap = new Map(
      Object.entries(snapshot.tables).map(([name, rows]) => [
        name,
        new Map(Object.entries(rows).map(([key, json]) => [key, decodeRow(json, keys, name, keyPathOf(name), key)])),
      ]),
    );
    let seq = snapshot.seq;
    for (const line of lines) {
      if (line.s <= snapshot.seq) continue;
      if (line.s !== seq + 1) throw new StoreError('corrupt', `${JOURNAL} skips from commit ${seq} to ${line.s}`);
      const ops: CommitOp[] = decodeOps(line).map(({ table, key, value }) => {
        if (key === undefined) return { table, clear: true as const };
        return { table, key, row: value === null ? null : decodeRow(value, keys, table, keyPathOf(table), key) };
      });
      applyOps(tables, ops);
      seq = line.s;
    }

    const upgrading = snapshot.version < latest.version;
    if (upgrading) migrateTables(tables, snapshot.version, schema);

    journal = await open(path.join(dir, JOURNAL), 'a');
    if (upgrading || lines.length > 0 || goodLength !== journalBytes.length) {
      // Start from a clean snapshot: replay is never needed twice, and a torn tail is gone for good.
      const keyForm = (key: CryptoKey): Json => keyForms.get(key)!;
      await writeSnapshot(dir, snapshotText(tables, latest.version, seq, keyForm));
      await journal.truncate(0);
      await journal.datasync();
    }
    await syncDir(dir);
    const backend = new FileBackend(dir, journal, tables, latest.version, seq, keyForms, options.vault, compactAfter, latest);
    return createClientStore(backend);
  } catch (e) {
    await journal?.close().catch(() => undefined);
    openDirs.delete(dir);
    await rm(path.join(dir, LOCK), { force: true }).catch(() => undefined);
    throw ioError('opening the store', e);
  }
}
