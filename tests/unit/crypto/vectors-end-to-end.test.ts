// The whole receive path on the independent vectors: verify + decrypt each payload alice sent bob, undo the
// maybe-gzip, and read the plist as an iMessage. Runs in Node and in Chromium.
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toHex } from '../../../lib/codec/bytes';
import { importLegacyIdentity, parsePublicIdentity } from '../../../lib/crypto/identity-legacy';
import { importNgmIdentity, parseNgmPublicIdentity } from '../../../lib/crypto/identity-ngm';
import { pairDecrypt, pairEncrypt } from '../../../lib/crypto/pair';
import { pairEcDecrypt, pairEcEncrypt } from '../../../lib/crypto/pair-ec';
import { decodeTextMessage, encodeTextMessage, textMessage } from '../../../lib/imessage/message';
import { CryptoError } from '../../../lib/errors';
import vectors from '../../vectors';

const { legacy, ngm } = vectors;

async function legacyParties() {
  const bob = await importLegacyIdentity(fromBase64(legacy.bob.signing_private_pkcs8), fromBase64(legacy.bob.encryption_private_pkcs8));
  const alice = await importLegacyIdentity(fromBase64(legacy.alice.signing_private_pkcs8), fromBase64(legacy.alice.encryption_private_pkcs8));
  // The receiver knows alice only from her published blob, as a lookup would give it.
  const alicePublic = await parsePublicIdentity(fromHex(legacy.alice.public_message_identity_key));
  const bobPublic = await parsePublicIdentity(fromHex(legacy.bob.public_message_identity_key));
  return { alice, bob, alicePublic, bobPublic };
}

async function ngmParties() {
  const load = (v: typeof ngm.alice) =>
    importNgmIdentity(fromBase64(v.device_private_pkcs8), fromBase64(v.prekey_private_pkcs8), v.prekey_timestamp, {
      prekeySignature: fromHex(v.public_device_prekey).subarray(36, 100),
    });
  const [alice, bob] = await Promise.all([load(ngm.alice), load(ngm.bob)]);
  const alicePublic = await parseNgmPublicIdentity({
    publicDevicePrekey: fromHex(ngm.alice.public_device_prekey),
    ktLoggableData: fromHex(ngm.alice.kt_loggable_data),
  });
  const bobPublic = await parseNgmPublicIdentity({
    publicDevicePrekey: fromHex(ngm.bob.public_device_prekey),
    ktLoggableData: fromHex(ngm.bob.kt_loggable_data),
  });
  return { alice, bob, alicePublic, bobPublic };
}

describe('vectors end to end', () => {
  it('pair: every payload verifies, decrypts and parses as the message pypush sent', async () => {
    const { bob, alicePublic } = await legacyParties();
    for (const v of legacy.pair) {
      const plaintext = await pairDecrypt(fromHex(v.payload), bob, alicePublic);
      expect(toHex(plaintext)).toBe(v.plaintext);
      const message = await decodeTextMessage(plaintext);
      expect(message.text).toBe(v.text);
      expect(message.participants).toEqual(v.participants);
    }
    await expect(pairDecrypt(fromHex(legacy.pair_tampered), bob, alicePublic)).rejects.toBeInstanceOf(CryptoError);
  });

  it('pair-ec: every payload verifies and decrypts to its plaintext and counter, and parses as a message', async () => {
    const { bob, alicePublic } = await ngmParties();
    for (const v of ngm.pair_ec) {
      const { message, counter } = await pairEcDecrypt(fromHex(v.payload), bob, alicePublic);
      expect(toHex(message)).toBe(v.plaintext);
      expect(counter).toBe(v.counter);
      const sent = legacy.pair.find((p) => p.plaintext === v.plaintext);
      if (sent) {
        const parsed = await decodeTextMessage(message);
        expect(parsed.text).toBe(sent.text);
      } else {
        expect(message.length).toBe(0); // the vectors' third pair-ec payload carries no message
      }
    }
  });

  it('what we encrypt for bob decrypts with the same procedure, both schemes', async () => {
    const legacyKeys = await legacyParties();
    const ngmKeys = await ngmParties();
    const payload = await encodeTextMessage(
      textMessage({ text: 'hi from Cerulean', participants: ['mailto:bob@example.com', 'mailto:alice@example.com'] }),
      { gzip: true },
    );
    const pair = await pairEncrypt(payload, legacyKeys.alice, legacyKeys.bobPublic);
    expect((await decodeTextMessage(await pairDecrypt(pair, legacyKeys.bob, legacyKeys.alicePublic))).text).toBe('hi from Cerulean');
    const ec = await pairEcEncrypt(payload, 7, ngmKeys.alice, ngmKeys.bobPublic);
    const opened = await pairEcDecrypt(ec, ngmKeys.bob, ngmKeys.alicePublic);
    expect(opened.counter).toBe(7);
    expect((await decodeTextMessage(opened.message)).text).toBe('hi from Cerulean');
  });
});
