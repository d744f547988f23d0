// Fixtures for the push watcher suites: a local Web Push endpoint that checks every request the way a push service
// and a browser would — the VAPID JWT (ES256 by the `k` key, aud = the endpoint's origin, exp, sub) and the RFC 8291
// aes128gcm body, decrypted with the subscription's private key and auth secret — a watcher on a temp data dir
// pointed at the sandbox's courier (host map + sandbox CA), and a way to read a headless client's push credentials.
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, KeyObject, randomBytes, verify } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { vi } from 'vitest';
import { startWatcher, type RunningWatcher } from '../../bridge/watcher/watcher';
import type { WatcherOptions } from '../../bridge/watcher/config';
import type { WatcherPushCredentials } from '../../lib/push/watcher-client';
import type { Sandbox } from '../../sandbox/sandbox';
import type { TestDevice } from './e2e-helpers';
import { appleRequest } from './sandbox-helpers';

export const WATCH_WAIT = { timeout: 15_000, interval: 20 };

// ---- RFC 8291 / RFC 8188 -----------------------------------------------------------------------------------------

/**
 * Decrypts an aes128gcm Web Push body for the subscription whose P-256 key is `receiver` and whose auth secret is
 * `authSecret`; throws on any deviation (header, key, tag, padding).
 */
export function decryptWebPush(body: Buffer, receiver: { privateKey: Buffer; publicKey: Buffer }, authSecret: Buffer): Buffer {
  // Header: salt(16) ‖ rs(4) ‖ idlen(1) ‖ keyid(idlen) — keyid is the sender's ephemeral public key.
  if (body.length < 21) throw new Error('body shorter than the aes128gcm header');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  if (idlen !== 65) throw new Error(`keyid must be a 65-byte P-256 point, got ${idlen} bytes`);
  if (rs < 18) throw new Error('record size too small');
  const senderPublic = body.subarray(21, 21 + idlen);
  const ciphertext = body.subarray(21 + idlen);

  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(receiver.privateKey);
  const shared = ecdh.computeSecret(senderPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), receiver.publicKey, senderPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', shared, authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));

  const plain: Buffer[] = [];
  let seq = 0;
  for (let off = 0; off < ciphertext.length; off += rs, seq++) {
    const record = ciphertext.subarray(off, Math.min(off + rs, ciphertext.length));
    const last = off + rs >= ciphertext.length;
    if (record.length < 17) throw new Error('record shorter than its tag');
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ seq) >>> 0, 8);
    const decipher = createDecipheriv('aes-128-gcm', cek, iv);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    // Padding: the content, one delimiter (2 in the last record, 1 before), then zeros.
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (end < 0 || padded[end] !== (last ? 2 : 1)) throw new Error('bad record padding delimiter');
    plain.push(padded.subarray(0, end));
  }
  return Buffer.concat(plain);
}

// ---- VAPID (RFC 8292) ---------------------------------------------------------------------------------------------

export interface VapidClaims {
  aud: string;
  exp: number;
  sub: string;
}

/** Checks `Authorization: vapid t=<jwt>, k=<key>` for `audience`; returns the claims and the key. Throws otherwise. */
export function verifyVapid(authorization: string | undefined, audience: string, nowMs = Date.now()): { claims: VapidClaims; key: string } {
  const m = /^vapid t=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization ?? '');
  if (!m) throw new Error('no vapid Authorization header');
  const [jwt, key] = [m[1]!, m[2]!];
  const [h, p, s] = jwt.split('.') as [string, string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { typ?: string; alg?: string };
  if (header.alg !== 'ES256' || header.typ !== 'JWT') throw new Error(`unexpected JWT header ${JSON.stringify(header)}`);
  const point = Buffer.from(key, 'base64url');
  if (point.length !== 65 || point[0] !== 4) throw new Error('k is not an uncompressed P-256 point');
  const publicKey = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  if (!verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) {
    throw new Error('the JWT signature does not verify with k');
  }
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as VapidClaims;
  if (claims.aud !== audience) throw new Error(`aud ${claims.aud} is not the endpoint origin ${audience}`);
  const now = nowMs / 1000;
  if (!Number.isInteger(claims.exp) || claims.exp <= now || claims.exp > now + 86_400) throw new Error(`exp ${claims.exp} out of range`);
  if (!/^(mailto:|https:)/.test(claims.sub ?? '')) throw new Error(`sub ${claims.sub} is not a mailto: or https: contact`);
  return { claims, key };
}

// ---- a Web Push endpoint -----------------------------------------------------------------------------------------

export interface TestSubscription {
  readonly id: string;
  readonly endpoint: string;
  readonly keys: { p256dh: string; auth: string };
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
  readonly authSecret: Buffer;
}

export interface ReceivedPush {
  subscription: string;
  /** performance.now() when the request arrived. */
  receivedAt: number;
  headers: IncomingMessage['headers'];
  claims: VapidClaims;
  vapidKey: string;
  /** The raw encrypted body. */
  body: Buffer;
  /** The decrypted payload. */
  text: string;
}

