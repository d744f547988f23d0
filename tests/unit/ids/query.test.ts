import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromBase64, fromHex, toHex } from '../../../lib/codec/bytes';
import { gunzip, gzip } from '../../../lib/codec/gzip';
import { decodeBinaryPlist, encodeBinaryPlist, encodeXmlPlist, parsePlist, type PlistDict } from '../../../lib/codec/plist';
import { DecodeError, EncodeError } from '../../../lib/errors';
import { parseNonce, verifyIdsSignature } from '../../../lib/crypto/request-signing';
import { IdsError } from '../../../lib/ids/errors';
import {
  buildQuery,
  EMPTY_RESULT_TTL_MS,
  lookup,
  LookupCache,
  parseQueryResponse,
  replyCorrelationId,
  type LookupIdentity,
  type LookupOptions,
  type QueryResult,
} from '../../../lib/ids/query';
import { rejection, rsaKeys } from './helpers';

// A c:97 reply as the sandbox sends it: U = 00…0f, s 0, hs 200, b = gzip(binary plist) with one registered handle
// (one device) and one unregistered handle.
const REPLY_HEX =
  '62706c6973743030d50102030405060708090a516351555173526873516210614f1010000102030405060708090a0b0c0d0e0f100010c84f11017d' +
  '1f8b0800000000000203858fbd4e1b4110c7670c213684b0388640cc97942a8a16d9912264cb05090d9d856581048a4e7be7c1acbcbe3d76f690dd' +
  '848f07a0a74baa147990d4719157e00178812887231151e4d78cfeffdf68a40913a3d9572a23cc4d4ceeb3573ee503479c1acf02464fa69eae0662b1' +
  'afb4f1b61eda709b06aa9f18da8c6c3f10c293a9bfadbecfa8546bb551be30bd72a83b147bed3571205699e20e391959e7c828af6d2ceffdb126f775' +
  'e6d7b3d9e77362bef8a2b4b0583e4c523e91def628fec4c4fc67394bd99d0759d220d18e58324536eef023efe8d8119ffcf54791d1147bd9515e0542' +
  'f4bc34b6db55a1a1ac6a8a8df9ffb0fb7d4c110af58b22e0dec5e8e5d2f2ab40949334343a927d62565d1a7fe787b247c340cc719a24d679962aeac9' +
  'b3ea0ee6260a1fa7a1bdd36cb57ee6d7be401e66a1042bb006afa1014d684300e77009d77003dfe007dcc21d4ee11b7c875bd8c00f18e029a6788643' +
  'fc8c979091c3fb09ebf00f78f51bb2f86a06e001000000080013001500170019001c001e00200033003500370000000000000201000000000000000b' +
  '000000000000000000000000000001b8';
const REPLY = fromHex(REPLY_HEX);
const REPLY_U = fromHex('000102030405060708090a0b0c0d0e0f');

const TOKEN = new Uint8Array(32).fill(5);
const ID_CERT = fromHex('30820001');
let keys: CryptoKeyPair;

beforeAll(async () => {
  keys = await rsaKeys();
});

const params = () => ({ selfUri: 'mailto:me@example.com', idCert: ID_CERT, authPrivateKey: keys.privateKey, pushToken: TOKEN });

function identity(token: number, refresh = 86_400, expires = 604_800): PlistDict {
  return {
    'push-token': new Uint8Array(32).fill(token),
    'session-token': new Uint8Array([token, 1, 2]),
    'session-token-expires-seconds': expires,
    'session-token-refresh-seconds': refresh,
    'client-data': { 'public-message-identity-key': new Uint8Array([9, 9]) },
  };
}

async function reply(U: Uint8Array, body: PlistDict, extra: PlistDict = {}): Promise<Uint8Array> {
  return encodeBinaryPlist({ c: 97, U, s: 0, hs: 200, b: await gzip(encodeBinaryPlist(body)), ...extra });
}

