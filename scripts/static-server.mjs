// Serves the static export (out/) the way the PWA needs it: the service worker script uncached and allowed to
// control the whole origin, Next's content-named files cached for good, everything else revalidated, and the
// sandbox's root CA at /sandbox-ca.pem (the app trusts what its own origin serves). Used by `npm start` and by the
// Playwright harness (tests/e2e/harness.ts).
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

export const SANDBOX_CA_PATH = '/sandbox-ca.pem';

const TYPES = {
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

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** A file inside `dir` for a URL path, or null; "/chat" finds chat.html or chat/index.html as Next exports them. */
function resolveFile(dir, urlPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (p.includes('\0')) return null;
  for (const candidate of [p, `${p}.html`, path.join(p, 'index.html')]) {
    const full = path.join(dir, path.normalize(candidate));
    if (!full.startsWith(dir + path.sep)) return null;
    if (existsSync(full) && statSync(full).isFile()) return full;
  }
  return null;
}

function cacheControl(urlPath) {
  return urlPath.startsWith('/_next/static/') ? IMMUTABLE : 'no-cache';
}

/**
 * A request handler for the export in `dir`. `caFile` (optional) is the PEM served at /sandbox-ca.pem; it is read
 * on every request, so a sandbox that reissues its CA is picked up without a restart.
 */
export function staticHandler({ dir, caFile }) {
  const root = path.resolve(dir);
  return (req, res) => {
    const headers = { 'x-content-type-options': 'nosniff' };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD' }).end();
      return;
    }
    const urlPath = (req.url ?? '/').split(/[?#]/)[0] || '/';
    if (urlPath === SANDBOX_CA_PATH) {
      let pem;
      try {
        pem = caFile ? readFileSync(caFile) : undefined;
      } catch {
        pem = undefined;
      }
      if (!pem) {
        res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end('no sandbox CA here\n');
        return;
      }
      res.writeHead(200, { ...headers, 'content-type': 'application/x-pem-file', 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : pem);
      return;
    }
    let file = resolveFile(root, urlPath);
    let status = 200;
    if (!file) {
      status = 404;
      file = resolveFile(root, '/404.html');
      if (!file) {
        res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
        return;
      }
    }
    Object.assign(headers, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': String(statSync(file).size),
      'cache-control': status === 200 ? cacheControl(urlPath) : 'no-cache',
    });
    // The worker must always be fetched fresh (updates) and may control the whole origin.
    if (urlPath === '/sw.js') Object.assign(headers, { 'cache-control': 'no-cache', 'service-worker-allowed': '/' });
    res.writeHead(status, headers);
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  };
}

/** Listens on `host:port` (port 0 = any free port) and resolves once it accepts connections. */
export function startStaticServer({ dir, caFile, host = '127.0.0.1', port = 0 }) {
  const server = http.createServer(staticHandler({ dir, caFile }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const actual = server.address().port;
      const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
      resolve({
        server,
        port: actual,
        url: `http://${shown}:${actual}`,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
