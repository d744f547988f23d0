// The account's message identity keys: made once (non-extractable WebCrypto keys, so not even this page's script
// can export them), kept in the store, and turned back into the lib/crypto shapes the engine signs and decrypts with.
import { generateLegacyIdentity, type LegacyIdentity } from '../crypto/identity-legacy';
import { generateNgmIdentity, type NgmIdentity } from '../crypto/identity-ngm';
import type { PublishedKeys } from '../ids/register';
import type { IdentityKeys, LegacyKeys, NgmKeys } from '../store/types';
import { CeruleanError } from '../errors';

export interface DeviceKeys {
  legacy: LegacyIdentity;
  ngm: NgmIdentity;
}

export async function generateDeviceKeys(): Promise<DeviceKeys> {
  const [legacy, ngm] = await Promise.all([generateLegacyIdentity(), generateNgmIdentity()]);
  return { legacy, ngm };
}

export function toStoredKeys(accountId: string, keys: DeviceKeys, at: number): IdentityKeys {
  const legacy: LegacyKeys = {
    signing: keys.legacy.signing,
    encryption: keys.legacy.encryption,
    blob: keys.legacy.publicKey.blob,
    hash: keys.legacy.publicKey.hash,
  };
  const n = keys.ngm;
  const ngm: NgmKeys = {
    deviceKey: n.deviceKey,
    prekey: n.prekey,
    deviceCompact: n.deviceCompact,
    prekeyCompact: n.prekeyCompact,
    prekeyTimestamp: n.prekeyTimestamp,
    publicDevicePrekey: n.publicDevicePrekey,
    ktLoggableData: n.ktLoggableData,
  };
  return { accountId, legacy, ngm, updatedAt: at };
}

/** The stored keys as lib/crypto identities; the public halves are the stored public CryptoKeys. */
export function fromStoredKeys(stored: IdentityKeys): DeviceKeys {
  const { legacy, ngm } = stored;
  if (!legacy || !ngm) throw new CeruleanError('keys-missing', 'the account has no message identity keys');
  return {
    legacy: {
      signing: legacy.signing,
      encryption: legacy.encryption,
      publicKey: { signingKey: legacy.signing.publicKey, encryptionKey: legacy.encryption.publicKey, blob: legacy.blob, hash: legacy.hash },
    },
    ngm: {
      deviceKey: ngm.deviceKey,
      prekey: ngm.prekey,
      deviceCompact: new Uint8Array(ngm.deviceCompact),
      prekeyCompact: new Uint8Array(ngm.prekeyCompact),
      prekeyTimestamp: ngm.prekeyTimestamp,
      publicDevicePrekey: new Uint8Array(ngm.publicDevicePrekey),
      ktLoggableData: new Uint8Array(ngm.ktLoggableData),
    },
  };
}

/** What register publishes for these keys. */
export function publishedKeys(keys: DeviceKeys): PublishedKeys {
  return {
    legacyIdentity: keys.legacy.publicKey.blob,
    ngmDevicePrekey: keys.ngm.publicDevicePrekey,
    ktLoggableData: keys.ngm.ktLoggableData,
  };
}
