// The sandbox's durable state: tables of JSON records keyed by string, kept in memory and persisted as
//
//   <dir>/snapshot.json   the whole state as of sequence number `seq` (replaced atomically)
//   <dir>/journal.jsonl   one line per mutation after the snapshot: {"s":seq,"t":table,"k":key,"v":value} or "d":1
//
// A mutation is applied in memory at once (so later reads see it) and its promise resolves only after its journal
// line is on disk (fdatasync). Mutations that arrive while a sync is in flight are written together by the next one
// (group commit). Once the journal is long, the state is snapshotted and the journal truncated; replay skips lines
// the snapshot already holds, so a crash between the two steps is harmless. kill -9 at any moment loses nothing whose
// promise resolved: the only damage a crash can do is a torn last line, which reopening drops.
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fromBase64, toBase64 } from '../lib/codec/bytes';
import { CeruleanError } from '../lib/errors';
import { silentLog, type Log } from './context';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A store that cannot be opened or written. After a write fails the store refuses all further mutations. */
export class StoreError extends CeruleanError {}

export interface StoreOptions {
  /** Snapshot and truncate the journal after this many journal lines (default 10 000). */
  snapshotEvery?: number;
  /** Also snapshot this often when the journal is not empty (default 5 minutes; 0 = never on a timer). */
  snapshotIntervalMs?: number;
  log?: Log;
}

const SNAPSHOT = 'snapshot.json';
const JOURNAL = 'journal.jsonl';
const LOCK = 'LOCK';
const FORMAT = 'cerulean-sandbox-store';

interface Pending {
  line: string;
  resolve: () => void;
  reject: (e: Error) => void;
}

// One Store per directory per process; the LOCK file guards against other processes.
const openDirs = new Set<string>();

