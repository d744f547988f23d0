// The push watcher's API against bad and hostile input, and its rules, with real servers: the sandbox (albert for
// push certificates, the courier, the provider path to inject notifications), watchers on temp dirs and the test
// Web Push endpoint. Forged enrollments, unknown enrollments and wrong secrets, oversized bodies, push endpoints on
// private addresses, courier hosts outside the allowlist, shards, pause/drained, doubling away times after
// unanswered wake-ups, dead subscriptions, replaced tokens, unenrolling that leaves nothing behind; and the client
// library's and the wake-up parser's answers to broken input.
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ResolvedAddress } from '../../bridge/config';
import { enrollmentIdFor, shardOf } from '../../bridge/watcher/enrollment-id';
import type { WatcherOptions } from '../../bridge/watcher/config';
import type { ActivatedDevice } from '../../lib/apns/albert';
import fc from 'fast-check';
import { DecodeError } from '../../lib/errors';
import { parseWake } from '../../lib/push/wake';
import { drained, enroll, pause, status, unenroll, vapidPublicKey, WatcherError, type WatcherPushCredentials } from '../../lib/push/watcher-client';
import { startApnsWorld, startClient, type ApnsWorld } from './apns-helpers';
import { tempDir } from './sandbox-helpers';
import {
  providerPush,
  sleep,
  startPushEndpoint,
  startTestWatcher,
  waitForState,
  WATCH_WAIT,
  type PushEndpoint,
  type TestWatcher,
} from './watcher-helpers';

const MADRID = 'com.apple.madrid';

// Names the tests resolve, without a network: what each "DNS" answer is.
const DNS: Record<string, string[]> = {
  'push.example.com': ['93.184.216.34'],
  'intranet.example.com': ['10.1.2.3'],
  'mixed.example.com': ['93.184.216.34', '192.168.0.7'],
  'courier.internal.example': ['10.9.9.9'],
};
const resolver = async (host: string): Promise<ResolvedAddress[]> => {
  const found = DNS[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: 4 as const }));
};

let world: ApnsWorld;
let endpoint: PushEndpoint;
let tmp: { dir: string; remove(): Promise<void> };
const watchers: TestWatcher[] = [];
let main: TestWatcher;

async function watcher(name: string, options: WatcherOptions = {}): Promise<TestWatcher> {
  const w = await startTestWatcher(world.sandbox, path.join(tmp.dir, name), { resolver, allow: ['courier.internal.example:5223'], enrollPerMinute: 10_000, ...options });
  watchers.push(w);
  return w;
}

/** A device activated with albert, with the token the courier issued on its first connect. */
async function device(): Promise<ActivatedDevice & { push: WatcherPushCredentials & { key: Uint8Array } }> {
  const d = await world.activate({ extractable: true });
  const h = startClient(world, d);
  const token = await h.client.whenConnected();
  await h.client.close();
  const key = new Uint8Array(await crypto.subtle.exportKey('pkcs8', d.privateKey));
  return { ...d, push: { key, certificate: d.certificate, token } };
}

function body(push: WatcherPushCredentials & { key: Uint8Array }, extra: Record<string, unknown> = {}, sub = endpoint.subscribe()) {
  return {
    push: {
      key: Buffer.from(push.key).toString('base64'),
      certificate: Buffer.from(push.certificate).toString('base64'),
      token: Buffer.from(push.token).toString('base64'),
    },
    subscription: { endpoint: sub.endpoint, keys: sub.keys },
    ...extra,
  };
}

