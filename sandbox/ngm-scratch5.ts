import { decodeOuterMessage } from '../lib/codec/ngm-proto';
function t(h: Uint8Array) { try { const m = decodeOuterMessage(h); console.log('ok', m.encryptedPayload.length); } catch (e: any) { console.log(e.name, e.code, e.cause?.message); } }
for (const depth of [10, 1000, 100000]) { const deep = new Uint8Array(2*depth); for (let i=0;i<depth;i++){deep[i]=0x2b;deep[2*depth-1-i]=0x2c;} t(deep); }
