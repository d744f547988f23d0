// Onboarding with bad input or a broken path to the service: a wrong password, a wrong 2FA code, a bridge that
// refuses the destinations, the sandbox down, a bridge that is not there, a wrong relay code. Each time the person
// sees an error that names the problem, everything they typed is still in the fields, and after fixing the one
// thing (or the outage ending) a retry gets to the chat list. Each case is a fresh browser context (a new person).
import type { BrowserContext, Page } from 'playwright';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBridge } from '../../bridge/server';
import { startHarness, type E2eHarness } from './harness';
import {
  appleIdStep,
  backToConnectionStep,
  closedPort,
  connectionStep,
  expectChatList,
  onboardingError,
  otherCode,
  startRefusingBridge,
  WAIT,
  type AppleIdAccount,
} from './onboarding-helpers';

const account = (name: string): AppleIdAccount => ({ appleId: `${name}@example.com`, password: `${name}-password` });
const PASSWORD_CASE = account('pat');
const CODE_CASE = account('cody');
const REFUSED_CASE = account('rhea');
const SANDBOX_CASE = account('sandy');
const UNREACHABLE_CASE = account('una');
const RELAY_CASE = account('ray');

describe('onboarding errors are clear, keep what was typed, and can be retried', () => {
  let h: E2eHarness;
  let refusing: RunningBridge;
  let context: BrowserContext | undefined;

  /** A new person's page at the first onboarding step. */
  const freshPage = async (): Promise<Page> => {
    context = await h.newContext();
    return h.newPage(context);
  };

  const fieldValues = (page: Page, ids: string[]) => Promise.all(ids.map((id) => page.getByTestId(id).inputValue()));

  /** The 2FA step after a correct password: enters the account's current code and submits. */
  const enterTwoFactorCode = async (page: Page, who: AppleIdAccount, since: number): Promise<string> => {
    await page.getByTestId('onb-2fa-code').waitFor(WAIT);
    const code = await h.admin.twoFactorCode(who.appleId, { issuedAfter: since - 1000 });
    await page.getByTestId('onb-2fa-code').fill(code);
    await page.getByTestId('onb-submit').click();
    return code;
  };

  beforeAll(async () => {
    h = await startHarness();
    for (const a of [PASSWORD_CASE, CODE_CASE, REFUSED_CASE, SANDBOX_CASE, UNREACHABLE_CASE, RELAY_CASE]) {
      await h.admin.createAccount(a.appleId, a.password, { twoFactor: true });
    }
    refusing = await startRefusingBridge();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
    expect(h.pageErrors).toEqual([]);
  });
  afterAll(async () => {
    await refusing?.close();
    await h?.stop();
  });

  it('a wrong password says so, keeps the Apple ID and relay code, and the corrected retry signs in', async () => {
    const page = await freshPage();
    await connectionStep(page, h.bridgeUrl);
    const relayCode = await h.admin.relayCode('password case');
    await appleIdStep(page, { ...PASSWORD_CASE, password: 'not-the-password' }, relayCode);
    expect(await onboardingError(page)).toMatch(/Wrong Apple ID or password/);
    expect(await fieldValues(page, ['onb-apple-id', 'onb-password', 'onb-relay-code'])).toEqual([
      PASSWORD_CASE.appleId,
      'not-the-password',
      relayCode,
    ]);
    await h.screenshot(page, 'onboarding-wrong-password');

    await page.getByTestId('onb-password').fill(PASSWORD_CASE.password);
    const since = Date.now();
    await page.getByTestId('onb-retry').click();
    await enterTwoFactorCode(page, PASSWORD_CASE, since);
    await expectChatList(page);
  });

  it('a wrong 2FA code says so and keeps it in the field; the right code then registers', async () => {
    const page = await freshPage();
    await connectionStep(page, h.bridgeUrl);
    const since = Date.now();
    await appleIdStep(page, CODE_CASE, await h.admin.relayCode('code case'));
    await page.getByTestId('onb-2fa-code').waitFor(WAIT);
    const code = await h.admin.twoFactorCode(CODE_CASE.appleId, { issuedAfter: since - 1000 });
    const wrong = otherCode(code);
    await page.getByTestId('onb-2fa-code').fill(wrong);
    await page.getByTestId('onb-submit').click();
    expect(await onboardingError(page)).toMatch(/Wrong or expired code/);
    expect(await page.getByTestId('onb-2fa-code').inputValue()).toBe(wrong);

    await page.getByTestId('onb-2fa-code').fill(code);
    await page.getByTestId('onb-retry').click();
    await expectChatList(page);
    expect(h.sandbox().accounts.latestTwoFactorCode(CODE_CASE.appleId)).toMatchObject({ code, used: true });
  });

  it('a bridge that refuses the sandbox says "refused"; the right bridge, set in the first step, then works', async () => {
    const page = await freshPage();
    await connectionStep(page, refusing.url);
    const relayCode = await h.admin.relayCode('refused case');
    await appleIdStep(page, REFUSED_CASE, relayCode);
    const text = await onboardingError(page);
    expect(text).toMatch(/refused/i);
    expect(text).toMatch(/does not allow connections to the sandbox/);
    expect(refusing.metrics.snapshot().tunnelsRefused['not-allowed']).toBeGreaterThan(0);
    expect(refusing.metrics.snapshot().tunnelsOpened).toBe(0);
    await h.screenshot(page, 'onboarding-bridge-refused');

    await backToConnectionStep(page);
    expect(await page.getByTestId('onb-bridge-url').inputValue()).toBe(refusing.url);
    await connectionStep(page, h.bridgeUrl);
    expect(await fieldValues(page, ['onb-apple-id', 'onb-password', 'onb-relay-code'])).toEqual([
      REFUSED_CASE.appleId,
      REFUSED_CASE.password,
      relayCode,
    ]);
    const since = Date.now();
    await page.getByTestId('onb-submit').click();
    await enterTwoFactorCode(page, REFUSED_CASE, since);
    await expectChatList(page);
    expect(await page.evaluate(() => JSON.parse(localStorage.getItem('cerulean.settings') ?? '{}').bridgeUrl)).toBe(h.bridgeUrl);
  });

  it('with the sandbox down the error says it is not responding; once it is back, Retry registers', async () => {
    const page = await freshPage();
    await connectionStep(page, h.bridgeUrl);
    const relayCode = await h.admin.relayCode('sandbox case');
    await h.stopSandbox();
    try {
      await appleIdStep(page, SANDBOX_CASE, relayCode);
      expect(await onboardingError(page)).toMatch(/The sandbox is not responding/);
      expect(await fieldValues(page, ['onb-apple-id', 'onb-password', 'onb-relay-code'])).toEqual([
        SANDBOX_CASE.appleId,
        SANDBOX_CASE.password,
        relayCode,
      ]);
      await h.screenshot(page, 'onboarding-sandbox-down');
    } finally {
      await h.restartSandbox();
    }
    const since = Date.now();
    await page.getByTestId('onb-retry').click();
    await enterTwoFactorCode(page, SANDBOX_CASE, since);
    await expectChatList(page);
  });

  it('a bridge address where nothing listens says the bridge cannot be reached', async () => {
    const page = await freshPage();
    const dead = `ws://127.0.0.1:${await closedPort()}`;
    await connectionStep(page, dead);
    const relayCode = await h.admin.relayCode('unreachable case');
    await appleIdStep(page, UNREACHABLE_CASE, relayCode);
    expect(await onboardingError(page)).toMatch(/Can't reach the bridge/);
    // Retry with nothing changed fails the same way again (a new error box, the fields untouched).
    const first = await page.getByTestId('onb-error').elementHandle();
    await page.getByTestId('onb-retry').click();
    await first?.waitForElementState('hidden', WAIT);
    expect(await onboardingError(page)).toMatch(/Can't reach the bridge/);

    await backToConnectionStep(page);
    await connectionStep(page, h.bridgeUrl);
    expect(await fieldValues(page, ['onb-apple-id', 'onb-relay-code'])).toEqual([UNREACHABLE_CASE.appleId, relayCode]);
    const since = Date.now();
    await page.getByTestId('onb-submit').click();
    await enterTwoFactorCode(page, UNREACHABLE_CASE, since);
    await expectChatList(page);
  });

  it('a wrong relay code fails after the 2FA code; the corrected code registers without a new 2FA code', async () => {
    const page = await freshPage();
    await connectionStep(page, h.bridgeUrl);
    const since = Date.now();
    await appleIdStep(page, RELAY_CASE, 'NOT-A-RELAY-CODE');
    const code = await enterTwoFactorCode(page, RELAY_CASE, since);
    expect(await onboardingError(page)).toMatch(/Unknown registration code/);
    await h.screenshot(page, 'onboarding-wrong-relay-code');
    const spent = h.sandbox().accounts.latestTwoFactorCode(RELAY_CASE.appleId);
    expect(spent).toMatchObject({ code, used: true });
    await page.getByText('no new code is needed').waitFor(WAIT);
    expect(await page.getByTestId('onb-submit').innerText()).toMatch(/Try again/);

    // The relay code can be corrected right where the error shows.
    const relayField = page.getByTestId('onb-relay-code');
    await relayField.waitFor(WAIT);
    expect(await relayField.inputValue()).toBe('NOT-A-RELAY-CODE');
    await relayField.fill(await h.admin.relayCode('relay case'));
    await page.getByTestId('onb-retry').click();
    await expectChatList(page);
    // No second code was issued: the retry went on from the stored sign-in.
    expect(h.sandbox().accounts.latestTwoFactorCode(RELAY_CASE.appleId)).toEqual(spent);
  });
});
