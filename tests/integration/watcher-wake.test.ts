// Issue #6, the push watcher end to end with real servers: the sandbox and its courier, the bridge, two headless
// clients (Alice sends, Bob's app is closed), the watcher holding Bob's push credentials, and a local Web Push
// endpoint that verifies VAPID and decrypts every push. A message to Bob wakes him exactly once, with a payload that
// says nothing about the message; the courier still holds the message, and Bob's own client gets it. A watcher
// restarted in the middle loses neither the enrollment nor the message. Neither the database nor the logs hold
// Bob's identity keys, his push key in the clear, or any text.
import { KeyObject } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { drained, enroll, status, vapidPublicKey, type Enrollment } from '../../lib/push/watcher-client';
import { parseWake } from '../../lib/push/wake';
import { registerPhone, startE2eWorld, waitForMessage, type E2eWorld, type TestDevice } from './e2e-helpers';
import { tempDir } from './sandbox-helpers';
import {
  pushCredentialsOf,
  sleep,
  startPushEndpoint,
  startTestWatcher,
  waitForState,
  WATCH_WAIT,
  type PushEndpoint,
  type TestSubscription,
  type TestWatcher,
} from './watcher-helpers';

const ALICE = '+15555550140';
const BOB = '+15555550141';
const BOB_URI = `tel:${BOB}`;

const texts: string[] = [];
const text = (label: string) => {
  const t = `${label} ${Math.random().toString(36).slice(2, 10)}`;
  texts.push(t);
  return t;
};

let world: E2eWorld;
let alice: TestDevice;
let bob: TestDevice;
let endpoint: PushEndpoint;
let tmp: { dir: string; remove(): Promise<void> };
let w: TestWatcher;
const logs: string[] = [];
let sub: TestSubscription;
let enrollment: Enrollment;
let chat: string;
let bobToken: Uint8Array;

beforeAll(async () => {
  tmp = await tempDir('cerulean-watcher-');
  world = await startE2eWorld({ phones: [{ number: ALICE }, { number: BOB }] });
  endpoint = await startPushEndpoint();
  alice = await world.device('alice');
  bob = await world.device('bob');
  await Promise.all([registerPhone(world, alice, ALICE), registerPhone(world, bob, BOB)]);
  chat = (await alice.client.chatWith(BOB_URI)).id;
  w = await startTestWatcher(world.sandbox, path.join(tmp.dir, 'watcher'), {}, logs);
});

afterAll(async () => {
  await w?.watcher.close();
  await endpoint?.close();
  await world?.close();
  await tmp?.remove();
});

/** Bob opens the app: his own client connects with his push credentials and takes what the courier holds. */
async function bobDrains(uuids: string[]): Promise<void> {
  bob = await world.device('bob');
  await bob.client.start();
  for (const uuid of uuids) await waitForMessage(bob, uuid);
  for (const uuid of uuids) await waitForMessage(alice, uuid, (m) => m.status === 'delivered');
  // The service worker closes its connection, then reports.
  await bob.close();
  expect(await drained(enrollment.url, enrollment.id, enrollment.secret)).toBe('connecting');
}

