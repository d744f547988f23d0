// The PWA is installable and opens offline: the built manifest and icons are what Chromium asks for, the DevTools
// protocol reports no installability errors once the service worker controls the page, and with the network gone a
// reload still renders the app shell from the precache.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { crc32, inflateSync } from 'node:zlib';
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUT_DIR, startHarness, type E2eHarness } from './harness';

interface ManifestIcon {
  src: string;
  sizes: string;
  type?: string;
  purpose?: string;
}

/**
 * The shell's first screen in a fresh browser: onboarding (its first step shows the bridge and service). A build
 * from before the onboarding screens existed has only its `main` element to look for.
 */
const SHELL = builtJs().includes('onb-continue') ? '[data-testid="onb-continue"]' : 'main';

function builtJs(): string {
  const dir = path.join(OUT_DIR, '_next', 'static', 'chunks');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
}

const manifest = () => JSON.parse(readFileSync(path.join(OUT_DIR, 'manifest.webmanifest'), 'utf8')) as Record<string, unknown>;

/** Waits until the service worker has installed (precached the shell), activated and taken over the page. */
async function waitForController(page: Page): Promise<string> {
  await page.waitForFunction(() => navigator.serviceWorker.controller?.state === 'activated', undefined, { timeout: 60_000 });
  return page.evaluate(() => navigator.serviceWorker.controller!.scriptURL);
}

describe('installable and offline PWA', () => {
  let h: E2eHarness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('ships a manifest with name, start URL, standalone display and PNG icons that decode at 192 and 512', async () => {
    const m = manifest();
    expect(m.name).toBe('Cerulean');
    expect(m.short_name).toBe('Cerulean');
    expect(m.start_url).toBe('/');
    expect(m.display).toBe('standalone');
    const icons = m.icons as ManifestIcon[];
    for (const size of [192, 512]) {
      expect(icons.some((i) => i.sizes === `${size}x${size}` && i.type === 'image/png' && (i.purpose ?? 'any').includes('any'))).toBe(true);
    }
    expect(icons.some((i) => i.sizes === '512x512' && i.purpose === 'maskable')).toBe(true);

    for (const icon of icons) {
      const [w, h] = icon.sizes.split('x').map(Number);
      const png = decodePng(readFileSync(path.join(OUT_DIR, icon.src)));
      expect({ src: icon.src, width: png.width, height: png.height }).toEqual({ src: icon.src, width: w, height: h });
      // A maskable icon is full bleed: its corners are opaque (the platform cuts the shape).
      if (icon.purpose === 'maskable') expect(png.pixel(0, 0)[3]).toBe(255);
    }

    // Served with the manifest type, and decoded by the browser itself at the declared sizes.
    const page = await h.newPage();
    const served = await page.evaluate(async (srcs) => {
      const res = await fetch('/manifest.webmanifest');
      const sizes = [];
      for (const src of srcs) {
        const bitmap = await createImageBitmap(await (await fetch(src)).blob());
        sizes.push(`${bitmap.width}x${bitmap.height}`);
      }
      return { type: res.headers.get('content-type'), sizes };
    }, icons.map((i) => i.src));
    expect(served.type).toBe('application/manifest+json');
    expect(served.sizes).toEqual(icons.map((i) => i.sizes));
    await page.context().close();
  });

  it('meets Chromium’s installability criteria once the service worker controls the page', async () => {
    // A profile on disk: Chromium never installs from incognito, which plain Playwright contexts are.
    const page = await h.newPage(await h.persistentContext());
    expect(await waitForController(page)).toBe(`${h.appUrl}/sw.js`);
    const cdp = await page.context().newCDPSession(page);
    const app = (await cdp.send('Page.getAppManifest')) as { url: string; errors: unknown[] };
    expect(app.url).toBe(`${h.appUrl}/manifest.webmanifest`);
    expect(app.errors).toEqual([]);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    expect(installabilityErrors).toEqual([]);
    await page.context().close();
  });

  it('opens offline from the precache and shows the app shell', async () => {
    const context = await h.newContext();
    const page = await h.newPage(context);
    await waitForController(page);
    await expect.poll(() => page.locator(SHELL).first().isVisible(), { timeout: 30_000 }).toBe(true);
    await h.screenshot(page, 'onboarding');
    const caPem = () => page.evaluate(() => fetch('/sandbox-ca.pem').then((r) => (r.ok ? r.text() : `HTTP ${r.status}`), (e: Error) => e.message));
    const ca = await caPem();
    expect(ca).toMatch(/^-----BEGIN CERTIFICATE-----/);

    await context.setOffline(true);
    // The network really is gone for the page (a path the worker does not answer goes to the network)…
    expect(await page.evaluate(() => fetch('/offline-probe').then(() => 'online', () => 'offline'))).toBe('offline');
    // …yet a reload comes from the service worker's precache…
    const reloaded = await page.reload();
    expect(reloaded?.fromServiceWorker()).toBe(true);
    await expect.poll(() => page.locator(SHELL).first().isVisible(), { timeout: 30_000 }).toBe(true);
    // …the sandbox CA the client needs to open its store comes from the worker's copy…
    expect(await caPem()).toBe(ca);
    // …and a fresh start on a deep link comes from the precache too (in a new tab once this one is closed: the app
    // runs its session in one tab per profile).
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    await page.close();
    const deep = await context.newPage();
    expect((await deep.goto(`${h.appUrl}/#/settings`))?.fromServiceWorker()).toBe(true);
    await expect.poll(() => deep.locator(SHELL).first().isVisible(), { timeout: 30_000 }).toBe(true);
    expect(await deep.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    await h.screenshot(deep, 'offline-start');
    expect(h.pageErrors).toEqual([]);
    await context.close();
  });
});

/** A PNG decoded far enough to prove it is one: signature, chunk CRCs, IHDR, and the inflated, unfiltered rows. */
function decodePng(bytes: Buffer): { width: number; height: number; pixel(x: number, y: number): number[] } {
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let offset = 8;
  let ihdr: Buffer | undefined;
  const idat: Buffer[] = [];
  for (;;) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    expect(bytes.readUInt32BE(offset + 8 + length), `${type} CRC`).toBe(crc32(bytes.subarray(offset + 4, offset + 8 + length)));
    offset += 12 + length;
    if (type === 'IHDR') ihdr = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  expect(ihdr).toBeDefined();
  const width = ihdr!.readUInt32BE(0);
  const height = ihdr!.readUInt32BE(4);
  const [depth, colour, , , interlace] = [...ihdr!.subarray(8, 13)];
  expect({ depth, interlace }).toEqual({ depth: 8, interlace: 0 });
  const channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[colour!];
  expect(channels, `colour type ${colour}`).toBeDefined();
  const bpp = channels!;
  const stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(height * (stride + 1));
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    expect(filter).toBeLessThanOrEqual(4);
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= bpp ? out[y * stride + x - bpp]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= bpp && y > 0 ? out[(y - 1) * stride + x - bpp]! : 0;
      const paeth = () => {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      };
      const predictor = [0, a, b, (a + b) >> 1, filter === 4 ? paeth() : 0][filter]!;
      out[y * stride + x] = (v + predictor) & 0xff;
    }
  }
  return {
    width,
    height,
    pixel: (x, y) => [...out.subarray((y * width + x) * bpp, (y * width + x + 1) * bpp)],
  };
}
