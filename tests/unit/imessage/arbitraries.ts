// Shared fast-check generators and assertions for the iMessage model tests.
import fc from 'fast-check';
import { PlistReal, type PlistDict, type PlistValue } from '../../../lib/codec/plist';
import { DecodeError } from '../../../lib/errors';

export const RUNS = { numRuns: 200 };

/** Any plist value, small and shallow. */
export const anyPlist: fc.Arbitrary<PlistValue> = fc.letrec<{ value: PlistValue; leaf: PlistValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    tie('leaf'),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie('value'), { maxKeys: 3, noNullPrototype: true }),
  ),
  leaf: fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.integer(),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }),
    fc.boolean(),
    fc.uint8Array({ maxLength: 40 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constant(new PlistReal(1)),
    fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }),
  ),
})).value;

/** Values likely to pass some checks and fail others: right-sized data, small ints, URIs, UUID strings. */
export const nearMiss: fc.Arbitrary<PlistValue> = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc.uint8Array({ minLength: 32, maxLength: 32 }),
  fc.integer({ min: -2, max: 3000 }),
  fc.constantFrom('pair', 'pair-ec', 'mailto:a@x.com', 'tel:+15551230000', 'E4D7C2A2-8B9C-4E57-9C3E-0F1A2B3C4D5E', 'n', 'p', 'v', '8', '1', 'p:0/E4D7C2A2-8B9C-4E57-9C3E-0F1A2B3C4D5E'),
  fc.boolean(),
  fc.array(fc.constantFrom('a@x.com', '+1555', 'mailto:a@x.com'), { maxLength: 3 }),
  anyPlist,
);

/** Dicts drawing keys mostly from `keys` (plus strays) with near-miss values; `nested` fills array-of-dict keys. */
export function dictOver(keys: readonly string[], nested?: fc.Arbitrary<PlistDict>): fc.Arbitrary<PlistDict> {
  const value = nested ? fc.oneof(nearMiss, fc.array(nested, { maxLength: 3 })) : nearMiss;
  return fc.dictionary(fc.constantFrom(...keys, 'zz', 'other'), value, { maxKeys: keys.length + 2, noNullPrototype: true });
}

/** Runs `fn`; anything thrown must be a DecodeError. */
export function onlyDecodeError<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DecodeError) return undefined;
    throw e;
  }
}

export async function onlyDecodeErrorAsync<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DecodeError) return undefined;
    throw e;
  }
}

/** Flips a few bytes of a valid input. */
export function mutated(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }).map((flips) => {
    const out = bytes.slice();
    for (const [i, x] of flips) out[i]! ^= x;
    return out;
  });
}

export function expectDecodeError(fn: () => unknown, code?: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (!(thrown instanceof DecodeError)) throw new Error(`expected a DecodeError, got ${String(thrown)}`);
  if (code !== undefined && thrown.code !== code) throw new Error(`expected code ${code}, got ${thrown.code}`);
}

/** A valid dict with a few keys replaced by near-miss values, a few deleted and a stray one added. */
export function patched(base: PlistDict): fc.Arbitrary<PlistDict> {
  const keys = Object.keys(base);
  return fc
    .tuple(
      fc.dictionary(fc.constantFrom(...keys, 'zz'), nearMiss, { maxKeys: 2, noNullPrototype: true }),
      fc.subarray(keys, { maxLength: 2 }),
    )
    .map(([overrides, deleted]) => {
      const out: PlistDict = { ...base, ...overrides };
      for (const k of deleted) delete out[k];
      return out;
    });
}
