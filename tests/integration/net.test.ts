// lib/net end to end in Node: `ws` WebSocket → test forwarder → node:tls / node:https servers on loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { WebSocket } from 'ws';
import { fromUtf8, utf8 } from '../../lib/codec/bytes';
import { openWebSocketStream, tunnelUrl } from '../../lib/net/byte-stream';
import { NetError } from '../../lib/net/errors';
import { httpsRequest, openHttpsConnection } from '../../lib/net/http';
import { connectTls, type TlsOptions } from '../../lib/net/tls';
import { days, issue, privateKeyPem } from '../unit/net/pki';
import { makeServerPki, portOf, startForwarder, type Forwarder, type ServerPki } from './net-helpers';

const HOST = 'courier.sandbox.test';
const WEB = 'identity.sandbox.test';
type Version = 'TLSv1.2' | 'TLSv1.3';

let pki: ServerPki;
let rsaPki: ServerPki;
let fwd: Forwarder;
const servers: net.Server[] = [];

async function listen<T extends net.Server>(server: T): Promise<T> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return server;
}

/** A TLS echo server with the given certificate and protocol settings. */
function echoServer(opts: tls.TlsOptions) {
  return listen(
    tls.createServer(opts, (s) => {
      s.pipe(s);
      s.on('error', () => {});
    }),
  );
}

async function tunnel(port: number, forwarder = fwd) {
  return openWebSocketStream({ url: tunnelUrl(forwarder.url, '127.0.0.1', port), WebSocketImpl: WebSocket, timeoutMs: 5000 });
}

async function tlsTo(port: number, options: Partial<TlsOptions> = {}) {
  return connectTls(await tunnel(port), { serverName: HOST, trustedRoots: [pki.root.pem], timeoutMs: 5000, ...options });
}

async function netError(p: Promise<unknown>): Promise<NetError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(NetError);
  return e as NetError;
}

async function readAll(conn: { read(): Promise<Uint8Array | null> }, until: number): Promise<string> {
  let s = '';
  while (s.length < until) {
    const chunk = await conn.read();
    if (!chunk) break;
    s += fromUtf8(chunk);
  }
  return s;
}

beforeAll(async () => {
  pki = await makeServerPki([HOST, WEB, '*.wild.sandbox.test']);
  rsaPki = await makeServerPki([HOST], 'rsa', 'RSA Test Root');
  fwd = await startForwarder();
});

afterAll(async () => {
  await fwd.close();
  for (const s of servers) {
    (s as { closeAllConnections?: () => void }).closeAllConnections?.();
    s.close();
  }
});

