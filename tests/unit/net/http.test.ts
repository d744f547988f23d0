import { describe, expect, it } from 'vitest';
import { fromUtf8, utf8 } from '../../../lib/codec/bytes';
import { EncodeError } from '../../../lib/errors';
import { NetError } from '../../../lib/net/errors';
import { HttpConnection, serializeRequest } from '../../../lib/net/http';
import { ScriptedStream, serverStream } from './streams';

const HOST = 'identity.ess.apple.com';

describe('serializeRequest', () => {
  it('writes a GET with Host and Accept-Encoding', () => {
    expect(fromUtf8(serializeRequest({ method: 'GET', path: '/WebObjects/TDIdentityService.woa/wa/getBag' }, HOST))).toBe(
      'GET /WebObjects/TDIdentityService.woa/wa/getBag HTTP/1.1\r\n' +
        'Host: identity.ess.apple.com\r\nAccept-Encoding: gzip\r\n\r\n',
    );
  });

  it('writes a POST with the caller headers in order and the body length', () => {
    const req = {
      method: 'POST',
      path: '/register?x=1',
      headers: [['Content-Type', 'application/x-apple-plist'], ['X-Push-Token', 'abc'], ['accept-encoding', 'identity']] as const,
      body: utf8('<plist/>'),
    };
    expect(fromUtf8(serializeRequest(req, 'albert.apple.com:8443'))).toBe(
      'POST /register?x=1 HTTP/1.1\r\nHost: albert.apple.com:8443\r\n' +
        'Content-Type: application/x-apple-plist\r\nX-Push-Token: abc\r\naccept-encoding: identity\r\n' +
        'Content-Length: 8\r\n\r\n',
    );
    expect(fromUtf8(serializeRequest({ method: 'POST', path: '/', headers: { Host: 'other' } }, HOST))).toBe(
      'POST / HTTP/1.1\r\nHost: other\r\nAccept-Encoding: gzip\r\nContent-Length: 0\r\n\r\n',
    );
  });

  it.each([
    [{ method: 'G ET', path: '/' }],
    [{ method: '', path: '/' }],
    [{ method: 'GET', path: 'http://evil/' }],
    [{ method: 'GET', path: '/a b' }],
    [{ method: 'GET', path: '/a\r\nX: y' }],
    [{ method: 'GET', path: '/', headers: { 'X-A': 'v\r\nInjected: 1' } }],
    [{ method: 'GET', path: '/', headers: { 'X A': 'v' } }],
    [{ method: 'GET', path: '/', headers: { 'Content-Length': '5' } }],
    [{ method: 'GET', path: '/', headers: { 'transfer-encoding': 'chunked' } }],
  ])('refuses to write %j', (req) => {
    expect(() => serializeRequest(req, HOST)).toThrow(EncodeError);
  });
});

const okResponse = (body: string, extra = '') => [`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`];

describe('HttpConnection', () => {
  it('sends sequential requests on one kept-alive connection', async () => {
    const stream = serverStream([okResponse('one'), okResponse('two'), ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n']]);
    const conn = new HttpConnection(stream, { host: HOST });
    for (const want of ['one', 'two', 'three']) {
      const res = await conn.request({ method: 'GET', path: `/${want}` });
      expect(fromUtf8(res.body)).toBe(want);
      expect(conn.reusable).toBe(true);
    }
    expect(stream.written.map((w) => fromUtf8(w).split('\r\n')[0])).toEqual(['GET /one HTTP/1.1', 'GET /two HTTP/1.1', 'GET /three HTTP/1.1']);
    expect(stream.isClosed).toBe(false);
  });

  it('runs concurrent requests one after another', async () => {
    const stream = serverStream([okResponse('a'), okResponse('b')]);
    const conn = new HttpConnection(stream, { host: HOST });
    const [a, b] = await Promise.all([conn.request({ method: 'GET', path: '/a' }), conn.request({ method: 'GET', path: '/b' })]);
    expect([fromUtf8(a.body), fromUtf8(b.body)]).toEqual(['a', 'b']);
  });

  it('sends the body after the head', async () => {
    const stream = serverStream([okResponse('')]);
    await new HttpConnection(stream, { host: HOST }).request({ method: 'PUT', path: '/x', body: utf8('payload') });
    expect(fromUtf8(stream.written[0]!).endsWith('Content-Length: 7\r\n\r\npayload')).toBe(true);
  });

  it('closes after Connection: close, an unframed body, or stray bytes', async () => {
    for (const response of [okResponse('x', 'Connection: close\r\n'), ['HTTP/1.1 200 OK\r\n\r\nx'], [okResponse('x')[0] + 'junk']]) {
      const stream = serverStream([response], true);
      const conn = new HttpConnection(stream, { host: HOST });
      expect(fromUtf8((await conn.request({ method: 'GET', path: '/' })).body)).toBe('x');
      expect(conn.reusable).toBe(false);
      expect(stream.isClosed).toBe(true);
      const err = await conn.request({ method: 'GET', path: '/' }).catch((e: unknown) => e);
      expect((err as NetError).code).toBe('connection-closed');
    }
  });

  it('closes after the caller asked for Connection: close', async () => {
    const stream = serverStream([okResponse('x')]);
    const conn = new HttpConnection(stream, { host: HOST });
    await conn.request({ method: 'GET', path: '/', headers: { Connection: 'close' } });
    expect(conn.reusable).toBe(false);
  });

  it('is not reusable once the server has closed it', async () => {
    const stream = serverStream([okResponse('x')]);
    const conn = new HttpConnection(stream, { host: HOST });
    await conn.request({ method: 'GET', path: '/' });
    stream.end();
    await stream.closed;
    expect(conn.reusable).toBe(false);
  });

  it('times out, closes the stream and refuses further requests', async () => {
    const stream = new ScriptedStream();
    const conn = new HttpConnection(stream, { host: HOST, timeoutMs: 30 });
    const err = await conn.request({ method: 'GET', path: '/slow' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetError);
    expect((err as NetError).code).toBe('http-timeout');
    expect(stream.isClosed).toBe(true);
    expect(conn.reusable).toBe(false);
  });

  it('fails and closes on a malformed response or a transport error', async () => {
    const bad = serverStream([['HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n']]);
    const conn = new HttpConnection(bad, { host: HOST });
    expect(((await conn.request({ method: 'GET', path: '/' }).catch((e: unknown) => e)) as NetError).code).toBe('http-bad-response');
    expect(bad.isClosed).toBe(true);

    const dropped = new ScriptedStream((_, s) => s.feed('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart').end(new NetError('connection-lost', 'gone')));
    const err = await new HttpConnection(dropped, { host: HOST }).request({ method: 'GET', path: '/' }).catch((e: unknown) => e);
    expect((err as NetError).code).toBe('connection-lost');
  });

  it('applies the per-request body limit', async () => {
    const conn = new HttpConnection(serverStream([okResponse('0123456789')]), { host: HOST });
    const err = await conn.request({ method: 'GET', path: '/', maxBodyBytes: 4 }).catch((e: unknown) => e);
    expect((err as NetError).code).toBe('http-body-too-large');
  });
});
