import vectors from '../tests/vectors';
import { fromBase64, fromHex, toHex } from '../lib/codec/bytes';
import { importNgmIdentity, parseNgmPublicIdentity, generateNgmIdentity } from '../lib/crypto/identity-ngm';
import { decodePublicDevicePrekey } from '../lib/codec/ngm-proto';
import { pairEcDecrypt, pairEcEncrypt } from '../lib/crypto/pair-ec';
const v = vectors.ngm;
async function load(p: typeof v.alice) {
  const sig = decodePublicDevicePrekey(fromHex(p.public_device_prekey)).prekeySignature;
  const id = await importNgmIdentity(fromBase64(p.device_private_pkcs8), fromBase64(p.prekey_private_pkcs8), p.prekey_timestamp, { prekeySignature: sig });
  console.log(toHex(id.deviceCompact) === p.device_public_compact, toHex(id.prekeyCompact) === p.prekey_public_compact, toHex(id.publicDevicePrekey) === p.public_device_prekey, toHex(id.ktLoggableData) === p.kt_loggable_data);
  return id;
}
const alice = await load(v.alice), bob = await load(v.bob);
const alicePub = await parseNgmPublicIdentity({ publicDevicePrekey: fromHex(v.alice.public_device_prekey), ktLoggableData: fromHex(v.alice.kt_loggable_data) });
const bobPub = await parseNgmPublicIdentity({ publicDevicePrekey: bob.publicDevicePrekey, ktLoggableData: bob.ktLoggableData });
for (const e of v.pair_ec) {
  const r = await pairEcDecrypt(fromHex(e.payload), bob, alicePub);
  console.log(toHex(r.message) === e.plaintext, r.counter === e.counter);
}
const p = await pairEcEncrypt(new Uint8Array([1,2,3]), 7, alice, bobPub);
console.log(await pairEcDecrypt(p, bob, alicePub));
const g = await generateNgmIdentity();
console.log(g.publicDevicePrekey.length, g.ktLoggableData.length);
const N = 2000;
let t = performance.now();
for (let i = 0; i < N; i++) await pairEcEncrypt(new Uint8Array(300), i, alice, bobPub);
console.log('seq enc us', ((performance.now() - t) / N * 1000).toFixed(0));
t = performance.now();
await Promise.all(Array.from({length: N}, (_, i) => pairEcEncrypt(new Uint8Array(300), i, alice, bobPub)));
console.log('par enc us', ((performance.now() - t) / N * 1000).toFixed(0));
t = performance.now();
for (let i = 0; i < N; i++) await pairEcDecrypt(p, bob, alicePub);
console.log('seq dec us', ((performance.now() - t) / N * 1000).toFixed(0));
