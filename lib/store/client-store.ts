// ClientStore over any StoreBackend: argument checks, then one backend transaction per call. The back ends only
// store records; every rule (de-duplication, status order, unread counts, lease logic, change detection) is here,
// so IndexedDB and the file store behave identically.
import type { DeviceInfo } from '../ids/device';
import type { StoreBackend } from './backend';
import { chatsApi, messagesApi, outboxApi } from './conversations';
import { devicesApi, lookupCacheApi } from './device-registry';
import { StoreError } from './errors';
import { toStorable } from './storable';
import type {
  AccountRecord,
  AccountsApi,
  ClientStore,
  CounterRecord,
  CountersApi,
  IdentityKeys,
  IdsCredential,
  KeysApi,
  KvApi,
  LegacyKeys,
  NgmKeys,
  PushCredentials,
  StorableValue,
} from './types';
import * as v from './validate';

const MAX_COUNTER = 0xffffffff;

function optionalText(x: unknown, what: string): string | undefined {
  return v.optional(x, (t) => v.text(t, what));
}

function checkCredential(x: unknown, what: string): IdsCredential {
  const r = v.record(x, what);
  return {
    userId: v.id(r.userId, `${what}.userId`),
    certificate: v.bytes(r.certificate, `${what}.certificate`),
    notAfter: v.time(r.notAfter, `${what}.notAfter`),
  };
}

function credentials(x: unknown, what: string): IdsCredential[] {
  return v.array(x, what).map((c, i) => checkCredential(c, `${what}[${i}]`));
}

function checkDevice(x: unknown): DeviceInfo {
  const r = v.record(x, 'account.device');
  const d: DeviceInfo = {
    deviceName: v.text(r.deviceName, 'account.device.deviceName'),
    hardwareVersion: v.text(r.hardwareVersion, 'account.device.hardwareVersion'),
    softwareName: v.text(r.softwareName, 'account.device.softwareName'),
    softwareVersion: v.text(r.softwareVersion, 'account.device.softwareVersion'),
    softwareBuildId: v.text(r.softwareBuildId, 'account.device.softwareBuildId'),
    uuid: v.text(r.uuid, 'account.device.uuid'),
    setupAt: v.time(r.setupAt, 'account.device.setupAt'),
  };
  const language = optionalText(r.language, 'account.device.language');
  return language === undefined ? d : { ...d, language };
}

function checkPush(x: unknown): PushCredentials {
  const r = v.record(x, 'account.push');
  const token = v.optional(r.token, (t) => v.bytes(t, 'account.push.token', 32));
  return {
    keyPair: v.keyPair(r.keyPair, 'account.push.keyPair'),
    certificate: v.bytes(r.certificate, 'account.push.certificate'),
    ...(token && { token }),
  };
}

function checkAccount(x: unknown): AccountRecord {
  const r = v.record(x, 'account');
  const a: AccountRecord = {
    id: v.id(r.id, 'account.id'),
    userIds: v.array(r.userIds, 'account.userIds').map((u, i) => v.id(u, `account.userIds[${i}]`)),
    handles: [...new Set(v.handles(r.handles, 'account.handles'))],
    authCertificates: credentials(r.authCertificates, 'account.authCertificates'),
    idCertificates: credentials(r.idCertificates, 'account.idCertificates'),
    createdAt: v.time(r.createdAt, 'account.createdAt'),
    updatedAt: v.time(r.updatedAt, 'account.updatedAt'),
  };
  const appleId = optionalText(r.appleId, 'account.appleId');
  const profileId = optionalText(r.profileId, 'account.profileId');
  const phoneNumber = optionalText(r.phoneNumber, 'account.phoneNumber');
  const authKey = v.optional(r.authKey, (k) => v.keyPair(k, 'account.authKey'));
  const push = v.optional(r.push, checkPush);
  const registrationExpiresAt = v.optional(r.registrationExpiresAt, (t) => v.time(t, 'account.registrationExpiresAt'));
  const device = v.optional(r.device, checkDevice);
  return {
    ...a,
    ...(appleId !== undefined && { appleId }),
    ...(profileId !== undefined && { profileId }),
    ...(phoneNumber !== undefined && { phoneNumber }),
    ...(authKey && { authKey }),
    ...(push && { push }),
    ...(registrationExpiresAt !== undefined && { registrationExpiresAt }),
    ...(device && { device }),
  };
}

function checkLegacy(x: unknown): LegacyKeys {
  const r = v.record(x, 'keys.legacy');
  return {
    signing: v.keyPair(r.signing, 'keys.legacy.signing'),
    encryption: v.keyPair(r.encryption, 'keys.legacy.encryption'),
    blob: v.bytes(r.blob, 'keys.legacy.blob'),
    hash: v.bytes(r.hash, 'keys.legacy.hash', 32),
  };
}

function checkNgm(x: unknown): NgmKeys {
  const r = v.record(x, 'keys.ngm');
  return {
    deviceKey: v.keyPair(r.deviceKey, 'keys.ngm.deviceKey'),
    prekey: v.keyPair(r.prekey, 'keys.ngm.prekey'),
    deviceCompact: v.bytes(r.deviceCompact, 'keys.ngm.deviceCompact', 32),
    prekeyCompact: v.bytes(r.prekeyCompact, 'keys.ngm.prekeyCompact', 32),
    prekeyTimestamp: v.finite(r.prekeyTimestamp, 'keys.ngm.prekeyTimestamp'),
    publicDevicePrekey: v.bytes(r.publicDevicePrekey, 'keys.ngm.publicDevicePrekey'),
    ktLoggableData: v.bytes(r.ktLoggableData, 'keys.ngm.ktLoggableData'),
  };
}

