// Issue #6 in the browser: the recipient's PWA in Chromium turns push on in Settings and enrolls with a real push
// watcher on the sandbox's courier; a headless sender writes to it. With the page open, the page gets the message
// and the watcher, kept paused, sends nothing. With the page closed (only the service worker left), the message
// makes the watcher send exactly one Web Push to a local endpoint, which verifies its VAPID JWT and decrypts it
// (RFC 8291) — it carries no message content. Delivered to the service worker through the DevTools protocol, the
// push has the worker fetch, decrypt and store the message itself, show a notification titled with the sender's
// local contact name, send the delivery receipt and report to the watcher that it drained.
//
// Only the browser's push-service boundary is replaced: headless Chromium has no push service here, so an init
// script makes PushManager hand out a subscription for the local endpoint (with keys the test holds, so the
// endpoint can decrypt); every line of the app runs as shipped.
import type { BrowserContext, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWake } from '../../lib/push/wake';
import { waitForState, type TestSubscription } from '../integration/watcher-helpers';
import { startHarness, type E2eHarness, type HarnessWatcher, type HeadlessDevice } from './harness';
import { onboardAppleId } from './onboarding-helpers';

const ALICE = { appleId: 'alice@example.com', password: 'alice-password' };
const BOB = { appleId: 'bob@example.com', password: 'bob-password' };
const BOB_NAME = 'Bob Builder';
const WAIT = { timeout: 30_000 };
/** Where the fake push service notes the subscription it handed out (and the server key it was asked for). */
const FAKE_SUBSCRIPTION_KEY = 'e2e.push-subscription';

/** Replaces PushManager's subscribe/getSubscription with a subscription for the test's endpoint and keys. */
function fakePushService([endpoint, p256dh, auth, storageKey]: readonly [string, string, string, string]): void {
  const bytes = (b64url: string): ArrayBuffer => {
    const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0)).buffer;
  };
  const b64url = (buf: ArrayBuffer): string =>
    btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const subscription = (serverKey: string) => ({
    endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: bytes(serverKey) },
    getKey: (name: string) => (name === 'p256dh' ? bytes(p256dh) : name === 'auth' ? bytes(auth) : null),
    toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
    unsubscribe: async () => {
      localStorage.removeItem(storageKey);
      return true;
    },
  });
  PushManager.prototype.subscribe = async function (options?: PushSubscriptionOptionsInit) {
    const key = options?.applicationServerKey;
    if (!options?.userVisibleOnly || !(key instanceof ArrayBuffer || ArrayBuffer.isView(key))) throw new DOMException('bad options', 'NotAllowedError');
    const serverKey = b64url(key instanceof ArrayBuffer ? key : (key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength) as ArrayBuffer));
    localStorage.setItem(storageKey, serverKey);
    return subscription(serverKey) as unknown as PushSubscription;
  };
  PushManager.prototype.getSubscription = async function () {
    const serverKey = localStorage.getItem(storageKey);
    return serverKey === null ? null : (subscription(serverKey) as unknown as PushSubscription);
  };
}

const messageWithText = (page: Page, text: string) =>
  page.getByTestId('message').filter({ has: page.getByTestId('message-text').filter({ hasText: text }) });

/** The client store's kv entry, read straight from IndexedDB. */
function readKv(page: Page, key: string): Promise<unknown> {
  return page.evaluate(async (k) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('cerulean');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const row = await new Promise<{ value?: unknown } | undefined>((resolve, reject) => {
      const req = db.transaction('kv').objectStore('kv').get(k);
      req.onsuccess = () => resolve(req.result as { value?: unknown } | undefined);
      req.onerror = () => reject(req.error);
    });
    db.close();
    return row?.value;
  }, key);
}

/** How many stored messages hold exactly this text (IndexedDB, whatever the row layout). */
function storedWithText(page: Page, text: string): Promise<number> {
  return page.evaluate(async (t) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('cerulean');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const rows = await new Promise<unknown[]>((resolve, reject) => {
      const req = db.transaction('messages').objectStore('messages').getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    db.close();
    const holds = (v: unknown, depth: number): boolean =>
      v === t || (depth < 4 && typeof v === 'object' && v !== null && Object.values(v).some((x) => holds(x, depth + 1)));
    return rows.filter((r) => holds(r, 0)).length;
  }, text);
}

/** The service worker's notifications, as a page of the app sees them. */
function notifications(page: Page): Promise<Array<{ title: string; body: string; tag: string; data: unknown }>> {
  return page.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data as unknown }));
  });
}