describe('push watcher', () => {
  it('enrolls Bob with only his push credentials while his app is closed, and watches his token', async () => {
    const creds = await pushCredentialsOf(bob);
    bobToken = creds.token;
    await bob.close();
    const vapid = await vapidPublicKey(w.watcher.url);
    expect(Buffer.from(vapid).toString('base64url')).toBe(w.watcher.vapidPublicKey);
    sub = endpoint.subscribe();
    enrollment = await enroll(w.watcher.url, { push: creds, subscription: { endpoint: sub.endpoint, keys: sub.keys } });
    expect(enrollment).toMatchObject({ url: w.watcher.url, state: 'connecting' });
    await vi.waitFor(async () => expect(await status(enrollment.url, enrollment.id, enrollment.secret)).toMatchObject({ state: 'watching', reachable: true }), WATCH_WAIT);
    await sleep(300);
    expect(endpoint.pushes).toHaveLength(0);
  });

  it('a message to Bob sends exactly one Web Push, verified and decrypted, carrying no content; the courier keeps the message', async () => {
    const secret = text('Meet at the north gate');
    const sentAt = Date.now();
    const m = await alice.client.sendText(chat, secret);
    await vi.waitFor(() => expect(endpoint.pushesFor(sub.id)).toHaveLength(1), WATCH_WAIT);
    const push = endpoint.pushes[0]!;
    expect(push.vapidKey).toBe(w.watcher.vapidPublicKey);
    expect(push.claims.aud).toBe(endpoint.url);
    expect(push.headers.urgency).toBe('high');
    const payload = JSON.parse(push.text) as Record<string, unknown>;
    expect(Object.keys(payload).sort()).toEqual(['at', 'enrollment', 'type']);
    expect(parseWake(push.text)).toEqual({ type: 'wake', enrollment: enrollment.id, at: payload.at });
    expect(payload.at as number).toBeGreaterThanOrEqual(sentAt);
    for (const t of texts) {
      expect(push.text).not.toContain(t);
      expect(push.body.includes(Buffer.from(t))).toBe(false);
    }
    expect(endpoint.failures).toEqual([]);

    const s = await status(enrollment.url, enrollment.id, enrollment.secret);
    expect(s).toMatchObject({ state: 'woken', wakes: 1, reachable: true });
    expect(s.resumeAt! - s.lastWakeAt!).toBe(5 * 60_000);
    // Not acknowledged: the courier still holds it, and the watcher has left Bob's token alone for his device.
    const courier = world.services.courier();
    expect(courier.pendingCount(bobToken)).toBeGreaterThanOrEqual(1);
    await vi.waitFor(() => expect(courier.connectedTokens().map((t) => Buffer.from(t).toString('hex'))).not.toContain(Buffer.from(bobToken).toString('hex')), WATCH_WAIT);
    // So not delivered either: Alice sees "sent", never "delivered", while Bob is away.
    await sleep(500);
    expect((await alice.store.messages.get(m.uuid))?.status).toBe('sent');
    expect(endpoint.pushesFor(sub.id)).toHaveLength(1);

    await bobDrains([m.uuid]);
    expect(courier.pendingCount(bobToken)).toBe(0);
    await waitForState(w.watcher, enrollment.id, 'watching');
    await sleep(500);
    expect(endpoint.pushesFor(sub.id)).toHaveLength(1);
    expect(w.watcher.statusOf(enrollment.id)).toMatchObject({ state: 'watching', wakes: 1 });
  });

  it('a watcher restarted mid-flight keeps the enrollment, and a message sent while it was down still wakes Bob once', async () => {
    // Same data dir and port: what a process manager restarting it would do.
    const restart = async () => {
      const { port } = w.watcher;
      await w.watcher.close();
      return () => startTestWatcher(world.sandbox, w.dataDir, { port }, logs);
    };
    const reopen = await restart();
    const m = await alice.client.sendText(chat, text('Sent while the watcher was down'));
    await waitForMessage(alice, m.uuid, (x) => x.status === 'sent');
    w = await reopen();
    expect(await status(w.watcher.url, enrollment.id, enrollment.secret)).toMatchObject({ wakes: 1 });
    await vi.waitFor(() => expect(endpoint.pushesFor(sub.id)).toHaveLength(2), WATCH_WAIT);
    expect(parseWake(endpoint.pushes[1]!.text).enrollment).toBe(enrollment.id);
    await waitForState(w.watcher, enrollment.id, 'woken');

    // Restarted again while woken: it stays away (the wake-up stands) instead of waking Bob a second time.
    w = await (await restart())();
    expect(w.watcher.statusOf(enrollment.id)).toMatchObject({ state: 'woken', wakes: 2 });
    await sleep(300);
    expect(endpoint.pushesFor(sub.id)).toHaveLength(2);

    await bobDrains([m.uuid]);
    await waitForState(w.watcher, enrollment.id, 'watching');
    await sleep(500);
    expect(endpoint.pushesFor(sub.id)).toHaveLength(2);
    expect(endpoint.failures).toEqual([]);
  });

  it('neither the database nor the logs hold an identity key, the push key in the clear, the token in full, or any text', async () => {
    await w.watcher.close();
    bob = await world.device('bob');
    const [account] = await bob.store.accounts.list();
    const keys = await bob.store.keys.get(account!.id);
    const privateKeys = [keys?.legacy?.signing.privateKey, keys?.legacy?.encryption.privateKey, keys?.ngm?.deviceKey.privateKey, keys?.ngm?.prekey.privateKey];
    expect(privateKeys.every((k) => k !== undefined)).toBe(true);
    const needles: Array<[string, Buffer]> = [];
    for (const k of privateKeys as CryptoKey[]) {
      const object = KeyObject.from(k);
      needles.push(['identity key (PKCS#8)', object.export({ format: 'der', type: 'pkcs8' })]);
      const jwk = object.export({ format: 'jwk' });
      if (jwk.d) needles.push(['identity key (scalar)', Buffer.from(jwk.d, 'base64url')]);
    }
    needles.push(['identity blob', Buffer.from(keys!.legacy!.blob)]);
    const creds = await pushCredentialsOf(bob);
    needles.push(['push key', Buffer.from(creds.key)]);
    for (const t of texts) needles.push([`text "${t}"`, Buffer.from(t)]);
    const textNeedles: Array<[string, string]> = [
      ...needles.flatMap(([what, b]): Array<[string, string]> => [[what, b.toString('base64')], [what, b.toString('hex')]]),
      ['token (hex)', Buffer.from(creds.token).toString('hex')],
      ['token (base64)', Buffer.from(creds.token).toString('base64')],
      ['secret', enrollment.secret],
      ['subscription auth', sub.keys.auth],
      ['subscription endpoint', sub.endpoint],
    ];

    const files = await readdir(w.dataDir);
    expect(files).toContain('watcher.db');
    for (const file of files.filter((f) => f.startsWith('watcher.db'))) {
      const bytes = await readFile(path.join(w.dataDir, file));
      for (const [what, needle] of needles) expect(bytes.includes(needle), `${what} in ${file}`).toBe(false);
      for (const [what, needle] of textNeedles) expect(bytes.includes(Buffer.from(needle)), `${what} in ${file}`).toBe(false);
    }
    const logText = logs.join('\n');
    expect(logs.length).toBeGreaterThan(10);
    expect(logText).toContain('webpush.sent');
    for (const [what, needle] of textNeedles) expect(logText.includes(needle), `${what} in the logs`).toBe(false);
    for (const t of texts) expect(logText).not.toContain(t);
  });
});
