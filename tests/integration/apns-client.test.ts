// lib/apns end to end against the real sandbox through the real bridge: albert activation, the courier's token,
// reconnecting with it, delivery and acks (the courier's queue drains), store-and-forward while offline, a bridge
// that dies mid-connection, and upstream sends.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ActivatedDevice } from '../../lib/apns/albert';
import type { CourierClient } from '../../lib/apns/courier-client';
import { toHex, utf8 } from '../../lib/codec/bytes';
import { encodeBinaryPlist } from '../../lib/codec/plist';
import { FakeClock } from '../../sandbox/context';
import { startApnsWorld, startClient, type ApnsWorld, type ClientHarness } from './apns-helpers';

const MADRID = 'com.apple.madrid';
const WAIT = { timeout: 15_000, interval: 20 };

describe('lib/apns against the sandbox', () => {
  let world: ApnsWorld;
  const clients: CourierClient[] = [];
  const start = (device: ActivatedDevice, overrides?: Parameters<typeof startClient>[2]): ClientHarness => {
    const h = startClient(world, device, overrides);
    clients.push(h.client);
    return h;
  };

  beforeAll(async () => {
    world = await startApnsWorld();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    // The bridge is back for the next test even if one failed while it was down.
    if (!tryBridge()) await world.startBridge();
  });
  afterAll(async () => {
    await world?.close();
  });
  const tryBridge = () => {
    try {
      return world.bridge;
    } catch {
      return undefined;
    }
  };

  it('activates with albert, connects, and gets a token bound to the new certificate', async () => {
    const device = await world.activate();
    expect(await world.sandbox.pki.verifyPushCertificate(device.certificate)).not.toBeNull();
    const h = start(device);
    const token = await h.client.whenConnected();
    expect(token).toHaveLength(32);
    expect(h.tokens).toEqual([token]);
    expect(h.events.connected).toEqual([{ token }]);
    const courier = world.services.courier();
    expect(courier.connectedTokens().map(toHex)).toContain(toHex(token));
    // Connected means SetState and Filter are written; the courier reads them a moment later.
    await vi.waitFor(() => expect(courier.connectionInfo(token)?.filter).toBeDefined(), WAIT);
    const info = courier.connectionInfo(token)!;
    expect(info.packed).toBe(false);
    expect(info.client.presenceFlags).toBe(0x41);
    expect(info.client.activeState).toEqual({ state: 1, interval: 0x7fffffff });
    expect(info.filter!.enabled.size).toBe(2);
  });

  it('reconnecting with the saved token keeps it', async () => {
    const device = await world.activate();
    const first = start(device);
    const token = await first.client.whenConnected();
    await first.client.close();

    const again = start(device, { token });
    expect(await again.client.whenConnected()).toEqual(token);
    expect(again.tokens).toEqual([]);
    expect(again.events.tokenChanged).toEqual([]);
  });

  it('delivers an injected notification and acks it: the courier queue drains', async () => {
    const device = await world.activate();
    const h = start(device);
    const token = await h.client.whenConnected();
    await vi.waitFor(() => expect(world.services.courier().connectionInfo(token)?.filter).toBeDefined(), WAIT);
    const payload = encodeBinaryPlist({ c: 100, t: 'hello' });
    const result = await world.services.courier().deliver(token, MADRID, payload);
    expect(result.delivered).toBe(true);
    await vi.waitFor(() => expect(h.handled).toHaveLength(1), WAIT);
    expect(h.handled[0]).toMatchObject({ topic: MADRID, token, payload });
    await vi.waitFor(() => expect(world.services.courier().pendingCount(token)).toBe(0), WAIT);
  });

  it('a notification delivered while disconnected arrives after the reconnect', async () => {
    const device = await world.activate();
    const h = start(device, { backoff: { initialMs: 500, maxMs: 500, jitter: 0 } });
    const token = await h.client.whenConnected();
    const courier = world.services.courier();
    expect(courier.drop(token)).toBe(true);
    const result = await courier.deliver(token, MADRID, utf8('while you were out'));
    expect(result).toEqual({ delivered: false, stored: true });
    expect(courier.pendingCount(token)).toBe(1);
    await vi.waitFor(() => expect(h.handled.map((n) => n.payload)).toEqual([utf8('while you were out')]), WAIT);
    expect(h.events.disconnected.length).toBeGreaterThanOrEqual(1);
    expect(h.events.connected).toHaveLength(2);
    await vi.waitFor(() => expect(courier.pendingCount(token)).toBe(0), WAIT);
  });

  it('survives the bridge dying mid-connection: nothing unacked or queued is lost', async () => {
    const device = await world.activate();
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const h = start(device, {
      onNotification: async (n) => {
        seen.push(new TextDecoder().decode(n.payload));
        if (seen.length === 1) await blocked;
      },
    });
    const token = await h.client.whenConnected();
    const courier = world.services.courier();

    // In the handler when the bridge dies: never acked on that connection.
    await courier.deliver(token, MADRID, utf8('in flight'));
    await vi.waitFor(() => expect(seen).toEqual(['in flight']), WAIT);
    await world.killBridge();
    await vi.waitFor(() => expect(h.events.disconnected.length).toBeGreaterThanOrEqual(1), WAIT);
    release();

    // While the bridge is down: one notification stored by the courier, one upstream message held by the client.
    expect((await courier.deliver(token, MADRID, utf8('stored'))).stored).toBe(true);
    const sent = h.client.send(MADRID, encodeBinaryPlist({ c: 255, note: 'queued while offline' }));
    await new Promise((r) => setTimeout(r, 300));
    expect(courier.pendingCount(token)).toBe(2);

    await world.startBridge();
    await sent;
    await vi.waitFor(() => expect(seen).toEqual(['in flight', 'in flight', 'stored']), WAIT);
    await vi.waitFor(() => expect(courier.pendingCount(token)).toBe(0), WAIT);
    expect(h.client.state).toBe('connected');
    expect(h.client.token).toEqual(token);
  });

  it('an upstream send is acked by the courier', async () => {
    const device = await world.activate();
    const h = start(device);
    await h.client.whenConnected();
    await h.client.send(MADRID, encodeBinaryPlist({ c: 255 }));
    await h.client.send('com.apple.private.alloy.unrouted', utf8('nobody listens'));
  });

  it('a certificate the courier does not know stops the client with certificate-rejected', async () => {
    const device = await world.activate();
    const foreign = await world.activate();
    const h = start(device, { credentials: { privateKey: foreign.privateKey, certificate: device.certificate } });
    await expect(h.client.whenConnected()).rejects.toMatchObject({ code: 'certificate-rejected', status: 2 });
    expect(h.client.state).toBe('stopped');
  });
});

describe('lib/apns against a courier whose clock is ahead', () => {
  let world: ApnsWorld;
  beforeAll(async () => {
    world = await startApnsWorld({ clock: new FakeClock(Date.now() + 20 * 60_000) });
  });
  afterAll(async () => {
    await world?.close();
  });

  it('takes the server time from the stale-nonce answer and connects on the immediate retry', async () => {
    const device = await world.activate();
    const h = startClient(world, device);
    try {
      const token = await h.client.whenConnected();
      expect(h.events.disconnected).toHaveLength(1);
      expect(h.events.disconnected[0]).toMatchObject({ error: { code: 'stale-nonce', status: 1 }, retryInMs: 0 });
      expect(world.services.courier().connectedTokens().map(toHex)).toContain(toHex(token));
    } finally {
      await h.client.close();
    }
  });
});
