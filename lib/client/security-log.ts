// Every security event the client raised (new devices, changed keys), kept in the store so the UI can list them
// after a restart and show which ones the user has not looked at yet. Only the newest SECURITY_LOG_LIMIT stay.
// An entry's id is a hash of what it reports, so it is the same on every read and the same event recorded twice
// is kept once.
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex, utf8 } from '../codec/bytes';
import { CeruleanError } from '../errors';
import type { ClientStore, KeyFingerprints, KeyPart, SecurityEvent, StorableValue } from '../store/types';
import * as v from '../store/validate';

export type SecurityLogEntry = SecurityEvent & { id: string; seen: boolean };

export const SECURITY_LOG_LIMIT = 500;

const LOG_KEY = 'client/security-log';
const KEY_PARTS: readonly KeyPart[] = ['identity', 'ngmDevice', 'ngmPrekey'];
const MAX_TOKEN_LENGTH = 256;

export function securityEventId(e: SecurityEvent): string {
  const fields = [e.kind, e.handle, toHex(e.pushToken), String(e.at), String(e.own)];
  if (e.kind === 'key-changed') fields.push(e.changed.join(','), JSON.stringify(e.before), JSON.stringify(e.after));
  return toHex(sha256(utf8(fields.join('\n')))).slice(0, 32);
}

function fingerprints(x: unknown, what: string): KeyFingerprints {
  const r = v.record(x, what);
  const out: KeyFingerprints = {};
  for (const part of KEY_PARTS) {
    const f = v.optional(r[part], (s) => v.text(s, `${what}.${part}`));
    if (f !== undefined) {
      if (!/^[0-9a-f]{64}$/.test(f)) throw new CeruleanError('bad-input', `${what}.${part} must be a hex SHA-256`);
      out[part] = f;
    }
  }
  return out;
}

/** A stored (or restored) entry, checked field by field; throws a CeruleanError with code 'bad-input'. */
export function checkSecurityLogEntry(x: unknown): SecurityLogEntry {
  const r = v.record(x, 'entry');
  const pushToken = v.bytes(r.pushToken, 'entry.pushToken');
  if (pushToken.length === 0 || pushToken.length > MAX_TOKEN_LENGTH) throw new CeruleanError('bad-input', 'entry.pushToken has a bad length');
  const common = {
    id: v.id(r.id, 'entry.id'),
    seen: v.bool(r.seen, 'entry.seen'),
    handle: v.handle(r.handle, 'entry.handle'),
    pushToken,
    own: v.bool(r.own, 'entry.own'),
    at: v.time(r.at, 'entry.at'),
  };
  const kind = v.oneOf(r.kind, 'entry.kind', ['new-device', 'key-changed'] as const);
  if (kind === 'new-device') {
    const deviceName = v.optional(r.deviceName, (n) => v.text(n, 'entry.deviceName'));
    return { kind, ...common, ...(deviceName !== undefined && { deviceName }) };
  }
  return {
    kind,
    ...common,
    changed: v.array(r.changed, 'entry.changed').map((p, i) => v.oneOf(p, `entry.changed[${i}]`, KEY_PARTS)),
    before: fingerprints(r.before, 'entry.before'),
    after: fingerprints(r.after, 'entry.after'),
    wasVerified: v.bool(r.wasVerified, 'entry.wasVerified'),
  };
}

/** Each store gets one queue of log changes, however many SecurityLogs are made over it. */
const queues = new WeakMap<ClientStore, Promise<unknown>>();

function exclusive<T>(store: ClientStore, body: () => Promise<T>): Promise<T> {
  const run = (queues.get(store) ?? Promise.resolve()).then(body, body);
  queues.set(store, run.catch(() => undefined));
  return run;
}

/** Newest first; equal times keep their order. */
function newestFirst(entries: SecurityLogEntry[]): SecurityLogEntry[] {
  return entries
    .map((e, i) => [e, i] as const)
    .sort(([a, i], [b, j]) => b.at - a.at || i - j)
    .map(([e]) => e)
    .slice(0, SECURITY_LOG_LIMIT);
}

export class SecurityLog {
  constructor(private readonly store: ClientStore) {}

  /** Newest first. */
  async list(): Promise<SecurityLogEntry[]> {
    return this.read();
  }

  /** Adds events as unseen entries (events already logged are not added again); returns the new entries. */
  record(events: readonly SecurityEvent[]): Promise<SecurityLogEntry[]> {
    return exclusive(this.store, async () => {
      const log = await this.read();
      const known = new Set(log.map((e) => e.id));
      const fresh: SecurityLogEntry[] = [];
      for (const e of events) {
        const id = securityEventId(e);
        if (known.has(id)) continue;
        known.add(id);
        fresh.push({ ...e, id, seen: false });
      }
      if (fresh.length > 0) await this.write([...fresh, ...log]);
      return fresh;
    });
  }

  markSeen(ids: readonly string[]): Promise<void> {
    const wanted = new Set(ids);
    return exclusive(this.store, async () => {
      const log = await this.read();
      if (!log.some((e) => wanted.has(e.id) && !e.seen)) return;
      await this.write(log.map((e) => (wanted.has(e.id) ? { ...e, seen: true } : e)));
    });
  }

  /** Merges entries from a backup (checked first); ids already logged keep their local entry. Returns how many were added. */
  async restore(entries: readonly unknown[]): Promise<number> {
    const checked = entries.map(checkSecurityLogEntry);
    return exclusive(this.store, async () => {
      const log = await this.read();
      const known = new Set(log.map((e) => e.id));
      const fresh: SecurityLogEntry[] = [];
      for (const e of checked) {
        if (known.has(e.id)) continue;
        known.add(e.id);
        fresh.push(e);
      }
      if (fresh.length === 0) return 0;
      const merged = newestFirst([...log, ...fresh]);
      await this.write(merged);
      return fresh.filter((e) => merged.includes(e)).length;
    });
  }

  /** The stored log; an entry that does not check out is dropped rather than breaking the whole list. */
  private async read(): Promise<SecurityLogEntry[]> {
    const stored = await this.store.kv.get(LOG_KEY);
    if (!Array.isArray(stored)) return [];
    const out: SecurityLogEntry[] = [];
    for (const x of stored) {
      try {
        out.push(checkSecurityLogEntry(x));
      } catch {
        // Left out; the next write drops it for good.
      }
    }
    return out;
  }

  private write(log: SecurityLogEntry[]): Promise<void> {
    return this.store.kv.set(LOG_KEY, newestFirst(log) as unknown as StorableValue);
  }
}
