// Builds the service worker after `next build`: bundles app/sw/service-worker.ts into out/sw.js (a classic worker
// script, which every browser registers), then writes the precache list of the static export into it with
// workbox-build: the shell's HTML, JS, CSS, icons and manifest, each with a revision so updates replace them.
import { build } from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { injectManifest } from 'workbox-build';
import { root } from './setup.mjs';

const outDir = path.join(root, 'out');
const swFile = path.join(outDir, 'sw.js');

if (!existsSync(path.join(outDir, 'index.html'))) {
  console.error('out/index.html is missing: run `next build` first');
  process.exit(1);
}

// Next's legacy polyfills (`<script nomodule>`) are never fetched by the browsers that run service workers.
const noModuleScripts = [...readFileSync(path.join(outDir, 'index.html'), 'utf8').matchAll(/<script\b[^>]*>/gi)]
  .map((m) => m[0])
  .filter((tag) => /\snomodule\b/i.test(tag))
  .flatMap((tag) => tag.match(/\ssrc="\/([^"]+)"/i)?.[1] ?? []);

await build({
  entryPoints: [path.join(root, 'app', 'sw', 'service-worker.ts')],
  outfile: swFile,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  // Workbox strips its development logging when it sees production.
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

const { count, size, warnings } = await injectManifest({
  swSrc: swFile,
  swDest: swFile,
  globDirectory: outDir,
  globPatterns: ['**/*.{html,js,css,png,svg,ico,webmanifest,woff2}'],
  // The worker itself is left out by workbox-build; 404 pages are never shown (navigations get the shell).
  globIgnores: ['404.html', '_not-found.html', '_not-found/**', ...noModuleScripts],
  // Next names everything under _next/static by content or build id, so the URL is the revision.
  dontCacheBustURLsMatching: /^_next\/static\//,
  // lib/ (protocol, crypto) makes for a few large chunks; the shell must be complete to work offline.
  maximumFileSizeToCacheInBytes: 8 * 1024 * 1024,
});
for (const w of warnings) console.warn(`build-sw: ${w}`);
console.log(`out/sw.js: precaches ${count} files, ${(size / 1024).toFixed(1)} KiB`);
