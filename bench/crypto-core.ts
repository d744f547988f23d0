// The crypto and codec benchmark body. It uses lib/ only, so the same code runs in Node and in Chromium.
import { encodeFrame, FrameDecoder } from '../lib/codec/apns-frame';
import { generateLegacyIdentity, parsePublicIdentity, type LegacyPublicIdentity } from '../lib/crypto/identity-legacy';
import { generateNgmIdentity, parseNgmPublicIdentity, type NgmPublicIdentity } from '../lib/crypto/identity-ngm';
import { pairDecrypt, pairEncrypt } from '../lib/crypto/pair';
import { pairEcDecrypt, pairEcEncrypt } from '../lib/crypto/pair-ec';
import { randomBytes } from '../lib/crypto/subtle';

export interface SchemeResult {
  /** One device at a time (each call awaited): the latency of one destination. */
  encryptSignMsPerDeviceSequential: number;
  /** 100 devices encrypted concurrently, total divided by 100: the cost per destination in a real fan-out. */
  encryptSignMsPerDevice: number;
  verifyDecryptMsPerDevice: number;
  /** Median wall time to encrypt+sign one message for 100 devices. */
  fanout100Ms: number;
}

export interface CryptoBenchResult {
  runtime: string;
  payloadBytes: number;
  pair: SchemeResult;
  pairEc: SchemeResult;
  frameDecodeMBps: number;
}

const PAYLOAD_BYTES = 1024;
const DEVICES = 100;
// Distinct recipient keys; devices beyond that reuse them (key generation, RSA above all, is slow and not measured).
const DISTINCT_KEYS = 10;

const now = () => globalThis.performance.now();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(fn: () => Promise<unknown>, rounds: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = now();
    await fn();
    out.push(now() - t);
  }
  return out;
}

async function measure<R>(
  encrypt: (device: number) => Promise<Uint8Array>,
  decrypt: (payload: Uint8Array, device: number) => Promise<R>,
): Promise<SchemeResult> {
  const devices = Array.from({ length: DEVICES }, (_, i) => i);
  // Warm-up: JIT and WebCrypto key caches.
  await Promise.all(devices.map(encrypt));

  let t = now();
  for (const d of devices) await encrypt(d);
  const sequential = (now() - t) / DEVICES;

  const fanouts = await timeIt(() => Promise.all(devices.map(encrypt)), 9);
  const fanout = median(fanouts);

  const payloads = await Promise.all(devices.map(encrypt));
  t = now();
  await Promise.all(payloads.map((p, d) => decrypt(p, d)));
  const decryptPerDevice = (now() - t) / DEVICES;

  return {
    encryptSignMsPerDeviceSequential: round(sequential),
    encryptSignMsPerDevice: round(fanout / DEVICES),
    verifyDecryptMsPerDevice: round(decryptPerDevice),
    fanout100Ms: round(fanout),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function benchPair(message: Uint8Array): Promise<SchemeResult> {
  const sender = await generateLegacyIdentity();
  const recipients = await Promise.all(Array.from({ length: DISTINCT_KEYS }, () => generateLegacyIdentity()));
  // What a sender holds after a lookup: identities parsed once from their published blobs.
  const published: LegacyPublicIdentity[] = await Promise.all(recipients.map((r) => parsePublicIdentity(r.publicKey.blob)));
  const senderPublic = await parsePublicIdentity(sender.publicKey.blob);
  return measure(
    (d) => pairEncrypt(message, sender, published[d % DISTINCT_KEYS]!),
    (p, d) => pairDecrypt(p, recipients[d % DISTINCT_KEYS]!, senderPublic),
  );
}

async function benchPairEc(message: Uint8Array): Promise<SchemeResult> {
  const sender = await generateNgmIdentity();
  const recipients = await Promise.all(Array.from({ length: DISTINCT_KEYS }, () => generateNgmIdentity()));
  const published: NgmPublicIdentity[] = await Promise.all(
    recipients.map((r) => parseNgmPublicIdentity({ publicDevicePrekey: r.publicDevicePrekey, ktLoggableData: r.ktLoggableData })),
  );
  const senderPublic = await parseNgmPublicIdentity({ publicDevicePrekey: sender.publicDevicePrekey, ktLoggableData: sender.ktLoggableData });
  let counter = 1;
  return measure(
    (d) => pairEcEncrypt(message, counter++, sender, published[d % DISTINCT_KEYS]!),
    (p, d) => pairEcDecrypt(p, recipients[d % DISTINCT_KEYS]!, senderPublic),
  );
}

/** Decodes a stream of 1 KiB notifications delivered in 16 KiB chunks, as a TLS socket would hand them over. */
function benchFrameDecode(): number {
  const frame = encodeFrame({
    command: 0x0a,
    items: [
      { id: 1, value: randomBytes(32) },
      { id: 2, value: randomBytes(20) },
      { id: 3, value: randomBytes(PAYLOAD_BYTES) },
      { id: 4, value: randomBytes(4) },
    ],
  });
  const framesPerStream = 4096;
  const stream = new Uint8Array(frame.length * framesPerStream);
  for (let i = 0; i < framesPerStream; i++) stream.set(frame, i * frame.length);
  const rounds = 8;
  let frames = 0;
  const t = now();
  for (let r = 0; r < rounds; r++) {
    const decoder = new FrameDecoder();
    for (let off = 0; off < stream.length; off += 16384) {
      frames += decoder.push(stream.subarray(off, Math.min(stream.length, off + 16384))).length;
    }
  }
  const seconds = (now() - t) / 1000;
  if (frames !== framesPerStream * rounds) throw new Error(`decoded ${frames} frames, expected ${framesPerStream * rounds}`);
  return round((stream.length * rounds) / seconds / 1e6);
}

export async function runCryptoBench(runtime: string): Promise<CryptoBenchResult> {
  const message = randomBytes(PAYLOAD_BYTES);
  return {
    runtime,
    payloadBytes: PAYLOAD_BYTES,
    pair: await benchPair(message),
    pairEc: await benchPairEc(message),
    frameDecodeMBps: benchFrameDecode(),
  };
}
