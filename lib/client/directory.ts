// The engine's IdentityDirectory over real IDS lookups (lib/ids lookup through the courier). Answers are cached in
// memory per (querying handle, looked-up handle), because session tokens are bound to both; the ones asked from the
// handle this device sends from are also kept in the store's lookup cache, so a restart does not look everyone up
// again. Every answer from the network goes through devices.recordLookup, which turns new devices and changed keys
// into security events (imessage.md §9).
import type { PlistDict } from '../codec/plist';
import { EMPTY_RESULT_TTL_MS, lookup, type LookupIdentity, type LookupTransport, type QueryResult } from '../ids/query';
import { IdsError } from '../ids/errors';
import { parsePeerIdentities } from '../imessage/peer-identity';
import { handleKey, type EngineLog, type IdentityDirectory, type PeerIdentity } from '../imessage/ports';
import type { CachedIdentity, ClientStore, DeviceObservation, LookupCacheEntry, SecurityEvent } from '../store/types';
import { describe } from './events';

/** What lookups from one own handle are signed with (ids.md §7.1). */
export interface LookupSigner {
  idCert: Uint8Array;
  authPrivateKey: CryptoKey;
  pushToken: Uint8Array;
  queryUrl: string;
  userAgent: string;
}

export interface DirectoryDeps {
  store: ClientStore;
  transport: LookupTransport;
  /** Credentials for lookups from `selfUri`; throws when it is not a registered own handle. */
  signer(selfUri: string): Promise<LookupSigner>;
  /** The handle whose answers are persisted: the one this device sends from. */
  primaryHandle(): string | undefined;
  onSecurityEvents(events: SecurityEvent[]): void;
  now(): number;
  log: EngineLog;
  timeoutMs?: number;
}

interface Entry {
  identities: PeerIdentity[];
  refreshAt: number;
  expiresAt: number;
}

const CD_IDENTITY_KEY = 'public-message-identity-key';
const CD_PREKEY = 'public-message-ngm-device-prekey-data-key';
const CD_NGM_IDENTITY = 'ngm-public-identity';
const MAX_MEMORY_ENTRIES = 5000;

export class ClientDirectory implements IdentityDirectory {
  private readonly memory = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<PeerIdentity[]>>();
  /** Handles invalidated since their last answer: the persisted copy must not be trusted either. */
  private readonly dropped = new Set<string>();

  constructor(private readonly deps: DirectoryDeps) {}

  async lookup(selfUri: string, handles: string[], opts?: { force?: boolean }): Promise<Map<string, PeerIdentity[]>> {
    const now = this.deps.now();
    const out = new Map<string, PeerIdentity[]>();
    const stale = new Map<string, PeerIdentity[]>();
    const missing: string[] = [];
    for (const handle of unique(handles)) {
      if (!opts?.force) {
        const hit = this.memory.get(entryKey(selfUri, handle)) ?? (await this.fromStore(selfUri, handle, now));
        if (hit && now < hit.expiresAt) {
          if (now < hit.refreshAt) {
            out.set(handle, hit.identities);
            continue;
          }
          stale.set(handle, hit.identities);
        }
      }
      missing.push(handle);
    }
    if (missing.length === 0) return out;
    try {
      for (const [handle, identities] of await this.fetch(selfUri, missing)) out.set(handle, identities);
    } catch (e) {
      // A refresh that fails leaves unexpired answers usable, unless our own credentials are dead.
      const ownProblem = e instanceof IdsError && e.code === 'auth-expired';
      if (ownProblem || !missing.every((h) => stale.has(h))) throw e;
      this.deps.log.warn('client.lookup-stale-used', { handles: missing.length, error: describe(e) });
      for (const handle of missing) out.set(handle, stale.get(handle)!);
    }
    return out;
  }

  invalidate(handle: string): void {
    const suffix = `|${handleKey(handle)}`;
    for (const key of [...this.memory.keys()]) if (key.endsWith(suffix)) this.memory.delete(key);
    this.dropped.add(handleKey(handle));
    this.deps.store.lookupCache.invalidate(handle).catch((e: unknown) => this.deps.log.warn('client.cache-invalidate-failed', { error: describe(e) }));
  }

