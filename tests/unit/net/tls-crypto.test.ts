import { describe, expect, it } from 'vitest';
import { exact, fromHex, toHex, utf8 } from '../../../lib/codec/bytes';
import { ecdsaRawToDer } from '../../../lib/crypto/ecdsa-der';
import { tlsEngineCrypto as c } from '../../../lib/net/tls-crypto';

const spki = async (key: CryptoKey) => new Uint8Array(await crypto.subtle.exportKey('spki', key));

describe('tlsEngineCrypto', () => {
  it('HKDF-Extract matches RFC 5869 test cases 1 and 3 (empty salt = zeros)', async () => {
    const ikm = fromHex('0b'.repeat(22));
    expect(toHex(await c.extract('SHA-256', 32, ikm, fromHex('000102030405060708090a0b0c')))).toBe(
      '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    );
    expect(toHex(await c.extract('SHA-256', 32, ikm, ''))).toBe('19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04');
  });

  it('AES-128-GCM matches the GCM spec test case 4 and rejects a bad tag', async () => {
    const key = await c.importKey('AES-128-GCM', fromHex('feffe9928665731c6d6a8f9467308308'));
    const iv = fromHex('cafebabefacedbaddecaf888');
    const aead = fromHex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
    const plain = fromHex(
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
    );
    const sealed = await c.authenticatedEncrypt('AES-128-GCM', { key, iv, aead, data: plain });
    expect(toHex(sealed.ciphertext)).toBe(
      '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091',
    );
    expect(toHex(sealed.authTag)).toBe('5bc94fbc3221a5db94fae95ae7121a47');
    const opened = await c.authenticatedDecrypt('AES-128-GCM', { key, iv, aead, data: sealed.ciphertext, authTag: sealed.authTag });
    expect(toHex(opened.plaintext)).toBe(toHex(plain));
    const badTag = sealed.authTag.slice();
    badTag[0] = badTag[0]! ^ 1;
    await expect(c.authenticatedDecrypt('AES-128-GCM', { key, iv, aead, data: sealed.ciphertext, authTag: badTag })).rejects.toThrow(
      'authentication',
    );
  });

  it('HMAC and hash match RFC 4231 test case 2 and SHA-256("abc")', async () => {
    const key = await c.importKey('SHA-256', utf8('Jefe'));
    expect(toHex(await c.hmac('SHA-256', key, utf8('what do ya want for nothing?')))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    expect(toHex(await c.hash('SHA-256', utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('agrees on ECDH secrets and exports raw public keys for every offered group', async () => {
    for (const [alg, len] of [['P-256', 65], ['P-384', 97], ['X25519', 32]] as const) {
      let a;
      try {
        a = await c.generateKeyPair(alg);
      } catch {
        expect(alg).toBe('X25519'); // not every WebCrypto has it; connectTls then leaves it out
        continue;
      }
      const b = await c.generateKeyPair(alg);
      const aPub = await c.exportKey(a.pubKey);
      expect(aPub.length).toBe(len);
      const s1 = await c.calculateSharedSecret(alg, b.privKey, await c.importKey(alg, aPub, 'public'));
      const s2 = await c.calculateSharedSecret(alg, a.privKey, b.pubKey);
      expect(toHex(s1)).toBe(toHex(s2));
    }
  });

  it('verifies ECDSA with the curve taken from the key, whatever curve the code point names', async () => {
    const data = utf8('signed handshake data');
    for (const [curve, hash] of [['P-256', 'SHA-256'], ['P-384', 'SHA-256'], ['P-384', 'SHA-384']] as const) {
      const kp = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as CryptoKeyPair;
      const raw = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash }, kp.privateKey, exact(data)));
      // TLS 1.2 names only the hash: a P-384 key may sign under "ecdsa_secp256r1_sha256".
      const alg = hash === 'SHA-256' ? 'ECDSA-SECP256R1-SHA256' : 'ECDSA-SECP384R1-SHA384';
      const publicKey = await c.importKey(alg, await spki(kp.publicKey), 'public');
      expect(await c.verify(alg, { data, signature: ecdsaRawToDer(raw), publicKey })).toBe(true);
      expect(await c.verify(alg, { data: utf8('other data'), signature: ecdsaRawToDer(raw), publicKey })).toBe(false);
      expect(await c.verify(alg, { data, signature: raw, publicKey })).toBe(false);
    }
  });

  it('verifies RSA-PSS (TLS 1.3 CertificateVerify) and PKCS#1 v1.5 signatures', async () => {
    const params = { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    const kp = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
    const data = utf8('transcript hash');
    const sig = new Uint8Array(await crypto.subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, kp.privateKey, exact(data)));
    const publicKey = await c.importKey('RSA-PSS-SHA256', await spki(kp.publicKey), 'public');
    expect(await c.verify('RSA-PSS-SHA256', { data, signature: sig, publicKey })).toBe(true);
    sig[10] = sig[10]! ^ 1;
    expect(await c.verify('RSA-PSS-SHA256', { data, signature: sig, publicKey })).toBe(false);
  });

  it('refuses what connectTls never offers', async () => {
    expect(() => c.asymmetricEncrypt('RSA-PCKS1_5', { publicKey: {} as CryptoKey, data: new Uint8Array(1) })).toThrow('not offered');
    await expect(c.importKey('CHACHA20-POLY1305', new Uint8Array(32))).rejects.toThrow('not offered');
    await expect(c.importKey('AES-128-CBC', new Uint8Array(16))).rejects.toThrow('not offered');
  });
});