describe('query request', () => {
  it('is the c:96 binary plist with a signed gzip body', async () => {
    const req = await buildQuery({ ...params(), uris: ['mailto:bob@example.com', 'tel:+15555550199'], signing: { now: () => 1_732_270_636_000 } });
    expect(req.topic).toBe('com.apple.madrid');
    expect(req.U.length).toBe(16);
    const p = decodeBinaryPlist(req.payload) as PlistDict;
    expect(Object.keys(p)).toEqual(['c', 'U', 'u', 'v', 'cT', 'h', 'b']);
    expect(p['c']).toBe(96);
    expect(toHex(p['U'] as Uint8Array)).toBe(toHex(req.U));
    expect(p['u']).toBe('https://query.ess.apple.com/WebObjects/QueryService.woa/wa/query');
    expect(p['v']).toBe(2);
    expect(p['cT']).toBe('application/x-apple-plist');
    const b = p['b'] as Uint8Array;
    expect(toHex(b.subarray(0, 2))).toBe('1f8b');
    expect(parsePlist(await gunzip(b))).toEqual({ uris: ['mailto:bob@example.com', 'tel:+15555550199'] });
    const h = p['h'] as Record<string, string>;
    expect(Object.keys(h).sort()).toEqual(['x-id-cert', 'x-id-nonce', 'x-id-self-uri', 'x-id-sig', 'x-protocol-version', 'x-push-token']);
    expect(h['x-id-self-uri']).toBe('mailto:me@example.com');
    expect(h['x-protocol-version']).toBe('1640');
    expect(h['x-id-cert']).toBe('MIIAAQ==');
    const nonce = fromBase64(h['x-id-nonce']!);
    expect(parseNonce(nonce).timeMs).toBe(1_732_270_636_000);
    const fields = { nonce, bagKey: 'id-query', query: '', body: b, pushToken: fromBase64(h['x-push-token']!) };
    expect(toHex(fields.pushToken)).toBe(toHex(TOKEN));
    expect(await verifyIdsSignature(keys.publicKey, fields, fromBase64(h['x-id-sig']!))).toBe(true);
  });

  it('goes on the sub-service topic with x-id-sub-service, and carries a User-Agent when asked', async () => {
    const req = await buildQuery({ ...params(), uris: ['tel:+1'], subService: 'com.apple.private.alloy.sms', userAgent: 'ua', protocolVersion: '1660', queryUrl: 'https://q.test/q' });
    expect(req.topic).toBe('com.apple.private.alloy.sms');
    const p = decodeBinaryPlist(req.payload) as PlistDict;
    expect(p['u']).toBe('https://q.test/q');
    expect(p['h']).toMatchObject({ 'x-id-sub-service': 'com.apple.private.alloy.sms', 'user-agent': 'ua', 'x-protocol-version': '1660' });
  });

  it('refuses an empty lookup or a bad token', async () => {
    await expect(buildQuery({ ...params(), uris: [] })).rejects.toBeInstanceOf(EncodeError);
    await expect(buildQuery({ ...params(), pushToken: TOKEN.subarray(4), uris: ['tel:+1'] })).rejects.toBeInstanceOf(EncodeError);
  });
});

