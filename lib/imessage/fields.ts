// Typed access to the keys of iMessage plist dicts. Every model file reads its known keys through a FieldReader
// (which type-checks them and remembers what it read, so the rest becomes `extra`) and writes through a
// DictWriter (which skips absent fields and appends `extra`), so unknown keys survive parse → encode.
import { isDict, setPlistKey, type PlistDict, type PlistValue } from '../codec/plist';
import { DecodeError, EncodeError } from '../errors';

export function asDict(v: PlistValue, what: string): PlistDict {
  if (!isDict(v)) throw new DecodeError('not-a-dict', `${what} is not a dictionary`);
  return v;
}

function hasKey(dict: PlistDict, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(dict, key);
}

/** Integers arrive as number, or as bigint when the plist decoder could not fit them in a safe integer. */
function integerValue(v: PlistValue | undefined): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return undefined;
}

export class FieldReader {
  private readonly read = new Set<string>();

  constructor(
    private readonly source: PlistDict,
    private readonly what: string,
  ) {}

  private take(key: string): PlistValue | undefined {
    this.read.add(key);
    return hasKey(this.source, key) ? this.source[key] : undefined;
  }

  fail(key: string, expected: string, code = 'bad-field'): never {
    throw new DecodeError(code, `${this.what}: key "${key}" is not ${expected}`);
  }

  private required<T>(key: string, value: T | undefined): T {
    if (value === undefined) throw new DecodeError('missing-key', `${this.what}: required key "${key}" is missing`);
    return value;
  }

  string(key: string): string | undefined {
    const v = this.take(key);
    if (v === undefined || typeof v === 'string') return v;
    return this.fail(key, 'a string');
  }

  requiredString(key: string): string {
    return this.required(key, this.string(key));
  }

  /** An integer within [min, max] (both inclusive, within the safe-integer range). */
  int(key: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.take(key);
    if (v === undefined) return undefined;
    const n = integerValue(v);
    if (n === undefined || n < BigInt(min) || n > BigInt(max)) return this.fail(key, `an integer in ${min}…${max}`);
    return Number(n);
  }

  requiredInt(key: string, min?: number, max?: number): number {
    return this.required(key, this.int(key, min, max));
  }

  /** Any integer the plist can carry (nanosecond timestamps exceed 2^53). */
  bigint(key: string): bigint | undefined {
    const v = this.take(key);
    if (v === undefined) return undefined;
    return integerValue(v) ?? this.fail(key, 'an integer');
  }

  requiredBigint(key: string): bigint {
    return this.required(key, this.bigint(key));
  }

  /** A boolean; integer 0/1 is accepted too because [PY] writes flags such as `nr` as integers. */
  bool(key: string): boolean | undefined {
    const v = this.take(key);
    if (v === undefined || typeof v === 'boolean') return v;
    const n = integerValue(v);
    if (n === 0n || n === 1n) return n === 1n;
    return this.fail(key, 'a boolean');
  }

  data(key: string, length?: number, code?: string): Uint8Array | undefined {
    const v = this.take(key);
    if (v === undefined) return undefined;
    if (!(v instanceof Uint8Array)) return this.fail(key, 'data', code);
    if (length !== undefined && v.length !== length) return this.fail(key, `${length} bytes of data`, code);
    return v;
  }

  requiredData(key: string, length?: number, code?: string): Uint8Array {
    return this.required(key, this.data(key, length, code));
  }

  strings(key: string): string[] | undefined {
    const v = this.take(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) return this.fail(key, 'an array of strings');
    return v as string[];
  }

  requiredStrings(key: string): string[] {
    return this.required(key, this.strings(key));
  }

  dict(key: string): PlistDict | undefined {
    const v = this.take(key);
    if (v === undefined || isDict(v)) return v;
    return this.fail(key, 'a dictionary');
  }

  requiredDicts(key: string): PlistDict[] {
    const v = this.take(key);
    if (v === undefined) return this.required<PlistDict[]>(key, undefined);
    if (!Array.isArray(v) || !v.every(isDict)) return this.fail(key, 'an array of dictionaries');
    return v as PlistDict[];
  }

  /** Every key not read so far, in document order. */
  extra(): PlistDict {
    const out: PlistDict = {};
    for (const key of Object.keys(this.source)) {
      if (!this.read.has(key)) setPlistKey(out, key, this.source[key]!);
    }
    return out;
  }
}

/** Builds a dict in a fixed key order; absent (undefined) fields are left out. */
export class DictWriter {
  private readonly out: PlistDict = {};

  set(key: string, value: PlistValue | undefined): this {
    if (value !== undefined) setPlistKey(this.out, key, value);
    return this;
  }

  /** Appends the unknown keys a parser kept; one that shadows a modelled key is a caller bug. */
  finish(extra: PlistDict | undefined): PlistDict {
    if (extra) {
      for (const key of Object.keys(extra)) {
        if (hasKey(this.out, key)) throw new EncodeError('extra-key-conflict', `extra key "${key}" duplicates a modelled field`);
        setPlistKey(this.out, key, extra[key]!);
      }
    }
    return this.out;
  }
}
