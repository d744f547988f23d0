// A KeyVault for the headless client's file store that can also keep non-extractable keys. lib/client makes every
// private key non-extractable, as in the browser; WebCrypto then refuses to export it, but Node's KeyObject.from()
// reaches the key material of any CryptoKey. The bytes are re-imported as a short-lived extractable copy only to be
// wrapped by the passphrase vault (AES-GCM under PBKDF2), and keys come back non-extractable when the store opens.
// This is Node-only by nature: in a browser, IndexedDB stores the CryptoKey objects themselves.
import { KeyObject } from 'node:crypto';
import { passphraseKeyVault, type KeyVault } from '../lib/store/key-vault';

export function nodeKeyVault(passphrase: string, options: { iterations?: number } = {}): KeyVault {
  const inner = passphraseKeyVault(passphrase, options);
  return {
    async wrap(key) {
      if (key.type !== 'private' || key.extractable) return inner.wrap(key);
      const pkcs8 = KeyObject.from(key).export({ format: 'der', type: 'pkcs8' });
      const copy = await crypto.subtle.importKey('pkcs8', new Uint8Array(pkcs8), key.algorithm as Algorithm, true, key.usages);
      return inner.wrap(copy);
    },
    unwrap: (wrapped) => inner.unwrap(wrapped),
  };
}
