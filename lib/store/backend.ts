// The narrow contract between the client store's logic (client-store.ts) and a storage engine: atomic
// transactions over named tables of plain records with string primary keys, plus ordered index scans. Keeping the
// logic above this line means IndexedDB and the file store cannot drift apart in behaviour.
import type { IndexKey, TableName } from './schema';
import type {
  AccountRecord,
  ChatRecord,
  CounterRecord,
  DeviceRecord,
  IdentityKeys,
  LookupCacheEntry,
  MessageRecord,
  OutboxItem,
  StorableValue,
} from './types';

export interface KvRecord {
  key: string;
  value: StorableValue;
}

/** The record type of each table. Back ends store plain objects; this map is where they get their types back. */
export interface TableRecords {
  accounts: AccountRecord;
  keys: IdentityKeys;
  devices: DeviceRecord;
  chats: ChatRecord;
  messages: MessageRecord;
  outbox: OutboxItem;
  lookupCache: LookupCacheEntry;
  counters: CounterRecord;
  kv: KvRecord;
}

export interface KeyRange {
  lower?: IndexKey;
  upper?: IndexKey;
  lowerOpen?: boolean;
  upperOpen?: boolean;
}

export interface QueryOptions {
  range?: KeyRange;
  /** Highest index key first. */
  reverse?: boolean;
  limit?: number;
}

/**
 * Operations inside one transaction. IndexedDB commits a transaction as soon as it has no request pending, so a
 * transaction body may await these calls and nothing else (no WebCrypto, no timers).
 */
export interface BackendTx {
  get<T extends TableName>(table: T, key: string): Promise<TableRecords[T] | undefined>;
  /** Inserts or replaces; the key is the table's keyPath field. */
  put<T extends TableName>(table: T, row: TableRecords[T]): Promise<void>;
  delete(table: TableName, key: string): Promise<void>;
  /** Every record, in primary key order. */
  all<T extends TableName>(table: T): Promise<TableRecords[T][]>;
  /** Records in index order (ties in primary key order); records without a valid index key are left out. */
  query<T extends TableName>(table: T, index: string, options?: QueryOptions): Promise<TableRecords[T][]>;
  clear(table: TableName): Promise<void>;
}

export type TxMode = 'readonly' | 'readwrite';

export interface StoreBackend {
  readonly schemaVersion: number;
  /**
   * Runs `body` atomically: if it throws, none of its writes happen. Read-write transactions on the same tables
   * run one after another. The promise resolves once the writes are durable.
   */
  transact<T>(tables: readonly TableName[], mode: TxMode, body: (tx: BackendTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  destroy(): Promise<void>;
}
