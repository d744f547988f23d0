import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { concat, fromBase64, fromHex, toBase64, toHex, utf8 } from '../../../lib/codec/bytes';
import { decodeOuterMessage, decodePublicDevicePrekey, encodeOuterMessage } from '../../../lib/codec/ngm-proto';
import { decompressCompact, isCompactable } from '../../../lib/crypto/ec-compact';
import {
  generateNgmIdentity,
  importNgmIdentity,
  parseNgmPublicIdentity,
  type NgmIdentity,
  type NgmPublicIdentity,
} from '../../../lib/crypto/identity-ngm';
import { pairEcDecrypt, pairEcEncrypt } from '../../../lib/crypto/pair-ec';
import { subtle } from '../../../lib/crypto/subtle';
import { CeruleanError, CryptoError, DecodeError, EncodeError } from '../../../lib/errors';
import vectors from '../../vectors';

type Party = typeof vectors.ngm.alice;
const ngm = vectors.ngm;
const SALT = utf8('LastPawn-MessageKeys');
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' };

// Fixed test ephemeral: its public point has y ≤ p − y (its twin n − d, with p − y, is tested too).
const EPHEMERAL_D = 'ca63d69cf23db97f4e7a1bd610dabc45d2e0a16465122f634a8db408ba3137cd';
const EPHEMERAL_POINT =
  '04b7ad77e10c517b97927c4750b7d8acb1248c48794c4b5ded305524b0f10c4cba' +
  '334928fc8468e1caf436c92f17591d2da9cf109acb61d966ad6341b7ba3dd1f7';
const EPHEMERAL_X = EPHEMERAL_POINT.slice(2, 66);
// ECDH(ephemeral, bob's prekey), HKDF output and the ciphertext of the fixed message below, computed once with
// @noble/curves + @noble/hashes + WebCrypto AES-CTR outside the library.
const FIXED_Z = '80d041092dc5987b013f8f4eda43a5c661a17e556f97d5fc6842eacddfdb606c';
const FIXED_OKM =
  '4abb597b326a7eba7898c7e3248c759b638c2e043747b363ea995d1c1d9bed60' + '6fc2aca0c788b5c514d23de4c828035d';
const FIXED_MESSAGE = utf8('cerulean pair-ec fixed vector');
const FIXED_COUNTER = 5;
const FIXED_PADDING = fromHex('a0a1a2a3a4a5a6a7a8a9aaabacadae');
const FIXED_PT =
  '0a1d' + toHex(FIXED_MESSAGE) + '1005' + toHex(FIXED_PADDING) + '0f000000';
const FIXED_CT =
  '408cf2b96cde106199c47c99799b53ce1b655464dd58b3fa40121b9ad9f7b39e' +
  '1f32ccc5554a0483be86c397d8c8e7b4fc7cf353';
// X(Dk_alice)[0..2] ‖ X(Dk_bob)[0..2] ‖ X(Pk_bob)[0..2] ‖ 0C
const ALICE_TO_BOB_KV = '165d' + '18d7' + 'd535' + '0c';

let alice: NgmIdentity;
let bob: NgmIdentity;
let alicePublic: NgmPublicIdentity;
let bobPublic: NgmPublicIdentity;

function importVector(party: Party): Promise<NgmIdentity> {
  return importNgmIdentity(
    fromBase64(party.device_private_pkcs8),
    fromBase64(party.prekey_private_pkcs8),
    party.prekey_timestamp,
    { prekeySignature: decodePublicDevicePrekey(fromHex(party.public_device_prekey)).prekeySignature },
  );
}

function publicOf(id: NgmIdentity): Promise<NgmPublicIdentity> {
  return parseNgmPublicIdentity({ publicDevicePrekey: id.publicDevicePrekey, ktLoggableData: id.ktLoggableData });
}

const base64url = (b: Uint8Array) => toBase64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

async function ecdhKeyPair(d: Uint8Array, point: Uint8Array): Promise<CryptoKeyPair> {
  const jwk: JsonWebKey = {
    kty: 'EC',
    crv: 'P-256',
    d: base64url(d),
    x: base64url(point.subarray(1, 33)),
    y: base64url(point.subarray(33)),
  };
  const algorithm = { name: 'ECDH', namedCurve: 'P-256' };
  return {
    privateKey: await subtle().importKey('jwk', jwk, algorithm, false, ['deriveBits']),
    publicKey: await subtle().importKey('raw', new Uint8Array(point), algorithm, true, []),
  };
}

