import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex, utf8 } from '../lib/codec/bytes';
const P = p256.Point; const n = P.Fn.ORDER; const p = P.Fp.ORDER;
for (let x = 0n; x < 10n; x++) { const c = new Uint8Array(33); c[0]=2; c.set(P.Fp.toBytes(x),1); try { P.fromBytes(c); console.log(x,'on'); } catch { console.log(x,'off'); } }
let d = BigInt('0x' + toHex(sha256(utf8('cerulean pair-ec test ephemeral')))) % n;
const pt = P.BASE.multiply(d).toAffine();
console.log('compact?', pt.y <= (p-1n)/2n);
if (pt.y > (p-1n)/2n) d = n - d;
console.log('d', d.toString(16).padStart(64,'0'));
console.log('X', toHex(P.BASE.multiply(d).toBytes(false)));
console.log('G', toHex(P.BASE.toBytes(false)));
console.log(toHex(P.BASE.negate().toBytes(false)));