export interface PushEndpoint {
  readonly url: string;
  readonly pushes: ReceivedPush[];
  /** Requests that failed verification or decryption (a correct watcher leaves this empty). */
  readonly failures: string[];
  subscribe(): TestSubscription;
  /** Answer this subscription's next pushes with `status` (e.g. 410 Gone) instead of 201. */
  answer(subscriptionId: string, status: number): void;
  pushesFor(subscriptionId: string): ReceivedPush[];
  onPush?: (push: ReceivedPush) => void;
  close(): Promise<void>;
}

export async function startPushEndpoint(): Promise<PushEndpoint> {
  const subscriptions = new Map<string, TestSubscription>();
  const answers = new Map<string, number>();
  const pushes: ReceivedPush[] = [];
  const failures: string[] = [];
  let origin = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const receivedAt = performance.now();
      const id = /^\/push\/([a-z0-9]+)$/.exec(req.url ?? '')?.[1] ?? '';
      const sub = subscriptions.get(id);
      try {
        if (req.method !== 'POST' || !sub) throw new Error(`unexpected ${req.method} ${req.url}`);
        if (req.headers['content-encoding'] !== 'aes128gcm') throw new Error(`content-encoding ${req.headers['content-encoding']}`);
        if (!/^[0-9]+$/.test(String(req.headers.ttl ?? ''))) throw new Error('no TTL header');
        const { claims, key } = verifyVapid(req.headers.authorization, origin);
        const body = Buffer.concat(chunks);
        const text = decryptWebPush(body, sub, sub.authSecret).toString('utf8');
        const push: ReceivedPush = { subscription: id, receivedAt, headers: req.headers, claims, vapidKey: key, body, text };
        pushes.push(push);
        endpoint.onPush?.(push);
        res.writeHead(answers.get(id) ?? 201, { location: `${origin}/message/${randomBytes(6).toString('hex')}` }).end();
      } catch (e) {
        failures.push((e as Error).message);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const endpoint: PushEndpoint = {
    url: origin,
    pushes,
    failures,
    subscribe() {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const id = randomBytes(8).toString('hex');
      const authSecret = randomBytes(16);
      const sub: TestSubscription = {
        id,
        endpoint: `${origin}/push/${id}`,
        keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: authSecret.toString('base64url') },
        privateKey: ecdh.getPrivateKey(),
        publicKey: ecdh.getPublicKey(),
        authSecret,
      };
      subscriptions.set(id, sub);
      return sub;
    },
    answer(id, status) {
      answers.set(id, status);
    },
    pushesFor(id) {
      return pushes.filter((p) => p.subscription === id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return endpoint;
}

// ---- the watcher -------------------------------------------------------------------------------------------------

export interface TestWatcher {
  readonly watcher: RunningWatcher;
  readonly dataDir: string;
  /** Every log line the watcher wrote. */
  readonly logs: string[];
}

/**
 * A watcher on `dataDir` that reaches the sandbox's courier through the host map, trusting only the sandbox CA, and
 * accepts the test endpoint's plain-http loopback URLs. Quick back-off; logs kept in memory at debug level.
 */
export async function startTestWatcher(sandbox: Sandbox, dataDir: string, options: WatcherOptions = {}, logs: string[] = []): Promise<TestWatcher> {
  const watcher = await startWatcher({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    hostMap: sandbox.hostMap.hosts,
    caFile: sandbox.caFile,
    allowHttpLoopbackEndpoints: true,
    courierBackoffInitialMs: 100,
    courierBackoffMaxMs: 500,
    courierConnectTimeoutMs: 5_000,
    logLevel: 'debug',
    logSink: (line) => void logs.push(line),
    ...options,
  });
  return { watcher, dataDir: path.resolve(dataDir), logs };
}

// ---- devices -----------------------------------------------------------------------------------------------------

/** A headless client's push key (PKCS#8), certificate and token, as the PWA would hand them to the watcher. */
export async function pushCredentialsOf(d: TestDevice): Promise<WatcherPushCredentials & { key: Uint8Array }> {
  const [account] = await d.store.accounts.list();
  const push = account?.push;
  if (!push?.token) throw new Error(`${d.name} has no push credentials yet`);
  // The file store hands keys back non-extractable; Node can still read a CryptoKey's material (as the PWA would
  // export its extractable key).
  const key = new Uint8Array(KeyObject.from(push.keyPair.privateKey).export({ format: 'der', type: 'pkcs8' }));
  return { key, certificate: push.certificate, token: push.token };
}

/** Apple's provider path on the sandbox: one notification to `token` on `topic`. */
export async function providerPush(sandbox: Sandbox, token: Uint8Array, topic: string, payload: string): Promise<void> {
  const res = await appleRequest(sandbox, `https://api.push.apple.com/3/device/${Buffer.from(token).toString('hex')}`, {
    headers: { 'apns-topic': topic },
    body: payload,
  });
  if (res.status !== 200) throw new Error(`provider push answered ${res.status} ${res.text}`);
}

export async function waitForState(w: RunningWatcher, id: string, state: string): Promise<void> {
  await vi.waitFor(() => {
    const s = w.statusOf(id)?.state;
    if (s !== state) throw new Error(`enrollment ${id} is ${s ?? 'gone'}, waiting for ${state}`);
  }, WATCH_WAIT);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
