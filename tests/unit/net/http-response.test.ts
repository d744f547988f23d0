import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, fromHex, fromUtf8, utf8 } from '../../../lib/codec/bytes';
import { gzip } from '../../../lib/codec/gzip';
import { BufferedReader } from '../../../lib/net/buffered-reader';
import { NetError } from '../../../lib/net/errors';
import { readResponse, type ParsedResponse } from '../../../lib/net/http-response';
import { bytesOf, ScriptedStream, splitAt, type Chunk } from './streams';

const LIMITS = { maxHeaderBytes: 8 * 1024, maxBodyBytes: 64 * 1024 };
// "hello" gzipped by Python's gzip (mtime 0), the same member as tests/unit/codec/gzip.test.ts.
const HELLO_GZ = fromHex('1f8b08000000000002ffcb48cdc9c9070086a6103605000000');

function parse(chunks: Chunk[], method = 'GET', limits = LIMITS): Promise<ParsedResponse> {
  const stream = new ScriptedStream().feed(...chunks).end();
  return readResponse(new BufferedReader(stream), method, limits);
}

async function failure(chunks: Chunk[], method = 'GET', limits = LIMITS): Promise<NetError> {
  const err = await parse(chunks, method, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NetError);
  return err as NetError;
}

const text = (r: ParsedResponse) => fromUtf8(r.body);

const CHUNKED =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n' +
  '5\r\nhello\r\n6;name=value\r\n world\r\n0000\r\nX-Checksum: abc\r\n\r\n';

