// Courier Connect (apns.md §4, §8.4–5): authentication, token issuance and reuse, one connection per token.
import { afterEach, describe, expect, test } from 'vitest';
import { buildConnect, buildKeepAlive, parseConnectResponse, parseRedirect } from '../../lib/codec/apns-commands';
import { concat, equalBytes, exact } from '../../lib/codec/bytes';
import { courierNonce, signCourierNonce } from '../../lib/crypto/request-signing';
import { harness, issuePushCert, makeCa, TestClient, type Harness } from './courier-helpers';

let h: Harness;
afterEach(async () => h?.close());

async function rawClient(): Promise<TestClient> {
  const c = await TestClient.open(h.server);
  h.clients.push(c);
  return c;
}

describe('authentication', () => {
  test('a good Connect gets status 0, a new 32-byte token and the advertised limits', async () => {
    h = await harness();
    const { response, client } = await h.device();
    expect(response.status).toBe(0);
    expect(response.token).toHaveLength(32);
    expect(response.maxMessageSize).toBe(4096);
    expect(response.largeMessageSize).toBe(15360);
    expect(response.unknown5).toEqual(Uint8Array.of(0, 2));
    expect(response.capabilities).toBe(0);
    expect(response.serverTimeMs).toBe(BigInt(h.clock.now()));
    expect(response.staleNonceServerTimeMs).toBeUndefined();
    expect(h.courier.connectedTokens().map((t) => Buffer.from(t).toString('hex'))).toEqual([
      Buffer.from(response.token!).toString('hex'),
    ]);
    expect(client.isClosed).toBe(false);
  });

  test('exact item set of a first-connect 0x08', async () => {
    h = await harness();
    const identity = await issuePushCert(h.ca);
    const c = await rawClient();
    const nonce = courierNonce(h.clock.now());
    c.sendFrame(buildConnect({ state: 1, certificates: [identity.der], nonce, signature: await signCourierNonce(identity.privateKey, nonce) }));
    const frame = await c.next(0x08);
    expect(frame.items.map((i) => i.id)).toEqual([1, 3, 4, 5, 6, 8, 10]);
    expect(frame.items.find((i) => i.id === 6)!.value).toHaveLength(4);
  });

  test('a bad signature gets status 2 and the connection is closed', async () => {
    h = await harness();
    const identity = await issuePushCert(h.ca);
    const c = await rawClient();
    const nonce = courierNonce(h.clock.now());
    const sig = await signCourierNonce(identity.privateKey, nonce);
    sig[sig.length - 1]! ^= 1;
    c.sendFrame(buildConnect({ state: 1, certificates: [identity.der], nonce, signature: sig }));
    expect(parseConnectResponse(await c.next(0x08)).status).toBe(2);
    expect(await c.waitClosed()).toBe(true);
    expect(h.courier.connectedTokens()).toEqual([]);
  });

  test('a signature without the 01 01 prefix, or by another key, is rejected', async () => {
    h = await harness();
    const identity = await issuePushCert(h.ca);
    const other = await issuePushCert(h.ca);
    const nonce = courierNonce(h.clock.now());
    const good = await signCourierNonce(identity.privateKey, nonce);
    for (const signature of [concat(Uint8Array.of(0x01, 0x02), good.subarray(2)), await signCourierNonce(other.privateKey, nonce), Uint8Array.of(1, 1)]) {
      const c = await rawClient();
      c.sendFrame(buildConnect({ state: 1, certificates: [identity.der], nonce, signature }));
      expect(parseConnectResponse(await c.next(0x08)).status).toBe(2);
      expect(await c.waitClosed()).toBe(true);
    }
  });

  test('a certificate from a foreign CA, or garbage, gets status 2 and close', async () => {
    h = await harness();
    const foreign = await issuePushCert(await makeCa('CN=Someone Else'));
    for (const certificate of [undefined, Uint8Array.of(0x30, 0x03, 1, 2, 3)]) {
      const c = await rawClient();
      const r = await c.connect({ identity: foreign, certificate }, h.clock);
      expect(r.status).toBe(2);
      expect(await c.waitClosed()).toBe(true);
    }
  });

  test('a Connect without items 12/13/14 gets status 2', async () => {
    h = await harness();
    const c = await rawClient();
    c.sendFrame(buildConnect({ state: 1, presenceFlags: 0x41 }));
    expect(parseConnectResponse(await c.next(0x08)).status).toBe(2);
    expect(await c.waitClosed()).toBe(true);
  });

  test('a stale nonce gets a non-zero status other than 2 with the server time in item 7', async () => {
    h = await harness();
    const identity = await issuePushCert(h.ca);
    for (const skew of [-6 * 60_000, 6 * 60_000]) {
      const c = await rawClient();
      const r = await c.connect({ identity, nonceMs: h.clock.now() + skew }, h.clock);
      expect(r.status).not.toBe(0);
      expect(r.status).not.toBe(2);
      expect(r.staleNonceServerTimeMs).toBe(BigInt(h.clock.now()));
      expect(await c.waitClosed()).toBe(true);
    }
    // Within the window is fine; and the window follows the injected clock.
    h.clock.advance(10 * 60_000);
    const c = await rawClient();
    expect((await c.connect({ identity, nonceMs: h.clock.now() - 4 * 60_000 }, h.clock)).status).toBe(0);
  });

  test('an IDS-type nonce (first byte 01) is refused', async () => {
    h = await harness();
    const identity = await issuePushCert(h.ca);
    const nonce = courierNonce(h.clock.now());
    nonce[0] = 1;
    const { subtle } = globalThis.crypto;
    const raw = new Uint8Array(await subtle.sign('RSASSA-PKCS1-v1_5', identity.privateKey, exact(nonce)));
    const c = await rawClient();
    c.sendFrame(buildConnect({ state: 1, certificates: [identity.der], nonce, signature: concat(Uint8Array.of(1, 1), raw) }));
    const r = parseConnectResponse(await c.next(0x08));
    expect(r.status).not.toBe(0);
    expect(r.staleNonceServerTimeMs).toBeDefined();
  });

  test('frames before Connect close the connection', async () => {
    h = await harness();
    const c = await rawClient();
    c.sendFrame(buildKeepAlive({}));
    expect(await c.waitClosed()).toBe(true);
    expect(c.received).toEqual([]);
  });
});

