// What lookups taught us: every device seen per handle (for new-device and key-change alerts, first-seen times
// and verification marks) and the lookup cache that saves a lookup per send.
import { toHex } from '../codec/bytes';
import type { StoreBackend } from './backend';
import { StoreError } from './errors';
import { deviceId, diffLookup } from './security-events';
import type {
  AccountRecord,
  CachedIdentity,
  DeviceObservation,
  DeviceRecord,
  DevicesApi,
  LookupCacheApi,
  LookupCacheEntry,
} from './types';
import * as v from './validate';

const MAX_TOKEN_LENGTH = 256;

function token(x: unknown, what: string): Uint8Array {
  const b = v.bytes(x, what);
  if (b.length === 0 || b.length > MAX_TOKEN_LENGTH) throw new StoreError('bad-input', `${what} must be 1–${MAX_TOKEN_LENGTH} bytes`);
  return b;
}

function optionalBytes(x: unknown, what: string): Uint8Array | undefined {
  return v.optional(x, (b) => v.bytes(b, what));
}

function checkObservation(x: unknown, what: string): DeviceObservation {
  const r = v.record(x, what);
  const o: DeviceObservation = { pushToken: token(r.pushToken, `${what}.pushToken`) };
  const identityKey = optionalBytes(r.identityKey, `${what}.identityKey`);
  const ngmDeviceKey = optionalBytes(r.ngmDeviceKey, `${what}.ngmDeviceKey`);
  const ngmPrekey = optionalBytes(r.ngmPrekey, `${what}.ngmPrekey`);
  const deviceName = v.optional(r.deviceName, (n) => v.text(n, `${what}.deviceName`));
  return {
    ...o,
    ...(identityKey && { identityKey }),
    ...(ngmDeviceKey && { ngmDeviceKey }),
    ...(ngmPrekey && { ngmPrekey }),
    ...(deviceName !== undefined && { deviceName }),
  };
}

function checkCachedIdentity(x: unknown, what: string): CachedIdentity {
  const r = v.record(x, what);
  const out: CachedIdentity = {
    pushToken: token(r.pushToken, `${what}.pushToken`),
    sessionToken: v.bytes(r.sessionToken, `${what}.sessionToken`),
  };
  const expires = v.optional(r.sessionTokenExpiresAt, (t) => v.time(t, `${what}.sessionTokenExpiresAt`));
  if (expires !== undefined) out.sessionTokenExpiresAt = expires;
  for (const field of ['identityKey', 'publicDevicePrekey', 'ktLoggableData', 'ngmPublicIdentity'] as const) {
    const b = optionalBytes(r[field], `${what}.${field}`);
    if (b) out[field] = b;
  }
  const deviceName = v.optional(r.deviceName, (n) => v.text(n, `${what}.deviceName`));
  if (deviceName !== undefined) out.deviceName = deviceName;
  return out;
}

function checkEntry(x: unknown): LookupCacheEntry {
  const r = v.record(x, 'entry');
  const entry: LookupCacheEntry = {
    handle: v.handle(r.handle, 'entry.handle'),
    identities: v.array(r.identities, 'entry.identities').map((i, n) => checkCachedIdentity(i, `entry.identities[${n}]`)),
    fetchedAt: v.time(r.fetchedAt, 'entry.fetchedAt'),
    softExpiresAt: v.time(r.softExpiresAt, 'entry.softExpiresAt'),
    hardExpiresAt: v.time(r.hardExpiresAt, 'entry.hardExpiresAt'),
  };
  if (entry.softExpiresAt > entry.hardExpiresAt) throw new StoreError('bad-input', 'entry.softExpiresAt is after hardExpiresAt');
  return entry;
}

function byHandle(handle: string) {
  return { range: { lower: handle, upper: handle } };
}

