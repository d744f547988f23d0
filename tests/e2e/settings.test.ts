// Settings: a dead bridge shows in the connection status and the right one reconnects; an encrypted backup leaves
// the browser with no message text in clear and restores the chats on another device (after refusing a wrong
// passphrase); signing out asks first, and once confirmed leaves no account, keys, messages or drafts behind.
import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type E2eHarness } from './harness';
import {
  closedPort,
  localStorageKeys,
  messageWithText,
  onboardAppleId,
  openChat,
  send,
  startChat,
  storeCounts,
  WAIT,
} from './onboarding-helpers';

const ALICE = { appleId: 'alice@example.com', password: 'alice-password' };
const BOB = { appleId: 'bob@example.com', password: 'bob-password' };
const FROM_ALICE = 'Backup me: the plans for Saturday';
const FROM_BOB = 'Saturday works, see you at noon';
const DRAFT = 'a half-written thought';
const PASSPHRASE = 'correct horse battery staple';

const status = (page: Page) => page.getByTestId('connection-status');
const draftKeys = async (page: Page) => (await localStorageKeys(page)).filter((k) => k.startsWith('cerulean.draft.'));

/** Whether `needle` occurs in `bytes` as UTF-8 or UTF-16LE (the encodings a serializer could leave it in). */
function containsText(bytes: Buffer, needle: string): boolean {
  return bytes.includes(Buffer.from(needle, 'utf8')) || bytes.includes(Buffer.from(needle, 'utf16le'));
}