describe('query response', () => {
  it('parses the fixed reply', async () => {
    expect(toHex(replyCorrelationId(REPLY)!)).toBe(toHex(REPLY_U));
    const r = await parseQueryResponse(REPLY, REPLY_U);
    expect([...r.results.keys()]).toEqual(['mailto:bob@example.com', 'tel:+15555550199']);
    expect(r.results.get('tel:+15555550199')).toEqual({ identities: [] });
    const bob = r.results.get('mailto:bob@example.com')!;
    expect(bob.senderCorrelationIdentifier).toBe('CORR');
    expect(bob.identities).toEqual([
      {
        pushToken: new Uint8Array(32).fill(0x11),
        sessionToken: new Uint8Array(8).fill(0xab),
        sessionTokenExpiresSeconds: 604800,
        sessionTokenRefreshSeconds: 86400,
        clientData: { 'public-message-identity-key': new Uint8Array([1, 2, 3]), 'supports-ack-v1': true },
        publicMessageIdentityKey: new Uint8Array([1, 2, 3]),
        ktLoggableData: new Uint8Array([0x0a, 0x00]),
      },
    ]);
  });

  it('maps tunnel and lookup statuses to typed errors', async () => {
    const U = new Uint8Array(16);
    const err = async (payload: Uint8Array) => (await rejection(parseQueryResponse(payload, U))) as IdsError;
    expect((await err(encodeBinaryPlist({ c: 97, U, s: 5206 }))).code).toBe('response-too-large');
    expect((await err(encodeBinaryPlist({ c: 97, U, s: 5203 }))).status).toBe(5203);
    expect((await err(encodeBinaryPlist({ c: 97, U, hs: 503 }))).httpStatus).toBe(503);
    const dead = await err(await reply(U, { status: 6005 }));
    expect([dead.code, dead.status]).toEqual(['auth-expired', 6005]);
    expect((await err(await reply(U, { status: 5032 }))).code).toBe('ids-status');
  });

  it('accepts a plain body, skips unusable identities and defaults missing TTLs', async () => {
    const U = new Uint8Array(16).fill(1);
    const noTtl = identity(4);
    delete noTtl['session-token-expires-seconds'];
    noTtl['session-token-refresh-seconds'] = -5;
    const noKey = { ...identity(5), 'client-data': { other: 1 } };
    const shortToken = { ...identity(6), 'push-token': new Uint8Array(31) };
    const noSession = { ...identity(7), 'session-token': new Uint8Array(0) };
    const payload = encodeBinaryPlist({ c: 97, U, b: encodeXmlPlist({ status: 0, results: { 'tel:+1': { identities: [identity(3), noTtl, noKey, shortToken, noSession, 'x'] } } }) });
    const r = await parseQueryResponse(payload);
    const ids = r.results.get('tel:+1')!.identities;
    expect(ids.map((i) => i.pushToken[0])).toEqual([3, 4]);
    expect([ids[1]!.sessionTokenRefreshSeconds, ids[1]!.sessionTokenExpiresSeconds]).toEqual([86_400, 604_800]);
  });

  it('keeps result keys that could collide with Object.prototype as plain data', async () => {
    const U = new Uint8Array(16).fill(2);
    const payload = await reply(U, JSON.parse('{"status":0,"results":{"__proto__":{"identities":[]},"constructor":{"identities":[]}}}') as PlistDict);
    const r = await parseQueryResponse(payload, U);
    expect([...r.results.keys()].sort()).toEqual(['__proto__', 'constructor']);
  });

  it('rejects malformed replies with DecodeError', async () => {
    const U = new Uint8Array(16);
    const bad = async (payload: Uint8Array, expected: Uint8Array | undefined = U) => {
      const e = await rejection(parseQueryResponse(payload, expected));
      expect(e).toBeInstanceOf(DecodeError);
    };
    await bad(new Uint8Array([1, 2, 3]));
    await bad(encodeBinaryPlist({ c: 96, U }));
    await bad(encodeBinaryPlist({ c: 97 }));
    await bad(REPLY, U); // another request's U
    await bad(encodeBinaryPlist({ c: 97, U, s: 'x' }));
    await bad(encodeBinaryPlist({ c: 97, U, s: 0 }));
    await bad(encodeBinaryPlist({ c: 97, U, b: new Uint8Array([0x1f, 0x8b, 0, 0]) }));
    await bad(await reply(U, { results: {} }));
    await bad(await reply(U, { status: 0, results: [] }));
    await bad(await reply(U, { status: 0, results: { 'tel:+1': 'x' } }));
    await bad(await reply(U, { status: 0, results: { 'tel:+1': { identities: 'x' } } }));
  });

  it('gives only typed errors for random and mutated replies', async () => {
    const only = async (bytes: Uint8Array) => {
      try {
        await parseQueryResponse(bytes);
      } catch (e) {
        if (!(e instanceof DecodeError || e instanceof IdsError)) throw e;
      }
    };
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), only), { numRuns: 150 });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(REPLY.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (edits) => {
        const m = REPLY.slice();
        for (const [i, b] of edits) m[i] = b;
        await only(m);
      }),
      { numRuns: 250 },
    );
  });
});

