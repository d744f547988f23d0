// Steps the onboarding, settings and contacts suites share: driving single onboarding screens (where the harness's
// onboardAppleId drives them all), bridges that refuse or do not exist, what the page keeps in IndexedDB and
// localStorage, headless registration, and starting and reading chats.
import { createServer } from 'node:net';
import type { Locator, Page } from 'playwright';
import { expect } from 'vitest';
import { startBridge, type RunningBridge } from '../../bridge/server';
import type { E2eHarness, HeadlessDevice } from './harness';

export const WAIT = { timeout: 30_000 };

export interface AppleIdAccount {
  appleId: string;
  password: string;
}

/** A loopback TCP port that nothing listens on (bound, then closed again). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/**
 * A real bridge that allows no destination: no Apple defaults, no allowlist entries and no host map, so every
 * tunnel to the sandbox's (Apple-named) hosts is refused with 4403.
 */
export function startRefusingBridge(): Promise<RunningBridge> {
  return startBridge({ host: '127.0.0.1', port: 0, allowAppleDefaults: false, bytesPerSecond: 0, logSink: () => {}, logLevel: 'error' });
}

/** The onboarding error box's text, once it shows. */
export async function onboardingError(page: Page, timeout = 60_000): Promise<string> {
  const box = page.getByTestId('onb-error');
  await box.waitFor({ timeout });
  return (await box.innerText()).trim();
}

/** Clicks Back until the first onboarding step (bridge and service) shows. */
export async function backToConnectionStep(page: Page): Promise<void> {
  const bridge = page.getByTestId('onb-bridge-url');
  for (let i = 0; i < 3 && !(await bridge.isVisible()); i++) {
    await page.getByRole('button', { name: 'Back', exact: true }).click();
    await page.waitForFunction(() => document.querySelector('[aria-busy="true"]') === null);
  }
  await bridge.waitFor(WAIT);
}

/**
 * The first step: this bridge address and the sandbox, then Continue (which checks the address and loads the
 * sandbox CA) to the sign-in step.
 */
export async function connectionStep(page: Page, bridgeUrl: string): Promise<void> {
  await page.getByTestId('onb-bridge-url').fill(bridgeUrl);
  await page.getByTestId('onb-mode-sandbox').check();
  await page.getByTestId('onb-continue').click();
  await page.getByTestId('onb-method-appleid').waitFor(WAIT);
}

/** The sign-in step for an Apple ID: fills the Apple ID, password and relay code and submits. */
export async function appleIdStep(page: Page, account: AppleIdAccount, relayCode: string): Promise<void> {
  await page.getByTestId('onb-method-appleid').check();
  await page.getByTestId('onb-apple-id').fill(account.appleId);
  await page.getByTestId('onb-password').fill(account.password);
  await page.getByTestId('onb-relay-code').fill(relayCode);
  await page.getByTestId('onb-submit').click();
}

/** Waits for the chat list (registered), failing early with the error text if onboarding shows one. */
export async function expectChatList(page: Page, timeout = 60_000): Promise<void> {
  const done = page.getByTestId('nav-chats');
  const error = page.getByTestId('onb-error');
  await done.or(error).first().waitFor({ timeout });
  if (await error.isVisible()) throw new Error(`onboarding failed: ${(await error.innerText()).trim()}`);
}

/**
 * Onboards an Apple ID account (with or without 2FA) through the harness bridge, one known step after the other.
 * (The harness's onboardAppleId polls whatever the screen shows, and can wait out its 30 s timeout when a field it
 * just saw goes away as the step changes.)
 */
