// Encryption at rest for what an enrollment holds that is secret: the push private key, the push token and the Web
// Push subscription. AES-256-GCM under a 32-byte key from its own file (0600), so a copied database alone gives
// nothing away; the enrollment id is the associated data, so a sealed blob cannot be moved to another row.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ApiError, WatcherConfigError } from './errors';
import { readOrCreatePrivateFile } from './private-file';

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export class Sealer {
  private constructor(private readonly key: Buffer) {}

  /** The key in `file`, made (32 random bytes, mode 0600) on first use. */
  static fromKeyFile(file: string): Sealer {
    const key = readOrCreatePrivateFile(file, () => randomBytes(KEY_BYTES));
    if (key.length !== KEY_BYTES) throw new WatcherConfigError('bad-secret-file', `${file} must hold exactly ${KEY_BYTES} bytes`);
    return new Sealer(key);
  }

  /** version(1) ‖ nonce(12) ‖ ciphertext ‖ tag(16). */
  seal(id: string, plaintext: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(aad(id));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return new Uint8Array(Buffer.concat([Buffer.of(VERSION), nonce, body, cipher.getAuthTag()]));
  }

  /** Throws ApiError 'sealed-data-corrupt' when the blob was damaged, moved or sealed under another key. */
  open(id: string, sealed: Uint8Array): Uint8Array {
    const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (b.length < 1 + NONCE_BYTES + TAG_BYTES || b[0] !== VERSION) throw corrupt();
    const decipher = createDecipheriv('aes-256-gcm', this.key, b.subarray(1, 1 + NONCE_BYTES));
    decipher.setAAD(aad(id));
    decipher.setAuthTag(b.subarray(b.length - TAG_BYTES));
    try {
      return new Uint8Array(Buffer.concat([decipher.update(b.subarray(1 + NONCE_BYTES, b.length - TAG_BYTES)), decipher.final()]));
    } catch {
      throw corrupt();
    }
  }
}

function aad(id: string): Buffer {
  return Buffer.from(`cerulean-watcher enrollment ${id}`, 'utf8');
}

function corrupt(): ApiError {
  return new ApiError(500, 'sealed-data-corrupt', 'stored credentials do not open with this storage key');
}
