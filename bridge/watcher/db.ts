// The watcher's state in SQLite (node-sqlite3-wasm: SQLite compiled to WebAssembly, with real file access): one row
// per enrollment. Secrets in a row are a hash (the API secret) or sealed (push key, token, subscription; see
// sealer.ts); the certificate is public. Every change is committed before the API answers, with synchronous=FULL,
// so a crash loses nothing that was acknowledged. The schema is versioned with PRAGMA user_version and migrated
// forward on open.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Database as SqliteDatabase } from 'node-sqlite3-wasm';

// The package is CommonJS without named ESM exports.
const { Database } = createRequire(import.meta.url)('node-sqlite3-wasm') as typeof import('node-sqlite3-wasm');

export type AwayReason = 'woken' | 'paused';

export interface EnrollmentRow {
  readonly id: string;
  /** SHA-256 of the bearer secret. */
  readonly secretHash: Uint8Array;
  /** The push certificate, DER. */
  readonly certificate: Uint8Array;
  /** Sealed push key, token and Web Push subscription. */
  readonly sealed: Uint8Array;
  /** `host:port` the device asked for; null = a numbered Apple courier host. */
  readonly courierHost: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** While away from the courier: when to watch again. */
  readonly resumeAt: number | null;
  readonly awayReason: AwayReason | null;
  readonly wakes: number;
  /** Wake-ups since the last /drained: the away time doubles with each. */
  readonly unansweredWakes: number;
  readonly lastWakeAt: number | null;
}

export type AwayFields = Pick<EnrollmentRow, 'resumeAt' | 'awayReason' | 'wakes' | 'unansweredWakes' | 'lastWakeAt'>;

/** Each entry moves the schema one version up; never edit one that has shipped, add another. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE enrollments (
     id TEXT PRIMARY KEY NOT NULL,
     secret_hash BLOB NOT NULL,
     certificate BLOB NOT NULL,
     sealed BLOB NOT NULL,
     courier_host TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     resume_at INTEGER,
     away_reason TEXT CHECK (away_reason IN ('woken', 'paused')),
     wakes INTEGER NOT NULL DEFAULT 0,
     unanswered_wakes INTEGER NOT NULL DEFAULT 0,
     last_wake_at INTEGER
   ) STRICT`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

type Row = Record<string, unknown>;

function bytes(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError('expected a BLOB column');
  return v;
}

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function toRow(r: Row): EnrollmentRow {
  return {
    id: r.id as string,
    secretHash: bytes(r.secret_hash),
    certificate: bytes(r.certificate),
    sealed: bytes(r.sealed),
    courierHost: (r.courier_host as string | null) ?? null,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    resumeAt: numOrNull(r.resume_at),
    awayReason: (r.away_reason as AwayReason | null) ?? null,
    wakes: num(r.wakes),
    unansweredWakes: num(r.unanswered_wakes),
    lastWakeAt: numOrNull(r.last_wake_at),
  };
}

export class WatcherDb {
  private constructor(private readonly db: SqliteDatabase) {}

  /** Opens (creating if needed) and migrates the database at `file`. One watcher process per file. */
  static open(file: string): WatcherDb {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const db = new Database(file);
    try {
      // Deleted rows are overwritten with zeros, so an unenrolled device's data does not linger in free pages.
      db.exec('PRAGMA secure_delete = ON; PRAGMA synchronous = FULL;');
      const watcher = new WatcherDb(db);
      watcher.migrate();
      return watcher;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  private migrate(): void {
    const version = num((this.db.get('PRAGMA user_version') as Row | null)?.user_version ?? 0);
    if (version > SCHEMA_VERSION) {
      throw new Error(`the database has schema version ${version}; this watcher knows only up to ${SCHEMA_VERSION}`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  private transaction(work: () => void): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      work();
      this.db.exec('COMMIT');
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }

  all(): EnrollmentRow[] {
    return (this.db.all('SELECT * FROM enrollments ORDER BY created_at') as Row[]).map(toRow);
  }

  get(id: string): EnrollmentRow | undefined {
    const r = this.db.get('SELECT * FROM enrollments WHERE id = ?', id) as Row | null;
    return r ? toRow(r) : undefined;
  }

  count(): number {
    return num((this.db.get('SELECT count(*) AS n FROM enrollments') as Row).n);
  }

  /** Inserts, or replaces a device's earlier enrollment (same id) with its counters reset. */
  put(row: EnrollmentRow): void {
    this.db.run(
      `INSERT OR REPLACE INTO enrollments
         (id, secret_hash, certificate, sealed, courier_host, created_at, updated_at, resume_at, away_reason, wakes,
          unanswered_wakes, last_wake_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        row.id, row.secretHash, row.certificate, row.sealed, row.courierHost, row.createdAt, row.updatedAt,
        row.resumeAt, row.awayReason, row.wakes, row.unansweredWakes, row.lastWakeAt,
      ],
    );
  }

  updateSealed(id: string, sealed: Uint8Array, now: number): void {
    this.db.run('UPDATE enrollments SET sealed = ?, updated_at = ? WHERE id = ?', [sealed, now, id]);
  }

  updateAway(id: string, f: AwayFields, now: number): void {
    this.db.run(
      `UPDATE enrollments SET resume_at = ?, away_reason = ?, wakes = ?, unanswered_wakes = ?, last_wake_at = ?,
         updated_at = ? WHERE id = ?`,
      [f.resumeAt, f.awayReason, f.wakes, f.unansweredWakes, f.lastWakeAt, now, id],
    );
  }

  delete(id: string): boolean {
    return this.db.run('DELETE FROM enrollments WHERE id = ?', id).changes > 0;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}