export async function onboardAppleId(h: E2eHarness, page: Page, account: AppleIdAccount): Promise<void> {
  await connectionStep(page, h.bridgeUrl);
  const since = Date.now();
  await appleIdStep(page, account, await h.admin.relayCode(`relay for ${account.appleId}`));
  const code = page.getByTestId('onb-2fa-code');
  await code.or(page.getByTestId('nav-chats')).or(page.getByTestId('onb-error')).first().waitFor({ timeout: 60_000 });
  if (await code.isVisible()) {
    await code.fill(await h.admin.twoFactorCode(account.appleId, { issuedAfter: since - 1000 }));
    await page.getByTestId('onb-submit').click();
  }
  await expectChatList(page);
}

/** A 6-digit code that is not `code`. */
export function otherCode(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

/** Registers a headless device on an Apple ID account (password, then the 2FA code from the admin API). */
export async function registerHeadless(h: E2eHarness, device: HeadlessDevice, account: AppleIdAccount): Promise<void> {
  const since = Date.now();
  const first = await device.client.register({ appleId: { username: account.appleId, password: account.password } });
  expect(first.status).toBe('second-factor-required');
  const code = await h.admin.twoFactorCode(account.appleId, { issuedAfter: since - 1000 });
  const done = await device.client.register({ appleId: { username: account.appleId, password: account.password, code } });
  expect(done.status).toBe('registered');
}

/** Row counts of every object store of the app's IndexedDB database ({} when the database does not exist). */
export function storeCounts(page: Page): Promise<Record<string, number>> {
  return page.evaluate(async () => {
    const names = (await indexedDB.databases()).map((d) => d.name);
    if (!names.includes('cerulean')) return {};
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('cerulean');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const counts: Record<string, number> = {};
    for (const name of [...db.objectStoreNames]) {
      counts[name] = await new Promise<number>((resolve, reject) => {
        const req = db.transaction(name).objectStore(name).count();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    db.close();
    return counts;
  });
}

/** The page's localStorage keys. */
export function localStorageKeys(page: Page): Promise<string[]> {
  return page.evaluate(() => Object.keys(localStorage));
}

export const messageWithText = (page: Page, text: string): Locator =>
  page.getByTestId('message').filter({ has: page.getByTestId('message-text').filter({ hasText: text }) });

/** New chat with these handles (each must be reachable; a group when `groupName`), then the conversation's composer. */
export async function startChat(page: Page, handles: string[], groupName?: string): Promise<void> {
  await page.getByTestId('nav-new').click();
  await page.getByTestId('new-chat-handles').fill(handles.join(', '));
  await page.getByTestId('new-chat-lookup').click();
  const rows = page.getByTestId('new-chat-reachable');
  // Usable outside a test (in beforeAll), so it polls by hand and throws instead of using expect.poll.
  const until = Date.now() + WAIT.timeout;
  let texts = await rows.allInnerTexts();
  while (texts.length !== handles.length || texts.some((t) => /Not on iMessage/.test(t))) {
    if (Date.now() > until) throw new Error(`lookup of ${handles.join(', ')}: ${texts.join(' | ') || 'no rows'}`);
    await page.waitForTimeout(100);
    texts = await rows.allInnerTexts();
  }
  if (groupName) await page.getByTestId('new-chat-group-name').fill(groupName);
  await page.getByTestId('new-chat-start').click();
  await page.getByTestId('composer-input').waitFor(WAIT);
}

/** Sends `text` in the open conversation and returns its bubble once it shows. */
export async function send(page: Page, text: string): Promise<Locator> {
  await page.getByTestId('composer-input').fill(text);
  await page.getByTestId('composer-send').click();
  const bubble = messageWithText(page, text).last();
  await bubble.waitFor(WAIT);
  return bubble;
}

/** Opens the first chat row (optionally the one whose name matches) and waits for its composer. */
export async function openChat(page: Page, name?: string | RegExp): Promise<void> {
  await page.getByTestId('nav-chats').click();
  const rows = page.getByTestId('chat-row');
  const row = name === undefined ? rows : rows.filter({ has: page.getByTestId('chat-row-name').filter({ hasText: name }) });
  await row.first().click(WAIT);
  await page.getByTestId('composer-input').waitFor(WAIT);
}
