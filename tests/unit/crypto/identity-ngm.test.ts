import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, it } from 'vitest';
import { concat, fromBase64, fromHex, toHex, utf8 } from '../../../lib/codec/bytes';
import { decodePublicDevicePrekey, encodeNgmPublicIdentityMessage } from '../../../lib/codec/ngm-proto';
import { compactOf, decompressCompact, isCompactable } from '../../../lib/crypto/ec-compact';
import {
  KT_VERSION,
  NGM_VERSION,
  generateNgmIdentity,
  importNgmIdentity,
  parseNgmPublicIdentity,
  prekeySignedData,
  validatePrekey,
  type NgmIdentity,
} from '../../../lib/crypto/identity-ngm';
import { subtle } from '../../../lib/crypto/subtle';
import { CeruleanError, CryptoError, DecodeError } from '../../../lib/errors';
import vectors from '../../vectors';

type Party = typeof vectors.ngm.alice;
const { alice, bob } = vectors.ngm;

function importVector(party: Party): Promise<NgmIdentity> {
  return importNgmIdentity(
    fromBase64(party.device_private_pkcs8),
    fromBase64(party.prekey_private_pkcs8),
    party.prekey_timestamp,
    { prekeySignature: decodePublicDevicePrekey(fromHex(party.public_device_prekey)).prekeySignature },
  );
}