describe('LookupCache', () => {
  const result = (refresh: number, expires: number): QueryResult => ({
    identities: [{ sessionTokenRefreshSeconds: refresh, sessionTokenExpiresSeconds: expires } as LookupIdentity],
  });

  it('is fresh until the smallest refresh TTL, usable until the smallest expiry', () => {
    let now = 0;
    const cache = new LookupCache({ now: () => now });
    cache.put('tel:+1', { identities: [...result(100, 1000).identities, ...result(50, 2000).identities] });
    expect(cache.get('tel:+1')?.stale).toBe(false);
    now = 50_000;
    expect(cache.get('tel:+1')?.stale).toBe(true);
    now = 999_999;
    expect(cache.get('tel:+1')?.stale).toBe(true);
    now = 1_000_000;
    expect(cache.get('tel:+1')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps empty answers for an hour and treats mailto: case-insensitively', () => {
    let now = 0;
    const cache = new LookupCache({ now: () => now });
    cache.put('mailto:Bob@Example.com', { identities: [] });
    cache.put('tel:+1', result(10, 10));
    expect(cache.get('mailto:bob@example.COM')?.result).toEqual({ identities: [] });
    expect(cache.get('TEL:+1')).toBeUndefined();
    now = EMPTY_RESULT_TTL_MS - 1;
    expect(cache.get('mailto:bob@example.com')?.stale).toBe(false);
    now = EMPTY_RESULT_TTL_MS;
    expect(cache.get('mailto:bob@example.com')).toBeUndefined();
  });

  it('invalidates one handle, wipes on a new own certificate or token, and bounds its size', () => {
    const cache = new LookupCache({ now: () => 0, maxEntries: 2 });
    cache.bindOwnIdentity(ID_CERT, TOKEN);
    cache.put('tel:+1', result(10, 10));
    cache.put('tel:+2', result(10, 10));
    cache.invalidate('tel:+1');
    expect(cache.get('tel:+1')).toBeUndefined();
    expect(cache.get('tel:+2')).toBeDefined();
    cache.bindOwnIdentity(ID_CERT, TOKEN);
    expect(cache.size).toBe(1);
    cache.bindOwnIdentity(ID_CERT, new Uint8Array(32));
    expect(cache.size).toBe(0);
    cache.put('tel:+1', result(10, 10));
    cache.put('tel:+2', result(10, 10));
    cache.put('tel:+3', result(10, 10));
    expect([cache.get('tel:+1'), cache.get('tel:+2'), cache.get('tel:+3')].map((x) => x !== undefined)).toEqual([false, true, true]);
  });
});

/** A courier + query service stand-in: answers each request from `directory`, recording what was asked. */
function fakeCourier(directory: (uri: string) => PlistDict[] | undefined, options: { maxUris?: number; status?: number; silent?: boolean } = {}) {
  const waiters = new Map<string, (payload: Uint8Array) => void>();
  const asked: string[][] = [];
  const aborted: string[] = [];
  const transport: Pick<LookupOptions, 'send' | 'awaitReply'> = {
    async send(topic, payload) {
      const p = decodeBinaryPlist(payload) as PlistDict;
      const U = p['U'] as Uint8Array;
      const uris = (parsePlist(await gunzip(p['b'] as Uint8Array)) as { uris: string[] }).uris;
      asked.push(uris);
      if (options.silent) return;
      let answer: Uint8Array;
      if (options.maxUris !== undefined && uris.length > options.maxUris) answer = encodeBinaryPlist({ c: 97, U, s: 5206 });
      else if (options.status !== undefined) answer = await reply(U, { status: options.status });
      else {
        const results: PlistDict = {};
        for (const uri of uris) {
          const found = directory(uri);
          if (found) results[uri] = { identities: found };
        }
        answer = await reply(U, { status: 0, results });
      }
      expect(topic).toBe('com.apple.madrid');
      waiters.get(toHex(U))?.(answer);
    },
    awaitReply(U, signal) {
      return new Promise((resolve, reject) => {
        waiters.set(toHex(U), resolve);
        signal.addEventListener('abort', () => {
          aborted.push(toHex(U));
          waiters.delete(toHex(U));
          reject(new Error('aborted'));
        });
      });
    },
  };
  return { transport, asked, aborted };
}

const handles = (n: number) => Array.from({ length: n }, (_, i) => `tel:+1555000${String(i).padStart(4, '0')}`);

// Batches go out concurrently (each awaits its own signature and send), so they may be asked in any order.
const batchSizes = (asked: string[][]) => asked.map((a) => a.length).sort((a, b) => b - a);

describe('lookup', () => {
  it('asks in batches of at most 18 and maps every handle', async () => {
    const courier = fakeCourier((uri) => (uri.endsWith('7') ? [identity(7)] : []));
    const list = handles(40);
    const results = await lookup(list, { ...params(), ...courier.transport });
    expect(batchSizes(courier.asked)).toEqual([18, 18, 4]);
    expect(courier.asked.flat().sort()).toEqual([...list].sort());
    expect([...results.keys()]).toEqual(list);
    expect(results.get('tel:+15550000007')!.identities.map((i) => i.pushToken[0])).toEqual([7]);
    expect(results.get('tel:+15550000008')!.identities).toEqual([]);
    // Every waiter is released once its request is done.
    expect(courier.aborted).toHaveLength(3);
    const small = fakeCourier(() => []);
    await lookup(handles(7), { ...params(), ...small.transport, batchSize: 3 });
    expect(batchSizes(small.asked)).toEqual([3, 3, 1]);
    const capped = fakeCourier(() => []);
    await lookup(handles(20), { ...params(), ...capped.transport, batchSize: 50 });
    expect(batchSizes(capped.asked)).toEqual([18, 2]);
  });

  it('splits a batch the server finds too large (5206)', async () => {
    const courier = fakeCourier(() => [identity(1)], { maxUris: 4 });
    const results = await lookup(handles(12), { ...params(), ...courier.transport });
    expect(courier.asked.map((a) => a.length)).toEqual([12, 6, 6, 3, 3, 3, 3]);
    expect(results.size).toBe(12);
    const single = fakeCourier(() => [], { maxUris: 0 });
    const e = (await rejection(lookup(['tel:+1'], { ...params(), ...single.transport }))) as IdsError;
    expect(e.code).toBe('response-too-large');
  });

  it('times out and releases the waiter', async () => {
    const courier = fakeCourier(() => [], { silent: true });
    const e = (await rejection(lookup(['tel:+1'], { ...params(), ...courier.transport, timeoutMs: 30 }))) as IdsError;
    expect(e).toBeInstanceOf(IdsError);
    expect(e.code).toBe('lookup-timeout');
    expect(courier.aborted).toHaveLength(1);
  });

  it('fails when a queried handle is missing from the answer', async () => {
    const courier = fakeCourier((uri) => (uri === 'tel:+1' ? [] : undefined));
    expect(await rejection(lookup(['tel:+1', 'tel:+2'], { ...params(), ...courier.transport }))).toBeInstanceOf(DecodeError);
  });

  it('uses the cache: fresh entries skip the network, duplicates are asked once', async () => {
    let now = 0;
    const cache = new LookupCache({ now: () => now });
    const courier = fakeCourier(() => [identity(1, 100, 1000)]);
    const o = { ...params(), ...courier.transport, cache };
    await lookup(['mailto:a@b.c', 'mailto:A@B.C', 'tel:+1'], o);
    expect(courier.asked).toEqual([['mailto:a@b.c', 'tel:+1']]);
    const again = await lookup(['mailto:a@b.c', 'tel:+1'], o);
    expect(courier.asked).toHaveLength(1);
    expect(again.get('tel:+1')!.identities).toHaveLength(1);
    await lookup(['tel:+1'], { ...o, forceRefresh: true });
    expect(courier.asked).toHaveLength(2);
    now = 100_000;
    await lookup(['tel:+1'], o);
    expect(courier.asked).toHaveLength(3);
  });

  it('falls back to stale entries when a refresh fails, but not on 6005 or for unknown handles', async () => {
    let now = 0;
    const cache = new LookupCache({ now: () => now });
    await lookup(['tel:+1'], { ...params(), ...fakeCourier(() => [identity(1, 100, 1000)]).transport, cache });
    now = 200_000;
    const down = fakeCourier(() => [], { silent: true });
    const stale = await lookup(['tel:+1'], { ...params(), ...down.transport, cache, timeoutMs: 20 });
    expect(stale.get('tel:+1')!.identities[0]!.pushToken[0]).toBe(1);
    await expect(lookup(['tel:+1', 'tel:+2'], { ...params(), ...down.transport, cache, timeoutMs: 20 })).rejects.toBeInstanceOf(IdsError);
    const dead = (await rejection(lookup(['tel:+1'], { ...params(), ...fakeCourier(() => [], { status: 6005 }).transport, cache }))) as IdsError;
    expect(dead.code).toBe('auth-expired');
  });

  it('forgets everything when its own certificate changes', async () => {
    const cache = new LookupCache();
    const courier = fakeCourier(() => []);
    await lookup(['tel:+1'], { ...params(), ...courier.transport, cache });
    await lookup(['tel:+1'], { ...params(), ...courier.transport, cache });
    expect(courier.asked).toHaveLength(1);
    await lookup(['tel:+1'], { ...params(), idCert: fromHex('3082000200'), ...courier.transport, cache });
    expect(courier.asked).toHaveLength(2);
  });

  it('passes a send failure through', async () => {
    const failing: Pick<LookupOptions, 'send' | 'awaitReply'> = {
      send: async () => {
        throw new Error('courier down');
      },
      awaitReply: (_U, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    };
    const e = await rejection(lookup(['tel:+1'], { ...params(), ...failing }));
    expect((e as Error).message).toBe('courier down');
  });
});
