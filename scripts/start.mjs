// `npm start`: the whole local system on this machine: the sandbox (Apple's services, local), the byte bridge
// (with the sandbox's host map), the push watcher, and the PWA (static export) on loopback. Prints what to open.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ensureNodeModules, root } from './setup.mjs';
import { startStaticServer } from './static-server.mjs';

ensureNodeModules();
const outDir = path.join(root, 'out');
const needExport = process.env.CERULEAN_REBUILD === '1' || !existsSync(path.join(outDir, 'index.html'));
// The static export, then the service worker over it (it precaches the export's files).
const buildSteps = [
  ...(needExport ? [['npx', ['next', 'build']]] : []),
  ...(needExport || !existsSync(path.join(outDir, 'sw.js')) ? [['node', [path.join('scripts', 'build-sw.mjs')]]] : []),
];
for (const [cmd, args] of buildSteps) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const dataDir = path.resolve(root, process.env.CERULEAN_SANDBOX_DATA ?? '.sandbox-data');
const hostMapFile = path.join(dataDir, 'host-map.json');
const children = [];
let shuttingDown = false;
let server;

function child(name, args, env = {}) {
  const p = spawn(tsx, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  p.stdout.on('data', () => {}); // the banner is summarised below; logs go to stderr
  p.on('exit', (code, signal) => {
    if (!shuttingDown) {
      console.error(`${name} exited (${signal ?? code}); stopping`);
      shutdown(1);
    }
  });
  children.push(p);
  return p;
}

async function waitFor(what, check, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// The sandbox rewrites host-map.json on every start; the bridge reads it once, so it starts after.
const started = Date.now();
child('sandbox', ['sandbox/main.ts', '--data-dir', dataDir]);
await waitFor('the sandbox', () => existsSync(hostMapFile) && statSync(hostMapFile).mtimeMs >= started - 1000);
const bridgePort = Number(process.env.CERULEAN_BRIDGE_PORT ?? 8787);
child('bridge', ['bridge/main.ts'], { CERULEAN_BRIDGE_HOSTMAP: hostMapFile, CERULEAN_BRIDGE_PORT: String(bridgePort) });
await waitFor('the bridge', () =>
  fetch(`http://127.0.0.1:${bridgePort}/healthz`).then((r) => r.ok, () => false),
);
const hostMap = JSON.parse(readFileSync(hostMapFile, 'utf8'));
// The push watcher (issue #6): watches the courier for enrolled devices while their app is closed.
const watcherPort = Number(process.env.CERULEAN_WATCHER_PORT ?? 8790);
child('watcher', ['bridge/watcher/main.ts'], {
  CERULEAN_WATCHER_PORT: String(watcherPort),
  CERULEAN_WATCHER_DATA_DIR: path.resolve(root, process.env.CERULEAN_WATCHER_DATA ?? '.watcher-data'),
  CERULEAN_WATCHER_HOSTMAP: hostMapFile,
  CERULEAN_WATCHER_CA_FILE: hostMap.caFile,
});
await waitFor('the push watcher', () => fetch(`http://127.0.0.1:${watcherPort}/healthz`).then((r) => r.ok, () => false));

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
try {
  server = await startStaticServer({ dir: outDir, caFile: hostMap.caFile, host, port });
} catch (e) {
  console.error(`cannot serve the PWA on ${host}:${port}: ${e.message}`);
  shutdown(1);
}
if (server) {
  console.log(
    [
      '',
      'Cerulean is running.',
      `  PWA:            ${server.url}/   <- open this`,
      `  bridge:         ws://127.0.0.1:${bridgePort}/tunnel/<host>:<port>`,
      `  push watcher:   http://127.0.0.1:${watcherPort}/`,
      `  sandbox admin:  ${hostMap.admin ?? '(disabled)'}   (test accounts, 2FA codes, SMS, relay codes)`,
      `  sandbox CA:     ${hostMap.caFile}   (served to the app as ${server.url}/sandbox-ca.pem)`,
      `  host map:       ${hostMapFile}`,
      '(Ctrl-C to stop)',
    ].join('\n'),
  );
}

function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  server?.close();
  for (const c of children) c.kill('SIGTERM');
  Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r))))).then(() =>
    process.exit(code),
  );
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => shutdown(0));