describe('TLS over the tunnel', () => {
  for (const version of ['TLSv1.2', 'TLSv1.3'] as Version[]) {
    for (const kind of ['ec', 'rsa'] as const) {
      it(`${version} with an ${kind} certificate: handshake, ALPN apns-security-v3, data both ways`, async () => {
        const p = kind === 'ec' ? pki : rsaPki;
        const server = await echoServer({ key: p.keyPem, cert: p.chainPem, minVersion: version, maxVersion: version, ALPNProtocols: ['apns-security-v3'] });
        const conn = await tlsTo(portOf(server), { alpn: ['apns-pack-v1', 'apns-security-v3'], trustedRoots: [p.root.pem] });
        expect(conn.version).toBe(version === 'TLSv1.2' ? 'TLS1.2' : 'TLS1.3');
        expect(conn.alpnProtocol).toBe('apns-security-v3');
        expect(conn.peerCertificates).toEqual([p.leaf.der, p.intermediate.der]);
        await conn.write(utf8('hello'));
        expect(await readAll(conn, 5)).toBe('hello');
        const big = 'x'.repeat(200_000);
        await conn.write(utf8(big));
        expect(await readAll(conn, big.length)).toBe(big);
        conn.close();
        expect(await conn.closed).toEqual({});
      });
    }
  }

  it('keeps up with a sender much faster than decryption (32 MiB through TLS)', async () => {
    const size = 32 * 1024 * 1024;
    const server = await listen(tls.createServer({ key: pki.keyPem, cert: pki.chainPem }, (s) => s.end(Buffer.alloc(size, 1))));
    const conn = await tlsTo(portOf(server));
    let received = 0;
    for (let chunk = await conn.read(); chunk; chunk = await conn.read()) received += chunk.length;
    expect(received).toBe(size);
    expect(await conn.closed).toEqual({});
  });

  it('reports no ALPN when the server has none, and trusts a pinned intermediate', async () => {
    const server = await echoServer({ key: pki.keyPem, cert: pki.chainPem });
    const conn = await tlsTo(portOf(server), { alpn: ['apns-security-v3'], trustedRoots: [pki.intermediate.pem] });
    expect(conn.alpnProtocol).toBeNull();
    conn.close();
  });

  it('fails closed on a certificate from another CA', async () => {
    const other = await makeServerPki([HOST], 'ec-p256', 'Impostor Root');
    const server = await echoServer({ key: other.keyPem, cert: other.chainPem });
    const stream = await tunnel(portOf(server));
    const err = await netError(connectTls(stream, { serverName: HOST, trustedRoots: [pki.root.pem], timeoutMs: 5000 }));
    expect(err.code).toBe('tls-untrusted-certificate');
    expect((await stream.closed).error).toBeUndefined();
    expect(await stream.read()).toBeNull();
  });

  it('fails closed even when verification outlasts the handshake (a long chain failing at its last link)', async () => {
    const real = await issue({ subject: 'CN=Long Root', ca: true, kind: 'ec-p384' });
    const lookalike = await issue({ subject: 'CN=Long Root', ca: true, kind: 'ec-p384' });
    let issuer = real;
    const intermediates = [];
    for (let i = 0; i < 8; i++) {
      issuer = await issue({ subject: `CN=Long CA ${i}`, issuer, ca: true, kind: 'ec-p384' });
      intermediates.unshift(issuer);
    }
    const leaf = await issue({ subject: `CN=${HOST}`, issuer, dns: [HOST], kind: 'ec-p384' });
    const chainPem = [leaf, ...intermediates].map((c) => c.pem).join('\n');
    const server = await echoServer({ key: await privateKeyPem(leaf), cert: chainPem });
    expect((await tlsTo(portOf(server), { trustedRoots: [real.pem] })).peerCertificates).toHaveLength(9);
    for (let i = 0; i < 3; i++) {
      expect((await netError(tlsTo(portOf(server), { trustedRoots: [lookalike.pem] }))).code).toBe('tls-untrusted-certificate');
    }
  });

  it('fails on a wrong host name and an expired certificate', async () => {
    const server = await echoServer({ key: pki.keyPem, cert: pki.chainPem });
    expect((await netError(tlsTo(portOf(server), { serverName: 'courier.push.apple.com' }))).code).toBe('tls-bad-hostname');
    const expired = await issue({ subject: `CN=${HOST}`, issuer: pki.intermediate, dns: [HOST], notBefore: days(-10), notAfter: days(-1) });
    const old = await echoServer({ key: await privateKeyPem(expired), cert: expired.pem + '\n' + pki.intermediate.pem });
    expect((await netError(tlsTo(portOf(old)))).code).toBe('tls-certificate-expired');
  });

  it('matches a wildcard certificate name', async () => {
    const server = await echoServer({ key: pki.keyPem, cert: pki.chainPem });
    const conn = await tlsTo(portOf(server), { serverName: '17-courier.wild.sandbox.test' });
    conn.close();
  });

  it('reports a fatal alert when the server accepts none of the offered ALPN protocols', async () => {
    const server = await echoServer({ key: pki.keyPem, cert: pki.chainPem, ALPNProtocols: ['h2'] });
    expect((await netError(tlsTo(portOf(server), { alpn: ['apns-security-v3'] }))).code).toBe('tls-alert');
  });

  it('fails when the server is not TLS, closes during the handshake, or never answers', async () => {
    const plain = await listen(net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    expect((await netError(tlsTo(portOf(plain)))).code).toMatch(/^(tls-handshake-failed|tls-protocol-error|connection-closed)$/);
    const hangup = await listen(net.createServer((s) => s.once('data', () => s.end())));
    expect((await netError(tlsTo(portOf(hangup)))).code).toBe('connection-closed');
    const silent = await listen(net.createServer(() => {}));
    expect((await netError(tlsTo(portOf(silent), { timeoutMs: 300 }))).code).toBe('tls-timeout');
  });

  it('surfaces the server dropping the connection after the handshake', async () => {
    const server = await listen(tls.createServer({ key: pki.keyPem, cert: pki.chainPem }, (s) => s.once('data', () => s.destroy())));
    const conn = await tlsTo(portOf(server));
    await conn.write(utf8('bye'));
    expect((await netError(conn.read())).code).toBe('connection-closed');
    expect((await conn.closed).error?.code).toBe('connection-closed');
  });
});

describe('the tunnel refusing', () => {
  it('maps the forwarder closing with 4403 to bridge-refused', async () => {
    const refusing = await startForwarder({ refuseWith: 4403 });
    try {
      const err = await netError(
        httpsRequest({ bridgeUrl: refusing.url, WebSocketImpl: WebSocket, host: '127.0.0.1', port: 1, serverName: WEB, trustedRoots: [pki.root.pem], method: 'GET', path: '/' }),
      );
      expect(err.code).toBe('bridge-refused');
      expect(err.closeCode).toBe(4403);
    } finally {
      await refusing.close();
    }
  });

  it('maps a destination that refuses TCP to connect-failed', async () => {
    const closed = await listen(net.createServer());
    const port = portOf(closed);
    closed.close();
    await once(closed, 'close');
    expect((await netError(tlsTo(port))).code).toBe('connect-failed');
  });

  it('maps an unreachable bridge to bridge-unreachable', async () => {
    const err = await netError(openWebSocketStream({ url: 'ws://127.0.0.1:1/tunnel', WebSocketImpl: WebSocket, timeoutMs: 5000 }));
    expect(err.code).toBe('bridge-unreachable');
  });
});

describe('HTTPS through the tunnel', () => {
  let port: number;
  let tlsConnections = 0;
  const BIG = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < BIG.length; i += 4) BIG.writeUInt32BE(i, i);
  const bigSha = createHash('sha256').update(BIG).digest('hex');

  beforeAll(async () => {
    const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem, ALPNProtocols: ['http/1.1'] }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        switch (req.url) {
          case '/plain':
            res.setHeader('Content-Length', 5);
            res.setHeader('Set-Cookie', ['a=1', 'b=2']);
            res.end('hello');
            break;
          case '/chunked':
            res.write('part one, ');
            setTimeout(() => res.end('part two'), 5);
            break;
          case '/gzip': {
            const gz = zlib.gzipSync(Buffer.from('compressed '.repeat(1000)));
            res.setHeader('Content-Encoding', 'gzip');
            res.write(gz.subarray(0, 20));
            res.end(gz.subarray(20));
            break;
          }
          case '/echo':
            res.setHeader('Content-Encoding', 'gzip');
            res.setHeader('X-Method', req.method ?? '');
            res.setHeader('X-Accept-Encoding', req.headers['accept-encoding'] ?? '');
            res.end(zlib.gzipSync(body));
            break;
          case '/big':
            res.setHeader('Content-Length', BIG.length);
            res.end(BIG);
            break;
          case '/truncated':
            res.setHeader('Content-Length', 100);
            res.write('only ten b');
            setTimeout(() => res.socket?.destroy(), 20);
            break;
          default:
            res.statusCode = 404;
            res.end();
        }
      });
    });
    server.on('secureConnection', () => tlsConnections++);
    port = portOf(await listen(server));
  });

  const connectOptions = () => ({ bridgeUrl: fwd.url, WebSocketImpl: WebSocket, host: '127.0.0.1', port, serverName: WEB, trustedRoots: [pki.root.pem] });

  it('GETs Content-Length, chunked and gzip bodies and POSTs, all on one kept-alive connection', async () => {
    const before = { tls: tlsConnections, tunnels: fwd.opened };
    const conn = await openHttpsConnection(connectOptions());
    const plain = await conn.request({ method: 'GET', path: '/plain' });
    expect(plain.status).toBe(200);
    expect(fromUtf8(plain.body)).toBe('hello');
    expect(plain.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const chunked = await conn.request({ method: 'GET', path: '/chunked' });
    expect(chunked.headers['transfer-encoding']).toEqual(['chunked']);
    expect(fromUtf8(chunked.body)).toBe('part one, part two');
    const gz = await conn.request({ method: 'GET', path: '/gzip' });
    expect(fromUtf8(gz.body)).toBe('compressed '.repeat(1000));
    const post = await conn.request({ method: 'POST', path: '/echo', headers: { 'Content-Type': 'text/plain' }, body: utf8('posted body') });
    expect(fromUtf8(post.body)).toBe('posted body');
    expect(post.headers['x-method']).toEqual(['POST']);
    expect(post.headers['x-accept-encoding']).toEqual(['gzip']);
    expect((await conn.request({ method: 'GET', path: '/missing' })).status).toBe(404);
    expect(conn.reusable).toBe(true);
    expect(tlsConnections - before.tls).toBe(1);
    expect(fwd.opened - before.tunnels).toBe(1);
    conn.close();
  });

  it('downloads 8 MiB intact', async () => {
    const conn = await openHttpsConnection(connectOptions());
    const res = await conn.request({ method: 'GET', path: '/big' });
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(bigSha);
    conn.close();
  });

  it('refuses a body over the limit', async () => {
    const conn = await openHttpsConnection({ ...connectOptions(), maxBodyBytes: 1024 * 1024 });
    expect((await netError(conn.request({ method: 'GET', path: '/big' }))).code).toBe('http-body-too-large');
    expect(conn.reusable).toBe(false);
  });

  it('makes a one-off request with httpsRequest', async () => {
    const res = await httpsRequest({ ...connectOptions(), method: 'POST', path: '/echo', body: utf8('one-off') });
    expect(fromUtf8(res.body)).toBe('one-off');
  });

  it('fails with a NetError when the server closes in the middle of a response', async () => {
    const conn = await openHttpsConnection(connectOptions());
    const err = await netError(conn.request({ method: 'GET', path: '/truncated' }));
    expect(err.code).toBe('connection-closed');
    expect(conn.reusable).toBe(false);
  });
});
