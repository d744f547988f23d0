// A ClientStore that keeps everything in memory, for tests of code above the store and for sessions that must leave
// nothing behind. The storage object outlives the stores opened on it, so "close and reopen" keeps the data.
import type { StoreBackend } from './backend';
import { createClientStore } from './client-store';
import { StoreError } from './errors';
import { MemoryTables, type TableMap } from './memory-tables';
import { checkSchema, migrateTables, SCHEMA, type SchemaVersion } from './schema';
import type { ClientStore } from './types';

export class MemoryStorage {
  private tables: TableMap = new Map();
  private version = 0;
  private current: MemoryTables | undefined;

  /** Opens the storage (one store at a time), upgrading it to the last version of `schema`. */
  async open(schema: readonly SchemaVersion[] = SCHEMA): Promise<ClientStore> {
    if (this.current) throw new StoreError('locked', 'this memory storage is already open');
    const latest = checkSchema(schema);
    if (this.version > latest.version) throw new StoreError('too-new', `storage is at version ${this.version}`);
    if (this.version < latest.version) {
      // Upgrade a copy so a failing step leaves the storage as it was.
      const upgraded: TableMap = new Map([...this.tables].map(([name, rows]) => [name, new Map(rows)]));
      migrateTables(upgraded, this.version, schema);
      this.tables = upgraded;
      this.version = latest.version;
    }
    const engine = new MemoryTables(this.tables, latest);
    this.current = engine;
    const release = () => {
      if (this.current === engine) this.current = undefined;
    };
    const backend: StoreBackend = {
      schemaVersion: latest.version,
      transact: (tables, mode, body) => engine.transact(tables, mode, body),
      close: async () => {
        await engine.close();
        release();
      },
      destroy: async () => {
        await engine.close();
        if (this.current === engine) {
          this.tables = new Map();
          this.version = 0;
        }
        release();
      },
    };
    return createClientStore(backend);
  }
}
