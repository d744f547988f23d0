// Files that hold secrets (the storage key, the VAPID private key): created once with mode 0600 in a 0700 folder,
// and refused at start-up when someone has made them readable by others, as ssh does with its keys.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WatcherConfigError } from './errors';

/** The file's bytes, or undefined when it does not exist. Throws when it is readable by group or others. */
export function readPrivateFile(file: string): Buffer | undefined {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WatcherConfigError('bad-secret-file', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if ((mode & 0o077) !== 0) {
    throw new WatcherConfigError('bad-secret-file', `${file} is accessible to other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return readFileSync(file);
}

/** Writes a new secret file (never overwriting one: two instances starting at once must not swap keys). */
export function createPrivateFile(file: string, data: Uint8Array | string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, data, { mode: 0o600, flag: 'wx' });
}

/** Reads the file, or creates it with `make()` first; when another process created it meanwhile, reads theirs. */
export function readOrCreatePrivateFile(file: string, make: () => Uint8Array | string): Buffer {
  const existing = readPrivateFile(file);
  if (existing !== undefined) return existing;
  try {
    createPrivateFile(file, make());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new WatcherConfigError('bad-secret-file', `cannot create ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  return readPrivateFile(file)!;
}