describe('tokens', () => {
  test('the saved token is accepted without item 3 and survives a restart', async () => {
    h = await harness();
    const first = await h.device();
    first.client.close();
    await first.client.closed;
    await h.restart();
    const again = await h.device({ identity: first.identity, token: first.token });
    expect(again.response.status).toBe(0);
    expect(again.response.token).toBeUndefined();
    expect(h.courier.connectedTokens()).toEqual([first.token]);
  });

  test('echoAcceptedToken sends item 3 for an accepted token too', async () => {
    h = await harness({ echoAcceptedToken: true });
    const first = await h.device();
    const again = await h.device({ identity: first.identity, token: first.token });
    expect(again.response.token).toEqual(first.token);
  });

  test('the same certificate without a token gets its token back', async () => {
    h = await harness();
    const first = await h.device();
    const again = await h.device({ identity: first.identity });
    expect(again.response.token).toEqual(first.token);
  });

  test("another certificate's token, or an unknown one, is replaced by this certificate's own", async () => {
    h = await harness();
    const a = await h.device();
    const b = await h.device({ token: a.token });
    expect(b.response.token).toHaveLength(32);
    expect(equalBytes(b.response.token!, a.token)).toBe(false);
    const unknown = new Uint8Array(32).fill(7);
    const c = await h.device({ identity: b.identity, token: unknown });
    expect(c.response.token).toEqual(b.token);
    // a is still connected: b's connect did not take over a's token.
    expect(h.courier.connectedTokens()).toHaveLength(2);
  });

  test('tokens are distinct per certificate', async () => {
    h = await harness();
    const tokens = await Promise.all([1, 2, 3, 4].map(async () => (await h.device()).token));
    expect(new Set(tokens.map((t) => Buffer.from(t).toString('hex'))).size).toBe(4);
  });
});

describe('one connection per token', () => {
  test('a second Connect for the same token closes the older socket', async () => {
    h = await harness();
    const first = await h.device();
    const second = await h.device({ identity: first.identity, token: first.token });
    expect(await first.client.waitClosed()).toBe(true);
    expect(second.client.isClosed).toBe(false);
    expect(h.courier.connectedTokens()).toEqual([first.token]);
    second.client.send('keepAlive', {});
    await second.client.next(0x0d);
  });
});

describe('fault injection', () => {
  test('forced connect status with a redirect reason', async () => {
    h = await harness();
    h.courier.faults.connect = { status: 2, redirectReason: 'go-away' };
    const identity = await issuePushCert(h.ca);
    const c = await rawClient();
    const r = await c.connect({ identity }, h.clock);
    expect(r.status).toBe(2);
    expect(r.redirectReason).toBe('go-away');
    expect(await c.waitClosed()).toBe(true);
    delete h.courier.faults.connect;
    expect((await h.device({ identity })).response.status).toBe(0);
  });

  test('redirect sends 0x17 and closes; drop cuts the connection', async () => {
    h = await harness();
    const a = await h.device();
    const b = await h.device();
    expect(h.courier.redirect(a.token, 'rebalance')).toBe(true);
    expect(parseRedirect(await a.client.next(0x17)).redirectReason).toBe('rebalance');
    expect(await a.client.waitClosed()).toBe(true);
    expect(h.courier.drop(b.token)).toBe(true);
    expect(await b.client.waitClosed()).toBe(true);
    expect(h.courier.connectedTokens()).toEqual([]);
    expect(h.courier.drop(b.token)).toBe(false);
  });
});
