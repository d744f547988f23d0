// `npm start`: the whole local system on this machine: the sandbox (Apple's services, local), the byte bridge
// (with the sandbox's host map) and the PWA (static export) on loopback. Prints what to open.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ensureNodeModules, root } from './setup.mjs';

ensureNodeModules();
const outDir = path.join(root, 'out');
if (!existsSync(path.join(outDir, 'index.html')) || process.env.CERULEAN_REBUILD === '1') {
  const r = spawnSync('npx', ['next', 'build'], { cwd: root, stdio: 'inherit', env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

// Resolves a URL path inside out/ only; "/chat" maps to chat.html as Next's static export names it.
function resolve(urlPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath.split('?')[0] ?? '/');
  } catch {
    return null;
  }
  const candidates = [p, `${p}.html`, path.join(p, 'index.html')];
  for (const c of candidates) {
    const full = path.join(outDir, path.normalize(c));
    if (!full.startsWith(outDir + path.sep) && full !== outDir) return null;
    if (existsSync(full) && statSync(full).isFile()) return full;
  }
  return null;
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

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
server = http.createServer((req, res) => {
  const file = resolve(req.url ?? '/') ?? path.join(outDir, '404.html');
  const status = file.endsWith('404.html') && !(req.url ?? '').startsWith('/404') ? 404 : 200;
  res.writeHead(status, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(res);
});
server.listen(port, host, () => {
  console.log(
    [
      '',
      'Cerulean is running.',
      `  PWA:            http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/   <- open this`,
      `  bridge:         ws://127.0.0.1:${bridgePort}/tunnel/<host>:<port>`,
      `  sandbox admin:  ${hostMap.admin ?? '(disabled)'}   (test accounts, 2FA codes, SMS, relay codes)`,
      `  sandbox CA:     ${hostMap.caFile}`,
      `  host map:       ${hostMapFile}`,
      '(Ctrl-C to stop)',
    ].join('\n'),
  );
});

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
