// The HTTP layer other services build on, exercised through the `services` hook: routes on Apple hosts (and the
// host map growing with them), exact paths and prefixes, method checks, size limits, content types, gzip bodies with
// the raw bytes kept, plist bodies, and handler failures that never take the sandbox down.
import { gzipSync } from 'node:zlib';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../lib/codec/bytes';
import { encodeBinaryPlist, encodeXmlPlist } from '../../lib/codec/plist';
import { DecodeError } from '../../lib/errors';
import { HttpError, jsonResponse, plistResponse, readPlistBody } from '../../sandbox/http-service';
import type { Sandbox, SandboxService } from '../../sandbox/sandbox';
import { appleRequest, startTestSandbox, tempDir } from './sandbox-helpers';

const ESS = 'https://identity.ess.apple.com';

const testService: SandboxService = {
  name: 'test-ids',
  async start(ctx) {
    ctx.route({
      host: 'identity.ess.apple.com',
      path: '/test/echo',
      methods: ['POST'],
      maxBodyBytes: 1024,
      contentTypes: ['application/x-apple-plist', 'text/xml'],
      handler: (req) => {
        const dict = readPlistBody(req);
        return jsonResponse({ keys: Object.keys(dict), raw: toHex(req.rawBody.subarray(0, 2)), rawLength: req.rawBody.length, bodyLength: req.body.length });
      },
    });
    ctx.route({
      host: 'identity.ess.apple.com',
      path: '/test/fail',
      methods: ['GET'],
      handler: (req) => {
        if (req.query.get('kind') === 'decode') throw new DecodeError('bad-thing', 'bad input');
        if (req.query.get('kind') === 'http') throw new HttpError(418, 'teapot');
        throw new Error('boom');
      },
    });
    ctx.route({
      host: 'api.push.apple.com',
      path: '/3/device/',
      prefix: true,
      methods: ['POST'],
      handler: (req) => plistResponse({ token: req.pathRest }, { format: 'binary' }),
    });
    return { close: async () => {} };
  },
};

describe('sandbox HTTP service layer', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sb: Sandbox;

  beforeAll(async () => {
    tmp = await tempDir();
    sb = await startTestSandbox(tmp.dir, { services: [testService], admin: false });
  });
  afterAll(async () => {
    await sb?.close();
    await tmp?.remove();
  });

  it('routes by host and exact path; plain and gzipped plist bodies, raw bytes kept', async () => {
    const plist = encodeXmlPlist({ a: 1, b: 'two' });
    const plain = await appleRequest(sb, `${ESS}/test/echo`, { headers: { 'content-type': 'text/xml' }, body: plist });
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.text)).toEqual({ keys: ['a', 'b'], raw: '3c3f', rawLength: plist.length, bodyLength: plist.length });

    const binary = encodeBinaryPlist({ c: true });
    const gz = gzipSync(binary);
    const zipped = await appleRequest(sb, `${ESS}/test/echo`, {
      headers: { 'content-type': 'application/x-apple-plist', 'content-encoding': 'gzip' },
      body: gz,
    });
    expect(zipped.status).toBe(200);
    expect(JSON.parse(zipped.text)).toEqual({ keys: ['c'], raw: '1f8b', rawLength: gz.length, bodyLength: binary.length });

    expect((await appleRequest(sb, `https://profile.ess.apple.com/test/echo`, { headers: { 'content-type': 'text/xml' }, body: plist })).status).toBe(404);
    expect((await appleRequest(sb, `${ESS}/test/echo/`, { headers: { 'content-type': 'text/xml' }, body: plist })).status).toBe(404);
  });

  it('turns bad requests into clean 4xx answers', async () => {
    const get = await appleRequest(sb, `${ESS}/test/echo`);
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect((await appleRequest(sb, `${ESS}/test/echo`, { headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(415);
    expect((await appleRequest(sb, `${ESS}/test/echo`, { headers: { 'content-type': 'text/xml', 'content-encoding': 'br' }, body: 'x' })).status).toBe(415);
    expect((await appleRequest(sb, `${ESS}/test/echo`, { headers: { 'content-type': 'text/xml', 'content-encoding': 'gzip' }, body: 'not gzip' })).status).toBe(400);
    expect((await appleRequest(sb, `${ESS}/test/echo`, { headers: { 'content-type': 'text/xml' }, body: 'not a plist' })).status).toBe(400);
    expect((await appleRequest(sb, `${ESS}/test/echo`, { headers: { 'content-type': 'text/xml' }, body: 'x'.repeat(2000) })).status).toBe(413);
    // A gzip bomb: small on the wire, past the inflation bound.
    const bomb = gzipSync(Buffer.alloc(64 * 1024));
    expect(bomb.length).toBeLessThan(1024);
    expect((await appleRequest(sb, `${ESS}/test/echo`, { headers: { 'content-type': 'text/xml', 'content-encoding': 'gzip' }, body: bomb })).status).toBe(400);
  });

  it('refuses a chunked body over the limit without a Content-Length', async () => {
    const target = sb.resolve('identity.ess.apple.com:443')!;
    const response = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: target.host, port: target.port, servername: 'identity.ess.apple.com', ca: sb.caPem }, () => {
        socket.write('POST /test/echo HTTP/1.1\r\nHost: identity.ess.apple.com\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n');
        for (let i = 0; i < 4; i++) socket.write(`200\r\n${'y'.repeat(0x200)}\r\n`);
        socket.write('0\r\n\r\n');
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('maps handler failures: typed errors to 4xx, anything else to 500, and keeps serving', async () => {
    expect((await appleRequest(sb, `${ESS}/test/fail?kind=decode`)).status).toBe(400);
    const teapot = await appleRequest(sb, `${ESS}/test/fail?kind=http`);
    expect(teapot.status).toBe(418);
    expect(teapot.text.trim()).toBe('teapot');
    const boom = await appleRequest(sb, `${ESS}/test/fail`);
    expect(boom.status).toBe(500);
    expect(boom.text).not.toContain('boom');
    expect((await appleRequest(sb, 'https://init.push.apple.com/bag')).status).toBe(200);
  });

  it('serves prefix routes and adds their hosts to the host map', async () => {
    expect(sb.hostMap.hosts['api.push.apple.com:443']).toBe(`127.0.0.1:${sb.ports.https}`);
    const res = await appleRequest(sb, 'https://api.push.apple.com/3/device/abcdef', { body: '{}' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-apple-plist');
    expect(res.body.subarray(0, 8).toString()).toBe('bplist00');
  });

  it('answers garbage on the wire with 400 and closes', async () => {
    const target = sb.resolve('identity.ess.apple.com:443')!;
    const response = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: target.host, port: target.port, servername: 'identity.ess.apple.com', ca: sb.caPem }, () => {
        socket.write('\x00\x01 not http at all\r\n\r\n');
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
  });
});
