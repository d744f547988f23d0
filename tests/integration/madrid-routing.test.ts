// iMessage routing through the courier (imessage.md §1.4–1.7, §7, §10): fan-out with the §1.6 rewrite, c:255 per
// entry, session-token and sender checks, store-and-forward, typing, nr, de-duplication, certified delivery, and the
// {"c":34} control pushes (ids.md §7.4).
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { toHex, utf8 } from '../../lib/codec/bytes';
import type { PlistDict, PlistValue } from '../../lib/codec/plist';
import { MADRID, MadridWorld, SMS, IDS, sameBytes, tempDir, type IdsUser, type Phone } from './madrid-helpers';

const ALICE = 'mailto:alice@example.com';
const BOB = 'tel:+15551230000';

let pkiDir: { dir: string; remove(): Promise<void> };
beforeAll(async () => {
  pkiDir = await tempDir('cerulean-madrid-pki-');
});
afterAll(() => pkiDir.remove());

let w: MadridWorld;
afterEach(async () => w?.close());

interface Cast {
  alice: IdsUser;
  bob: IdsUser;
  a1: Phone;
  a2: Phone;
  b1: Phone;
  b2: Phone;
  /** Session tokens a1 looked up, by hex push token. */
  sT: Map<string, Uint8Array>;
}

async function world(options = {}): Promise<Cast> {
  w = await MadridWorld.create(pkiDir.dir, options);
  const [alice, bob] = await Promise.all([w.user('alice-profile'), w.user('P:+15551230000')]);
  const [a1, a2, b1, b2] = await Promise.all([w.phone(), w.phone(), w.phone(), w.phone()]);
  await w.register(a1, alice, [ALICE]);
  await w.register(a2, alice, [ALICE]);
  await w.register(b1, bob, [BOB]);
  await w.register(b2, bob, [BOB], { subServices: [] });
  return { alice, bob, a1, a2, b1, b2, sT: await sessionTokens(a1, alice, ALICE, [BOB, ALICE]) };
}

async function sessionTokens(p: Phone, user: IdsUser, self: string, uris: string[]): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const ids of (await p.identities(user, self, uris)).values()) {
    for (const i of ids) out.set(toHex(i['push-token'] as Uint8Array), i['session-token'] as Uint8Array);
  }
  return out;
}

const uuid = () => crypto.getRandomValues(new Uint8Array(16));
const st = (c: Cast, p: Phone) => c.sT.get(toHex(p.token))!;
const isFor = (U: Uint8Array, c = 100) => (r: { dict: PlistDict }) => r.dict['c'] === c && sameBytes(r.dict['U'], U);
const acksByToken = (acks: PlistDict[]) => new Map(acks.map((a) => [toHex(a['t'] as Uint8Array), a['s']]));

function message(c: Cast, U: Uint8Array, dtl: PlistDict[], extra: PlistDict = {}): PlistDict {
  return { c: 100, fcn: 1, v: 8, i: 4242, U, sP: ALICE, E: 'pair', ua: '[macOS,14.2,23C64,MacBookPro18,3]', dtl, ...extra };
}

