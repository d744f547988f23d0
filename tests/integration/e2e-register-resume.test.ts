// Registering can fail after the sign-in succeeded (here: the relay does not know the code). The 2FA code or the SMS
// reply is spent by then, so trying again must carry on from the stored auth certificate instead of asking for a
// new code — and a registered device asked to register again still signs in afresh.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2eWorld, type E2eWorld } from './e2e-helpers';

const ALICE = 'alice@example.com';
const PASSWORD = 'correct horse battery';
const BOB = '+15555550123';

let world: E2eWorld;

beforeAll(async () => {
  world = await startE2eWorld({ accounts: [{ appleId: ALICE, password: PASSWORD, twoFactor: true }], phones: [{ number: BOB }] });
});
afterAll(async () => {
  await world?.close();
});

describe('registration resumes after a failure past the sign-in', () => {
  it('Apple ID: the retry with the spent code registers without a new code', async () => {
    const d = await world.device('alice');
    expect((await d.client.register({ appleId: { username: ALICE, password: PASSWORD } })).status).toBe('second-factor-required');
    const code = world.sandbox.accounts.latestTwoFactorCode(ALICE)!.code;
    await world.sandbox.relay.deleteCode(world.relayCode);
    await expect(d.client.register({ appleId: { username: ALICE, password: PASSWORD, code } })).rejects.toMatchObject({ code: expect.any(String) });
    await world.sandbox.relay.createCode({ code: world.relayCode });
    const issued = world.sandbox.accounts.latestTwoFactorCode(ALICE);
    const done = await d.client.register({ appleId: { username: ALICE, password: PASSWORD, code } });
    expect(done.status).toBe('registered');
    expect(d.client.handles).toEqual([`mailto:${ALICE}`]);
    // No new code was issued: the retry did not sign in again.
    expect(world.sandbox.accounts.latestTwoFactorCode(ALICE)).toEqual(issued);
    await d.close();
  });

  it('Apple ID: another account name does not reuse the stored sign-in', async () => {
    const d = await world.device('alice');
    // Registered already: asking again signs in afresh, and a wrong password says so.
    expect((await d.client.register({ appleId: { username: ALICE, password: 'wrong' } })).status).toBe('bad-credentials');
    expect((await d.client.register({ appleId: { username: 'mallory@example.com', password: PASSWORD } })).status).toBe('bad-credentials');
    await d.close();
  });

  it('phone: the retry after a relay failure needs no second SMS', async () => {
    const d = await world.device('bob');
    const first = await d.client.register({ phone: {} });
    if (first.status !== 'sms-required') throw new Error(`expected an SMS step, got ${first.status}`);
    const sms = await world.sandbox.gateway.receive(BOB, first.text, first.gateway);
    await world.sandbox.relay.deleteCode(world.relayCode);
    await expect(d.client.register({ phone: { regResp: sms.reply! } })).rejects.toMatchObject({ code: expect.any(String) });
    await world.sandbox.relay.createCode({ code: world.relayCode });
    // Asking for the SMS step again goes straight to registering.
    const done = await d.client.register({ phone: {} });
    expect(done.status).toBe('registered');
    expect(d.client.handles).toEqual([`tel:${BOB}`]);
    await d.close();
  });
});