describe('settings', () => {
  let h: E2eHarness;
  let alice: Page;
  let bob: Page;
  let backup: Buffer;

  beforeAll(async () => {
    h = await startHarness();
    for (const a of [ALICE, BOB]) await h.admin.createAccount(a.appleId, a.password, { twoFactor: true });
    [alice, bob] = await Promise.all([h.newPage(), h.newPage()]);
    await Promise.all([onboardAppleId(h, alice, ALICE), onboardAppleId(h, bob, BOB)]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('shows "not connected" with a dead bridge and reconnects through the right one', async () => {
    await alice.getByTestId('nav-settings').click();
    await expect.poll(() => status(alice).getAttribute('data-state'), WAIT).toBe('connected');
    const dead = `ws://127.0.0.1:${await closedPort()}`;
    await alice.getByTestId('settings-bridge-url').fill(dead);
    await alice.getByTestId('settings-save').click();
    await expect.poll(() => status(alice).getAttribute('data-state'), WAIT).toBe('disconnected');
    await expect.poll(() => status(alice).innerText(), WAIT).toMatch(/Can't reach the bridge/);
    expect(await alice.evaluate(() => JSON.parse(localStorage.getItem('cerulean.settings')!).bridgeUrl)).toBe(dead);
    await h.screenshot(alice, 'settings-dead-bridge');

    await alice.getByTestId('settings-bridge-url').fill(h.bridgeUrl);
    await alice.getByTestId('settings-save').click();
    await expect.poll(() => status(alice).getAttribute('data-state'), WAIT).toBe('connected');
    expect(await status(alice).innerText()).not.toMatch(/Can't reach/);
  });

  it('exports an encrypted backup that holds no message text in clear', async () => {
    // History to back up (sent after the reconnect, so it also proves the connection works), and a draft.
    await startChat(alice, [BOB.appleId]);
    const sent = await send(alice, FROM_ALICE);
    await expect.poll(() => sent.getAttribute('data-status'), WAIT).toMatch(/delivered|read/);
    await openChat(bob);
    await messageWithText(bob, FROM_ALICE).waitFor(WAIT);
    await send(bob, FROM_BOB);
    await messageWithText(alice, FROM_BOB).waitFor(WAIT);
    await alice.getByTestId('composer-input').fill(DRAFT);
    await expect.poll(() => draftKeys(alice), WAIT).toHaveLength(1);

    await alice.getByTestId('nav-settings').click();
    await alice.getByTestId('settings-passphrase').fill(PASSPHRASE);
    const [download] = await Promise.all([alice.waitForEvent('download', WAIT), alice.getByTestId('settings-export').click()]);
    expect(download.suggestedFilename()).toMatch(/^cerulean-\d{4}-\d{2}-\d{2}\.cerulean-backup$/);
    backup = await readFile(await download.path());
    expect(backup.subarray(0, 8).toString('latin1')).toBe('CRLNBAK1');
    for (const secret of [FROM_ALICE, FROM_BOB, 'Saturday', BOB.appleId, ALICE.appleId]) {
      expect(containsText(backup, secret), secret).toBe(false);
    }
    await alice.getByTestId('settings-backup-result').filter({ hasText: 'Backup saved' }).waitFor(WAIT);
  });

  it('imports the backup on another device: a wrong passphrase is refused, the right one restores the chat', async () => {
    const page = await h.newPage(await h.newContext());
    await onboardAppleId(h, page, ALICE);
    await page.getByTestId('nav-chats').click();
    expect(await page.getByTestId('chat-row').count()).toBe(0);

    await page.getByTestId('nav-settings').click();
    const file = { name: 'alice.cerulean-backup', mimeType: 'application/octet-stream', buffer: backup };
    await page.getByTestId('settings-passphrase').fill('not the passphrase');
    await page.getByTestId('settings-import').setInputFiles(file);
    await page.getByRole('alert').filter({ hasText: 'Wrong passphrase' }).waitFor(WAIT);
    expect(await page.getByTestId('settings-backup-result').innerText()).toBe('');

    await page.getByTestId('settings-passphrase').fill(PASSPHRASE);
    await page.getByTestId('settings-import').setInputFiles(file);
    const result = page.getByTestId('settings-backup-result');
    await result.filter({ hasText: 'Imported' }).waitFor(WAIT);
    expect(await result.innerText()).toMatch(/Imported 1 chat, 2 messages/);
    await expect.poll(() => page.getByRole('alert').filter({ hasText: 'Wrong passphrase' }).count()).toBe(0);

    await page.getByTestId('nav-chats').click();
    const row = page.getByTestId('chat-row');
    await expect.poll(() => row.count(), WAIT).toBe(1);
    expect(await row.getByTestId('chat-row-name').innerText()).toContain(BOB.appleId);
    expect(await row.getByTestId('chat-row-preview').innerText()).toContain(FROM_BOB);
    await openChat(page);
    await messageWithText(page, FROM_ALICE).waitFor(WAIT);
    expect(await messageWithText(page, FROM_ALICE).getAttribute('data-from-me')).toBe('true');
    expect(await messageWithText(page, FROM_BOB).getAttribute('data-from-me')).toBe('false');
    await h.screenshot(page, 'settings-restored-chat');
    await page.context().close();
  });

  it('signs out only after confirmation, then leaves no account, keys, messages or drafts', async () => {
    const before = await storeCounts(alice);
    expect(before).toMatchObject({ accounts: 1, keys: 1, chats: 1 });
    expect(before.messages).toBeGreaterThanOrEqual(2);

    // Cancel leaves everything as it was.
    await alice.getByTestId('nav-settings').click();
    await alice.getByTestId('settings-signout').click();
    const dialog = alice.getByRole('dialog');
    await dialog.waitFor(WAIT);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden', ...WAIT });
    expect(await storeCounts(alice)).toEqual(before);
    expect(await draftKeys(alice)).toHaveLength(1);
    expect(await status(alice).isVisible()).toBe(true);

    await alice.getByTestId('settings-signout').click();
    await alice.getByTestId('settings-signout-confirm').click();
    await alice.getByTestId('onb-continue').waitFor(WAIT);
    const after = await storeCounts(alice);
    for (const table of ['accounts', 'keys', 'devices', 'chats', 'messages', 'outbox', 'kv']) {
      expect(after[table] ?? 0, table).toBe(0);
    }
    expect(await draftKeys(alice)).toEqual([]);
    // A reload stays signed out: nothing was left to find.
    await alice.reload();
    await alice.getByTestId('onb-continue').waitFor(WAIT);
    expect(await alice.getByTestId('nav-chats').count()).toBe(0);
    expect(h.pageErrors).toEqual([]);
  });
});