describe('fan-out', () => {
  test('every destination gets its own rewritten notification; the sender one c:255 per entry', async () => {
    const c = await world();
    const U = uuid();
    const P = [1, 2, 3].map((n) => new Uint8Array(64).fill(0xa0 + n));
    c.a1.send(
      message(c, U, [
        { tP: BOB, t: c.b1.token, sT: st(c, c.b1), D: true, P: P[0]! },
        { tP: BOB, t: c.b2.token, sT: st(c, c.b2), D: true, P: P[1]!, E: 'pair-ec' },
        { tP: ALICE, t: c.a2.token, sT: st(c, c.a2), D: false, P: P[2]! },
      ], { htu: true }),
    );
    const acks = await c.a1.acks(U, 3);
    for (const a of acks) expect(Object.keys(a).sort()).toEqual(['U', 'c', 's', 't']);
    expect(acksByToken(acks)).toEqual(new Map([c.b1, c.b2, c.a2].map((p) => [toHex(p.token), 0])));

    const expected = (tP: string, P: Uint8Array, E: string, D: boolean) => ({ c: 100, v: 8, i: 4242, U, sP: ALICE, ua: '[macOS,14.2,23C64,MacBookPro18,3]', htu: true, tP, t: c.a1.token, P, E, D });
    const KEYS = ['D', 'E', 'P', 'U', 'c', 'e', 'htu', 'i', 'sP', 't', 'tP', 'ua', 'v'];
    for (const [phone, want] of [
      [c.b1, expected(BOB, P[0]!, 'pair', true)],
      [c.b2, expected(BOB, P[1]!, 'pair-ec', true)],
      [c.a2, expected(ALICE, P[2]!, 'pair', false)],
    ] as const) {
      const got = (await phone.next(isFor(U))).dict;
      expect(Object.keys(got).sort()).toEqual(KEYS);
      expect(got).toMatchObject(want);
      expect(got['e']).toBe(BigInt(w.h.clock.now()) * 1_000_000n);
      expect(got['t']).toEqual(c.a1.token);
    }
    expect(await c.a1.none(isFor(U))).toBe(true);
    // Metadata only in the log: never a payload.
    const logged = JSON.stringify(w.log.lines, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    for (const p of P) expect(logged).not.toContain(toHex(p).slice(0, 32));
    expect(w.log.lines.some((l) => l.event === 'madrid.send' && l.fields['U'] === toHex(U))).toBe(true);
  });

  test('the SMS-relay topic routes among devices registered for that sub-service', async () => {
    const c = await world();
    const sms = await sessionTokens(c.a1, c.alice, ALICE, [ALICE, BOB]);
    const U = uuid();
    c.a1.send(
      { c: 143, v: 8, i: 1, U, sP: ALICE, dtl: [{ tP: ALICE, t: c.a2.token, sT: sms.get(toHex(c.a2.token))!, P: new Uint8Array([1]) }, { tP: BOB, t: c.b2.token, sT: sms.get(toHex(c.b2.token))! }] },
      SMS,
    );
    expect(acksByToken(await c.a1.acks(U, 2))).toEqual(new Map([[toHex(c.a2.token), 0], [toHex(c.b2.token), 5032]]));
    const got = await c.a2.next(isFor(U, 143));
    expect(got.topic).toBe(SMS);
  });
});

describe('rejections', () => {
  test('bad, misbound, missing, expired and revoked session tokens are 5032; bad t 5006; missing tP 5008', async () => {
    const c = await world();
    const U = uuid();
    const shortToken = new Uint8Array(31);
    c.a1.send(
      message(c, U, [
        { tP: BOB, t: c.b1.token, sT: new Uint8Array(40), P: new Uint8Array(1) },
        { tP: BOB, t: c.b2.token, sT: st(c, c.b1), P: new Uint8Array(1) }, // minted for another device
        { tP: BOB, t: c.a2.token, sT: st(c, c.a2), P: new Uint8Array(1) }, // a2 is not BOB's
        { tP: ALICE, t: c.a2.token, P: new Uint8Array(1) },
        { tP: BOB, t: shortToken, sT: st(c, c.b1) },
        { t: new Uint8Array(32).fill(5), sT: st(c, c.b1) },
      ]),
    );
    expect(acksByToken(await c.a1.acks(U, 6))).toEqual(
      new Map([
        [toHex(c.b1.token), 5032],
        [toHex(c.b2.token), 5032],
        [toHex(c.a2.token), 5032],
        [toHex(shortToken), 5006],
        [toHex(new Uint8Array(32).fill(5)), 5008],
      ]),
    );
    for (const p of [c.b1, c.b2, c.a2]) expect(await p.none(isFor(U), 100)).toBe(true);

    // A device that deregisters: its still-unexpired session token stops working at once.
    await w.registrations.removeToken(MADRID, c.b2.token);
    const U2 = uuid();
    c.a1.send(message(c, U2, [{ tP: BOB, t: c.b1.token, sT: st(c, c.b1) }, { tP: BOB, t: c.b2.token, sT: st(c, c.b2) }]));
    expect(acksByToken(await c.a1.acks(U2, 2))).toEqual(new Map([[toHex(c.b1.token), 0], [toHex(c.b2.token), 5032]]));

    // Expiry: session-token-expires-seconds later, the token is dead.
    w.h.clock.advance(604_800_000);
    const U3 = uuid();
    c.a1.send(message(c, U3, [{ tP: BOB, t: c.b1.token, sT: st(c, c.b1) }]));
    expect((await c.a1.acks(U3, 1))[0]).toMatchObject({ t: c.b1.token, s: 5032 });
  });

  test('a sender not registered with sP gets one c:255 without t', async () => {
    const c = await world();
    const stranger = await w.phone();
    for (const [from, sP] of [[stranger, ALICE], [c.b1, ALICE]] as const) {
      const U = uuid();
      from.send({ ...message(c, U, [{ tP: BOB, t: c.b2.token, sT: st(c, c.b2) }]), sP });
      const ack = (await from.next(isFor(U, 255))).dict;
      expect(ack).toEqual({ c: 255, U, s: 1006 });
      expect(await c.b2.none(isFor(U), 100)).toBe(true);
    }
    const U = uuid();
    c.a1.send({ c: 100, v: 8, U, sP: ALICE, dtl: 'nope' });
    expect((await c.a1.next(isFor(U, 255))).dict).toEqual({ c: 255, U, s: 5008 });
  });

  test('a payload over the limit is 5031', async () => {
    const c = await world({ maxPayloadBytes: 100 });
    const U = uuid();
    c.a1.send(message(c, U, [
      { tP: BOB, t: c.b1.token, sT: st(c, c.b1), P: new Uint8Array(101) },
      { tP: BOB, t: c.b2.token, sT: st(c, c.b2), P: new Uint8Array(100) },
    ]));
    expect(acksByToken(await c.a1.acks(U, 2))).toEqual(new Map([[toHex(c.b1.token), 5031], [toHex(c.b2.token), 0]]));
  });
});

describe('delivery', () => {
  test('an offline device gets its notification after it reconnects; the sender gets s:0 at once', async () => {
    const c = await world();
    await c.b2.disconnect();
    const U = uuid();
    c.a1.send(message(c, U, [{ tP: BOB, t: c.b2.token, sT: st(c, c.b2), D: true, P: new Uint8Array([7, 7]) }]));
    expect((await c.a1.acks(U, 1))[0]).toMatchObject({ t: c.b2.token, s: 0 });
    expect(w.h.courier.pendingCount(c.b2.token)).toBeGreaterThan(0);
    await c.b2.reconnect();
    const got = (await c.b2.next(isFor(U))).dict;
    expect(got).toMatchObject({ sP: ALICE, tP: BOB, t: c.a1.token, P: new Uint8Array([7, 7]) });
  });

  test('typing (eX:0) reaches online devices only and is never stored', async () => {
    const c = await world();
    await c.b2.disconnect();
    const U = uuid();
    c.a1.send({ c: 100, v: 8, U, sP: ALICE, eX: 0, htu: true, dtl: [{ tP: BOB, t: c.b1.token, sT: st(c, c.b1) }, { tP: BOB, t: c.b2.token, sT: st(c, c.b2) }] });
    expect(acksByToken(await c.a1.acks(U, 2))).toEqual(new Map([[toHex(c.b1.token), 0], [toHex(c.b2.token), 0]]));
    const got = (await c.b1.next(isFor(U))).dict;
    expect(Object.keys(got).sort()).toEqual(['U', 'c', 'e', 'eX', 'htu', 'sP', 't', 'tP', 'v']);
    expect(w.h.courier.pendingCount(c.b2.token)).toBe(0);
    await c.b2.reconnect();
    expect(await c.b2.none(isFor(U))).toBe(true);
  });

  test('nr suppresses the c:255 acks', async () => {
    const c = await world();
    const U = uuid();
    c.a1.send(message(c, U, [{ tP: BOB, t: c.b1.token, sT: st(c, c.b1), P: new Uint8Array(1) }], { nr: true }));
    expect((await c.b1.next(isFor(U))).dict['nr']).toBe(true);
    expect(await c.a1.none(isFor(U, 255))).toBe(true);
  });

  test('a resent envelope is acked again but delivered once; another sender with the same U is not a duplicate', async () => {
    const c = await world();
    const U = uuid();
    const env = message(c, U, [{ tP: BOB, t: c.b1.token, sT: st(c, c.b1), P: new Uint8Array([1]) }]);
    c.a1.send(env);
    c.a1.send(env);
    expect((await c.a1.acks(U, 2)).map((a) => a['s'])).toEqual([0, 0]);
    await c.b1.next(isFor(U));
    expect(await c.b1.none(isFor(U))).toBe(true);
    expect(w.log.lines.filter((l) => l.event === 'madrid.duplicate')).toHaveLength(1);
    expect(w.store.size('madrid.dedup')).toBe(1);

    const a2Tokens = await sessionTokens(c.a2, c.alice, ALICE, [BOB]);
    c.a2.send(message(c, U, [{ tP: BOB, t: c.b1.token, sT: a2Tokens.get(toHex(c.b1.token))!, P: new Uint8Array([2]) }]));
    expect((await c.b1.next(isFor(U))).dict['t']).toEqual(c.a2.token);
  });

  test('certified delivery: a c:109 with gd and the server’s cdr becomes a c:101 to the sending device', async () => {
    const c = await world();
    const U = uuid();
    c.a1.send(message(c, U, [{ tP: BOB, t: c.b1.token, sT: st(c, c.b1), D: true, P: new Uint8Array([1]), cdv: 1 }]));
    const got = (await c.b1.next(isFor(U))).dict;
    expect(got['cdv']).toBe(1);
    const cdr = got['cdr'] as Uint8Array;
    expect(cdr).toBeInstanceOf(Uint8Array);
    const receipt = (over: PlistDict = {}): PlistDict => ({ c: 109, cdr, cdv: 1, U, t: got['t'] as PlistValue, i: 9, ua: '[iPhone OS,17.2,21C62,iPhone14,2]', v: 8, nr: 1, tP: ALICE, sP: BOB, gd: true, ...over });

    c.b1.send(receipt({ cdr: cdr.map((b) => b ^ 1) }));
    const { gd: _gd, ...withoutGd } = receipt();
    c.b1.send(withoutGd);
    expect(await c.a1.none(isFor(U, 101))).toBe(true);

    c.b1.send(receipt());
    const r = (await c.a1.next(isFor(U, 101))).dict;
    expect(r).toEqual({ c: 101, U, sP: BOB, tP: ALICE, t: c.b1.token, e: BigInt(w.h.clock.now()) * 1_000_000n });
    c.b1.send(receipt());
    expect(await c.a1.none(isFor(U, 101))).toBe(true);
  });

  test('c:160 is consumed without an answer', async () => {
    const c = await world();
    c.a1.send({ c: 160, e: 1n });
    await expect.poll(() => w.log.lines.some((l) => l.event === 'madrid.flush-request')).toBe(true);
    expect(await c.a1.none((r) => r.dict['c'] === 160)).toBe(true);
  });
});

describe('control pushes', () => {
  test('a new or removed device sends {"c":34} to the account’s other devices and lookups see it at once', async () => {
    const c = await world();
    const isControl = (n: number) => (r: { topic: string; json?: unknown }) => r.topic === IDS && (r.json as { c?: number })?.c === n;
    // The set-up's own registrations: a2 joining told a1, b2 joining told b1.
    for (const p of [c.a1, c.b1]) await p.next(isControl(34));
    const a3 = await w.phone();
    await w.register(a3, c.alice, [ALICE]);
    for (const p of [c.a1, c.a2]) expect((await p.next(isControl(34))).payload).toEqual(utf8('{"c":34}'));
    expect(await a3.none(isControl(34))).toBe(true);
    expect(await c.b1.none(isControl(34), 50)).toBe(true); // another account
    expect((await c.a1.identities(c.alice, ALICE, [ALICE])).get(ALICE)).toHaveLength(3);

    await w.registrations.removeToken(MADRID, c.a2.token);
    for (const p of [c.a1, a3]) await p.next(isControl(34));
    expect((await c.a1.identities(c.alice, ALICE, [ALICE])).get(ALICE)).toHaveLength(2);

    expect(await w.madrid.control.toAccount(c.alice.userId, MADRID, 32)).toBe(2);
    for (const p of [c.a1, a3]) await p.next(isControl(32));
  });
});
