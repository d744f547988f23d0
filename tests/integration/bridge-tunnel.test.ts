// The bridge end to end on loopback: real TCP servers, real ws clients, the real HTTP server.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Resolver } from '../../bridge/config';
import {
  closeOf,
  eventually,
  freePort,
  openTunnel,
  readBytes,
  receive,
  refusal,
  sleep,
  startTcpServer,
  startTestBridge,
  type TcpServer,
} from './bridge-helpers';

// Everything a test starts is stopped afterwards, even when it fails.
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function echoServer(): Promise<TcpServer> {
  const s = await startTcpServer();
  cleanups.push(() => s.close());
  return s;
}

async function bridge(options: Parameters<typeof startTestBridge>[0] = {}) {
  const b = await startTestBridge(options);
  cleanups.push(() => b.close());
  return b;
}

function track(ws: WebSocket): WebSocket {
  cleanups.push(() => ws.terminate());
  return ws;
}

/** A public-looking name the injected resolver sends to loopback only through the host map. */
const COURIER = 'courier.push.apple.com';

describe('bridge tunnel: happy path', () => {
  it('echoes bytes through a mapped Apple host, in order, with metrics and logs', async () => {
    const echo = await echoServer();
    const b = await bridge({ hostMap: { [`${COURIER}:5223`]: `127.0.0.1:${echo.port}` } });
    const ws = track(await openTunnel(`${b.url}/tunnel/${COURIER}:5223`));
    const payload = randomBytes(300_000);
    // Several messages of odd sizes must come back as the same byte stream.
    for (let off = 0; off < payload.length; off += 7_001) ws.send(payload.subarray(off, off + 7_001));
    const back = await receive(ws, payload.length);
    expect(back.equals(payload)).toBe(true);

    const snap = b.metrics.snapshot();
    expect(snap.tunnelsOpened).toBe(1);
    expect(snap.tunnelsOpen).toBe(1);
    expect(snap.bytes.client_to_destination).toBe(payload.length);
    expect(snap.bytes.destination_to_client).toBe(payload.length);

    const closed = closeOf(ws);
    ws.close(1000);
    expect((await closed).code).toBe(1000);
    await eventually(() => b.metrics.snapshot().tunnelsOpen === 0, 3_000, 'tunnel accounting');
    expect(b.metrics.snapshot().tunnelsClosed['client-closed']).toBe(1);
    await eventually(() => echo.sockets.size === 0, 3_000, 'destination socket closed');

    const open = b.log.events('tunnel.open')[0];
    expect(open).toMatchObject({ destination: `${COURIER}:5223`, address: '127.0.0.1', mapped: true, level: 'info' });
    const close = b.log.events('tunnel.close')[0];
    expect(close).toMatchObject({ reason: 'client-closed', bytesFromClient: payload.length, bytesToClient: payload.length });
  });

  it('selects the bridge subprotocol when offered and serves /healthz, /metrics and 404/426', async () => {
    const echo = await echoServer();
    const b = await bridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${echo.port}` } });
    const ws = track(await openTunnel(`${b.url}/tunnel/${COURIER}:443`, undefined, ['cerulean.bridge.v1']));
    expect(ws.protocol).toBe('cerulean.bridge.v1');

    const base = b.url.replace('ws://', 'http://');
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', tunnels: 1 });

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await metrics.text();
    expect(text).toContain('# TYPE cerulean_bridge_tunnels_opened_total counter\ncerulean_bridge_tunnels_opened_total 1\n');
    expect(text).toContain('cerulean_bridge_tunnels_open 1\n');
    expect(text).toContain('cerulean_bridge_tunnels_refused_total{reason="not-allowed"} 0\n');
    // Every sample line is `name{labels} value`.
    for (const line of text.trimEnd().split('\n')) {
      expect(line).toMatch(/^(# (HELP|TYPE) cerulean_bridge_\w+ .+|cerulean_bridge_\w+(\{\w+="[\w-]+"\})? \d+)$/);
    }

    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/tunnel/${COURIER}:443`)).status).toBe(426);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});