function fixedEphemeral(): Promise<CryptoKeyPair> {
  return ecdhKeyPair(fromHex(EPHEMERAL_D), fromHex(EPHEMERAL_POINT));
}

/** The private scalar of a vector PKCS#8 (fixed 36-byte header before `d`). */
function scalarOfPkcs8(pkcs8: string): Uint8Array {
  return fromBase64(pkcs8).subarray(36, 68);
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return new Uint8Array(out);
}

async function aesCtr(okm: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const key = await subtle().importKey('raw', new Uint8Array(okm.subarray(0, 32)), 'AES-CTR', false, ['encrypt']);
  const counter = new Uint8Array(okm.subarray(32, 48));
  return new Uint8Array(await subtle().encrypt({ name: 'AES-CTR', counter, length: 64 }, key, new Uint8Array(data)));
}

/** A payload from alice's device to bob with any plaintext `pt`, correctly keyed and signed. */
async function forge(pt: Uint8Array): Promise<Uint8Array> {
  const ct = await aesCtr(fromHex(FIXED_OKM), pt);
  const signed = concat(fromHex(FIXED_Z), bob.prekeyCompact, fromHex(EPHEMERAL_X), bob.deviceCompact, ct);
  const signature = new Uint8Array(await subtle().sign(ECDSA_SHA256, alice.deviceKey.privateKey, new Uint8Array(signed)));
  return encodeOuterMessage({
    encryptedPayload: ct,
    ephemeralPubKey: fromHex(EPHEMERAL_X),
    signature,
    keyValidator: fromHex(ALICE_TO_BOB_KV),
  });
}

async function failure(p: Promise<unknown>): Promise<CeruleanError> {
  try {
    await p;
  } catch (e) {
    expect(e instanceof DecodeError || e instanceof CryptoError || e instanceof EncodeError, String(e)).toBe(true);
    return e as CeruleanError;
  }
  throw new Error('expected a typed failure, got a result');
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([importVector(ngm.alice), importVector(ngm.bob)]);
  [alicePublic, bobPublic] = await Promise.all([publicOf(alice), publicOf(bob)]);
});

describe('vectors (alice → bob)', () => {
  it('decrypts and verifies all three payloads to the exact message and counter', async () => {
    expect(ngm.pair_ec.length).toBe(3);
    for (const v of ngm.pair_ec) {
      const { message, counter } = await pairEcDecrypt(fromHex(v.payload), bob, alicePublic);
      expect(toHex(message)).toBe(v.plaintext);
      expect(counter).toBe(v.counter);
    }
  });

  it('carries the key validator of alice and bob', () => {
    for (const v of ngm.pair_ec) {
      expect(v.payload.endsWith('9a0607' + ALICE_TO_BOB_KV)).toBe(true);
    }
  });

  it('agree with an independent implementation of §5.4', async () => {
    const prekeyD = scalarOfPkcs8(ngm.bob.prekey_private_pkcs8);
    const aliceDevice = decompressCompact(fromHex(ngm.alice.device_public_compact));
    for (const v of ngm.pair_ec) {
      const outer = decodeOuterMessage(fromHex(v.payload));
      const z = p256.getSharedSecret(prekeyD, decompressCompact(outer.ephemeralPubKey)).subarray(1);
      const signed = concat(z, fromHex(ngm.bob.prekey_public_compact), outer.ephemeralPubKey, fromHex(ngm.bob.device_public_compact), outer.encryptedPayload);
      expect(p256.verify(outer.signature, signed, aliceDevice, { lowS: false })).toBe(true);
      const pt = await aesCtr(hkdf(sha256, z, SALT, new Uint8Array(0), 48), outer.encryptedPayload);
      const n = new DataView(pt.buffer).getUint32(pt.length - 4, true);
      expect(n).toBeLessThanOrEqual(15);
      expect((pt.length - 4) % 16).toBe(0);
      const message = fromHex(v.plaintext);
      // The vector encoder writes field 1 even when empty (0A 00); proto3 encoders, ours included, omit it.
      const field1 = '0a' + toHex(varint(message.length)) + v.plaintext;
      expect(toHex(pt.subarray(0, pt.length - 4 - n))).toBe(field1 + '10' + toHex(varint(v.counter)));
    }
  });
});

