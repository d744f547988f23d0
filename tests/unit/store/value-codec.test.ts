// The file store's JSON form of stored values: fixed encodings, tags that cannot collide with stored objects,
// round trips, and damaged input → StoreError('corrupt') only.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../../lib/store/errors';
import { toStorable } from '../../../lib/store/storable';
import { decodeValue, encodeValue, keysIn, storedKeysIn, type Json } from '../../../lib/store/value-codec';

const noKeys = (): never => {
  throw new Error('no keys expected');
};

describe('value codec', () => {
  it('encodes to fixed JSON', () => {
    const value = { a: new Uint8Array([0, 1, 2, 0xff]), list: [1, 'x', null, true], $dollar: { b: new Uint8Array(0) }, skip: undefined };
    expect(JSON.stringify(encodeValue(value, noKeys))).toBe(
      '{"$o":{"a":{"$b":"AAEC/w=="},"list":[1,"x",null,true],"$dollar":{"b":{"$b":""}}}}',
    );
    expect(decodeValue(JSON.parse('{"$o":{"a":{"$b":"AAEC/w=="},"$dollar":{"b":{"$b":""}}}}'), noKeys)).toEqual({
      a: new Uint8Array([0, 1, 2, 0xff]),
      $dollar: { b: new Uint8Array(0) },
    });
  });

  it('puts keys through the given forms and finds them again', async () => {
    const generated = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const pair = { privateKey: generated.privateKey, publicKey: generated.publicKey };
    const value = { pair, nested: [{ k: pair.publicKey }], $k: 'not a key' };
    expect(keysIn(value)).toEqual([pair.privateKey, pair.publicKey, pair.publicKey]);
    const forms = new Map<CryptoKey, Json>([
      [pair.privateKey, { id: 'priv' }],
      [pair.publicKey, { id: 'pub' }],
    ]);
    const json = JSON.parse(JSON.stringify(encodeValue(value, (k) => forms.get(k)!))) as Json;
    expect(JSON.stringify(json)).toBe(
      '{"$o":{"pair":{"privateKey":{"$k":{"id":"priv"}},"publicKey":{"$k":{"id":"pub"}}},"nested":[{"k":{"$k":{"id":"pub"}}}],"$k":"not a key"}}',
    );
    const stored = storedKeysIn(json);
    expect(stored).toEqual([{ id: 'priv' }, { id: 'pub' }, { id: 'pub' }]);
    const back = decodeValue(json, (form) => ((form as { id: string }).id === 'priv' ? pair.privateKey : pair.publicKey));
    expect(back).toEqual(value);
  });

  it('stores -0 as 0, which JSON can carry', () => {
    expect(Object.is(toStorable(-0, 'v'), 0)).toBe(true);
    expect(decodeValue(JSON.parse(JSON.stringify(encodeValue(toStorable([-0], 'v'), noKeys))), noKeys)).toEqual([0]);
  });

  it('round-trips any storable value', () => {
    const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string(), fc.uint8Array({ maxLength: 16 }));
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 })),
    }));
    fc.assert(
      fc.property(value, (v) => {
        const canonical = toStorable(v, 'v');
        expect(decodeValue(JSON.parse(JSON.stringify(encodeValue(canonical, noKeys))), noKeys)).toEqual(canonical);
      }),
      { numRuns: 200 },
    );
  });

  it('answers damaged JSON with StoreError only', () => {
    for (const bad of [{ $b: 5 }, { $b: '***' }, { $x: 1 }, { $o: 3 }, { a: { $q: [] } }, Number.POSITIVE_INFINITY]) {
      expect(() => decodeValue(bad, noKeys)).toThrow(StoreError);
    }
    fc.assert(
      fc.property(fc.jsonValue(), (j) => {
        try {
          decodeValue(j, () => {
            throw new StoreError('corrupt', 'no keys here');
          });
        } catch (e) {
          expect(e).toBeInstanceOf(StoreError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what JSON cannot carry', () => {
    expect(() => encodeValue(Number.NaN, noKeys)).toThrow(StoreError);
    expect(() => encodeValue(() => 1, noKeys)).toThrow(StoreError);
    expect(() => toStorable(new Map(), 'v')).toThrow(StoreError);
    expect(() => toStorable(new Int16Array(2), 'v')).toThrow(StoreError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => toStorable(cyclic, 'v')).toThrow(StoreError);
  });
});