describe('push wake-ups in the PWA', () => {
  let h: E2eHarness;
  let w: HarnessWatcher;
  let sub: TestSubscription;
  let ctx: BrowserContext;
  let page: Page;
  let bob: HeadlessDevice;
  let chatId: string;
  let enrollment: string;

  beforeAll(async () => {
    h = await startHarness({ watcher: true });
    w = h.watcher();
    sub = w.endpoint.subscribe();
    for (const a of [ALICE, BOB]) await h.admin.createAccount(a.appleId, a.password);
    ctx = await h.newContext();
    await ctx.grantPermissions(['notifications'], { origin: h.appUrl });
    await ctx.addInitScript(fakePushService, [sub.endpoint, sub.keys.p256dh, sub.keys.auth, FAKE_SUBSCRIPTION_KEY] as const);
    page = await h.newPage(ctx);
    const registerBob = async () => {
      bob = await h.headlessDevice('bob');
      const done = await bob.client.register({ appleId: { username: BOB.appleId, password: BOB.password } });
      expect(done.status).toBe('registered');
    };
    await Promise.all([onboardAppleId(h, page, ALICE), registerBob()]);
    chatId = (await bob.client.chatWith(`mailto:${ALICE.appleId}`)).id;
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('turns push on in Settings: subscribed with the watcher’s key, enrolled, and paused while the page is open', async () => {
    // Bob is a local contact: the notification's title comes from here, on the device.
    await page.getByTestId('nav-contacts').click();
    await page.getByTestId('contacts-import-vcard').setInputFiles({
      name: 'bob.vcf',
      mimeType: 'text/vcard',
      buffer: Buffer.from(`BEGIN:VCARD\r\nVERSION:3.0\r\nFN:${BOB_NAME}\r\nEMAIL:${BOB.appleId}\r\nEND:VCARD\r\n`),
    });
    await page.getByTestId('contact-row').filter({ hasText: BOB_NAME }).waitFor(WAIT);

    await page.getByTestId('nav-settings').click();
    expect(await page.getByTestId('push-explainer').innerText()).toMatch(/cannot read/);
    // A click, not check(): the switch turns on once the enrollment is done.
    await page.getByTestId('settings-push').click();
    await expect.poll(() => page.getByTestId('push-status').getAttribute('data-state'), WAIT).toBe('paused');
    expect(await page.getByTestId('push-status').innerText()).toMatch(/reachable/i);
    await page.getByTestId('push-explainer').scrollIntoViewIfNeeded();
    await h.screenshot(page, 'push-settings');

    expect(await page.evaluate((k) => localStorage.getItem(k), FAKE_SUBSCRIPTION_KEY)).toBe(w.test.watcher.vapidPublicKey);
    const config = (await readKv(page, 'app/push')) as { enrollment: { id: string; url: string }; bridgeUrl: string; trustedRoots: string[] };
    expect(config.bridgeUrl).toBe(h.bridgeUrl);
    expect(config.enrollment.url).toBe(w.url);
    expect(config.trustedRoots[0]).toContain('BEGIN CERTIFICATE');
    enrollment = config.enrollment.id;
    expect(w.test.watcher.statusOf(enrollment)?.state).toBe('paused');
  });

  it('with the page open, the page gets the message and no Web Push or notification appears', async () => {
    const text = 'Hi Alice, the page is open';
    await bob.client.sendText(chatId, text);
    await page.getByTestId('nav-chats').click();
    await page.getByTestId('chat-row').first().click(WAIT);
    await messageWithText(page, text).waitFor(WAIT);
    await page.waitForTimeout(1_500);
    expect(w.endpoint.pushesFor(sub.id)).toHaveLength(0);
    expect(await notifications(page)).toEqual([]);
    expect(w.test.watcher.statusOf(enrollment)?.state).toBe('paused');
  });

  it('with the page closed, one content-free Web Push wakes the service worker, which fetches, stores and notifies', async () => {
    // A page of another origin keeps a DevTools session on this browser context once the app's page is gone.
    const blank = await ctx.newPage();
    const cdp = await ctx.newCDPSession(blank);
    const registrations = new Map<string, string>();
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: list }) => {
      for (const r of list) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
    });
    await cdp.send('ServiceWorker.enable');

    // Leaving, the page lets the watcher back onto the courier.
    await page.close();
    await waitForState(w.test.watcher, enrollment, 'watching');
    const drainedBefore = w.test.watcher.metrics.snapshot().resumes.drained;

    const text = 'Hi Alice, this arrived while Cerulean was closed';
    const sent = await bob.client.sendText(chatId, text);
    await expect.poll(() => w.endpoint.pushesFor(sub.id).length, WAIT).toBe(1);
    const [push] = w.endpoint.pushesFor(sub.id);
    expect(w.endpoint.failures).toEqual([]);
    // The endpoint verified the VAPID JWT (signed by the watcher's key, for this origin) and decrypted the body.
    expect(push!.vapidKey).toBe(w.test.watcher.vapidPublicKey);
    expect(push!.claims.aud).toBe(w.endpoint.url);
    // No content: the wake-up's three fields, nothing else.
    expect(Object.keys(JSON.parse(push!.text) as object).sort()).toEqual(['at', 'enrollment', 'type']);
    expect(push!.text).not.toContain(text);
    expect(parseWake(push!.text).enrollment).toBe(enrollment);

    const registrationId = registrations.get(`${h.appUrl}/`);
    expect(registrationId).toBeDefined();
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: h.appUrl, registrationId: registrationId!, data: push!.text });

    // The worker closed its courier connection, then reported drained: the watcher is back.
    await expect.poll(() => w.test.watcher.metrics.snapshot().resumes.drained, WAIT).toBe(drainedBefore + 1);
    await waitForState(w.test.watcher, enrollment, 'watching');
    // It sent the delivery receipt itself.
    await expect.poll(async () => (await bob.client.message(sent.uuid))?.status, WAIT).toMatch(/delivered|read/);

    page = await h.newPage(ctx);
    const shown = await notifications(page);
    expect(shown).toEqual([{ title: BOB_NAME, body: text, tag: expect.stringContaining('chat:'), data: expect.anything() }]);
    const url = (shown[0]!.data as { url: string }).url;
    expect(url).toMatch(/^\/#\/chat\//);
    expect(await storedWithText(page, text)).toBe(1);
    await page.goto(`${h.appUrl}${url}`);
    await messageWithText(page, text).waitFor(WAIT);
    expect(await messageWithText(page, text).count()).toBe(1);
    expect(w.endpoint.pushesFor(sub.id)).toHaveLength(1);

    // The same wake-up again while a page holds the session: the worker leaves it to the page.
    await expect.poll(() => w.test.watcher.statusOf(enrollment)?.state, WAIT).toBe('paused');
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: h.appUrl, registrationId: registrationId!, data: push!.text });
    // Long enough for a worker that did connect to go idle and report (the first run took about as long).
    await page.waitForTimeout(4_000);
    expect(await notifications(page)).toHaveLength(1);
    expect(w.test.watcher.metrics.snapshot().resumes.drained).toBe(drainedBefore + 1);
    expect(w.test.watcher.statusOf(enrollment)?.state).toBe('paused');
  });

  it('turning push off in Settings unenrolls (the watcher forgets the device) and unsubscribes', async () => {
    await page.getByTestId('nav-settings').click();
    await page.getByTestId('settings-push').click();
    await expect.poll(() => page.getByTestId('settings-push').isChecked(), WAIT).toBe(false);
    expect(w.test.watcher.statusOf(enrollment)).toBeUndefined();
    expect(await page.evaluate((k) => localStorage.getItem(k), FAKE_SUBSCRIPTION_KEY)).toBeNull();
    expect(await readKv(page, 'app/push')).toBeUndefined();
    expect(h.pageErrors).toEqual([]);
  });
});