  /** Forgets every answer (the own push token or handles changed). */
  async clear(): Promise<void> {
    this.memory.clear();
    await this.deps.store.lookupCache.clear();
  }

  /** Handles being asked for already share that request; the rest go out as one batched lookup. */
  private async fetch(selfUri: string, handles: string[]): Promise<Map<string, PeerIdentity[]>> {
    const waits: Array<Promise<[string, PeerIdentity[]]>> = [];
    const ask: string[] = [];
    for (const handle of handles) {
      const pending = this.inflight.get(entryKey(selfUri, handle));
      if (pending) waits.push(pending.then((ids) => [handle, ids]));
      else ask.push(handle);
    }
    if (ask.length > 0) {
      const batch = this.query(selfUri, ask);
      for (const handle of ask) {
        const key = entryKey(selfUri, handle);
        const one = batch.then((m) => m.get(handle) ?? []);
        this.inflight.set(key, one);
        one.then(
          () => this.inflight.get(key) === one && this.inflight.delete(key),
          () => this.inflight.get(key) === one && this.inflight.delete(key),
        );
        waits.push(one.then((ids) => [handle, ids]));
      }
    }
    return new Map(await Promise.all(waits));
  }

  private async query(selfUri: string, handles: string[]): Promise<Map<string, PeerIdentity[]>> {
    const signer = await this.deps.signer(selfUri);
    const results = await lookup(handles, {
      selfUri,
      idCert: signer.idCert,
      authPrivateKey: signer.authPrivateKey,
      pushToken: signer.pushToken,
      queryUrl: signer.queryUrl,
      userAgent: signer.userAgent,
      ...this.deps.transport,
      ...(this.deps.timeoutMs !== undefined ? { timeoutMs: this.deps.timeoutMs } : {}),
      forceRefresh: true,
    });
    const now = this.deps.now();
    const persist = this.isPrimary(selfUri);
    const out = new Map<string, PeerIdentity[]>();
    for (const handle of handles) {
      const result: QueryResult = results.get(handle) ?? { identities: [] };
      const identities = await parsePeerIdentities(handle, result.identities.map(lookupIdentityDict), this.deps.log);
      const { refreshAt, expiresAt } = lifetimes(result, now);
      this.remember(entryKey(selfUri, handle), { identities, refreshAt, expiresAt });
      if (persist) {
        this.dropped.delete(handleKey(handle));
        await this.deps.store.lookupCache.put(cacheEntry(handle, result, now, refreshAt, expiresAt));
      }
      const events = await this.deps.store.devices.recordLookup(handle, result.identities.map(observation), now);
      if (events.length > 0) this.deps.onSecurityEvents(events);
      out.set(handle, identities);
    }
    return out;
  }

  private async fromStore(selfUri: string, handle: string, now: number): Promise<Entry | undefined> {
    if (!this.isPrimary(selfUri) || this.dropped.has(handleKey(handle))) return undefined;
    const cached = await this.deps.store.lookupCache.get(handle, now);
    if (!cached) return undefined;
    const identities = await parsePeerIdentities(handle, cached.entry.identities.map(cachedIdentityDict), this.deps.log);
    const entry = { identities, refreshAt: cached.entry.softExpiresAt, expiresAt: cached.entry.hardExpiresAt };
    this.remember(entryKey(selfUri, handle), entry);
    return entry;
  }

  private remember(key: string, entry: Entry): void {
    this.memory.delete(key);
    this.memory.set(key, entry);
    if (this.memory.size > MAX_MEMORY_ENTRIES) this.memory.delete(this.memory.keys().next().value!);
  }

  private isPrimary(selfUri: string): boolean {
    const primary = this.deps.primaryHandle();
    return primary !== undefined && handleKey(primary) === handleKey(selfUri);
  }
}