export class Store {
  private readonly tables = new Map<string, Map<string, Json>>();
  private seq = 0;
  private journalLines = 0;
  private queue: Pending[] = [];
  private pumping: Promise<void> = Promise.resolve();
  private running = false;
  private syncs = 0;
  private written = 0;
  private snapshotWanted = false;
  private failure: StoreError | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    readonly dir: string,
    private journal: FileHandle,
    private readonly snapshotEvery: number,
    private readonly log: Log,
  ) {}

  static async open(dir: string, options: StoreOptions = {}): Promise<Store> {
    const abs = path.resolve(dir);
    if (openDirs.has(abs)) throw new StoreError('store-locked', `store ${abs} is already open in this process`);
    await mkdir(abs, { recursive: true });
    await acquireLock(abs);
    openDirs.add(abs);
    try {
      // Temp files of snapshots a crash interrupted before their rename.
      for (const f of await readdir(abs)) if (f.startsWith(`${SNAPSHOT}.tmp-`)) await rm(path.join(abs, f), { force: true });
      const state = await loadSnapshot(abs);
      const { lines, goodLength, torn } = await readJournal(abs);
      const journal = await open(path.join(abs, JOURNAL), 'a');
      if (torn) {
        await journal.truncate(goodLength);
        await journal.datasync();
      }
      await syncDir(abs);
      const store = new Store(abs, journal, options.snapshotEvery ?? 10_000, options.log ?? silentLog);
      store.seq = state.seq;
      for (const [table, rows] of Object.entries(state.tables)) {
        store.tables.set(table, new Map(Object.entries(rows).map(([k, v]) => [k, deepFreeze(v)])));
      }
      for (const rec of lines) {
        if (rec.s <= state.seq) continue;
        store.apply(rec.t, rec.k, rec.d === 1 ? undefined : (rec.v as Json));
        store.seq = rec.s;
      }
      store.journalLines = lines.length;
      if (torn) store.log.warn('store.torn-journal-tail-dropped', { dir: abs });
      const interval = options.snapshotIntervalMs ?? 5 * 60_000;
      if (interval > 0) {
        store.timer = setInterval(() => {
          if (store.journalLines > 0) store.requestSnapshot();
        }, interval);
        store.timer.unref();
      }
      return store;
    } catch (e) {
      openDirs.delete(abs);
      await rm(path.join(abs, LOCK), { force: true });
      throw e;
    }
  }

  get<T extends Json = Json>(table: string, key: string): Readonly<T> | undefined {
    return this.tables.get(table)?.get(key) as T | undefined;
  }

  has(table: string, key: string): boolean {
    return this.tables.get(table)?.has(key) ?? false;
  }

  /** The rows of a table in insertion order (a copy; values are frozen). */
  entries<T extends Json = Json>(table: string): Array<[string, Readonly<T>]> {
    return [...(this.tables.get(table) ?? new Map<string, Json>())] as Array<[string, T]>;
  }

  size(table: string): number {
    return this.tables.get(table)?.size ?? 0;
  }

  /** Stores a JSON copy of `value`; later reads see it at once, and the promise resolves once it is durable. */
  put(table: string, key: string, value: Json): Promise<void> {
    const text = JSON.stringify(value);
    if (text === undefined) return Promise.reject(new StoreError('store-bad-value', 'value is not JSON-serializable'));
    return this.mutate(table, key, text);
  }

  delete(table: string, key: string): Promise<void> {
    return this.mutate(table, key, undefined);
  }

  /** Journal syncs and lines since open: group commit shows as fewer syncs than lines. */
  get stats(): { syncs: number; lines: number } {
    return { syncs: this.syncs, lines: this.written };
  }

  table<T extends Json>(name: string): Table<T> {
    return new Table<T>(this, name);
  }

  /** Resolves once every mutation issued so far is durable. */
  async flush(): Promise<void> {
    while (this.running) await this.pumping;
    if (this.failure) throw this.failure;
  }

  /** Writes a snapshot now and truncates the journal. */
  async snapshot(): Promise<void> {
    this.requestSnapshot();
    await this.flush();
  }

  /** Flushes, snapshots, releases the directory. Further mutations are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    if (!this.failure && this.journalLines > 0) this.requestSnapshot();
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.journal.close();
      openDirs.delete(this.dir);
      await rm(path.join(this.dir, LOCK), { force: true });
    }
  }

  private mutate(table: string, key: string, valueText: string | undefined): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('store-closed', 'store is closed'));
    if (this.failure) return Promise.reject(this.failure);
    if (typeof table !== 'string' || typeof key !== 'string') {
      return Promise.reject(new StoreError('store-bad-key', 'table and key must be strings'));
    }
    const seq = ++this.seq;
    const head = `{"s":${seq},"t":${JSON.stringify(table)},"k":${JSON.stringify(key)}`;
    const line = valueText === undefined ? `${head},"d":1}\n` : `${head},"v":${valueText}}\n`;
    this.apply(table, key, valueText === undefined ? undefined : (JSON.parse(valueText) as Json));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.kick();
    });
  }

  private apply(table: string, key: string, value: Json | undefined): void {
    let rows = this.tables.get(table);
    if (value === undefined) {
      rows?.delete(key);
      if (rows?.size === 0) this.tables.delete(table);
      return;
    }
    if (!rows) this.tables.set(table, (rows = new Map()));
    rows.set(key, deepFreeze(value));
  }

  private requestSnapshot(): void {
    if (this.closed || this.failure) return;
    this.snapshotWanted = true;
    this.kick();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    this.pumping = this.pump();
  }

  // The single writer: batches of journal lines, then (when asked) a snapshot; never two at once. `running` is
  // cleared in the same synchronous step as the final empty-queue check, so a mutation queued after that check
  // starts a new pump instead of waiting on one that has already decided to stop.
  private async pump(): Promise<void> {
    for (;;) {
      if (this.failure) {
        const waiting = this.queue;
        this.queue = [];
        for (const p of waiting) p.reject(this.failure);
      }
      if (this.failure || (this.queue.length === 0 && !this.snapshotWanted)) {
        this.running = false;
        return;
      }
      if (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.journal.appendFile(batch.map((p) => p.line).join(''));
          await this.journal.datasync();
        } catch (e) {
          this.fail('store-write-failed', e);
          for (const p of batch) p.reject(this.failure!);
          continue;
        }
        this.journalLines += batch.length;
        this.syncs++;
        this.written += batch.length;
        for (const p of batch) p.resolve();
        if (this.journalLines >= this.snapshotEvery) this.snapshotWanted = true;
      } else {
        this.snapshotWanted = false;
        try {
          await this.writeSnapshot();
        } catch (e) {
          this.fail('store-snapshot-failed', e);
        }
      }
    }
  }

  private async writeSnapshot(): Promise<void> {
    // Lines still queued are already applied in memory, so the snapshot holds them and carries their seq.
    const tables: Record<string, Record<string, Json>> = {};
    for (const [name, rows] of this.tables) tables[name] = Object.fromEntries(rows);
    const text = JSON.stringify({ format: FORMAT, version: 1, seq: this.seq, tables });
    await writeFileAtomic(path.join(this.dir, SNAPSHOT), text);
    await this.journal.truncate(0);
    await this.journal.datasync();
    this.journalLines = 0;
  }

  private fail(code: string, cause: unknown): void {
    this.failure = new StoreError(code, `store ${this.dir}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.log.error('store.failed', { dir: this.dir, code, message: this.failure.message });
  }
}

/** A typed view of one table. */
export class Table<T extends Json> {
  constructor(
    private readonly store: Store,
    readonly name: string,
  ) {}
  get(key: string): Readonly<T> | undefined {
    return this.store.get<T>(this.name, key);
  }
  has(key: string): boolean {
    return this.store.has(this.name, key);
  }
  put(key: string, value: T): Promise<void> {
    return this.store.put(this.name, key, value);
  }
  delete(key: string): Promise<void> {
    return this.store.delete(this.name, key);
  }
  entries(): Array<[string, Readonly<T>]> {
    return this.store.entries<T>(this.name);
  }
  values(): Array<Readonly<T>> {
    return this.entries().map(([, v]) => v);
  }
  get size(): number {
    return this.store.size(this.name);
  }
}

