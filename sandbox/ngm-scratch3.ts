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
await time('exportraw', () => s.exportKey('raw', peer.keyPair.publicKey));
const z = new Uint8Array(32);
const salt = new Uint8Array(20), info = new Uint8Array(0);
await time('hkdf+aes seq', async () => { const k = await s.importKey('raw', z, 'HKDF', false, ['deriveBits']); const o = new Uint8Array(await s.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, k, 384)); const a = await s.importKey('raw', o.subarray(0,32), 'AES-CTR', false, ['encrypt']); await s.encrypt({ name: 'AES-CTR', counter: o.subarray(32), length: 64 }, a, new Uint8Array(400)); });
await time('hkdf+aes dk', async () => { const k = await s.importKey('raw', z, 'HKDF', false, ['deriveBits', 'deriveKey']); const h = { name: 'HKDF', hash: 'SHA-256', salt, info }; const [o, a] = await Promise.all([s.deriveBits(h, k, 384), s.deriveKey(h, k, { name: 'AES-CTR', length: 256 }, false, ['encrypt'])]); await s.encrypt({ name: 'AES-CTR', counter: new Uint8Array(o, 32), length: 64 }, a, new Uint8Array(400)); });
