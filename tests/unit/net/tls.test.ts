// connectTls against scripted servers: what the client sends, and how each way of failing surfaces. The full
// handshake against real servers is in tests/integration/net.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { concat, fromHex, toHex, utf8 } from '../../../lib/codec/bytes';
import { EncodeError } from '../../../lib/errors';
import { NetError } from '../../../lib/net/errors';
import { connectTls, type TlsOptions } from '../../../lib/net/tls';
import { issue, type Issued } from './pki';
import { ScriptedStream, type Chunk } from './streams';

let root: Issued;
beforeAll(async () => {
  root = await issue({ subject: 'CN=Root', ca: true });
});

const record = (type: number, body: Uint8Array) => concat(new Uint8Array([type, 3, 3, body.length >> 8, body.length & 0xff]), body);
const handshake = (type: number, body: Uint8Array) =>
  concat(new Uint8Array([type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body);
/** A TLS 1.2 ServerHello (random 11…11) choosing `suite`. */
const serverHello12 = (suite: string, random = '11'.repeat(32)) =>
  record(22, handshake(2, fromHex('0303' + random + '00' + suite + '00' + '0005ff01000100')));

/** A server that answers the ClientHello with `reply`, then optionally ends. */
function server(reply: Chunk[], end = false): ScriptedStream {
  let answered = false;
  return new ScriptedStream((_, s) => {
    if (answered) return;
    answered = true;
    s.feed(...reply);
    if (end) s.end();
  });
}

const options = (o: Partial<TlsOptions> = {}): TlsOptions => ({
  serverName: 'courier.push.apple.com',
  alpn: ['apns-security-v3'],
  trustedRoots: [root.pem],
  timeoutMs: 2000,
  ...o,
});

async function failure(stream: ScriptedStream, o: Partial<TlsOptions> = {}): Promise<NetError> {
  const e = await connectTls(stream, options(o)).then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(NetError);
  expect(stream.isClosed).toBe(true);
  return e as NetError;
}

/** The extensions of a ClientHello record, by type. */
function clientHelloParts(rec: Uint8Array) {
  expect(rec[0]).toBe(22);
  const hello = rec.subarray(5 + 4);
  let off = 2 + 32;
  off += 1 + hello[off]!;
  const suitesLength = (hello[off]! << 8) | hello[off + 1]!;
  const suites = toHex(hello.subarray(off + 2, off + 2 + suitesLength));
  off += 2 + suitesLength;
  off += 1 + hello[off]!;
  const end = off + 2 + ((hello[off]! << 8) | hello[off + 1]!);
  off += 2;
  const extensions = new Map<number, string>();
  while (off < end) {
    const type = (hello[off]! << 8) | hello[off + 1]!;
    const len = (hello[off + 2]! << 8) | hello[off + 3]!;
    extensions.set(type, toHex(hello.subarray(off + 4, off + 4 + len)));
    off += 4 + len;
  }
  return { suites, extensions };
}

describe('connectTls: the ClientHello', () => {
  it('offers AEAD suites only, TLS 1.3 and 1.2, the server name and the ALPN protocols', async () => {
    const stream = server([], true);
    await failure(stream, { alpn: ['apns-pack-v1', 'apns-security-v3'] });
    const { suites, extensions } = clientHelloParts(stream.written[0]!);
    expect(suites).toBe('13011302c02bc02fc02cc030');
    expect(extensions.get(0x0000)).toBe('0019' + '00' + '0016' + toHex(utf8('courier.push.apple.com')));
    expect(extensions.get(0x0010)).toBe('001e' + '0c' + toHex(utf8('apns-pack-v1')) + '10' + toHex(utf8('apns-security-v3')));
    expect(extensions.get(0x002b)).toBe('0403040303');
    expect(extensions.get(0x0033)).toBeDefined();
  });

  it('sends no ALPN extension when no protocol is asked for', async () => {
    const stream = server([], true);
    await failure(stream, { alpn: [] });
    expect(clientHelloParts(stream.written[0]!).extensions.has(0x0010)).toBe(false);
  });
});

describe('connectTls: failures', () => {
  it('reports a server that closes during the handshake', async () => {
    expect((await failure(server([], true))).code).toBe('connection-closed');
  });

  it('reports a fatal alert', async () => {
    expect((await failure(server([fromHex('15030300020228')]))).code).toBe('tls-alert');
  });

  it('refuses a ServerHello with a suite it did not offer, or the downgrade sentinel', async () => {
    expect((await failure(server([serverHello12('009c')]))).code).toBe('tls-protocol-error');
    expect((await failure(server([serverHello12('c02f', '11'.repeat(24) + '444f574e47524401')]))).code).toBe('tls-protocol-error');
  });

  it('refuses a server that is not speaking TLS', async () => {
    expect((await failure(server(['HTTP/1.1 400 Bad Request\r\n\r\n' + 'x'.repeat(30000)]))).code).toBe('tls-protocol-error');
  });

  it('passes on the tunnel error that ended the handshake (the bridge refusing)', async () => {
    const refused = new NetError('bridge-refused', 'the bridge does not allow this destination', { closeCode: 4403 });
    const err = await failure(new ScriptedStream((_, s) => s.end(refused)));
    expect(err).toBe(refused);
  });

  it('times out a silent server and closes the stream', async () => {
    expect((await failure(new ScriptedStream(), { timeoutMs: 50 })).code).toBe('tls-timeout');
  });

  it('refuses an unusable trust store or ALPN name before sending anything', async () => {
    const s1 = new ScriptedStream();
    expect((await failure(s1, { trustedRoots: ['garbage'] })).code).toBe('bad-trust-anchor');
    expect(s1.written).toHaveLength(0);
    const s2 = new ScriptedStream();
    await expect(connectTls(s2, options({ alpn: ['bad name'] }))).rejects.toBeInstanceOf(EncodeError);
    expect(s2.isClosed).toBe(true);
  });
});
