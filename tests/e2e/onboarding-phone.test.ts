// Phone-number registration in the PWA: the app shows the REG-REQ text and an `sms:` link that opens the phone's
// messaging app with the gateway number and that text filled in; the handset "sends" it (the sandbox's SMS
// gateway answers with a REG-RESP), the person pastes the reply, and the browser is registered for the number.
// The gateway is looked up from the carrier code (MCC-MNC) in the sandbox's carrier list, as against Apple.
// Then the phone user and an Apple ID user (another browser context) message each other.
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_SMS_GATEWAY } from '../../lib/client/config';
import { startHarness, type E2eHarness } from './harness';
import { connectionStep, expectChatList, messageWithText, onboardAppleId, openChat, send, startChat, WAIT } from './onboarding-helpers';

const PHONE = '+15555550142';
const BOB = { appleId: 'bob@example.com', password: 'bob-password' };

/** The number and body of an `sms:<number>?body=<text>` link. */
function parseSmsHref(href: string): { to: string; body: string } {
  const m = /^sms:([^?]*)\?body=(.*)$/s.exec(href);
  if (!m) throw new Error(`not an sms: link with a body: ${href}`);
  return { to: decodeURIComponent(m[1]!), body: decodeURIComponent(m[2]!) };
}

describe('phone number registration', () => {
  let h: E2eHarness;
  let phone: Page;
  let bob: Page;

  beforeAll(async () => {
    h = await startHarness();
    await h.admin.addPhone(PHONE);
    await h.admin.createAccount(BOB.appleId, BOB.password, { twoFactor: true });
    [phone, bob] = await Promise.all([h.newPage(), h.newPage()]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('shows the REG-REQ text and an sms: link carrying it, and registers with the pasted reply', async () => {
    const onboardBob = onboardAppleId(h, bob, BOB);
    await connectionStep(phone, h.bridgeUrl);
    await phone.getByTestId('onb-method-phone').check();
    await phone.getByTestId('onb-phone-number').fill(PHONE);
    await phone.getByTestId('onb-relay-code').fill(await h.admin.relayCode('phone relay'));
    // The carrier code makes the client look the gateway up in the (sandbox's) carrier list: an unknown carrier
    // says so, and the corrected code carries on with nothing else retyped.
    await phone.getByTestId('onb-mcc-mnc').fill('99999');
    await phone.getByTestId('onb-submit').click();
    const error = phone.getByTestId('onb-error');
    await error.waitFor(WAIT);
    expect(await error.innerText()).toContain('Carrier not found');
    expect(await phone.getByTestId('onb-phone-number').inputValue()).toBe(PHONE);
    await phone.getByTestId('onb-mcc-mnc').fill('310260');
    await phone.getByTestId('onb-submit').click();

    const shown = phone.getByTestId('onb-regreq-text');
    await shown.waitFor(WAIT);
    const text = (await shown.innerText()).trim();
    expect(text).toMatch(/^REG-REQ\?v=\d+;/);
    const link = phone.getByTestId('onb-sms-link');
    const href = await link.getAttribute('href');
    expect(href).not.toBeNull();
    const { to, body } = parseSmsHref(href!);
    expect(to).toBe(SANDBOX_SMS_GATEWAY);
    expect(body).toBe(text);
    // The raw link is percent-encoded: `;`, `=` and `?` in the text do not break the URI's query.
    expect(href!.slice(href!.indexOf('?body=') + 6)).toBe(encodeURIComponent(text));
    await h.screenshot(phone, 'onboarding-phone-sms');

    // The handset sends exactly what the link would have filled in; the gateway's reply is pasted back.
    const sent = await h.admin.sms(PHONE, body, to);
    expect(sent.error).toBeUndefined();
    expect(sent.reply).toMatch(/^REG-RESP\?/);
    await phone.getByTestId('onb-regresp').fill(sent.reply!);
    await phone.getByTestId('onb-submit').click();
    await expectChatList(phone);
    await onboardBob;
    expect(h.pageErrors).toEqual([]);
  });

  it('chats 1:1 between the phone user and an Apple ID user', async () => {
    await startChat(phone, [BOB.appleId]);
    const mine = await send(phone, 'Hello Bob, from a phone number');
    await expect.poll(() => mine.getAttribute('data-status'), WAIT).toMatch(/delivered|read/);

    await openChat(bob);
    const row = bob.getByTestId('chat-row').first();
    expect(await row.getByTestId('chat-row-name').innerText()).toContain(PHONE);
    const received = messageWithText(bob, 'Hello Bob, from a phone number');
    await received.waitFor(WAIT);
    expect(await received.getAttribute('data-from-me')).toBe('false');
    expect(await bob.getByTestId('conversation-title').innerText()).toContain(PHONE);

    await send(bob, 'Hi phone, Bob here');
    const reply = messageWithText(phone, 'Hi phone, Bob here');
    await reply.waitFor(WAIT);
    expect(await reply.getAttribute('data-from-me')).toBe('false');
    expect(h.pageErrors).toEqual([]);
  });
});