function publicOf(party: Party) {
  return parseNgmPublicIdentity({
    publicDevicePrekey: fromHex(party.public_device_prekey),
    ktLoggableData: fromHex(party.kt_loggable_data),
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function expectCode(p: Promise<unknown>, type: typeof DecodeError | typeof CryptoError, code: string) {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(type);
  expect((e as CeruleanError).code).toBe(code);
}

describe('vector identities', () => {
  for (const [name, party] of [['alice', alice], ['bob', bob]] as const) {
    it(`imports ${name} and rebuilds her published data byte for byte`, async () => {
      const id = await importVector(party);
      expect(toHex(id.deviceCompact)).toBe(party.device_public_compact);
      expect(toHex(id.prekeyCompact)).toBe(party.prekey_public_compact);
      expect(id.prekeyTimestamp).toBe(party.prekey_timestamp);
      expect(toHex(id.publicDevicePrekey)).toBe(party.public_device_prekey);
      expect(toHex(id.ktLoggableData)).toBe(party.kt_loggable_data);
      expect(toHex(id.ktLoggableData)).toBe('0a220a20' + party.device_public_compact + '100d1805');
      expect(id.deviceKey.privateKey.extractable).toBe(false);
      expect(id.prekey.privateKey.extractable).toBe(false);
    });

    it(`parses and validates ${name}'s published prekey`, async () => {
      const pub = await publicOf(party);
      expect(toHex(pub.deviceCompact)).toBe(party.device_public_compact);
      expect(toHex(pub.prekeyCompact)).toBe(party.prekey_public_compact);
      expect(pub.prekeyTimestamp).toBe(party.prekey_timestamp);
      expect(pub.deviceKey.usages).toEqual(['verify']);
      await expect(validatePrekey(pub)).resolves.toBeUndefined();
    });

    it(`${name}'s prekey signature verifies independently over the 58-byte layout`, () => {
      const published = fromHex(party.public_device_prekey);
      const signature = published.subarray(36, 100);
      const timestampLe = published.subarray(101);
      const signed = concat(utf8('NGMPrekeySignature'), fromHex(party.prekey_public_compact), timestampLe);
      expect(signed.length).toBe(58);
      expect(prekeySignedData(fromHex(party.prekey_public_compact), party.prekey_timestamp)).toEqual(signed);
      const device = decompressCompact(fromHex(party.device_public_compact));
      expect(p256.verify(signature, signed, device, { lowS: false })).toBe(true);
    });
  }

  it('writes the timestamp as a little-endian double', () => {
    expect(toHex(prekeySignedData(new Uint8Array(0), 1732270636).subarray(18))).toBe('0000008b16d0d941');
  });

  it('accepts the device key from client-data ngm-public-identity when kt-loggable-data is absent', async () => {
    const pub = await parseNgmPublicIdentity({
      publicDevicePrekey: fromHex(bob.public_device_prekey),
      ngmPublicIdentity: fromHex('0a20' + bob.device_public_compact),
    });
    expect(toHex(pub.deviceCompact)).toBe(bob.device_public_compact);
  });

  it('prefers kt-loggable-data over ngm-public-identity', async () => {
    const pub = await parseNgmPublicIdentity({
      publicDevicePrekey: fromHex(bob.public_device_prekey),
      ktLoggableData: fromHex(bob.kt_loggable_data),
      ngmPublicIdentity: encodeNgmPublicIdentityMessage({ publicKey: fromHex(alice.device_public_compact) }),
    });
    expect(toHex(pub.deviceCompact)).toBe(bob.device_public_compact);
  });

  it('re-signs the prekey when no signature is given, keeping everything else', async () => {
    const id = await importNgmIdentity(
      fromBase64(alice.device_private_pkcs8),
      fromBase64(alice.prekey_private_pkcs8),
      alice.prekey_timestamp,
    );
    const published = toHex(id.publicDevicePrekey);
    expect(published.slice(0, 72)).toBe(alice.public_device_prekey.slice(0, 72));
    expect(published.slice(200)).toBe(alice.public_device_prekey.slice(200));
    const pub = await parseNgmPublicIdentity({ publicDevicePrekey: id.publicDevicePrekey, ktLoggableData: id.ktLoggableData });
    expect(toHex(pub.prekeyCompact)).toBe(alice.prekey_public_compact);
  });
});

describe('generated identities', () => {
  it('are compact, non-extractable, signed, and publish 109 + 40 bytes', async () => {
    const id = await generateNgmIdentity(1_700_000_000);
    expect(id.prekeyTimestamp).toBe(1_700_000_000);
    expect(id.publicDevicePrekey.length).toBe(109);
    expect(id.ktLoggableData.length).toBe(40);
    const layout = toHex(id.publicDevicePrekey);
    expect(layout.slice(0, 4)).toBe('0a20');
    expect(layout.slice(4, 68)).toBe(toHex(id.prekeyCompact));
    expect(layout.slice(68, 72)).toBe('1240');
    expect(layout.slice(200)).toBe('19' + toHex(prekeySignedData(new Uint8Array(0), 1_700_000_000).subarray(18)));
    expect(toHex(id.ktLoggableData)).toBe('0a220a20' + toHex(id.deviceCompact) + '10' + '0d' + '18' + '05');
    expect([NGM_VERSION, KT_VERSION]).toEqual([13, 5]);
    expect(await compactOf(id.deviceKey.publicKey)).toEqual(id.deviceCompact);
    expect(await compactOf(id.prekey.publicKey)).toEqual(id.prekeyCompact);
    for (const key of [id.deviceKey.publicKey, id.prekey.publicKey]) {
      expect(isCompactable(new Uint8Array(await subtle().exportKey('raw', key)))).toBe(true);
    }
    const pub = await parseNgmPublicIdentity({ publicDevicePrekey: id.publicDevicePrekey, ktLoggableData: id.ktLoggableData });
    expect(pub.deviceCompact).toEqual(id.deviceCompact);
  });

  it('refuses to export either private key', async () => {
    const id = await generateNgmIdentity();
    expect(Number.isInteger(id.prekeyTimestamp)).toBe(true);
    await expect(subtle().exportKey('pkcs8', id.deviceKey.privateKey)).rejects.toThrow();
    await expect(subtle().exportKey('pkcs8', id.prekey.privateKey)).rejects.toThrow();
    await expect(subtle().exportKey('jwk', id.deviceKey.privateKey)).rejects.toThrow();
  });

  it('rejects a non-finite timestamp', async () => {
    await expectCode(generateNgmIdentity(Number.NaN), CryptoError, 'bad-timestamp');
  });
});

describe('bad identities', () => {
  it('rejects a prekey signed by another device key', async () => {
    await expectCode(
      parseNgmPublicIdentity({ publicDevicePrekey: fromHex(bob.public_device_prekey), ktLoggableData: fromHex(alice.kt_loggable_data) }),
      CryptoError,
      'bad-prekey-signature',
    );
  });

  it('rejects a moved timestamp', async () => {
    const published = fromHex(bob.public_device_prekey);
    const m = decodePublicDevicePrekey(published);
    await expectCode(
      importNgmIdentity(fromBase64(bob.device_private_pkcs8), fromBase64(bob.prekey_private_pkcs8), m.timestamp + 1, {
        prekeySignature: m.prekeySignature,
      }),
      CryptoError,
      'bad-prekey-signature',
    );
  });

  it('rejects a missing device key', async () => {
    await expectCode(parseNgmPublicIdentity({ publicDevicePrekey: fromHex(bob.public_device_prekey) }), DecodeError, 'missing-device-key');
  });

  it('rejects a short signature and a short prekey', async () => {
    const pdp = fromHex(bob.public_device_prekey);
    const shortSig = concat(pdp.subarray(0, 34), fromHex('123f'), pdp.subarray(37, 100), pdp.subarray(100));
    const kt = fromHex(bob.kt_loggable_data);
    await expectCode(parseNgmPublicIdentity({ publicDevicePrekey: shortSig, ktLoggableData: kt }), CryptoError, 'bad-prekey-signature');
    const shortPrekey = concat(fromHex('0a1f'), pdp.subarray(2, 33), pdp.subarray(34));
    await expectCode(parseNgmPublicIdentity({ publicDevicePrekey: shortPrekey, ktLoggableData: kt }), DecodeError, 'bad-compact-key');
  });

  it('rejects every single-byte change of a published prekey', async () => {
    const pdp = fromHex(alice.public_device_prekey);
    const kt = fromHex(alice.kt_loggable_data);
    for (let i = 0; i < pdp.length; i++) {
      const tampered = pdp.slice();
      tampered[i]! ^= 0x01;
      const e = await rejection(parseNgmPublicIdentity({ publicDevicePrekey: tampered, ktLoggableData: kt }));
      expect(e instanceof DecodeError || e instanceof CryptoError, `byte ${i}`).toBe(true);
    }
  });

  it('rejects every single-byte change of kt-loggable-data except the version numbers', async () => {
    const pdp = fromHex(alice.public_device_prekey);
    const kt = fromHex(alice.kt_loggable_data);
    for (let i = 0; i < kt.length; i++) {
      const tampered = kt.slice();
      tampered[i]! ^= 0x01;
      const outcome = parseNgmPublicIdentity({ publicDevicePrekey: pdp, ktLoggableData: tampered });
      // Bytes 37 and 39 are the values of ngmVersion and ktVersion, which nobody checks.
      if (i === 37 || i === 39) {
        await expect(outcome).resolves.toBeDefined();
        continue;
      }
      const e = await rejection(outcome);
      expect(e instanceof DecodeError || e instanceof CryptoError, `byte ${i}`).toBe(true);
    }
  });

  it('rejects PKCS#8 that is not a P-256 key', async () => {
    const bobPrekey = fromBase64(bob.prekey_private_pkcs8);
    await expectCode(importNgmIdentity(fromHex('3000'), bobPrekey, 1), CryptoError, 'bad-key');
    const truncated = fromBase64(bob.device_private_pkcs8).subarray(0, 60);
    await expectCode(importNgmIdentity(truncated, bobPrekey, 1), CryptoError, 'bad-key');
  });

  it('rejects an imported key that is not in compact form', async () => {
    let pkcs8: Uint8Array;
    for (;;) {
      const pair = (await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
      if (!isCompactable(new Uint8Array(await subtle().exportKey('raw', pair.publicKey)))) {
        pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', pair.privateKey));
        break;
      }
    }
    await expectCode(importNgmIdentity(pkcs8, fromBase64(bob.prekey_private_pkcs8), 1), CryptoError, 'key-not-compact');
  });

  it('random and mutated published data give only typed errors', async () => {
    const pdp = fromHex(alice.public_device_prekey);
    const kt = fromHex(alice.kt_loggable_data);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ publicDevicePrekey: fc.uint8Array({ maxLength: 120 }), ktLoggableData: fc.uint8Array({ maxLength: 50 }) }),
          fc
            .tuple(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean())
            .map(([pos, flip, inKt]) => {
              const target = (inKt ? kt : pdp).slice();
              target[pos % target.length]! ^= flip;
              return inKt ? { publicDevicePrekey: pdp, ktLoggableData: target } : { publicDevicePrekey: target, ktLoggableData: kt };
            }),
        ),
        async (source) => {
          try {
            await parseNgmPublicIdentity(source);
          } catch (e) {
            expect(e instanceof DecodeError || e instanceof CryptoError).toBe(true);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