async function request(base: string, p: string, init: { method?: string; json?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${base}${p}`, {
    method: init.method ?? (init.json !== undefined || init.raw !== undefined ? 'POST' : 'GET'),
    headers: { ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : init.raw !== undefined ? { body: init.raw } : {}),
  });
  const text = await res.text();
  const json = res.headers.get('content-type') === 'application/json' ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  return { status: res.status, headers: res.headers, json, text };
}

let alice: Awaited<ReturnType<typeof device>>;
let bob: Awaited<ReturnType<typeof device>>;

beforeAll(async () => {
  tmp = await tempDir('cerulean-watcher-api-');
  world = await startApnsWorld();
  endpoint = await startPushEndpoint();
  main = await watcher('main');
  [alice, bob] = await Promise.all([device(), device()]);
});

afterAll(async () => {
  for (const w of watchers) await w.watcher.close();
  await endpoint?.close();
  await world?.close();
  await tmp?.remove();
});

describe('push watcher API', () => {
  it('serves its VAPID key, health and metrics, and answers CORS preflights', async () => {
    const key = await request(main.watcher.url, '/v1/vapid-public-key', { headers: { origin: 'https://app.example' } });
    expect(key.status).toBe(200);
    expect(key.json).toEqual({ publicKey: main.watcher.vapidPublicKey });
    expect(key.headers.get('access-control-allow-origin')).toBe('*');
    expect(key.headers.get('cache-control')).toBe('no-store');
    expect((await request(main.watcher.url, '/healthz')).json).toEqual({ status: 'ok', enrollments: 0, shard: '0/1' });
    const metrics = await request(main.watcher.url, '/metrics');
    expect(metrics.text).toContain('cerulean_watcher_enrollments{state="watching"} 0');
    expect(metrics.text).toContain('cerulean_watcher_wake_seconds_count 0');
    const pre = await request(main.watcher.url, '/v1/enrollments', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(pre.headers.get('access-control-allow-methods')).toContain('DELETE');
    expect((await request(main.watcher.url, '/nowhere')).json).toMatchObject({ error: 'not-found' });
    expect((await request(main.watcher.url, '/v1/enrollments')).status).toBe(405);

    // A watcher for one origin names only that one.
    const strict = await watcher('strict', { corsOrigins: ['https://app.example'] });
    const ok = await request(strict.watcher.url, '/healthz', { headers: { origin: 'https://app.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const other = await request(strict.watcher.url, '/healthz', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses forged and malformed enrollments with a typed 400', async () => {
    const cases: Array<[string, unknown]> = [
      ['key-mismatch', body({ ...alice.push, key: bob.push.key })],
      ['bad-certificate', body({ ...alice.push, certificate: new Uint8Array(600).fill(0x30) })],
      ['bad-certificate', body({ ...alice.push, certificate: new Uint8Array(0) })],
      ['bad-key', body({ ...alice.push, key: alice.push.key.slice(0, 200) })],
      ['bad-token', body({ ...alice.push, token: alice.push.token.slice(0, 31) })],
      ['bad-token', body({ ...alice.push, token: new Uint8Array(33) })],
      ['bad-token', { ...body(alice.push), push: { ...body(alice.push).push, token: '!!not base64!!' } }],
      ['bad-request', { subscription: body(alice.push).subscription }],
      ['bad-request', { ...body(alice.push), courierHost: 'no spaces allowed:5223' }],
      ['bad-request', { ...body(alice.push), pauseSeconds: 0 }],
      ['bad-subscription', { ...body(alice.push), subscription: { endpoint: endpoint.url, keys: { p256dh: Buffer.alloc(65, 4).toString('base64url'), auth: 'AAAAAAAAAAAAAAAAAAAAAA' } } }],
      ['bad-subscription', { ...body(alice.push), subscription: { endpoint: 'not a url', keys: body(alice.push).subscription.keys } }],
      ['bad-subscription', { ...body(alice.push), subscription: { ...body(alice.push).subscription, keys: { ...body(alice.push).subscription.keys, auth: 'AAAA' } } }],
      ['bad-request', [1, 2, 3]],
    ];
    for (const [code, json] of cases) {
      const res = await request(main.watcher.url, '/v1/enrollments', { json });
      expect(res.status, code).toBe(400);
      expect(res.json, JSON.stringify(res.json)).toMatchObject({ error: code });
    }
    expect((await request(main.watcher.url, '/v1/enrollments', { raw: '{"push":', headers: { 'content-type': 'application/json' } })).json).toMatchObject({ error: 'bad-json' });
    const form = await request(main.watcher.url, '/v1/enrollments', { raw: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    // Through the client library too: its error carries the watcher's code.
    const err = await enroll(main.watcher.url, { push: { ...alice.push, key: bob.push.key }, subscription: endpoint.subscribe() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatcherError);
    expect(err).toMatchObject({ code: 'key-mismatch', status: 400 });
    expect((await request(main.watcher.url, '/healthz')).json).toMatchObject({ enrollments: 0 });
  });

  it('refuses oversized bodies with 413, whether declared or streamed', async () => {
    const big = JSON.stringify({ ...body(alice.push), padding: 'x'.repeat(64 * 1024) });
    const declared = await request(main.watcher.url, '/v1/enrollments', { raw: big, headers: { 'content-type': 'application/json' } });
    expect(declared.status).toBe(413);
    expect(declared.json).toMatchObject({ error: 'body-too-large' });
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(new TextEncoder().encode('x'.repeat(8 * 1024)));
        c.close();
      },
    });
    const res = await fetch(`${main.watcher.url}/v1/enrollments`, { method: 'POST', body: stream, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    // The watcher still answers afterwards.
    expect((await request(main.watcher.url, '/healthz')).status).toBe(200);
  });

  it('refuses push endpoints that are not https to public addresses (403)', async () => {
    const keys = endpoint.subscribe().keys;
    const endpoints = [
      'https://10.0.0.8/push/abc',
      'https://127.0.0.1:9/push',
      'https://[::1]/push',
      'https://169.254.169.254/latest/meta-data',
      'http://192.168.1.20/push',
      'http://push.example.com/push',
      'https://intranet.example.com/push',
      'https://mixed.example.com/push',
      'ftp://push.example.com/push',
    ];
    for (const ep of endpoints) {
      const res = await request(main.watcher.url, '/v1/enrollments', { json: { ...body(alice.push), subscription: { endpoint: ep, keys } } });
      expect(res.status, ep).toBe(403);
      expect(res.json).toMatchObject({ error: 'endpoint-not-allowed' });
    }
    const unknown = await request(main.watcher.url, '/v1/enrollments', { json: { ...body(alice.push), subscription: { endpoint: 'https://nxdomain.example.com/p', keys } } });
    expect(unknown.json).toMatchObject({ error: 'endpoint-unresolvable' });
    // Without the test-mode switch, even the loopback endpoint is refused.
    const strict = await watcher('no-loopback', { allowHttpLoopbackEndpoints: false });
    const res = await request(strict.watcher.url, '/v1/enrollments', { json: body(alice.push) });
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: 'endpoint-not-allowed' });
  });

  it('refuses courier destinations outside the allowlist, or that resolve to private addresses (403)', async () => {
    for (const courierHost of ['evil.example.com', 'evil.example.com:5223', '127.0.0.1:5223', '[::1]:5223', '17-courier.push.apple.com:22', 'courier.push.apple.com.evil.example:5223']) {
      const res = await request(main.watcher.url, '/v1/enrollments', { json: body(alice.push, { courierHost }) });
      expect(res.status, courierHost).toBe(403);
      expect(res.json).toMatchObject({ error: 'destination-not-allowed' });
    }
    const internal = await request(main.watcher.url, '/v1/enrollments', { json: body(alice.push, { courierHost: 'courier.internal.example' }) });
    expect(internal.json).toMatchObject({ error: 'destination-not-public' });
    // A host the host map sends to the sandbox is allowed, like the bridge allows it.
    const mapped = await enroll(main.watcher.url, { push: alice.push, subscription: endpoint.subscribe(), courierHost: '7-courier.push.apple.com' });
    await waitForState(main.watcher, mapped.id, 'watching');
    await unenroll(main.watcher.url, mapped.id, mapped.secret);
  });

  it('answers an unknown enrollment and a wrong secret alike (404), and a missing one with 401', async () => {
    const e = await enroll(main.watcher.url, { push: alice.push, subscription: endpoint.subscribe(), pauseSeconds: 60 });
    expect(e.state).toBe('paused');
    const wrong = 'A'.repeat(43);
    for (const [id, secret] of [[e.id, wrong], ['AAAAAAAAAAAAAAAAAAAAAA', e.secret], ['short', e.secret]] as const) {
      for (const call of [() => status(main.watcher.url, id, secret), () => drained(main.watcher.url, id, secret), () => unenroll(main.watcher.url, id, secret)]) {
        await expect(call()).rejects.toMatchObject({ code: 'unknown-enrollment', status: 404 });
      }
    }
    const bare = await request(main.watcher.url, `/v1/enrollments/${e.id}/status`);
    expect(bare.status).toBe(401);
    expect(bare.json).toMatchObject({ error: 'unauthorized' });
    expect(await status(main.watcher.url, e.id, e.secret)).toMatchObject({ state: 'paused' });
    // Enrolling again replaces the first enrollment: the old secret stops working.
    const again = await enroll(main.watcher.url, { push: alice.push, subscription: endpoint.subscribe(), pauseSeconds: 60 });
    expect(again.id).toBe(e.id);
    await expect(status(main.watcher.url, e.id, e.secret)).rejects.toMatchObject({ code: 'unknown-enrollment' });
    await unenroll(main.watcher.url, again.id, again.secret);
  });

  it('pauses while the page holds the connection, resumes on /drained; unenroll deletes everything', async () => {
    const sub = endpoint.subscribe();
    const e = await enroll(main.watcher.url, { push: alice.push, subscription: sub });
    await waitForState(main.watcher, e.id, 'watching');
    const paused = await pause(e.url, e.id, e.secret, 30);
    expect(paused.state).toBe('paused');
    expect(paused.resumeAt! - Date.now()).toBeGreaterThan(25_000);
    // The device's own connection meanwhile does not fight the watcher for the token.
    const h = startClient(world, alice);
    await h.client.whenConnected();
    await sleep(300);
    expect(h.events.disconnected).toHaveLength(0);
    await h.client.close();
    expect(await drained(e.url, e.id, e.secret)).toBe('connecting');
    await waitForState(main.watcher, e.id, 'watching');
    expect(await status(e.url, e.id, e.secret)).toMatchObject({ state: 'watching', reachable: true, wakes: 0 });
    await expect(pause(e.url, e.id, e.secret, 10 * 3600)).rejects.toMatchObject({ code: 'bad-request' });

    await unenroll(e.url, e.id, e.secret);
    await expect(status(e.url, e.id, e.secret)).rejects.toMatchObject({ code: 'unknown-enrollment' });
    await main.watcher.close();
    const db = await readFile(path.join(main.dataDir, 'watcher.db'));
    expect(db.includes(Buffer.from(alice.certificate))).toBe(false);
    expect(db.includes(Buffer.from(e.id))).toBe(false);
    main = await watcher('main', { port: main.watcher.port });
    expect((await request(main.watcher.url, '/healthz')).json).toMatchObject({ enrollments: 0 });
  });

  it('stays away longer after each wake-up nobody drains, and resets once the device drains', async () => {
    const w = await watcher('backoff', { drainTimeoutMs: 400, maxAwayMs: 1_600 });
    const sub = endpoint.subscribe();
    const e = await enroll(w.watcher.url, { push: bob.push, subscription: sub });
    await waitForState(w.watcher, e.id, 'watching');
    await providerPush(world.sandbox, bob.push.token, MADRID, '{"c":100}');
    await vi.waitFor(() => expect(endpoint.pushesFor(sub.id)).toHaveLength(1), WATCH_WAIT);
    const first = await status(e.url, e.id, e.secret);
    expect(first).toMatchObject({ state: 'woken', wakes: 1 });
    expect(first.resumeAt! - first.lastWakeAt!).toBe(400);
    // Nobody drained: the watcher comes back, finds the notification still there, wakes again and stays away twice as long.
    await vi.waitFor(() => expect(endpoint.pushesFor(sub.id)).toHaveLength(2), WATCH_WAIT);
    const second = await status(e.url, e.id, e.secret);
    expect(second.resumeAt! - second.lastWakeAt!).toBe(800);
    await vi.waitFor(() => expect(endpoint.pushesFor(sub.id)).toHaveLength(3), WATCH_WAIT);
    const third = await status(e.url, e.id, e.secret);
    expect(third.resumeAt! - third.lastWakeAt!).toBe(1_600);

    // The device drains (its own client acks everything), then reports: the next wake-up is back to the start.
    const h = startClient(world, bob);
    await vi.waitFor(() => expect(h.handled.length).toBeGreaterThan(0), WATCH_WAIT);
    await h.client.close();
    await drained(e.url, e.id, e.secret);
    await waitForState(w.watcher, e.id, 'watching');
    await providerPush(world.sandbox, bob.push.token, MADRID, '{"c":100}');
    await vi.waitFor(() => expect(endpoint.pushesFor(sub.id)).toHaveLength(4), WATCH_WAIT);
    const fourth = await status(e.url, e.id, e.secret);
    expect(fourth.resumeAt! - fourth.lastWakeAt!).toBe(400);
    expect(endpoint.failures).toEqual([]);
    await unenroll(e.url, e.id, e.secret);
  });

  it('deletes an enrollment whose subscription the push service says is gone (410)', async () => {
    const w = await watcher('gone');
    const sub = endpoint.subscribe();
    endpoint.answer(sub.id, 410);
    const e = await enroll(w.watcher.url, { push: alice.push, subscription: sub });
    await waitForState(w.watcher, e.id, 'watching');
    await providerPush(world.sandbox, alice.push.token, MADRID, '{"c":100}');
    await vi.waitFor(() => expect(w.watcher.statusOf(e.id)).toBeUndefined(), WATCH_WAIT);
    expect(endpoint.pushesFor(sub.id)).toHaveLength(1);
    await expect(status(e.url, e.id, e.secret)).rejects.toMatchObject({ code: 'unknown-enrollment' });
    expect((await request(w.watcher.url, '/metrics')).text).toContain('cerulean_watcher_webpush_total{result="gone"} 1');
    // Drain what the courier held for alice, for the tests after this one.
    const h = startClient(world, alice);
    await vi.waitFor(() => expect(h.handled.length).toBeGreaterThan(0), WATCH_WAIT);
    await h.client.close();
  });

  it('keeps the token the courier issues in place of an unknown one, across a restart', async () => {
    const w = await watcher('token');
    const d = await world.activate({ extractable: true });
    const key = new Uint8Array(await crypto.subtle.exportKey('pkcs8', d.privateKey));
    const made = new Uint8Array(32).fill(7);
    const sub = endpoint.subscribe();
    const courier = world.services.courier();
    const before = new Set(courier.connectedTokens().map((t) => Buffer.from(t).toString('hex')));
    const e = await enroll(w.watcher.url, { push: { key, certificate: d.certificate, token: made }, subscription: sub });
    await waitForState(w.watcher, e.id, 'watching');
    const issued = courier.connectedTokens().find((t) => !before.has(Buffer.from(t).toString('hex')))!;
    expect(Buffer.from(issued).equals(Buffer.from(made))).toBe(false);
    expect(w.logs.some((l) => l.includes('"watch.token-changed"') && l.includes(Buffer.from(issued.subarray(0, 4)).toString('hex')))).toBe(true);
    expect(w.logs.join('\n')).not.toContain(Buffer.from(issued).toString('hex'));

    const { port } = w.watcher;
    await w.watcher.close();
    const again = await watcher('token', { port });
    await waitForState(again.watcher, e.id, 'watching');
    await providerPush(world.sandbox, issued, MADRID, '{"c":100}');
    await vi.waitFor(() => expect(endpoint.pushesFor(sub.id)).toHaveLength(1), WATCH_WAIT);
    await unenroll(again.watcher.url, e.id, e.secret);
  });

  it('shards by enrollment id: the wrong shard answers 421 naming the right one, and the client follows it', async () => {
    // Two instances behind a path router, the layout bridge/README.md describes: /s/<i>/… goes to shard i.
    const shardPorts: number[] = [];
    const router = createServer((req, res) => {
      const m = /^\/s\/([0-9]+)(\/.*)$/.exec(req.url ?? '');
      const port = m ? shardPorts[Number(m[1])] : undefined;
      if (!m || port === undefined) return void res.writeHead(404).end();
      const upstream = httpRequest({ host: '127.0.0.1', port, path: m[2], method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => router.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(router.address() as AddressInfo).port}/s`;
    try {
      for (const i of [0, 1]) {
        const w = await watcher(`shard${i}`, { shard: `${i}/2`, shardUrlTemplate: `${base}/{shard}` });
        shardPorts[i] = w.watcher.port;
      }
      const right = shardOf(enrollmentIdFor(alice.certificate), 2);
      const wrong = 1 - right;
      const res = await request(`${base}/${wrong}`, '/v1/enrollments', { json: body(alice.push, { pauseSeconds: 60 }) });
      expect(res.status).toBe(421);
      expect(res.json).toMatchObject({ error: 'wrong-shard', shard: right, shards: 2, url: `${base}/${right}` });

      const e = await enroll(`${base}/${wrong}`, { push: alice.push, subscription: endpoint.subscribe(), pauseSeconds: 60 });
      expect(e.url).toBe(`${base}/${right}`);
      expect(await status(e.url, e.id, e.secret)).toMatchObject({ state: 'paused' });
      await expect(status(`${base}/${wrong}`, e.id, e.secret)).rejects.toMatchObject({ code: 'wrong-shard', shard: right, status: 421 });
      expect((await request(`${base}/${wrong}`, '/healthz')).json).toMatchObject({ enrollments: 0, shard: `${wrong}/2` });
      await unenroll(e.url, e.id, e.secret);
    } finally {
      router.closeAllConnections();
      await new Promise((resolve) => router.close(resolve));
    }
  });

  it('limits enrollment requests per address and enrollments per watcher', async () => {
    const limited = await watcher('limited', { enrollPerMinute: 2, maxEnrollments: 1 });
    const first = await request(limited.watcher.url, '/v1/enrollments', { json: body(alice.push, { pauseSeconds: 60 }) });
    expect(first.status).toBe(201);
    const full = await request(limited.watcher.url, '/v1/enrollments', { json: body(bob.push, { pauseSeconds: 60 }) });
    expect(full.status).toBe(503);
    expect(full.json).toMatchObject({ error: 'watcher-full' });
    const third = await request(limited.watcher.url, '/v1/enrollments', { json: body(alice.push) });
    expect(third.status).toBe(429);
    expect(third.json).toMatchObject({ error: 'rate-limited' });
  });

  it('watcher-client turns unreachable watchers and unusable answers into typed errors', async () => {
    await expect(vapidPublicKey('http://127.0.0.1:1')).rejects.toMatchObject({ code: 'watcher-unreachable' });
    const answering = (status: number, text: string): typeof fetch => async () => new Response(text, { status, headers: { 'content-type': 'text/html' } });
    await expect(vapidPublicKey(main.watcher.url, { fetch: answering(200, '<html>') })).rejects.toMatchObject({ code: 'bad-response' });
    await expect(vapidPublicKey(main.watcher.url, { fetch: answering(200, '{"publicKey":"AAAA"}') })).rejects.toMatchObject({ code: 'bad-response' });
    await expect(status(main.watcher.url, 'x', 'y', { fetch: answering(502, '') })).rejects.toMatchObject({ code: 'http-502', status: 502 });
    await expect(drained(main.watcher.url, 'x', 'y', { fetch: answering(200, '{"state":"sleeping"}') })).rejects.toMatchObject({ code: 'bad-response' });
    const never: typeof fetch = (_input, init) =>
      new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    await expect(status(main.watcher.url, 'x', 'y', { fetch: never, timeoutMs: 50 })).rejects.toMatchObject({ code: 'watcher-timeout' });
    const locked = await crypto.subtle.importKey('pkcs8', new Uint8Array(alice.push.key), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' }, false, ['sign']);
    await expect(enroll(main.watcher.url, { push: { ...alice.push, key: locked }, subscription: endpoint.subscribe() })).rejects.toMatchObject({
      code: 'push-key-not-extractable',
    });
    expect((await vapidPublicKey(main.watcher.url)).length).toBe(65);
  });

  it('the wake-up parser the service worker uses accepts only wake-ups', () => {
    expect(parseWake('{"type":"wake","enrollment":"abc_-DEF","at":17}')).toEqual({ type: 'wake', enrollment: 'abc_-DEF', at: 17 });
    for (const bad of ['', 'null', '[]', '{"type":"wake"}', '{"type":"wake","enrollment":"a b","at":1}', '{"type":"wake","enrollment":"a","at":-1}', '{"type":"message","enrollment":"a","at":1}', `{"type":"wake","enrollment":"${'a'.repeat(600)}","at":1}`]) {
      expect(() => parseWake(bad), bad).toThrow(DecodeError);
    }
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        try {
          const w = parseWake(text);
          expect(w.type).toBe('wake');
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