describe('fixed-key encryption', () => {
  it('produces the exact OuterMessage for a fixed ephemeral key and padding', async () => {
    const payload = await pairEcEncrypt(FIXED_MESSAGE, FIXED_COUNTER, alice, bobPublic, {
      ephemeral: await fixedEphemeral(),
      padding: FIXED_PADDING,
    });
    // ECDSA is randomised: take r‖s from its fixed place, check every other byte, then verify r‖s independently.
    const hex = toHex(payload);
    const sigAt = ('0a34' + FIXED_CT + '1220' + EPHEMERAL_X + '1a40').length;
    const signature = hex.slice(sigAt, sigAt + 128);
    expect(hex).toBe('0a34' + FIXED_CT + '1220' + EPHEMERAL_X + '1a40' + signature + '9a0607' + ALICE_TO_BOB_KV);
    expect(payload.length).toBe(2 + 52 + 2 + 32 + 2 + 64 + 3 + 7);
    const signed = concat(fromHex(FIXED_Z), bob.prekeyCompact, fromHex(EPHEMERAL_X), bob.deviceCompact, fromHex(FIXED_CT));
    const aliceDevice = decompressCompact(alice.deviceCompact);
    expect(p256.verify(fromHex(signature), signed, aliceDevice, { lowS: false })).toBe(true);
    const { message, counter } = await pairEcDecrypt(payload, bob, alicePublic);
    expect(message).toEqual(FIXED_MESSAGE);
    expect(counter).toBe(FIXED_COUNTER);
  });

  it('matches the constants recomputed independently (ECDH, HKDF with the label as salt, AES-CTR)', async () => {
    const z = p256.getSharedSecret(fromHex(EPHEMERAL_D), decompressCompact(bob.prekeyCompact)).subarray(1);
    expect(toHex(z)).toBe(FIXED_Z);
    expect(toHex(p256.getPublicKey(fromHex(EPHEMERAL_D), false))).toBe(EPHEMERAL_POINT);
    const okm = hkdf(sha256, z, SALT, new Uint8Array(0), 48);
    expect(toHex(okm)).toBe(FIXED_OKM);
    expect(toHex(await aesCtr(okm, fromHex(FIXED_PT)))).toBe(FIXED_CT);
  });

  it('refuses padding of the wrong length', async () => {
    const ephemeral = await fixedEphemeral();
    const e = await failure(pairEcEncrypt(FIXED_MESSAGE, 5, alice, bobPublic, { ephemeral, padding: new Uint8Array(3) }));
    expect(e).toBeInstanceOf(EncodeError);
    expect(e.code).toBe('bad-padding');
  });

  it('gives the same payload for an ephemeral key and its compact twin, so no regeneration is needed', async () => {
    const twinD = p256.Point.Fn.ORDER - BigInt('0x' + EPHEMERAL_D);
    const twinDBytes = p256.Point.Fn.toBytes(twinD);
    const twinPoint = p256.getPublicKey(twinDBytes, false);
    expect(toHex(twinPoint.subarray(1, 33))).toBe(EPHEMERAL_X);
    expect(isCompactable(twinPoint)).toBe(false);
    const twin = await ecdhKeyPair(twinDBytes, twinPoint);
    const opts = { padding: FIXED_PADDING };
    const a = decodeOuterMessage(await pairEcEncrypt(FIXED_MESSAGE, FIXED_COUNTER, alice, bobPublic, { ...opts, ephemeral: await fixedEphemeral() }));
    const b = decodeOuterMessage(await pairEcEncrypt(FIXED_MESSAGE, FIXED_COUNTER, alice, bobPublic, { ...opts, ephemeral: twin }));
    expect(toHex(b.encryptedPayload)).toBe(FIXED_CT);
    expect(b.encryptedPayload).toEqual(a.encryptedPayload);
    expect(b.ephemeralPubKey).toEqual(a.ephemeralPubKey);
    expect(b.keyValidator).toEqual(a.keyValidator);
    const signed = concat(fromHex(FIXED_Z), bob.prekeyCompact, fromHex(EPHEMERAL_X), bob.deviceCompact, fromHex(FIXED_CT));
    expect(p256.verify(b.signature, signed, decompressCompact(alice.deviceCompact), { lowS: false })).toBe(true);
  });

  it('refuses counters that are not uint32', async () => {
    for (const counter of [-1, 1.5, 2 ** 32, Number.NaN]) {
      expect((await failure(pairEcEncrypt(FIXED_MESSAGE, counter, alice, bobPublic))).code).toBe('bad-counter');
    }
  });
});

