// The passphrase key vault: a fixed wrapped key (made once, written out here) still unwraps; round trips for each
// key type; tampering and the wrong passphrase fail with StoreError; non-extractable keys cannot be wrapped.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64 } from '../../../lib/codec/bytes';
import { subtle } from '../../../lib/crypto/subtle';
import { StoreError } from '../../../lib/store/errors';
import { checkWrappedKey, passphraseKeyVault, type WrappedKey } from '../../../lib/store/key-vault';

const SIGN: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

// An ECDSA P-256 private key wrapped under "vector passphrase" (PBKDF2-SHA256, 1000 rounds), and its public point.
const VECTOR: WrappedKey = {
  type: 'private',
  algorithm: { name: 'ECDSA', namedCurve: 'P-256' },
  usages: ['sign'],
  extractable: true,
  salt: fromBase64('xjSzGlpUeoPYWe6uJBGQ3A=='),
  iterations: 1000,
  iv: fromBase64('vfhiPcKTY+1YiztY'),
  data: fromBase64(
    'QT/JlhhrmRSCDd9gV767/haVJ22i1jqOS8etg4bmxJF2s13ou8wdXBY9yyn8r/as5/wl+O2PAbiyN/AXvzGfkhhLaw5/DRGXNgYvFjKqkKMmzKx3h+euSQrODub7rJDu1S3AksPiJzFXU9utOt1199OCeNkosDbDeIixTf1F2ZaVDiowH+doi2P5NNuPX0X/we6YMnMOf+fzOA==',
  ),
};
const VECTOR_PUBLIC = fromBase64('BNDvkrQqKMxGwfptCyOh/xPcEFHK00waWHfXCsmmm3p9NJ5cjyjNQ7amKfkuPIZJtTzxI5oen1l1NpynGJILFQc=');

async function signs(privateKey: CryptoKey, publicKey: CryptoKey): Promise<boolean> {
  const data = new Uint8Array([9, 8, 7]);
  return subtle().verify(SIGN, publicKey, await subtle().sign(SIGN, privateKey, data), data);
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => (e instanceof StoreError ? e.code : `not a StoreError: ${String(e)}`),
  );
}

describe('passphrase key vault', () => {
  const vault = passphraseKeyVault('vector passphrase', { iterations: 1000 });

  it('unwraps the fixed vector to a non-extractable key that signs for the known public point', async () => {
    const key = await vault.unwrap(VECTOR);
    expect(key.extractable).toBe(false);
    expect(key.usages).toEqual(['sign']);
    const pub = await subtle().importKey('raw', new Uint8Array(VECTOR_PUBLIC), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
    expect(await signs(key, pub)).toBe(true);
    await expect(subtle().exportKey('pkcs8', key)).rejects.toThrow();
  });

  it('round-trips private, public and secret keys', async () => {
    const ec = (await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const priv = await vault.unwrap(await vault.wrap(ec.privateKey));
    const pub = await vault.unwrap(await vault.wrap(ec.publicKey));
    expect(pub.extractable).toBe(true);
    expect(await signs(priv, pub)).toBe(true);
    const aes = await subtle().generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
    const aesBack = await vault.unwrap(await vault.wrap(aes));
    expect(aesBack.algorithm).toEqual({ name: 'AES-GCM', length: 256 });
    const iv = new Uint8Array(12);
    const ct = await subtle().encrypt({ name: 'AES-GCM', iv }, aes, new Uint8Array([1]));
    expect(new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv }, aesBack, ct))).toEqual(new Uint8Array([1]));
    const other = passphraseKeyVault('vector passphrase', { iterations: 2000 });
    expect(await signs(await other.unwrap(await vault.wrap(ec.privateKey)), ec.publicKey)).toBe(true);
  });

  it('fails with StoreError on a wrong passphrase, tampering or a non-extractable key', async () => {
    expect(await code(passphraseKeyVault('nope', { iterations: 1000 }).unwrap(VECTOR))).toBe('key-unwrap-failed');
    expect(await code(vault.unwrap({ ...VECTOR, usages: ['sign', 'verify'] }))).toBe('key-unwrap-failed');
    expect(await code(vault.unwrap({ ...VECTOR, algorithm: { name: 'ECDH', namedCurve: 'P-256' } }))).toBe('key-unwrap-failed');
    expect(await code(vault.unwrap({ ...VECTOR, iterations: 50 }))).toBe('bad-input');
    expect(await code(vault.unwrap({ ...VECTOR, iv: new Uint8Array(11) }))).toBe('bad-input');
    const fixed = (await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])) as CryptoKeyPair;
    expect(await code(vault.wrap(fixed.privateKey))).toBe('key-not-extractable');
    await fc.assert(
      fc.asyncProperty(fc.nat(VECTOR.data.length - 1), fc.integer({ min: 1, max: 255 }), async (i, x) => {
        const data = VECTOR.data.slice();
        data[i]! ^= x;
        expect(await code(vault.unwrap({ ...VECTOR, data }))).toBe('key-unwrap-failed');
      }),
      { numRuns: 20 },
    );
  });

  it('checks stored wrapped keys field by field', () => {
    expect(checkWrappedKey(VECTOR)).toEqual(VECTOR);
    fc.assert(
      fc.property(fc.anything(), (x) => {
        try {
          checkWrappedKey(x);
        } catch (e) {
          expect(e).toBeInstanceOf(StoreError);
        }
      }),
      { numRuns: 200 },
    );
  });
});
