import { generateCompactKeyPair } from '../lib/crypto/ec-compact';
const s = crypto.subtle;
const N = 2000;
async function time(name: string, f: () => Promise<unknown>) {
  for (let i = 0; i < 200; i++) await f();
  let t = performance.now();
  for (let i = 0; i < N; i++) await f();
  const seq = (performance.now() - t) / N * 1000;
  t = performance.now();
  await Promise.all(Array.from({ length: N }, f));
  const par = (performance.now() - t) / N * 1000;
  console.log(name.padEnd(12), seq.toFixed(0), par.toFixed(0));
}
const peer = await generateCompactKeyPair('ecdh');
const dev = await generateCompactKeyPair('ecdsa');
const eph = await generateCompactKeyPair('ecdh');
await time('gencompact', () => generateCompactKeyPair('ecdh'));
await time('gen', () => s.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']));
await time('ecdh', () => s.deriveBits({ name: 'ECDH', public: peer.keyPair.publicKey }, eph.keyPair.privateKey, 256));
const z = new Uint8Array(32);
await time('hkdf2', async () => { const k = await s.importKey('raw', z, 'HKDF', false, ['deriveBits']); await s.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(20), info: new Uint8Array(0) }, k, 384); });
await time('aes2', async () => { const k = await s.importKey('raw', z, 'AES-CTR', false, ['encrypt']); await s.encrypt({ name: 'AES-CTR', counter: new Uint8Array(16), length: 64 }, k, new Uint8Array(400)); });
await time('sign', () => s.sign({ name: 'ECDSA', hash: 'SHA-256' }, dev.keyPair.privateKey, new Uint8Array(500)));
await time('digest', () => s.digest('SHA-256', new Uint8Array(500)));