describe('readResponse: framing', () => {
  it('reads a Content-Length body and lower-cases multi-valued headers', async () => {
    const r = await parse([
      'HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n' +
        'X-Spaced:   padded value \t\r\nContent-Length: 5\r\n\r\nhello',
    ]);
    expect(r.status).toBe(201);
    expect(r.reason).toBe('Created');
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['x-spaced']).toEqual(['padded value']);
    expect(r.headers['content-type']).toEqual(['text/plain']);
    expect(text(r)).toBe('hello');
    expect(r.keepAlive).toBe(true);
  });

  it('reads a chunked body with extensions and trailers', async () => {
    const r = await parse([CHUNKED]);
    expect(text(r)).toBe('hello world');
    expect(r.keepAlive).toBe(true);
  });

  it('reads the chunked response split at every byte boundary', async () => {
    const all = utf8(CHUNKED);
    for (let cut = 1; cut < all.length; cut++) {
      expect(text(await parse(splitAt(all, [cut])))).toBe('hello world');
    }
    expect(text(await parse(splitAt(all, [...all.keys()])))).toBe('hello world');
  });

  it('reads any split of a Content-Length response', async () => {
    const all = utf8('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: 12 }), async (cuts) => {
        expect(text(await parse(splitAt(all, cuts)))).toBe('hello world');
      }),
      { numRuns: 100 },
    );
  });

  it('inflates gzip content, with Content-Length and chunked', async () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n';
    const r1 = await parse([head + `Content-Length: ${HELLO_GZ.length}\r\n\r\n`, HELLO_GZ]);
    expect(text(r1)).toBe('hello');
    const r2 = await parse([
      head + 'Transfer-Encoding: chunked\r\n\r\n',
      `a\r\n`, HELLO_GZ.subarray(0, 10), '\r\n', `${(HELLO_GZ.length - 10).toString(16)}\r\n`,
      HELLO_GZ.subarray(10), '\r\n0\r\n\r\n',
    ]);
    expect(text(r2)).toBe('hello');
    expect(r2.headers['content-encoding']).toEqual(['gzip']);
  });

  it('skips interim 1xx responses', async () => {
    const r = await parse(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    expect(r.status).toBe(200);
    expect(text(r)).toBe('ok');
  });

  it('has no body for HEAD, 204 and 304 whatever the length headers say', async () => {
    const head = await parse(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'], 'HEAD');
    expect(head.body.length).toBe(0);
    expect(head.keepAlive).toBe(true);
    expect((await parse(['HTTP/1.1 204 No Content\r\n\r\n'])).body.length).toBe(0);
    expect((await parse(['HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n'])).body.length).toBe(0);
  });

  it('reads to the end of the stream without framing, and then cannot keep the connection', async () => {
    const r = await parse(['HTTP/1.1 200 OK\r\n\r\nall ', 'of ', 'it']);
    expect(text(r)).toBe('all of it');
    expect(r.keepAlive).toBe(false);
  });

  it('honours Connection: close and HTTP/1.0', async () => {
    expect((await parse(['HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n'])).keepAlive).toBe(false);
    expect((await parse(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n'])).keepAlive).toBe(false);
  });

  it('accepts a status line without reason and repeated equal Content-Lengths', async () => {
    const r = await parse(['HTTP/1.1 200\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok']);
    expect(r.reason).toBe('');
    expect(text(r)).toBe('ok');
  });

  it('leaves bytes after the response buffered for the next one', async () => {
    const stream = new ScriptedStream().feed('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 204 No\r\n\r\n').end();
    const reader = new BufferedReader(stream);
    expect(text(await readResponse(reader, 'GET', LIMITS))).toBe('a');
    expect(reader.buffered).toBeGreaterThan(0);
    expect((await readResponse(reader, 'GET', LIMITS)).status).toBe(204);
  });
});

describe('readResponse: malformed and hostile responses', () => {
  const ok = 'HTTP/1.1 200 OK\r\n';
  const chunked = ok + 'Transfer-Encoding: chunked\r\n\r\n';

  it.each([
    ['HTTP/2 200 OK\r\n\r\n'],
    ['HTTP/1.1 20 OK\r\n\r\n'],
    ['HTTP/1.1 600 Nope\r\n\r\n'],
    ['ICY 200 OK\r\n\r\n'],
    ['HTTP/1.1 200 OK\r\n\r\n'.replace(/\r\n/g, '\n')],
    ['HTTP/1.1 200 O\x01K\r\n\r\n'],
    [ok + 'Bad Name: x\r\n\r\n'],
    [ok + 'Name : x\r\n\r\n'],
    [ok + ': x\r\n\r\n'],
    [ok + 'NoColon\r\n\r\n'],
    [ok + 'X-A: 1\r\n folded\r\n\r\n'],
    [ok + 'X-A: a\x00b\r\n\r\n'],
    [ok + 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'],
    [ok + 'Transfer-Encoding: gzip, chunked\r\n\r\n'],
    ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    [ok + 'Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    [ok + 'Content-Length: -1\r\n\r\n'],
    [ok + 'Content-Length: 0x10\r\n\r\n'],
    [ok + 'Content-Length: 1e3\r\n\r\n'],
    [ok + 'Content-Encoding: br\r\nContent-Length: 0\r\n\r\n'],
    [ok + 'Content-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc'],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n'],
    ['HTTP/1.1 100 Continue\r\n\r\n'.repeat(9) + 'HTTP/1.1 200 OK\r\n\r\n'],
    [chunked + 'zz\r\n'],
    [chunked + '-1\r\n'],
    [chunked + '\r\n'],
    [chunked + ' 5\r\nhello\r\n0\r\n\r\n'],
    [chunked + '5 x\r\nhello\r\n0\r\n\r\n'],
    [chunked + '0x5\r\nhello\r\n0\r\n\r\n'],
    [chunked + '5\nhello\r\n0\r\n\r\n'],
    [chunked + '5\r\nhelloXX0\r\n\r\n'],
    [chunked + '0\r\nBad Trailer\r\n\r\n'],
  ])('rejects %j as a bad response', async (raw) => {
    expect((await failure([raw])).code).toBe('http-bad-response');
  });

  it('reports a connection that closes early', async () => {
    expect((await failure([])).code).toBe('connection-closed');
    expect((await failure([ok + 'Content-Length: 10\r\n\r\nhel'])).code).toBe('connection-closed');
    expect((await failure([ok + 'Content-Le'])).code).toBe('connection-closed');
    expect((await failure([chunked + '5\r\nhel'])).code).toBe('connection-closed');
    expect((await failure([chunked + '5\r\nhello\r\n'])).code).toBe('connection-closed');
  });

  it('refuses oversized headers as soon as the limit is passed', async () => {
    const stream = new ScriptedStream().feed(ok + 'X-Big: ' + 'a'.repeat(LIMITS.maxHeaderBytes));
    // The stream never ends: the parser must stop at the limit, not wait for the end of the line.
    const err = await readResponse(new BufferedReader(stream), 'GET', LIMITS).catch((e: unknown) => e);
    expect((err as NetError).code).toBe('http-headers-too-large');
    const many = ok + 'X-A: 1234567890\r\n'.repeat(LIMITS.maxHeaderBytes / 16) + '\r\n';
    expect((await failure([many])).code).toBe('http-headers-too-large');
  });

  it('refuses a body over the limit before reading it, for announced and chunked lengths', async () => {
    const stream = new ScriptedStream().feed(ok + `Content-Length: ${LIMITS.maxBodyBytes + 1}\r\n\r\n`);
    const err = await readResponse(new BufferedReader(stream), 'GET', LIMITS).catch((e: unknown) => e);
    expect((err as NetError).code).toBe('http-body-too-large');
    expect((await failure([ok + 'Content-Length: 999999999999999\r\n\r\n'])).code).toBe('http-body-too-large');
    expect((await failure([chunked + 'ffffffffffffffffff\r\n'])).code).toBe('http-body-too-large');
    expect((await failure([chunked + '000000000000000010001\r\n'])).code).toBe('http-body-too-large');
    const half = (LIMITS.maxBodyBytes / 2 + 1).toString(16);
    const body = 'x'.repeat(LIMITS.maxBodyBytes / 2 + 1);
    expect((await failure([chunked + `${half}\r\n${body}\r\n${half}\r\n`])).code).toBe('http-body-too-large');
    expect((await failure([ok + '\r\n', 'y'.repeat(LIMITS.maxBodyBytes + 1)])).code).toBe('http-body-too-large');
  });

  it('caps the inflated size of a gzip body (a bomb)', async () => {
    const bomb = await gzip(new Uint8Array(LIMITS.maxBodyBytes * 4));
    expect(bomb.length).toBeLessThan(LIMITS.maxBodyBytes);
    const err = await failure([`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\n\r\n`, bomb]);
    expect(err.code).toBe('http-body-too-large');
  });

  it('refuses a chunk-size line that never ends', async () => {
    const stream = new ScriptedStream().feed(chunked + '1'.repeat(5000));
    const err = await readResponse(new BufferedReader(stream), 'GET', LIMITS).catch((e: unknown) => e);
    expect((err as NetError).code).toBe('http-bad-response');
  });

  it('only ever fails with NetError on random and mutated input', async () => {
    const valid = utf8(CHUNKED);
    const mutated = fc
      .tuple(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(valid.length))
      .map(([edits, cut]) => {
        const b = valid.slice(0, Math.max(1, cut));
        for (const [i, v] of edits) if (i < b.length) b[i] = v;
        return b;
      });
    const random = fc.uint8Array({ maxLength: 300 }).map((b) => concat(utf8('HTTP/1.1 200 OK\r\n'), b));
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, random, fc.uint8Array({ maxLength: 200 })), async (input) => {
        await parse([bytesOf(input)]).catch((e: unknown) => {
          expect(e).toBeInstanceOf(NetError);
        });
      }),
      { numRuns: 300 },
    );
  });
});
