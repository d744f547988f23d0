// Accessibility and layout of every screen, checked in the built app: axe-core's WCAG 2 A/AA rules find no serious
// or critical violation on onboarding, the chat list, a conversation, new chat, contacts, security and settings, in
// light and dark mode; keyboard alone can reach and send a message; at phone width one pane shows with the
// navigation at hand and nothing scrolls sideways.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { BrowserContext, Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type E2eHarness, type HeadlessDevice } from './harness';
import { onboardAppleId } from './onboarding-helpers';

const DANA = { appleId: 'dana@example.com', password: 'dana-password' };
const EVAN = { appleId: 'evan@example.com', password: 'evan-password' };
const WAIT = { timeout: 30_000 };
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

/** Serious and critical WCAG 2 A/AA violations on the page as it is now. */
async function violations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE_SOURCE });
  const found = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: Document, opts: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations;
  });
  return found
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
}

async function registerHeadless(device: HeadlessDevice, account: { appleId: string; password: string }): Promise<void> {
  // The accounts have no 2FA: the password alone signs in.
  expect((await device.client.register({ appleId: { username: account.appleId, password: account.password } })).status).toBe('registered');
}

describe('accessibility and layout', () => {
  let h: E2eHarness;
  let evan: HeadlessDevice;

  beforeAll(async () => {
    h = await startHarness();
    for (const a of [DANA, EVAN]) await h.admin.createAccount(a.appleId, a.password, { twoFactor: false });
    evan = await h.headlessDevice('evan');
    await registerHeadless(evan, EVAN);
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** Dana onboarded in a new context with the given color scheme and viewport, with a chat with Evan. */
  async function danaIn(options: Parameters<E2eHarness['newContext']>[0]): Promise<{ context: BrowserContext; page: Page }> {
    const context = await h.newContext(options);
    const page = await h.newPage(context);
    expect(await violations(page), 'onboarding').toEqual([]);
    await onboardAppleId(h, page, DANA);
    return { context, page };
  }

  /** Starts the chat with Evan from the new-chat screen and sends `text`. */
  async function chatWithEvan(page: Page, text: string): Promise<void> {
    await page.getByTestId('nav-new').click();
    await page.getByTestId('new-chat-handles').fill(EVAN.appleId);
    await page.getByTestId('new-chat-lookup').click();
    await page.getByTestId('new-chat-reachable').waitFor(WAIT);
    await page.getByTestId('new-chat-start').click();
    await page.getByTestId('composer-input').fill(text);
    await page.getByTestId('composer-send').click();
    await page.getByTestId('message').filter({ hasText: text }).waitFor(WAIT);
  }

  for (const colorScheme of ['light', 'dark'] as const) {
    it(`every screen passes axe's WCAG 2 AA rules (${colorScheme})`, async () => {
      const { context, page } = await danaIn({ colorScheme });
      await page.getByTestId('nav-chats').click();
      expect(await violations(page), 'chat list (empty)').toEqual([]);

      await page.getByTestId('nav-new').click();
      await page.getByTestId('new-chat-handles').fill(EVAN.appleId);
      await page.getByTestId('new-chat-lookup').click();
      await page.getByTestId('new-chat-reachable').waitFor(WAIT);
      expect(await violations(page), 'new chat').toEqual([]);
      await page.getByTestId('new-chat-start').click();
      await page.getByTestId('composer-input').fill(`Hi Evan (${colorScheme})`);
      await page.getByTestId('composer-send').click();
      // Evan answers what he received (his client learns this new device of Dana's from that message).
      const chat = await evan.client.chatWith(`mailto:${DANA.appleId}`);
      await expect
        .poll(async () => (await evan.client.messages(chat.id)).some((m) => m.text === `Hi Evan (${colorScheme})`), WAIT)
        .toBe(true);
      await evan.client.sendText(chat.id, `Hi Dana (${colorScheme})`);
      await page.getByTestId('message').filter({ hasText: `Hi Dana (${colorScheme})` }).waitFor(WAIT);
      expect(await violations(page), 'conversation').toEqual([]);
      const own = page.getByTestId('message').filter({ hasText: `Hi Evan (${colorScheme})` });
      await own.hover();
      await own.getByTestId('message-actions').click();
      expect(await violations(page), 'message actions').toEqual([]);
      await page.keyboard.press('Escape');

      for (const [nav, name] of [
        ['nav-chats', 'chat list'],
        ['nav-contacts', 'contacts'],
        ['nav-security', 'security'],
        ['nav-settings', 'settings'],
      ] as const) {
        await page.getByTestId(nav).click();
        await page.waitForLoadState('domcontentloaded');
        expect(await violations(page), name).toEqual([]);
      }
      await context.close();
    });
  }

  it('sends a message with the keyboard alone', async () => {
    const { context, page } = await danaIn({});
    await chatWithEvan(page, 'Started with the mouse');
    await page.getByTestId('nav-chats').click();
    const row = page.getByTestId('chat-row').first();
    await row.waitFor(WAIT);
    // Tab to the chat row, open it with Enter, then type and send with Enter.
    for (let i = 0; i < 40 && !(await row.evaluate((e) => e === document.activeElement || e.contains(document.activeElement))); i++) {
      await page.keyboard.press('Tab');
    }
    expect(await row.evaluate((e) => e === document.activeElement || e.contains(document.activeElement))).toBe(true);
    await page.keyboard.press('Enter');
    const input = page.getByTestId('composer-input');
    await input.waitFor(WAIT);
    await input.focus();
    await page.keyboard.type('Sent with the keyboard');
    await page.keyboard.press('Enter');
    await page.getByTestId('message').filter({ hasText: 'Sent with the keyboard' }).waitFor(WAIT);
    await context.close();
  });

  it('fits a phone screen: one pane, navigation visible, no sideways scrolling, dark mode', async () => {
    const { context, page } = await danaIn({ viewport: { width: 390, height: 844 }, colorScheme: 'dark', isMobile: true, hasTouch: true });
    const noSideways = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    await chatWithEvan(page, 'Hello from a phone');
    expect(await noSideways()).toBe(true);
    await page.getByTestId('nav-chats').click();
    await page.getByTestId('chat-row').first().waitFor(WAIT);
    expect(await noSideways()).toBe(true);
    expect(await page.getByTestId('nav-chats').isVisible()).toBe(true);
    await page.getByTestId('chat-row').first().click();
    await page.getByTestId('composer-input').waitFor(WAIT);
    // One pane at a time: the list gives way to the conversation.
    expect(await page.getByTestId('chat-row').first().isVisible()).toBe(false);
    expect(await noSideways()).toBe(true);
    // The page is dark: its background, whatever colour syntax the CSS uses, paints as a dark pixel.
    const [r, g, b] = await page.evaluate(() => {
      const ctx = document.createElement('canvas').getContext('2d')!;
      ctx.fillStyle = getComputedStyle(document.body).backgroundColor;
      ctx.fillRect(0, 0, 1, 1);
      return [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)];
    });
    expect(r! + g! + b!).toBeLessThan(150);
    await h.screenshot(page, 'phone-dark-conversation');
    await context.close();
  });
});
