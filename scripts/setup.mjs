// Brings a fresh machine to what the project needs: npm packages from the lockfile and Debian's chromium
// for the browser tests. Used by `npm test` and `npm start`; safe to run again (it skips what is there).
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd) {
  console.log(`$ ${cmd}`);
  execSync(cmd, { cwd: root, stdio: 'inherit' });
}

export function ensureNodeModules() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
    // `npm install` rather than `npm ci`: with this machine's omit-lockfile-registry-resolved setting the lockfile
    // leaves out other platforms' optional binaries, which `npm ci` refuses; install still pins every version.
    run('npm install --no-audit --no-fund');
  }
}

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function ensureChromium() {
  if (existsSync(chromiumPath)) return;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`${chromiumPath} is missing: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  run('apt-get update -qq');
  run('DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium');
}