function entryKey(selfUri: string, handle: string): string {
  return `${handleKey(selfUri)}|${handleKey(handle)}`;
}

function unique(handles: readonly string[]): string[] {
  const seen = new Set<string>();
  return handles.filter((h) => !seen.has(handleKey(h)) && seen.add(handleKey(h)));
}

/** Soft TTL = the smallest refresh-seconds, hard TTL = the smallest expires-seconds; empty answers live an hour. */
function lifetimes(result: QueryResult, now: number): { refreshAt: number; expiresAt: number } {
  if (result.identities.length === 0) return { refreshAt: now + EMPTY_RESULT_TTL_MS, expiresAt: now + EMPTY_RESULT_TTL_MS };
  const expiresAt = now + Math.min(...result.identities.map((i) => i.sessionTokenExpiresSeconds)) * 1000;
  const refreshAt = Math.min(now + Math.min(...result.identities.map((i) => i.sessionTokenRefreshSeconds)) * 1000, expiresAt);
  return { refreshAt, expiresAt };
}

/** A parsed lookup identity back in the wire shape parsePeerIdentity reads. */
function lookupIdentityDict(i: LookupIdentity): PlistDict {
  const dict: PlistDict = { 'push-token': i.pushToken, 'session-token': i.sessionToken, 'client-data': i.clientData };
  if (i.ktLoggableData) dict['kt-loggable-data'] = i.ktLoggableData;
  return dict;
}

function cachedIdentityDict(i: CachedIdentity): PlistDict {
  const clientData: PlistDict = {};
  if (i.identityKey) clientData[CD_IDENTITY_KEY] = i.identityKey;
  if (i.publicDevicePrekey) clientData[CD_PREKEY] = i.publicDevicePrekey;
  if (i.ngmPublicIdentity) clientData[CD_NGM_IDENTITY] = i.ngmPublicIdentity;
  const dict: PlistDict = { 'push-token': i.pushToken, 'session-token': i.sessionToken, 'client-data': clientData };
  if (i.ktLoggableData) dict['kt-loggable-data'] = i.ktLoggableData;
  return dict;
}

function dataOf(dict: PlistDict, key: string): Uint8Array | undefined {
  const v = Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : undefined;
  return v instanceof Uint8Array && v.length > 0 ? v : undefined;
}

function cacheEntry(handle: string, result: QueryResult, now: number, refreshAt: number, expiresAt: number): LookupCacheEntry {
  const identities = result.identities.map((i): CachedIdentity => {
    const c: CachedIdentity = {
      pushToken: i.pushToken,
      sessionToken: i.sessionToken,
      sessionTokenExpiresAt: now + i.sessionTokenExpiresSeconds * 1000,
      identityKey: i.publicMessageIdentityKey,
    };
    const prekey = dataOf(i.clientData, CD_PREKEY);
    const ngmIdentity = dataOf(i.clientData, CD_NGM_IDENTITY);
    if (prekey) c.publicDevicePrekey = prekey;
    if (ngmIdentity) c.ngmPublicIdentity = ngmIdentity;
    if (i.ktLoggableData) c.ktLoggableData = i.ktLoggableData;
    if (i.deviceName !== undefined) c.deviceName = i.deviceName;
    return c;
  });
  return { handle, identities, fetchedAt: now, softExpiresAt: refreshAt, hardExpiresAt: expiresAt };
}

/** What change detection compares: the identity key, the NGM device key (as logged) and the signed prekey. */
function observation(i: LookupIdentity): DeviceObservation {
  const o: DeviceObservation = { pushToken: i.pushToken, identityKey: i.publicMessageIdentityKey };
  const device = i.ktLoggableData ?? dataOf(i.clientData, CD_NGM_IDENTITY);
  const prekey = dataOf(i.clientData, CD_PREKEY);
  if (device) o.ngmDeviceKey = device;
  if (prekey) o.ngmPrekey = prekey;
  if (i.deviceName !== undefined) o.deviceName = i.deviceName;
  return o;
}