function checkKeys(x: unknown): IdentityKeys {
  const r = v.record(x, 'keys');
  const legacy = v.optional(r.legacy, checkLegacy);
  const ngm = v.optional(r.ngm, checkNgm);
  return {
    accountId: v.id(r.accountId, 'keys.accountId'),
    ...(legacy && { legacy }),
    ...(ngm && { ngm }),
    updatedAt: v.time(r.updatedAt, 'keys.updatedAt'),
  };
}

function accountsApi(db: StoreBackend): AccountsApi {
  return {
    async put(account) {
      const a = checkAccount(account);
      return db.transact(['accounts'], 'readwrite', (tx) => tx.put('accounts', a));
    },
    async get(id) {
      const key = v.id(id, 'account id');
      return db.transact(['accounts'], 'readonly', (tx) => tx.get('accounts', key));
    },
    async list() {
      return db.transact(['accounts'], 'readonly', (tx) => tx.all('accounts'));
    },
    async delete(id) {
      const key = v.id(id, 'account id');
      return db.transact(['accounts', 'keys'], 'readwrite', async (tx) => {
        if (!(await tx.get('accounts', key))) throw new StoreError('not-found', 'no such account');
        await tx.delete('accounts', key);
        await tx.delete('keys', key);
      });
    },
  };
}

function keysApi(db: StoreBackend): KeysApi {
  return {
    async put(keys) {
      const k = checkKeys(keys);
      return db.transact(['accounts', 'keys'], 'readwrite', async (tx) => {
        if (!(await tx.get('accounts', k.accountId))) throw new StoreError('not-found', 'no such account');
        await tx.put('keys', k);
      });
    },
    async get(accountId) {
      const key = v.id(accountId, 'account id');
      return db.transact(['keys'], 'readonly', (tx) => tx.get('keys', key));
    },
    async delete(accountId) {
      const key = v.id(accountId, 'account id');
      return db.transact(['keys'], 'readwrite', async (tx) => {
        if (!(await tx.get('keys', key))) throw new StoreError('not-found', 'no keys for this account');
        await tx.delete('keys', key);
      });
    },
  };
}

function countersApi(db: StoreBackend): CountersApi {
  return {
    async next(channel) {
      const key = v.id(channel, 'channel');
      return db.transact(['counters'], 'readwrite', async (tx) => {
        const c = (await tx.get('counters', key)) ?? { channel: key, lastSent: 0 };
        // The counter is a uint32 on the wire and no receiver enforces it (imessage.md §5.5): wrap rather than stop.
        const lastSent = c.lastSent >= MAX_COUNTER ? 1 : c.lastSent + 1;
        await tx.put('counters', { ...c, lastSent });
        return lastSent;
      });
    },
    async observe(channel, counter) {
      const key = v.id(channel, 'channel');
      const n = v.count(counter, 'counter');
      if (n > MAX_COUNTER) throw new StoreError('bad-input', 'counter must be a uint32');
      return db.transact(['counters'], 'readwrite', async (tx) => {
        const c = (await tx.get('counters', key)) ?? { channel: key, lastSent: 0 };
        if (c.lastReceived !== undefined && n <= c.lastReceived) return 'regression';
        await tx.put('counters', { ...c, lastReceived: n });
        return 'ok';
      });
    },
    async get(channel) {
      const key = v.id(channel, 'channel');
      return db.transact(['counters'], 'readonly', (tx) => tx.get('counters', key));
    },
  };
}

function kvApi(db: StoreBackend): KvApi {
  return {
    async get(key) {
      const k = v.id(key, 'key');
      return db.transact(['kv'], 'readonly', async (tx) => (await tx.get('kv', k))?.value);
    },
    async set(key, value) {
      const k = v.id(key, 'key');
      if (value === undefined) throw new StoreError('bad-input', 'value must not be undefined (use delete)');
      const stored = toStorable(value, 'value');
      return db.transact(['kv'], 'readwrite', (tx) => tx.put('kv', { key: k, value: stored }));
    },
    async delete(key) {
      const k = v.id(key, 'key');
      return db.transact(['kv'], 'readwrite', (tx) => tx.delete('kv', k));
    },
    async keys() {
      return db.transact(['kv'], 'readonly', async (tx) => (await tx.all('kv')).map((r) => r.key));
    },
  };
}

export function createClientStore(db: StoreBackend): ClientStore {
  return {
    get schemaVersion() {
      return db.schemaVersion;
    },
    accounts: accountsApi(db),
    keys: keysApi(db),
    devices: devicesApi(db),
    chats: chatsApi(db),
    messages: messagesApi(db),
    outbox: outboxApi(db),
    lookupCache: lookupCacheApi(db),
    counters: countersApi(db),
    kv: kvApi(db),
    close: () => db.close(),
    destroy: () => db.destroy(),
  };
}
