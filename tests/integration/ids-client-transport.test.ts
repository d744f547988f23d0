// lib/ids's tunnel transport over lib/net: one kept-alive connection per host, a new one when the server ended the
// old (announced or not), failed connects not remembered, close() ending them all.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { fromUtf8 } from '../../lib/codec/bytes';
import { NetError } from '../../lib/net/errors';
import { createTunnelHttp, type TunnelHttp } from '../../lib/ids/transport';
import { makeServerPki, type ServerPki } from './net-helpers';

let pki: ServerPki;
let server: https.Server;
/** Whether the server silently drops the connection after each response (keep-alive announced all the same). */
let dropAfterResponse = false;
/** Whether the server drops a connection, unanswered, when a second request arrives on it (an idle-close race). */
let dropSecondRequest = false;
const requestsPerSocket = new WeakMap<net.Socket, number>();
let refuse = false;
let tunnels = 0;
const hostsSeen: string[] = [];
let wss: WebSocketServer;
let bridgeUrl: string;
const clients: TunnelHttp[] = [];

function client(): TunnelHttp {
  const c = createTunnelHttp({ bridgeUrl, WebSocketImpl: WebSocket, trustedRoots: [pki.root.pem], connectTimeoutMs: 5000, timeoutMs: 5000 });
  clients.push(c);
  return c;
}

const get = (http: TunnelHttp, host: string, path = '/') => http({ host, method: 'GET', path, headers: {} });

beforeAll(async () => {
  pki = await makeServerPki(['a.ids.test', 'b.ids.test']);
  server = https.createServer({ cert: pki.chainPem, key: pki.keyPem }, (req, res) => {
    const n = (requestsPerSocket.get(req.socket) ?? 0) + 1;
    requestsPerSocket.set(req.socket, n);
    if (dropSecondRequest && n > 1) {
      req.socket.destroy();
      return;
    }
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.headers.host} ${req.url}`);
    if (dropAfterResponse) res.on('finish', () => req.socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  // A bridge stand-in that sends every tunnel to the one server and notes the host asked for.
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    tunnels++;
    hostsSeen.push(/\/tunnel\/(.+):\d+$/.exec(req.url ?? '')?.[1] ?? '');
    if (refuse) {
      ws.close(4403, 'refused');
      return;
    }
    const socket = net.connect(port, '127.0.0.1');
    socket.on('data', (d) => ws.send(d));
    socket.on('end', () => ws.close(1000));
    socket.on('error', () => ws.close(4502));
    ws.on('message', (d: Buffer) => socket.write(d));
    ws.on('close', () => socket.destroy());
  });
  bridgeUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
});

beforeEach(() => {
  dropAfterResponse = false;
  dropSecondRequest = false;
  refuse = false;
  tunnels = 0;
  hostsSeen.length = 0;
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => wss.close(r));
  server.closeAllConnections();
  server.close();
});

describe('createTunnelHttp', () => {
  it('reuses one connection per host, also for concurrent requests', async () => {
    const http = client();
    for (const path of ['/1', '/2', '/3']) {
      const res = await get(http, 'a.ids.test', path);
      expect(res.status).toBe(200);
      expect(fromUtf8(res.body)).toBe(`a.ids.test ${path}`);
    }
    const parallel = await Promise.all(['/4', '/5', '/6'].map((p) => get(http, 'a.ids.test', p)));
    expect(parallel.map((r) => fromUtf8(r.body))).toEqual(['a.ids.test /4', 'a.ids.test /5', 'a.ids.test /6']);
    await get(http, 'b.ids.test');
    expect(tunnels).toBe(2);
    expect(hostsSeen).toEqual(['a.ids.test', 'b.ids.test']);
  });

  it('opens a new connection when the server dropped the old one without a word', async () => {
    dropAfterResponse = true;
    const http = client();
    for (let i = 0; i < 4; i++) {
      const res = await get(http, 'a.ids.test', `/${i}`);
      expect(fromUtf8(res.body)).toBe(`a.ids.test /${i}`);
      // Give the close a moment half the time, so both "noticed before" and "found on use" are exercised.
      if (i % 2 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(tunnels).toBe(4);
  });

  it('retries once on a fresh connection when a kept-alive one dies unanswered', async () => {
    dropSecondRequest = true;
    const http = client();
    for (let i = 0; i < 3; i++) expect(fromUtf8((await get(http, 'a.ids.test', `/${i}`)).body)).toBe(`a.ids.test /${i}`);
    expect(tunnels).toBe(3);
  });

  it('does not keep a failed connect, and passes a port in the host through', async () => {
    const http = client();
    refuse = true;
    const e = await get(http, 'a.ids.test').then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(NetError);
    expect((e as NetError).code).toBe('bridge-refused');
    refuse = false;
    expect((await get(http, 'a.ids.test')).status).toBe(200);
    await get(http, 'b.ids.test:8443');
    expect(hostsSeen).toEqual(['a.ids.test', 'a.ids.test', 'b.ids.test']);
  });

  it('close() ends the pooled connections; later requests open new ones', async () => {
    const http = client();
    await get(http, 'a.ids.test');
    http.close();
    await get(http, 'a.ids.test');
    expect(tunnels).toBe(2);
  });
});
