// Checks for settings that arrive from a config file, the environment or code, shared by the bridge and the push
// watcher: each names the setting and what it wanted, and throws the caller's own config error.

export interface ConfigFields {
  fail(name: string, want: string, got: unknown): never;
  int(name: string, value: unknown, fallback: number, min: number, max: number): number;
  bool(name: string, value: unknown, fallback: boolean): boolean;
  /** A non-empty string, or undefined when absent. */
  str(name: string, value: unknown): string | undefined;
  /** Undefined when absent. */
  stringList(name: string, value: unknown): string[] | undefined;
  stringRecord(name: string, value: unknown): Record<string, string>;
  fn<T>(name: string, value: unknown, fallback: T): T;
}

export function configFields(error: (message: string) => Error): ConfigFields {
  const fail = (name: string, want: string, got: unknown): never => {
    throw error(`${name}: expected ${want}, got ${JSON.stringify(got)}`);
  };
  return {
    fail,
    int(name, value, fallback, min, max) {
      if (value === undefined) return fallback;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
        fail(name, `an integer in ${min}…${max}`, value);
      }
      return value as number;
    },
    bool(name, value, fallback) {
      if (value === undefined) return fallback;
      if (typeof value !== 'boolean') fail(name, 'true or false', value);
      return value as boolean;
    },
    str(name, value) {
      if (value === undefined) return undefined;
      if (typeof value !== 'string' || value === '') fail(name, 'a non-empty string', value);
      return value as string;
    },
    stringList(name, value) {
      if (value === undefined) return undefined;
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) fail(name, 'an array of strings', value);
      return value as string[];
    },
    stringRecord(name, value) {
      if (value === undefined) return {};
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(name, 'an object', value);
      for (const v of Object.values(value as object)) if (typeof v !== 'string') fail(name, 'string values', v);
      return value as Record<string, string>;
    },
    fn<T>(name: string, value: unknown, fallback: T): T {
      if (value === undefined) return fallback;
      if (typeof value !== 'function') fail(name, 'a function', typeof value);
      return value as T;
    },
  };
}
