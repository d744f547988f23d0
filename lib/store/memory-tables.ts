// Tables held in memory with IndexedDB's transaction semantics: transactions run one at a time, writes go to an
// overlay that is applied only if the body finishes, and index scans follow IndexedDB's key order. The memory
// store uses it as is; the file store adds a commit hook that journals each commit to disk.
import type { BackendTx, QueryOptions, StoreBackend, TableRecords, TxMode } from './backend';
import { StoreError } from './errors';
import { compareKeys, indexKeyOf, type IndexKey, type Row, type SchemaVersion, type TableName } from './schema';
import { toStorable } from './storable';

export type CommitOp = { table: string; key: string; row: Row | null } | { table: string; clear: true };

/**
 * Called with each commit's operations before they are applied; throwing aborts the commit. The function it
 * resolves to is called right after the commit is applied (so in commit order) and resolves once it is durable.
 */
export type CommitHook = (ops: readonly CommitOp[]) => Promise<() => Promise<void>>;

export type TableMap = Map<string, Map<string, Row>>;

function copy(row: Row): Row {
  return toStorable(row, 'record') as Row;
}

function inRange(key: IndexKey, o: QueryOptions): boolean {
  const r = o.range;
  if (!r) return true;
  if (r.lower !== undefined) {
    const c = compareKeys(key, r.lower);
    if (c < 0 || (c === 0 && r.lowerOpen)) return false;
  }
  if (r.upper !== undefined) {
    const c = compareKeys(key, r.upper);
    if (c > 0 || (c === 0 && r.upperOpen)) return false;
  }
  return true;
}

class OverlayTx implements BackendTx {
  private readonly writes = new Map<string, Map<string, Row | null>>();
  private readonly cleared = new Set<string>();

  constructor(
    private readonly base: TableMap,
    private readonly schema: SchemaVersion,
    private readonly scope: ReadonlySet<string>,
    private readonly mode: TxMode,
  ) {}

  private check(table: string, write: boolean): void {
    if (!this.scope.has(table)) throw new StoreError('io', `table ${table} is outside the transaction`);
    if (write && this.mode === 'readonly') throw new StoreError('io', 'write in a read-only transaction');
  }

  private current(table: string): Map<string, Row> {
    const merged = new Map(this.cleared.has(table) ? [] : this.base.get(table));
    for (const [k, row] of this.writes.get(table) ?? []) {
      if (row) merged.set(k, row);
      else merged.delete(k);
    }
    return merged;
  }

  private written(table: string): Map<string, Row | null> {
    let w = this.writes.get(table);
    if (!w) this.writes.set(table, (w = new Map()));
    return w;
  }

  async get<T extends TableName>(table: T, key: string): Promise<TableRecords[T] | undefined> {
    this.check(table, false);
    const w = this.writes.get(table);
    const row = w?.has(key) ? w.get(key) : this.cleared.has(table) ? undefined : this.base.get(table)?.get(key);
    return (row ? copy(row) : undefined) as TableRecords[T] | undefined;
  }

  async put<T extends TableName>(table: T, record: TableRecords[T]): Promise<void> {
    this.check(table, true);
    const row = copy(record as unknown as Row);
    const key = row[this.schema.tables[table]!.keyPath];
    if (typeof key !== 'string') throw new StoreError('bad-input', `a ${table} record needs a string key`);
    this.written(table).set(key, row);
  }

  async delete(table: TableName, key: string): Promise<void> {
    this.check(table, true);
    this.written(table).set(key, null);
  }

  async clear(table: TableName): Promise<void> {
    this.check(table, true);
    this.cleared.add(table);
    this.writes.delete(table);
  }

  async all<T extends TableName>(table: T): Promise<TableRecords[T][]> {
    this.check(table, false);
    const rows = [...this.current(table)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return rows.map(([, row]) => copy(row)) as unknown as TableRecords[T][];
  }

  async query<T extends TableName>(table: T, index: string, options: QueryOptions = {}): Promise<TableRecords[T][]> {
    this.check(table, false);
    const spec = this.schema.tables[table]!.indexes.find((i) => i.name === index);
    if (!spec) throw new StoreError('io', `table ${table} has no index ${index}`);
    const hits: Array<{ key: IndexKey; pk: string; row: Row }> = [];
    for (const [pk, row] of this.current(table)) {
      const key = indexKeyOf(row, spec.keyPath);
      if (key !== undefined && inRange(key, options)) hits.push({ key, pk, row });
    }
    hits.sort((a, b) => compareKeys(a.key, b.key) || (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : 0));
    if (options.reverse) hits.reverse();
    const limited = options.limit === undefined ? hits : hits.slice(0, options.limit);
    return limited.map((h) => copy(h.row)) as unknown as TableRecords[T][];
  }

  ops(): CommitOp[] {
    const ops: CommitOp[] = [];
    for (const table of this.cleared) ops.push({ table, clear: true });
    for (const [table, rows] of this.writes) for (const [key, row] of rows) ops.push({ table, key, row });
    return ops;
  }
}

export function applyOps(tables: TableMap, ops: readonly CommitOp[]): void {
  for (const op of ops) {
    let rows = tables.get(op.table);
    if (!rows) tables.set(op.table, (rows = new Map()));
    if ('clear' in op) rows.clear();
    else if (op.row) rows.set(op.key, op.row);
    else rows.delete(op.key);
  }
}

/** Transactions over a TableMap. `close` only stops new transactions; owners release their resources themselves. */
export class MemoryTables implements Pick<StoreBackend, 'transact'> {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly tables: TableMap,
    private readonly schema: SchemaVersion,
    private readonly commit?: CommitHook,
  ) {}

  transact<T>(tables: readonly TableName[], mode: TxMode, body: (tx: BackendTx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    const run = async (): Promise<{ result: T; durable?: Promise<void> }> => {
      const tx = new OverlayTx(this.tables, this.schema, new Set(tables), mode);
      const result = await body(tx);
      const ops = tx.ops();
      if (ops.length === 0) return { result };
      const write = this.commit ? await this.commit(ops) : undefined;
      applyOps(this.tables, ops);
      return { result, ...(write && { durable: write() }) };
    };
    // One transaction at a time; the next may start while this one's write is still reaching the disk.
    const started = this.tail.then(run);
    this.tail = started.catch(() => undefined);
    return started.then(async ({ result, durable }) => {
      await durable;
      return result;
    });
  }

  /** Refuses new transactions and waits for those already started. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }
}
