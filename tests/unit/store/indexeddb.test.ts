// The IndexedDB store. Node has no IndexedDB, so this file only runs in Chromium (and skips itself in Node): the
// conformance suite, CryptoKeys stored as keys (non-extractable ones stay so), schema upgrades, and other tabs.
import { deleteDB, openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { generateLegacyIdentity } from '../../../lib/crypto/identity-legacy';
import { generateNgmIdentity } from '../../../lib/crypto/identity-ngm';
import { subtle } from '../../../lib/crypto/subtle';
import { runStoreConformance } from './conformance';
import { StoreError } from '../../../lib/store/errors';
import { openIndexedDbStore } from '../../../lib/store/indexeddb';
import { SCHEMA } from '../../../lib/store/schema';
import { upgradeFixture, withBrokenUpgrade, withPinned } from './schema-v2';

const hasIndexedDb = typeof globalThis.indexedDB !== 'undefined';
let counter = 0;
function freshName(): string {
  return `cerulean-test-${Date.now()}-${counter++}`;
}

const ACCOUNT = { id: 'me', userIds: ['P:me'], handles: ['mailto:me@example.com'], authCertificates: [], idCertificates: [], createdAt: 1, updatedAt: 1 };
const SIGN: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

describe.skipIf(!hasIndexedDb)('IndexedDB store', () => {
  runStoreConformance(async () => {
    const name = freshName();
    return { store: await openIndexedDbStore({ name }), reopen: () => openIndexedDbStore({ name }) };
  });

  it('stores a non-extractable key that still signs after a reopen and still cannot be exported', async () => {
    const name = freshName();
    let store = await openIndexedDbStore({ name });
    const pair = (await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    await expect(subtle().exportKey('pkcs8', pair.privateKey)).rejects.toThrow();
    const [legacy, ngm] = await Promise.all([generateLegacyIdentity(), generateNgmIdentity(1_700_000_000)]);
    await store.accounts.put({ ...ACCOUNT, authKey: pair });
    await store.keys.put({
      accountId: 'me',
      legacy: { signing: legacy.signing, encryption: legacy.encryption, blob: legacy.publicKey.blob, hash: legacy.publicKey.hash },
      ngm,
      updatedAt: 1,
    });
    await store.close();

    store = await openIndexedDbStore({ name });
    const back = (await store.accounts.get('me'))!.authKey!;
    expect(back.privateKey.extractable).toBe(false);
    const data = new Uint8Array([7, 7, 7]);
    const sig = await subtle().sign(SIGN, back.privateKey, data);
    expect(await subtle().verify(SIGN, pair.publicKey, sig, data)).toBe(true);
    await expect(subtle().exportKey('pkcs8', back.privateKey)).rejects.toThrow();
    await expect(subtle().exportKey('jwk', back.privateKey)).rejects.toThrow();

    const keys = (await store.keys.get('me'))!;
    for (const k of [keys.legacy!.signing.privateKey, keys.legacy!.encryption.privateKey, keys.ngm!.deviceKey.privateKey, keys.ngm!.prekey.privateKey]) {
      expect(k.extractable).toBe(false);
      await expect(subtle().exportKey('pkcs8', k)).rejects.toThrow();
    }
    expect(keys.ngm!.publicDevicePrekey).toEqual(ngm.publicDevicePrekey);
    const ngmSig = await subtle().sign(SIGN, keys.ngm!.deviceKey.privateKey, data);
    expect(await subtle().verify(SIGN, ngm.deviceKey.publicKey, ngmSig, data)).toBe(true);
    await store.destroy();
  });

  it('upgrades a v1 database to v2: new index, rewritten records', async () => {
    const name = freshName();
    const v1 = await openIndexedDbStore({ name });
    await upgradeFixture.write(v1);
    await v1.close();
    const v2 = await openIndexedDbStore({ name, schema: withPinned });
    expect(v2.schemaVersion).toBe(2);
    await upgradeFixture.check(v2, true);
    await v2.close();

    const raw = await openDB(name);
    expect(raw.version).toBe(2);
    const bySender = await raw.transaction('messages').store.index('by-sender').getAll('tel:+15550001111');
    expect(bySender.map((m: { uuid: string }) => m.uuid).sort()).toEqual(upgradeFixture.uuids);
    raw.close();

    await expect(openIndexedDbStore({ name, schema: SCHEMA })).rejects.toMatchObject({ code: 'too-new' });
    await deleteDB(name);
  });

  it('leaves the database at v1 when an upgrade step throws', async () => {
    const name = freshName();
    const v1 = await openIndexedDbStore({ name });
    await upgradeFixture.write(v1);
    await v1.close();
    await expect(openIndexedDbStore({ name, schema: withBrokenUpgrade })).rejects.toMatchObject({ code: 'migration-failed' });
    const again = await openIndexedDbStore({ name });
    expect(again.schemaVersion).toBe(1);
    await upgradeFixture.check(again, false);
    const raw = await openDB(name);
    expect(raw.transaction('messages').store.indexNames.contains('by-sender')).toBe(false);
    raw.close();
    await again.destroy();
  });

  it('steps aside when another tab deletes the database', async () => {
    const name = freshName();
    const store = await openIndexedDbStore({ name });
    await store.kv.set('k', 1);
    await deleteDB(name);
    const e = await store.kv.get('k').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreError);
    expect((e as StoreError).code).toBe('closed');
  });
});