/** Bytes in a JSON record: standard base64 with padding. */
export function bytesToJson(bytes: Uint8Array): string {
  return toBase64(bytes);
}

export function bytesFromJson(text: string): Uint8Array {
  return fromBase64(text);
}

/** Write to a temp file, fsync, rename over the target, fsync the directory: readers see old or new, never half. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

async function acquireLock(dir: string): Promise<void> {
  const file = path.join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new StoreError('store-locked', `store ${dir} is in use by process ${pid}`);
    }
    // A lock left by a process that died (or by this pid in an earlier life): take it over.
    await rm(file, { force: true });
  }
  throw new StoreError('store-locked', `could not lock store ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface SnapshotState {
  seq: number;
  tables: Record<string, Record<string, Json>>;
}

async function loadSnapshot(dir: string): Promise<SnapshotState> {
  const file = path.join(dir, SNAPSHOT);
  if (!existsSync(file)) return { seq: 0, tables: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new StoreError('store-snapshot-corrupt', `snapshot ${file} is not valid JSON`, { cause: e });
  }
  const s = parsed as { format?: unknown; version?: unknown; seq?: unknown; tables?: unknown };
  if (s?.format !== FORMAT || s.version !== 1 || !Number.isSafeInteger(s.seq) || !isPlainObject(s.tables)) {
    throw new StoreError('store-snapshot-corrupt', `snapshot ${file} has an unknown format`);
  }
  for (const rows of Object.values(s.tables)) {
    if (!isPlainObject(rows)) throw new StoreError('store-snapshot-corrupt', `snapshot ${file} has a bad table`);
  }
  return { seq: s.seq as number, tables: s.tables as SnapshotState['tables'] };
}

interface JournalRecord {
  s: number;
  t: string;
  k: string;
  v?: Json;
  d?: 1;
}

// Every complete line must be a record; only the tail after the last newline (or a last line that does not parse)
// can be a write the crash interrupted, and that write was never acknowledged.
async function readJournal(dir: string): Promise<{ lines: JournalRecord[]; goodLength: number; torn: boolean }> {
  const file = path.join(dir, JOURNAL);
  if (!existsSync(file)) return { lines: [], goodLength: 0, torn: false };
  const buf = await readFile(file);
  const lines: JournalRecord[] = [];
  let offset = 0;
  let lastSeq = 0;
  while (offset < buf.length) {
    const nl = buf.indexOf(0x0a, offset);
    if (nl < 0) return { lines, goodLength: offset, torn: true };
    const rec = parseRecord(buf.subarray(offset, nl).toString('utf8'));
    if (!rec || rec.s <= lastSeq) {
      if (buf.indexOf(0x0a, nl + 1) < 0 && isTail(buf, nl + 1)) return { lines, goodLength: offset, torn: true };
      throw new StoreError('store-journal-corrupt', `journal ${file} is corrupt at byte ${offset}`);
    }
    lines.push(rec);
    lastSeq = rec.s;
    offset = nl + 1;
  }
  return { lines, goodLength: offset, torn: false };
}

// After a torn write the filesystem may also leave zero-filled blocks past the last line.
function isTail(buf: Buffer, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function parseRecord(text: string): JournalRecord | null {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isPlainObject(r)) return null;
  const rec = r as Partial<JournalRecord>;
  if (!Number.isSafeInteger(rec.s) || (rec.s as number) <= 0) return null;
  if (typeof rec.t !== 'string' || typeof rec.k !== 'string') return null;
  if (!(rec.d === 1 ? !('v' in rec) : 'v' in rec)) return null;
  return rec as JournalRecord;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}
