// `npm start`: the whole local system on this machine. Today that is the PWA (static export) served on
// loopback; the sandbox and the bridge join here as they land. Prints what to open.
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
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

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const server = http.createServer((req, res) => {
  const file = resolve(req.url ?? '/') ?? path.join(outDir, '404.html');
  const status = file.endsWith('404.html') && !(req.url ?? '').startsWith('/404') ? 404 : 200;
  res.writeHead(status, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(res);
});
server.listen(port, host, () => {
  console.log(`\nCerulean is running.\n  PWA: http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/\n(Ctrl-C to stop)`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