export function devicesApi(db: StoreBackend): DevicesApi {
  function getDevice(handle: string, pushToken: Uint8Array): Promise<DeviceRecord | undefined> {
    return db.transact(['devices'], 'readonly', (tx) => tx.get('devices', deviceId(handle, pushToken)));
  }

  return {
    async recordLookup(handle, observed, at = Date.now()) {
      const h = v.handle(handle, 'handle');
      const list = v.array(observed, 'observed').map((o, i) => checkObservation(o, `observed[${i}]`));
      const when = v.time(at, 'at');
      return db.transact(['accounts', 'devices'], 'readwrite', async (tx) => {
        const accounts = await tx.all('accounts');
        const ownHandles = new Set(accounts.flatMap((a) => a.handles));
        const selfTokens = new Set(accounts.flatMap((a) => (a.push?.token ? [toHex(a.push.token)] : [])));
        const own = ownHandles.has(h);
        const known = await tx.query('devices', 'by-handle', byHandle(h));
        const seenTokens = new Set(known.map((d) => toHex(d.pushToken)));
        if (own) {
          for (const other of ownHandles) {
            if (other === h) continue;
            for (const d of await tx.query('devices', 'by-handle', byHandle(other))) seenTokens.add(toHex(d.pushToken));
          }
        }
        const { events, records } = diffLookup({ handle: h, own, known, seenTokens, selfTokens, observed: list, at: when });
        for (const r of records) await tx.put('devices', r);
        return events;
      });
    },

    async list(handle) {
      const h = v.handle(handle, 'handle');
      return db.transact(['devices'], 'readonly', async (tx) => {
        const rows = await tx.query('devices', 'by-handle', byHandle(h));
        return rows.sort((a, b) => a.firstSeen - b.firstSeen || (a.id < b.id ? -1 : 1));
      });
    },

    async get(handle, pushToken) {
      return getDevice(v.handle(handle, 'handle'), token(pushToken, 'pushToken'));
    },

    async setVerified(handle, pushToken, verified) {
      const key = deviceId(v.handle(handle, 'handle'), token(pushToken, 'pushToken'));
      const flag = v.bool(verified, 'verified');
      return db.transact(['devices'], 'readwrite', async (tx) => {
        const d = await tx.get('devices', key);
        if (!d) throw new StoreError('not-found', 'no such device');
        const next = { ...d, verified: flag };
        await tx.put('devices', next);
        return next;
      });
    },

    async forget(handle) {
      const h = v.handle(handle, 'handle');
      return db.transact(['devices'], 'readwrite', async (tx) => {
        for (const d of await tx.query('devices', 'by-handle', byHandle(h))) await tx.delete('devices', d.id);
      });
    },
  };
}

export function lookupCacheApi(db: StoreBackend): LookupCacheApi {
  return {
    async get(handle, now) {
      const h = v.handle(handle, 'handle');
      const when = v.time(now, 'now');
      return db.transact(['lookupCache'], 'readonly', async (tx) => {
        const entry = await tx.get('lookupCache', h);
        if (!entry || when >= entry.hardExpiresAt) return undefined;
        return { entry, stale: when >= entry.softExpiresAt };
      });
    },

    async put(entry) {
      const e = checkEntry(entry);
      return db.transact(['lookupCache'], 'readwrite', (tx) => tx.put('lookupCache', e));
    },

    async invalidate(handle) {
      const h = v.handle(handle, 'handle');
      return db.transact(['lookupCache'], 'readwrite', (tx) => tx.delete('lookupCache', h));
    },

    async clear() {
      return db.transact(['lookupCache'], 'readwrite', (tx) => tx.clear('lookupCache'));
    },

    async purgeExpired(now) {
      const when = v.time(now, 'now');
      return db.transact(['lookupCache'], 'readwrite', async (tx) => {
        const expired = await tx.query('lookupCache', 'by-hard-expiry', { range: { upper: when } });
        for (const e of expired) await tx.delete('lookupCache', e.handle);
        return expired.length;
      });
    },
  };
}