describe('bridge tunnel: host map', () => {
  it('maps exact and starred names, loads the sandbox host-map file, and maps non-Apple names too', async () => {
    const echo = await echoServer();
    const dir = mkdtempSync(path.join(tmpdir(), 'bridge-hostmap-'));
    const file = path.join(dir, 'host-map.json');
    writeFileSync(file, JSON.stringify({ hosts: { 'identity.ess.apple.com:443': `127.0.0.1:${echo.port}` } }));
    const b = await bridge({
      hostMapFile: file,
      hostMap: {
        '*-courier.push.apple.com:5223': `127.0.0.1:${echo.port}`,
        'relay.sandbox.test:443': `127.0.0.1:${echo.port}`,
      },
    });
    for (const dest of ['identity.ess.apple.com:443', '17-courier.push.apple.com:5223', 'relay.sandbox.test:443']) {
      const ws = track(await openTunnel(`${b.url}/tunnel/${dest}`));
      ws.send(Buffer.from(dest));
      expect((await receive(ws, dest.length)).toString()).toBe(dest);
    }
    // The starred entry covers one label only.
    expect((await refusal(`${b.url}/tunnel/a.b-courier.push.apple.com:5223`)).code).toBe(4403);
  });

  it('connects to the address it resolved, never re-resolving the name', async () => {
    const echo = await echoServer();
    const seen: string[] = [];
    const resolver: Resolver = async (host) => {
      seen.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const b = await bridge({ resolver, hostMap: { [`${COURIER}:5223`]: `sandbox.local.test:${echo.port}` } });
    const ws = track(await openTunnel(`${b.url}/tunnel/${COURIER}:5223`));
    ws.send(Buffer.from([1, 2, 3]));
    expect([...(await receive(ws, 3))]).toEqual([1, 2, 3]);
    expect(seen).toEqual(['sandbox.local.test']);
  });
});

describe('bridge tunnel: refusals', () => {
  it('refuses what the allowlist and address policy do not allow, with 4xxx codes', async () => {
    const connects: string[] = [];
    const resolver: Resolver = async (host) => {
      if (host === 'rebind.example.com') return [{ address: '127.0.0.1', family: 4 }];
      if (host === 'mixed.example.com') return [{ address: '10.1.2.3', family: 4 }, { address: '::ffff:192.168.1.1', family: 6 }];
      if (host === 'missing.example.com') throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      return [{ address: '17.57.144.10', family: 4 }];
    };
    const b = await bridge({
      resolver,
      connector: ({ address, port }) => {
        connects.push(`${address}:${port}`);
        return net.connect({ host: '127.0.0.1', port: 9 }); // discard: refused on loopback, never reached here
      },
      allow: ['rebind.example.com:443', 'mixed.example.com:443', 'missing.example.com:443', '10.0.0.1:443'],
    });
    const cases: Array<[string, number, string]> = [
      ['evil.example.com:443', 4403, 'not allowed by this bridge'],
      [`${COURIER}:22`, 4403, 'not allowed by this bridge'],
      ['init.push.apple.com:5223', 4403, 'not allowed by this bridge'],
      ['127.0.0.1:5223', 4403, 'not allowed by this bridge'],
      ['[::1]:443', 4403, 'not allowed by this bridge'],
      ['10.0.0.1:443', 4403, 'non-public address'],
      ['rebind.example.com:443', 4403, 'non-public address'],
      ['mixed.example.com:443', 4403, 'non-public address'],
      ['missing.example.com:443', 4404, 'not found'],
    ];
    for (const [dest, code, reason] of cases) {
      const closed = await refusal(`${b.url}/tunnel/${dest}`);
      expect([dest, closed.code]).toEqual([dest, code]);
      expect(closed.reason).toContain(reason);
    }
    expect(connects).toEqual([]);
    const refused = b.metrics.snapshot().tunnelsRefused;
    expect(refused['not-allowed']).toBe(5);
    expect(refused['address-not-public']).toBe(3);
    expect(refused['dns-failed']).toBe(1);
    expect(b.metrics.snapshot().tunnelsConnecting).toBe(0);
  });

  it('refuses malformed destinations with 4400 and answers non-WebSocket requests in HTTP', async () => {
    const b = await bridge();
    for (const bad of ['', 'courier.push.apple.com', 'courier.push.apple.com:0', 'courier.push.apple.com:65536',
      'courier.push.apple.com:44a', 'courier.push.apple.com:+443', 'a/b:443', '%zz:443', '::1:443', '127.1:443',
      'x..y:443', `${'a'.repeat(64)}.com:443`, 'exa mple.com:443', 'courier.push.apple.com:443:1']) {
      const closed = await refusal(`${b.url}/tunnel/${encodeURI(bad).replace('%25zz', '%zz')}`);
      expect([bad, closed.code]).toEqual([bad, 4400]);
    }
    // Not under /tunnel/: an HTTP 404, not a WebSocket.
    await expect(openTunnel(`${b.url}/other/${COURIER}:443`)).rejects.toThrow('http 404');
    expect(b.metrics.snapshot().tunnelsRefused['bad-request']).toBe(14);
  });

  it('survives garbage on the wire and broken handshakes', async () => {
    const b = await bridge();
    const port = b.port;
    const raw = async (bytes: string | Buffer) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      await new Promise((resolve) => s.once('connect', resolve));
      s.write(bytes);
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        s.on('data', (d) => (text += d.toString('latin1')));
        s.on('close', () => resolve(text));
        setTimeout(() => s.destroy(), 1_000);
      });
      return answer;
    };
    expect(await raw(randomBytes(4096))).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /tunnel/x:1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(
      await raw('GET /tunnel/courier.push.apple.com:443 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Key: bad\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    ).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('POST /tunnel/x:1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n')).toMatch(/^HTTP\/1\.1 404/);
    // A half-sent request, then the client vanishes.
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.write('GET /tunnel/courier.push.apple.com:443 HTTP/1.1\r\nUpgr');
    await sleep(50);
    s.destroy();
    const health = await fetch(`${b.url.replace('ws://', 'http://')}/healthz`);
    expect(health.status).toBe(200);
  });

  it('answers random destinations with a refusal code and stays healthy (fuzz)', async () => {
    const b = await bridge({ resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
    // "." and ".." are dot segments: the client's URL parser removes them before the bridge sees the path.
    const text = fc
      .string({ unit: fc.constantFrom(...'a0.-_:[]%/?#@ ~\u00e4\u0000\n'.split('')), maxLength: 30 })
      .filter((s) => s !== '.' && s !== '..');
    await fc.assert(
      fc.asyncProperty(text, async (s) => {
        const closed = await refusal(`${b.url}/tunnel/${encodeURIComponent(s)}`);
        expect([4400, 4403]).toContain(closed.code);
      }),
      { numRuns: 100 },
    );
    expect(b.metrics.snapshot()).toMatchObject({ tunnelsOpen: 0, tunnelsConnecting: 0, tunnelsOpened: 0 });
    expect((await fetch(`${b.url.replace('ws://', 'http://')}/healthz`)).status).toBe(200);
  });

  it('closes tunnels that send text frames (1003) or oversize messages (1009)', async () => {
    const echo = await echoServer();
    const b = await bridge({ maxMessageBytes: 64 * 1024, hostMap: { [`${COURIER}:5223`]: `127.0.0.1:${echo.port}` } });
    const t1 = track(await openTunnel(`${b.url}/tunnel/${COURIER}:5223`));
    const c1 = closeOf(t1);
    t1.send('hello');
    expect(await c1).toEqual({ code: 1003, reason: 'binary frames only' });

    const t2 = track(await openTunnel(`${b.url}/tunnel/${COURIER}:5223`));
    const c2 = closeOf(t2);
    t2.send(Buffer.alloc(64 * 1024 + 1));
    expect((await c2).code).toBe(1009);

    await eventually(() => b.metrics.snapshot().tunnelsOpen === 0, 3_000, 'both tunnels closed');
    const closed = b.metrics.snapshot().tunnelsClosed;
    expect(closed['text-frame']).toBe(1);
    expect(closed['client-error']).toBe(1);
    await eventually(() => echo.sockets.size === 0, 3_000, 'destination sockets closed');
  });
});

describe('bridge tunnel: access token', () => {
  const token = 'tok_0123456789abcdefXYZ';

  it('requires the token and accepts it from a header, a subprotocol or the query, never logging it', async () => {
    const echo = await echoServer();
    const b = await bridge({ token, hostMap: { [`${COURIER}:443`]: `127.0.0.1:${echo.port}` } });
    const url = `${b.url}/tunnel/${COURIER}:443`;
    expect(await refusal(url)).toEqual({ code: 4401, reason: 'access token missing or wrong' });
    expect((await refusal(`${url}?token=${token}x`)).code).toBe(4401);
    expect((await refusal(url, { headers: { authorization: `Bearer ${token.slice(0, -1)}` } })).code).toBe(4401);
    expect((await refusal(url, undefined, ['cerulean.bridge.v1', 'cerulean.token.nope'])).code).toBe(4401);
    // Unauthenticated requests learn nothing about the allowlist.
    expect((await refusal(`${b.url}/tunnel/evil.example.com:443`)).code).toBe(4401);

    const viaHeader = track(await openTunnel(url, { headers: { authorization: `Bearer ${token}` } }));
    const viaProtocol = track(await openTunnel(url, undefined, ['cerulean.bridge.v1', `cerulean.token.${token}`]));
    expect(viaProtocol.protocol).toBe('cerulean.bridge.v1');
    const viaQuery = track(await openTunnel(`${url}?token=${token}`));
    for (const ws of [viaHeader, viaProtocol, viaQuery]) {
      ws.send(Buffer.from('ok'));
      expect((await receive(ws, 2)).toString()).toBe('ok');
    }
    expect(b.metrics.snapshot().tunnelsRefused.unauthorized).toBe(5);
    expect(b.log.lines.length).toBeGreaterThan(5);
    expect(b.log.lines.join('\n')).not.toContain(token.slice(4, 16));
  });
});

describe('bridge tunnel: limits and timeouts', () => {
  it('enforces the per-IP and total tunnel limits and frees slots when tunnels close', async () => {
    const echo = await echoServer();
    const hostMap = { [`${COURIER}:443`]: `127.0.0.1:${echo.port}` };
    const b = await bridge({ hostMap, maxTunnels: 10, maxTunnelsPerIp: 2 });
    const url = `${b.url}/tunnel/${COURIER}:443`;
    const a = track(await openTunnel(url));
    track(await openTunnel(url));
    expect(await refusal(url)).toEqual({ code: 4429, reason: 'too many tunnels from your address' });
    const closed = closeOf(a);
    a.close();
    await closed;
    await eventually(() => b.metrics.snapshot().tunnelsOpen === 1, 3_000, 'slot freed');
    track(await openTunnel(url));

    const small = await bridge({ hostMap, maxTunnels: 1 });
    track(await openTunnel(`${small.url}/tunnel/${COURIER}:443`));
    expect(await refusal(`${small.url}/tunnel/${COURIER}:443`)).toEqual({ code: 4429, reason: 'bridge is at its tunnel limit' });
  });

  it('counts per-IP limits by X-Forwarded-For only when told to', async () => {
    const echo = await echoServer();
    const hostMap = { [`${COURIER}:443`]: `127.0.0.1:${echo.port}` };
    const b = await bridge({ hostMap, maxTunnelsPerIp: 1, trustForwardedFor: true });
    const url = `${b.url}/tunnel/${COURIER}:443`;
    track(await openTunnel(url, { headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' } }));
    track(await openTunnel(url, { headers: { 'x-forwarded-for': '198.51.100.2' } }));
    expect((await refusal(url, { headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.2' } })).code).toBe(4429);
  });

  it('closes an idle tunnel with 4408 and keeps a busy one open', async () => {
    const echo = await echoServer();
    const b = await bridge({ idleTimeoutMs: 400, hostMap: { [`${COURIER}:443`]: `127.0.0.1:${echo.port}` } });
    const idle = track(await openTunnel(`${b.url}/tunnel/${COURIER}:443`));
    const busy = track(await openTunnel(`${b.url}/tunnel/${COURIER}:443`));
    const idleClosed = closeOf(idle);
    let busyClosed = false;
    busy.on('close', () => (busyClosed = true));
    for (let i = 0; i < 10; i++) {
      busy.send(Buffer.from([i]));
      await sleep(80);
    }
    expect(await idleClosed).toEqual({ code: 4408, reason: 'idle timeout' });
    expect(busyClosed).toBe(false);
    expect(b.metrics.snapshot().tunnelsClosed['idle-timeout']).toBe(1);
  });

  it('gives up on a connect that never completes (4504) and on a refused one (4502)', async () => {
    const stuck: net.Socket[] = [];
    const b = await bridge({
      connectTimeoutMs: 200,
      connector: () => {
        const s = new net.Socket(); // never connects, never errors
        stuck.push(s);
        return s;
      },
      hostMap: { [`${COURIER}:443`]: '127.0.0.1:1' },
    });
    const started = Date.now();
    expect(await refusal(`${b.url}/tunnel/${COURIER}:443`)).toEqual({ code: 4504, reason: 'connecting to destination timed out' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    expect(stuck.length).toBe(1);
    expect(stuck[0]?.destroyed).toBe(true);

    const hang = await bridge({ connectTimeoutMs: 200, resolver: () => new Promise(() => {}), allow: ['slow.example.com:443'] });
    expect((await refusal(`${hang.url}/tunnel/slow.example.com:443`)).code).toBe(4504);

    const port = await freePort();
    const refusedBridge = await bridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${port}` } });
    expect(await refusal(`${refusedBridge.url}/tunnel/${COURIER}:443`)).toEqual({ code: 4502, reason: 'could not connect to destination' });
    expect(refusedBridge.metrics.snapshot().tunnelsRefused['connect-failed']).toBe(1);
  });

  it('abandons the connect when the client leaves first', async () => {
    const stuck: net.Socket[] = [];
    const b = await bridge({
      connectTimeoutMs: 10_000,
      connector: () => {
        const s = new net.Socket();
        stuck.push(s);
        return s;
      },
      hostMap: { [`${COURIER}:443`]: '127.0.0.1:1' },
    });
    const ws = new WebSocket(`${b.url}/tunnel/${COURIER}:443`);
    ws.on('error', () => {});
    await eventually(() => stuck.length === 1, 3_000, 'connect started');
    expect(b.metrics.snapshot().tunnelsConnecting).toBe(1);
    ws.terminate();
    await eventually(() => stuck[0]?.destroyed === true, 3_000, 'connect abandoned');
    expect(b.metrics.snapshot().tunnelsConnecting).toBe(0);
  });
});

describe('bridge tunnel: endings', () => {
  it('closes the WebSocket with 1000 after the destination closes, delivering every byte first', async () => {
    const server = await startTcpServer((s) => {
      s.end(Buffer.alloc(200_000, 7));
    });
    cleanups.push(() => server.close());
    const b = await bridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${server.port}` } });
    const ws = track(await openTunnel(`${b.url}/tunnel/${COURIER}:443`));
    const closed = closeOf(ws);
    const data = await receive(ws, 200_000);
    expect(data.every((x) => x === 7)).toBe(true);
    expect(await closed).toEqual({ code: 1000, reason: 'destination closed the connection' });
    await eventually(() => b.metrics.snapshot().tunnelsClosed['upstream-closed'] === 1, 3_000, 'accounting');
  });

  it('holds the close until a slow client has read what a closed destination sent', async () => {
    const size = 16 * 1024 * 1024;
    const server = await startTcpServer((s) => s.end(Buffer.alloc(size, 3)));
    cleanups.push(() => server.close());
    // A high-water mark above the payload lets the bridge read all of it, and the FIN, while the client is paused.
    const b = await bridge({ highWaterBytes: 32 * 1024 * 1024, hostMap: { [`${COURIER}:443`]: `127.0.0.1:${server.port}` } });
    const ws = track(await openTunnel(`${b.url}/tunnel/${COURIER}:443`));
    ws.pause();
    let got = 0;
    ws.on('message', (d: Buffer) => (got += d.length));
    const closed = closeOf(ws);
    await eventually(() => b.metrics.snapshot().bytes.destination_to_client === size, 5_000, 'bridge read everything');
    await sleep(2_500); // longer than ws waits for a close handshake
    ws.resume();
    expect(await closed).toEqual({ code: 1000, reason: 'destination closed the connection' });
    expect(got).toBe(size);
  });

  it('ends the TCP connection after the client closes, flushing what the client sent', async () => {
    const sink = await startTcpServer(() => {});
    cleanups.push(() => sink.close());
    const b = await bridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${sink.port}` } });
    const accepted = sink.nextConnection();
    const ws = track(await openTunnel(`${b.url}/tunnel/${COURIER}:443`));
    const peer = await accepted;
    const ended = new Promise<void>((resolve) => peer.once('end', resolve));
    const got = readBytes(peer, 3);
    ws.send(Buffer.from('bye'));
    ws.close(1000);
    expect((await got).toString()).toBe('bye');
    await ended;
  });

  it('reports a destination reset as 4502', async () => {
    const server = await startTcpServer((s) => setTimeout(() => s.resetAndDestroy(), 50));
    cleanups.push(() => server.close());
    const b = await bridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${server.port}` } });
    const ws = track(await openTunnel(`${b.url}/tunnel/${COURIER}:443`));
    expect((await closeOf(ws)).code).toBe(4502);
  });

  it('shuts down: refuses new work, closes tunnels with 1001, and leaves no sockets or timers behind', async () => {
    const echo = await echoServer();
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const b = await startTestBridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${echo.port}` }, idleTimeoutMs: 60_000 });
    const tunnels = await Promise.all([1, 2, 3].map(() => openTunnel(`${b.url}/tunnel/${COURIER}:443`)));
    await eventually(() => echo.sockets.size === 3, 3_000, 'three destination connections');
    const closes = tunnels.map(closeOf);
    const started = Date.now();
    await b.close();
    expect(Date.now() - started).toBeLessThan(2_500);
    for (const c of await Promise.all(closes)) expect(c).toEqual({ code: 1001, reason: 'bridge shutting down' });
    expect(b.metrics.snapshot()).toMatchObject({ tunnelsOpen: 0, tunnelsConnecting: 0 });
    expect(b.metrics.snapshot().tunnelsClosed.shutdown).toBe(3);
    await eventually(() => echo.sockets.size === 0, 3_000, 'destination sockets closed');
    await expect(openTunnel(`${b.url}/tunnel/${COURIER}:443`)).rejects.toThrow(/ECONNREFUSED|closed|http/);
    await b.close(); // idempotent
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).toBeLessThanOrEqual(before);
    expect(b.log.events('bridge.stopped').length).toBe(1);
  });

  it('shuts down within the grace period when clients do not answer and connects are still pending', async () => {
    const echo = await echoServer();
    const b = await startTestBridge({
      shutdownGraceMs: 300,
      hostMap: { [`${COURIER}:443`]: `127.0.0.1:${echo.port}`, [`${COURIER}:5223`]: '127.0.0.1:1' },
      connector: ({ port }) => (port === 1 ? new net.Socket() : net.connect({ host: '127.0.0.1', port })),
    });
    const deaf = await openTunnel(`${b.url}/tunnel/${COURIER}:443`);
    deaf.pause(); // never reads the close frame, so never answers it
    const waiting = new WebSocket(`${b.url}/tunnel/${COURIER}:5223`);
    waiting.on('error', () => {});
    const waitingClosed = closeOf(waiting);
    await eventually(() => b.metrics.snapshot().tunnelsConnecting === 1, 3_000, 'pending connect');
    const started = Date.now();
    await b.close();
    expect(Date.now() - started).toBeLessThan(1_500);
    expect((await waitingClosed).code).toBe(1006);
    expect(b.log.events('bridge.terminating')).toHaveLength(1);
    expect(b.metrics.snapshot()).toMatchObject({ tunnelsOpen: 0, tunnelsConnecting: 0 });
    deaf.terminate();
  });

  it('leaves nothing behind after many opened, refused and abandoned tunnels', async () => {
    const echo = await echoServer();
    const b = await bridge({ hostMap: { [`${COURIER}:443`]: `127.0.0.1:${echo.port}` }, maxTunnelsPerIp: 8 });
    const url = `${b.url}/tunnel/${COURIER}:443`;
    for (let round = 0; round < 5; round++) {
      const open = await Promise.all(Array.from({ length: 8 }, () => openTunnel(url)));
      expect((await refusal(url)).code).toBe(4429);
      await Promise.all(open.map((ws, i) => {
        const closed = closeOf(ws);
        if (i % 2) ws.terminate();
        else ws.close();
        return closed;
      }));
      await eventually(() => b.metrics.snapshot().tunnelsOpen === 0, 3_000, 'all closed');
    }
    await eventually(() => echo.sockets.size === 0, 3_000, 'destination sockets closed');
    expect(b.metrics.snapshot().tunnelsOpened).toBe(40);
  });
});
