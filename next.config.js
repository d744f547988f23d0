// Static export: the PWA is plain files that any static host can serve next to a bridge.
/** @type {import('next').NextConfig} */
const nextConfig = {
  output: 'export',
  reactStrictMode: true,
  images: { unoptimized: true },
  // The build checks what the app ships (app/ and lib/); `npm test` type-checks everything, tests included, so
  // `npm start` works even without ../shared (the test vectors) beside the checkout.
  typescript: { tsconfigPath: 'tsconfig.app.json' },
};
export default nextConfig;