describe('round trips', () => {
  it('keeps message and counter, including the uint32 bounds and an empty message', async () => {
    for (const [message, counter] of [
      [new Uint8Array(0), 0],
      [new Uint8Array(0), 0xffffffff],
      [utf8('hi'), 1],
      [new Uint8Array(5000).fill(7), 42],
    ] as const) {
      const payload = await pairEcEncrypt(message, counter, alice, bobPublic);
      expect(await pairEcDecrypt(payload, bob, alicePublic)).toEqual({ message, counter });
    }
  });

  it('pads every inner length to a multiple of 16 plus the 4-byte length', async () => {
    for (let len = 0; len < 40; len++) {
      const payload = await pairEcEncrypt(new Uint8Array(len).fill(1), 3, alice, bobPublic);
      expect(decodeOuterMessage(payload).encryptedPayload.length % 16).toBe(4);
    }
  });

  it('uses a fresh ephemeral key per message', async () => {
    const a = decodeOuterMessage(await pairEcEncrypt(FIXED_MESSAGE, 1, alice, bobPublic));
    const b = decodeOuterMessage(await pairEcEncrypt(FIXED_MESSAGE, 1, alice, bobPublic));
    expect(a.ephemeralPubKey).not.toEqual(b.ephemeralPubKey);
    expect(a.encryptedPayload).not.toEqual(b.encryptedPayload);
  });

  it('works between freshly generated identities in both directions', async () => {
    const [carol, dave] = await Promise.all([generateNgmIdentity(), generateNgmIdentity()]);
    const [carolPublic, davePublic] = await Promise.all([publicOf(carol), publicOf(dave)]);
    const there = await pairEcEncrypt(utf8('to dave'), 1, carol, davePublic);
    const back = await pairEcEncrypt(utf8('to carol'), 9, dave, carolPublic);
    expect(await pairEcDecrypt(there, dave, carolPublic)).toEqual({ message: utf8('to dave'), counter: 1 });
    expect(await pairEcDecrypt(back, carol, davePublic)).toEqual({ message: utf8('to carol'), counter: 9 });
  });

  it('round-trips random messages and counters', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 0xffffffff }), async (message, counter) => {
        const payload = await pairEcEncrypt(message, counter, alice, bobPublic);
        expect(await pairEcDecrypt(payload, bob, alicePublic)).toEqual({ message, counter });
      }),
      { numRuns: 30 },
    );
  });
});

