// The memory store against the shared conformance suite (in Node and in Chromium), plus its schema upgrade path.
import { describe, expect, it } from 'vitest';
import { runStoreConformance } from './conformance';
import { StoreError } from '../../../lib/store/errors';
import { MemoryStorage } from '../../../lib/store/memory-store';
import { SCHEMA } from '../../../lib/store/schema';
import { upgradeFixture, withBrokenUpgrade, withPinned } from './schema-v2';

describe('memory store', () => {
  runStoreConformance(async () => {
    const storage = new MemoryStorage();
    return { store: await storage.open(), reopen: () => storage.open() };
  });

  it('upgrades v1 data to a v2 schema and refuses to go back', async () => {
    const storage = new MemoryStorage();
    const v1 = await storage.open();
    await upgradeFixture.write(v1);
    await v1.close();
    const v2 = await storage.open(withPinned);
    expect(v2.schemaVersion).toBe(2);
    await upgradeFixture.check(v2, true);
    await v2.close();
    await expect(storage.open(SCHEMA)).rejects.toMatchObject({ code: 'too-new' });
    await expect(storage.open([])).rejects.toBeInstanceOf(StoreError);
  });

  it('leaves the data at v1 when an upgrade step throws', async () => {
    const storage = new MemoryStorage();
    const v1 = await storage.open();
    await upgradeFixture.write(v1);
    await v1.close();
    await expect(storage.open(withBrokenUpgrade)).rejects.toMatchObject({ code: 'migration-failed' });
    const again = await storage.open();
    expect(again.schemaVersion).toBe(1);
    await upgradeFixture.check(again, false);
    await again.destroy();
  });

  it('allows one open store per storage', async () => {
    const storage = new MemoryStorage();
    const s = await storage.open();
    await expect(storage.open()).rejects.toMatchObject({ code: 'locked' });
    await s.destroy();
  });
});
