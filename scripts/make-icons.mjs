// Draws the app icon (a white speech bubble on Cerulean blue) and writes the PNGs the manifest names into
// public/icons/. Plain Node: the shape is sampled per pixel and the PNG is encoded with node:zlib, so the icons can
// be regenerated anywhere without an image tool. Run: node scripts/make-icons.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { root } from './setup.mjs';

const BLUE = [0x0a, 0x84, 0xff];
const WHITE = [0xff, 0xff, 0xff];
// Samples per pixel edge: 4×4 supersampling gives smooth edges.
const SS = 4;

// The tail: a horn from the body's lower left down to a point, bounded by two quadratic curves (as a polygon).
const TAIL = (() => {
  const quad = (a, c, b, n) =>
    Array.from({ length: n + 1 }, (_, k) => {
      const t = k / n;
      const u = 1 - t;
      return [u * u * a[0] + 2 * u * t * c[0] + t * t * b[0], u * u * a[1] + 2 * u * t * c[1] + t * t * b[1]];
    });
  const tip = [0.06, 0.98];
  return [...quad([0.2, 0.68], [0.22, 0.9], tip, 24), ...quad(tip, [0.26, 0.97], [0.44, 0.86], 24), [0.4, 0.6]];
})();

function inPolygon(x, y, poly) {
  let inside = false;
  for (let k = 0, l = poly.length - 1; k < poly.length; l = k++) {
    const [xk, yk] = poly[k];
    const [xl, yl] = poly[l];
    if (yk > y !== yl > y && x < ((xl - xk) * (y - yk)) / (yl - yk) + xk) inside = !inside;
  }
  return inside;
}

/** Is the point (x, y), in units of the bubble's own box [0,1]², inside the speech bubble? */
function inBubble(x, y) {
  // The body: an ellipse filling the upper part of the box.
  const ex = (x - 0.5) / 0.5;
  const ey = (y - 0.45) / 0.43;
  return ex * ex + ey * ey <= 1 || inPolygon(x, y, TAIL);
}

/** Is (x, y) in [0,1]² inside a square with rounded corners of radius r? */
function inRoundedSquare(x, y, r) {
  const cx = Math.min(Math.max(x, r), 1 - r);
  const cy = Math.min(Math.max(y, r), 1 - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
}

/**
 * RGBA pixels of one icon. `maskable`: the background fills the whole square (the platform cuts its own shape) and
 * the bubble stays inside the central 80 % safe zone; otherwise a rounded square on transparency.
 */
function drawIcon(size, maskable) {
  const bubble = maskable ? { x: 0.24, y: 0.26, w: 0.52, h: 0.48 } : { x: 0.19, y: 0.22, w: 0.62, h: 0.56 };
  const px = new Uint8Array(size * size * 4);
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      let bg = 0;
      let fg = 0;
      for (let sj = 0; sj < SS; sj++) {
        for (let si = 0; si < SS; si++) {
          const x = (i + (si + 0.5) / SS) / size;
          const y = (j + (sj + 0.5) / SS) / size;
          if (!(maskable || inRoundedSquare(x, y, 0.22))) continue;
          bg++;
          if (inBubble((x - bubble.x) / bubble.w, (y - bubble.y) / bubble.h)) fg++;
        }
      }
      const n = SS * SS;
      const o = (j * size + i) * 4;
      // White over blue by the bubble's coverage; alpha is the background's coverage.
      for (let c = 0; c < 3; c++) px[o + c] = bg === 0 ? 0 : Math.round((BLUE[c] * (bg - fg) + WHITE[c] * fg) / bg);
      px[o + 3] = Math.round((255 * bg) / n);
    }
  }
  return px;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** An 8-bit RGBA PNG; every row uses filter 0 (none), which deflate compresses well enough for flat art. */
function encodePng(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  const stride = size * 4;
  const raw = Buffer.alloc((stride + 1) * size);
  for (let j = 0; j < size; j++) raw.set(rgba.subarray(j * stride, (j + 1) * stride), j * (stride + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const icons = [
  { file: 'icon-192.png', size: 192, maskable: false },
  { file: 'icon-512.png', size: 512, maskable: false },
  { file: 'icon-maskable-512.png', size: 512, maskable: true },
];

const dir = path.join(root, 'public', 'icons');
mkdirSync(dir, { recursive: true });
for (const icon of icons) {
  const png = encodePng(icon.size, drawIcon(icon.size, icon.maskable));
  writeFileSync(path.join(dir, icon.file), png);
  console.log(`public/icons/${icon.file}  ${icon.size}×${icon.size}  ${png.length} bytes`);
}