describe('verification', () => {
  const payload = () => fromHex(ngm.pair_ec[2]!.payload);

  it('refuses a payload for another recipient or from another sender (key validator)', async () => {
    const other = await generateNgmIdentity();
    expect((await failure(pairEcDecrypt(payload(), other, alicePublic))).code).toBe('bad-key-validator');
    expect((await failure(pairEcDecrypt(payload(), bob, bobPublic))).code).toBe('bad-key-validator');
  });

  it('refuses a valid key validator with the wrong sender key (signature)', async () => {
    const impostor = { ...alicePublic, deviceKey: bobPublic.deviceKey };
    expect((await failure(pairEcDecrypt(payload(), bob, impostor))).code).toBe('bad-signature');
  });

  it('names the broken part: ciphertext and signature → bad-signature, key validator → bad-key-validator', async () => {
    const bytes = payload();
    const at = (offset: number) => {
      const t = bytes.slice();
      t[offset]! ^= 0x40;
      return t;
    };
    const ctStart = 2;
    const sigStart = 2 + 0x14 + 2 + 32 + 2;
    const kvStart = bytes.length - 7;
    expect((await failure(pairEcDecrypt(at(ctStart), bob, alicePublic))).code).toBe('bad-signature');
    expect((await failure(pairEcDecrypt(at(sigStart + 10), bob, alicePublic))).code).toBe('bad-signature');
    for (let i = 0; i < 6; i++) {
      expect((await failure(pairEcDecrypt(at(kvStart + i), bob, alicePublic))).code).toBe('bad-key-validator');
    }
  });

  it('ignores the last key-validator byte, as receivers do', async () => {
    const bytes = payload();
    bytes[bytes.length - 1] = 0x0d;
    expect((await pairEcDecrypt(bytes, bob, alicePublic)).counter).toBe(3);
  });

  it('rejects every single-byte change except the ignored version byte', async () => {
    const bytes = payload();
    for (let i = 0; i < bytes.length - 1; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const t = bytes.slice();
        t[i]! ^= flip;
        await failure(pairEcDecrypt(t, bob, alicePublic));
      }
    }
  });

  it('rejects every truncation and a trailing byte', async () => {
    const bytes = payload();
    for (let len = 0; len < bytes.length; len++) await failure(pairEcDecrypt(bytes.subarray(0, len), bob, alicePublic));
    await failure(pairEcDecrypt(concat(bytes, new Uint8Array([0x00])), bob, alicePublic));
  });

  it('rejects missing, short and swapped fields', async () => {
    const outer = decodeOuterMessage(payload());
    const fields = {
      encryptedPayload: outer.encryptedPayload,
      ephemeralPubKey: outer.ephemeralPubKey,
      signature: outer.signature,
      keyValidator: outer.keyValidator,
    };
    const cases: [Partial<typeof fields>, string][] = [
      [{ keyValidator: outer.keyValidator.subarray(0, 5) }, 'bad-key-validator'],
      [{ signature: new Uint8Array(0) }, 'bad-signature'],
      [{ signature: outer.signature.subarray(0, 63) }, 'bad-signature'],
      [{ ephemeralPubKey: new Uint8Array(0) }, 'bad-compact-key'],
      [{ ephemeralPubKey: concat(outer.ephemeralPubKey, new Uint8Array(1)) }, 'bad-compact-key'],
      [{ ephemeralPubKey: fromHex('00'.repeat(31) + '01') }, 'not-on-curve'],
      [{ encryptedPayload: new Uint8Array(0) }, 'bad-signature'],
      [{ signature: outer.encryptedPayload, encryptedPayload: outer.signature }, 'bad-signature'],
    ];
    for (const [change, code] of cases) {
      const e = await failure(pairEcDecrypt(encodeOuterMessage({ ...fields, ...change }), bob, alicePublic));
      expect(e.code, code).toBe(code);
    }
  });

  it('checks the padding and the inner message of correctly signed payloads', async () => {
    const inner = fromHex('0a02686910' + '07');
    const good = concat(inner, new Uint8Array(11), fromHex('0b000000'));
    expect(await pairEcDecrypt(await forge(good), bob, alicePublic)).toEqual({ message: utf8('hi'), counter: 7 });
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(3), 'bad-padding'],
      [fromHex('10000000'), 'bad-padding'],
      [concat(new Uint8Array(16), fromHex('10000000')), 'bad-padding'],
      [concat(new Uint8Array(3), fromHex('05000000')), 'bad-padding'],
      [concat(inner, new Uint8Array(11), fromHex('ffffffff')), 'bad-padding'],
      [concat(fromHex('0a05aabb'), fromHex('00000000')), 'bad-protobuf'],
      [concat(fromHex('0f'), fromHex('00000000')), 'bad-protobuf'],
    ];
    for (const [pt, code] of cases) {
      const e = await failure(pairEcDecrypt(await forge(pt), bob, alicePublic));
      expect(e).toBeInstanceOf(DecodeError);
      expect(e.code, toHex(pt)).toBe(code);
    }
  });

  it('gives only typed errors for random and mutated payloads, never a plaintext', async () => {
    const seeds = ngm.pair_ec.map((v) => fromHex(v.payload));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }))
            .map(([seed, edits]) => {
              const t = seed.slice();
              // Never the last byte, which receivers ignore.
              for (const [pos, flip] of edits) t[pos % (t.length - 1)]! ^= flip;
              return t;
            }),
        ),
        async (bytes) => {
          await failure(pairEcDecrypt(bytes, bob, alicePublic));
        },
      ),
      { numRuns: 200 },
    );
  });
});
