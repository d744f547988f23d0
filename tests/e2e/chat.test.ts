// Two people in two browser contexts, plus a headless client as Alice's second device, all against the sandbox
// through the bridge: onboarding, a new device alert, 1:1 chat with receipts, typing, tapback, reply, edit and
// unsend, a group, reloads with history intact, offline start, and the identity keys' non-extractability in the page.
// The steps build on each other (one conversation), so they run in order in one describe.
import type { BrowserContext, Locator, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type E2eHarness, type HeadlessDevice } from './harness';
import { messageWithText, onboardAppleId, openChat, registerHeadless, send, startChat, WAIT } from './onboarding-helpers';

const ALICE = { appleId: 'alice@example.com', password: 'alice-password' };
const BOB = { appleId: 'bob@example.com', password: 'bob-password' };
const CAROL = { appleId: 'carol@example.com', password: 'carol-password' };
const DAVE = { appleId: 'dave@example.com', password: 'dave-password' };

const messages = (page: Page) => page.getByTestId('message');

async function messageAction(page: Page, bubble: Locator, action: string): Promise<void> {
  await bubble.hover();
  await bubble.getByTestId('message-actions').click();
  await page.getByTestId(action).click();
}

describe('two people chat in the PWA', () => {
  let h: E2eHarness;
  let aliceCtx: BrowserContext;
  let bobCtx: BrowserContext;
  let alice: Page;
  let bob: Page;
  let alice2: HeadlessDevice;
  let carol: HeadlessDevice;
  let dave: HeadlessDevice;

  beforeAll(async () => {
    h = await startHarness();
    for (const a of [ALICE, BOB, CAROL, DAVE]) await h.admin.createAccount(a.appleId, a.password, { twoFactor: true });
    aliceCtx = await h.newContext();
    bobCtx = await h.newContext();
    await aliceCtx.grantPermissions(['notifications'], { origin: h.appUrl });
    [alice, bob] = await Promise.all([h.newPage(aliceCtx), h.newPage(bobCtx)]);
    await h.screenshot(alice, 'onboarding');
    await Promise.all([onboardAppleId(h, alice, ALICE), onboardAppleId(h, bob, BOB)]);
    carol = await h.headlessDevice('carol');
    await registerHeadless(h, carol, CAROL);
    dave = await h.headlessDevice('dave');
    await registerHeadless(h, dave, DAVE);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('shows a new-device alert in the open page when the account gains a device', async () => {
    alice2 = await h.headlessDevice('alice-2');
    await registerHeadless(h, alice2, ALICE);
    const alert = alice.getByTestId('security-alert');
    await alert.waitFor(WAIT);
    expect(await alert.innerText()).toMatch(/new device/i);
    await alice.getByTestId('nav-security').click();
    await expect.poll(() => alice.getByTestId('device-row').count(), WAIT).toBeGreaterThanOrEqual(2);
    expect(await alice.locator('[data-testid="device-row"][data-current="true"]').count()).toBe(1);
    await alice.getByTestId('registration-expiry').waitFor(WAIT);
    await alice.getByTestId('security-event').first().waitFor(WAIT);
    await h.screenshot(alice, 'security');
  });

  it('chats 1:1 with delivery and read receipts, and the second device gets the sent copy', async () => {
    await startChat(alice, [BOB.appleId]);
    const first = await send(alice, 'Hello Bob, this is Alice');
    await expect.poll(() => first.getAttribute('data-status'), WAIT).toMatch(/delivered|read/);

    // Bob: a chat row with an unread badge, then the message in the conversation.
    await bob.getByTestId('nav-chats').click();
    const row = bob.getByTestId('chat-row').first();
    await row.waitFor(WAIT);
    expect(await row.getByTestId('chat-row-preview').innerText()).toContain('Hello Bob');
    await row.getByTestId('chat-row-unread').waitFor(WAIT);
    await row.click();
    const received = messageWithText(bob, 'Hello Bob, this is Alice');
    await received.waitFor(WAIT);
    expect(await received.getAttribute('data-from-me')).toBe('false');
    await expect.poll(() => messageWithText(bob, 'Hello Bob').count()).toBe(1);

    // Bob read it with the conversation open: Alice's bubble says so.
    await expect.poll(() => first.getAttribute('data-status'), WAIT).toBe('read');
    expect(await first.getByTestId('message-status').innerText()).toMatch(/Read/);

    // Alice's other device stored the sent copy, from her.
    await expect
      .poll(async () => {
        for (const chat of await alice2.client.chats()) {
          for (const m of await alice2.client.messages(chat.id)) if (m.text === 'Hello Bob, this is Alice') return m.fromMe;
        }
        return undefined;
      }, WAIT)
      .toBe(true);
    await h.screenshot(alice, 'conversation');
  });

  it('shows typing, tapbacks and replies', async () => {
    await bob.getByTestId('composer-input').pressSequentially('Typing something', { delay: 20 });
    await alice.getByTestId('typing-indicator').waitFor(WAIT);
    await bob.getByTestId('composer-input').fill('');

    const onBob = messageWithText(bob, 'Hello Bob, this is Alice');
    await messageAction(bob, onBob, 'action-tapback-love');
    const onAlice = messageWithText(alice, 'Hello Bob, this is Alice');
    await onAlice.getByTestId('message-tapbacks').waitFor(WAIT);

    await messageAction(bob, onBob, 'action-reply');
    await bob.getByTestId('composer-reply').waitFor(WAIT);
    await send(bob, 'Replying to you, Alice');
    const reply = messageWithText(alice, 'Replying to you, Alice');
    await reply.waitFor(WAIT);
    expect(await reply.getAttribute('data-from-me')).toBe('false');
    expect(await reply.getByTestId('reply-preview').innerText()).toContain('Hello Bob');
    await alice.getByTestId('typing-indicator').waitFor({ state: 'hidden', ...WAIT });
  });

  it('edits and unsends', async () => {
    const bubble = await send(alice, 'A message with a tpyo');
    await expect.poll(() => bubble.getAttribute('data-status'), WAIT).toMatch(/delivered|read/);
    await messageAction(alice, bubble, 'action-edit');
    await alice.getByTestId('edit-input').fill('A message without a typo');
    await alice.getByTestId('edit-save').click();
    const edited = messageWithText(bob, 'A message without a typo');
    await edited.waitFor(WAIT);
    await edited.getByTestId('message-edited').waitFor(WAIT);
    expect(await messageWithText(bob, 'tpyo').count()).toBe(0);

    const regret = await send(alice, 'Something I regret');
    await messageWithText(bob, 'Something I regret').waitFor(WAIT);
    await messageAction(alice, regret, 'action-unsend');
    await expect.poll(() => messageWithText(bob, 'Something I regret').count(), WAIT).toBe(0);
    await bob.getByTestId('message-unsent').first().waitFor(WAIT);
  });

  it('creates a group that every member receives', async () => {
    await startChat(alice, [BOB.appleId, CAROL.appleId], 'Weekend plans');
    await send(alice, 'Group hello from Alice');
    await openChat(bob, 'Weekend plans');
    await messageWithText(bob, 'Group hello from Alice').waitFor(WAIT);
    expect(await bob.getByTestId('conversation-title').innerText()).toContain('Weekend plans');
    await expect
      .poll(async () => {
        for (const chat of await carol.client.chats()) {
          if (chat.name !== 'Weekend plans') continue;
          for (const m of await carol.client.messages(chat.id)) if (m.text === 'Group hello from Alice') return chat.participants.length;
        }
        return 0;
      }, WAIT)
      .toBe(3);
    await send(bob, 'Bob in the group');
    await messageWithText(alice, 'Bob in the group').waitFor(WAIT);
    await alice.getByTestId('nav-chats').click();
    await expect.poll(() => alice.getByTestId('chat-row').count(), WAIT).toBe(2);
    await h.screenshot(alice, 'chat-list');
  });

  it('adds and removes group members from the group info', async () => {
    /** The group as a headless member's client stores it, and whether a message with `text` reached it. */
    const groupOf = async (d: HeadlessDevice, text: string) => {
      for (const chat of await d.client.chats()) {
        if (chat.name !== 'Weekend plans') continue;
        const got = (await d.client.messages(chat.id)).some((m) => m.text === text);
        return { participants: chat.participants, got };
      }
      return undefined;
    };
    /** Opens or closes the group info panel (the header button toggles it). */
    const groupInfo = async (open: boolean) => {
      const button = alice.getByTestId('group-info');
      if ((await button.getAttribute('aria-expanded')) !== String(open)) await button.click();
    };
    await openChat(alice, 'Weekend plans');
    await groupInfo(true);
    await alice.getByTestId('group-add-input').fill(DAVE.appleId);
    await alice.getByTestId('group-add-save').click();
    await alice.locator(`[data-testid="group-member"][data-handle="mailto:${DAVE.appleId}"]`).waitFor(WAIT);
    // Escape closes the panel and puts focus back on its button.
    await alice.getByTestId('group-add-input').press('Escape');
    await expect.poll(() => alice.getByTestId('group-info').getAttribute('aria-expanded')).toBe('false');
    expect(await alice.getByTestId('group-info').evaluate((e) => e === document.activeElement)).toBe(true);
    await send(alice, 'Welcome, Dave');
    await expect.poll(async () => (await groupOf(dave, 'Welcome, Dave'))?.got, WAIT).toBe(true);
    expect((await groupOf(dave, 'Welcome, Dave'))?.participants).toHaveLength(4);

    await groupInfo(true);
    const carolRow = alice.locator(`[data-testid="group-member"][data-handle="mailto:${CAROL.appleId}"]`);
    await carolRow.getByTestId('group-member-remove').click();
    await carolRow.waitFor({ state: 'detached', ...WAIT });
    await groupInfo(false);
    await expect.poll(async () => (await groupOf(carol, 'Welcome, Dave'))?.participants.includes(`mailto:${CAROL.appleId}`), WAIT).toBe(false);
    await send(alice, 'Without Carol');
    await expect.poll(async () => (await groupOf(dave, 'Without Carol'))?.got, WAIT).toBe(true);
    expect((await groupOf(carol, 'Without Carol'))?.got).toBe(false);
  });

  it('shows both people the same verification code for each other', async () => {
    const codeFor = async (page: Page, handle: string): Promise<string> => {
      await page.getByTestId('nav-security').click();
      await page.getByLabel('Person').selectOption(handle);
      const code = page.getByTestId('verification-code');
      await code.waitFor(WAIT);
      return (await code.innerText()).replace(/\s+/g, '');
    };
    const [seenByAlice, seenByBob] = await Promise.all([codeFor(alice, `mailto:${BOB.appleId}`), codeFor(bob, `mailto:${ALICE.appleId}`)]);
    expect(seenByAlice).toMatch(/^\d{60}$/);
    expect(seenByBob).toBe(seenByAlice);
  });

  it('keeps history and state across reloads, and opens offline with the stored history', async () => {
    await openChat(bob, /alice/i);
    await messageWithText(bob, 'A message without a typo').waitFor(WAIT);
    const before = await messages(bob).allInnerTexts();
    expect(before.length).toBeGreaterThanOrEqual(3);
    await Promise.all([alice.reload(), bob.reload()]);
    await bob.getByTestId('composer-input').waitFor(WAIT);
    await expect.poll(() => messages(bob).allInnerTexts(), WAIT).toEqual(before);
    await openChat(alice, /bob/i);
    const first = messageWithText(alice, 'Hello Bob, this is Alice');
    await expect.poll(() => first.getAttribute('data-status'), WAIT).toBe('read');
    await first.getByTestId('message-tapbacks').waitFor(WAIT);

    // Offline: the service worker serves the shell, IndexedDB the history.
    await alice.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, WAIT);
    await aliceCtx.setOffline(true);
    try {
      await alice.reload();
      await openChat(alice, /bob/i);
      await messageWithText(alice, 'Hello Bob, this is Alice').waitFor(WAIT);
      await messageWithText(alice, 'A message without a typo').waitFor(WAIT);
    } finally {
      await aliceCtx.setOffline(false);
    }
  });

  it('keeps the identity private keys non-extractable in IndexedDB', async () => {
    const result = await alice.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open('cerulean');
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const rows = await new Promise<unknown[]>((resolve, reject) => {
        const req = db.transaction('keys').objectStore('keys').getAll();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      db.close();
      const found: CryptoKey[] = [];
      const walk = (v: unknown, depth: number): void => {
        if (depth > 8 || v === null || typeof v !== 'object') return;
        if (v instanceof CryptoKey) {
          if (v.type === 'private') found.push(v);
          return;
        }
        for (const x of Object.values(v)) walk(x, depth + 1);
      };
      walk(rows, 0);
      const exported: string[] = [];
      for (const key of found) {
        try {
          await crypto.subtle.exportKey('pkcs8', key);
          exported.push(key.algorithm.name);
        } catch {
          // expected: non-extractable
        }
      }
      return { rows: rows.length, privateKeys: found.length, extractable: found.filter((k) => k.extractable).length, exported };
    });
    expect(result.rows).toBe(1);
    // Legacy signing + encryption, NGM device key + prekey.
    expect(result.privateKeys).toBeGreaterThanOrEqual(4);
    expect(result.extractable).toBe(0);
    expect(result.exported).toEqual([]);
    expect(h.pageErrors).toEqual([]);
  });
});
