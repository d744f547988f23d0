// Private keys are non-extractable by default everywhere; the `extractable` option exists only so the Node
// headless client can wrap keys for its file store.
import { describe, expect, it } from 'vitest';
import { generateLegacyIdentity } from '../../../lib/crypto/identity-legacy';
import { generateNgmIdentity } from '../../../lib/crypto/identity-ngm';
import { subtle } from '../../../lib/crypto/subtle';
import { generateAuthKey } from '../../../lib/ids/auth-cert';

const exportable = (key: CryptoKey) => subtle().exportKey('pkcs8', key).then(() => true, () => false);

describe('the extractable option', () => {
  it('is off by default and exports only when asked', async () => {
    const [legacy, legacyX, ngm, ngmX, auth, authX] = await Promise.all([
      generateLegacyIdentity(),
      generateLegacyIdentity({ extractable: true }),
      generateNgmIdentity(undefined),
      generateNgmIdentity(undefined, { extractable: true }),
      generateAuthKey(),
      generateAuthKey({ extractable: true }),
    ]);
    for (const key of [legacy.signing.privateKey, legacy.encryption.privateKey, ngm.deviceKey.privateKey, ngm.prekey.privateKey, auth.privateKey]) {
      expect(await exportable(key)).toBe(false);
    }
    for (const key of [legacyX.signing.privateKey, legacyX.encryption.privateKey, ngmX.deviceKey.privateKey, ngmX.prekey.privateKey, authX.privateKey]) {
      expect(await exportable(key)).toBe(true);
    }
  });
});
