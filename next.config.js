// Static export: the PWA is plain files that any static host can serve next to a bridge.
/** @type {import('next').NextConfig} */
const nextConfig = {
  output: 'export',
  reactStrictMode: true,
  images: { unoptimized: true },
  // The build checks what the app ships (app/ and lib/); `npm test` type-checks everything, tests included, so
  // `npm start` works even without ../shared (the test vectors) beside the checkout.
  typescript: { tsconfigPath: 'tsconfig.app.json' },
  turbopack: {
    // The TLS engine's Mozilla root list is dead code here (see lib/net/tls-engine-root-cas.ts). The key is the
    // engine's own relative import, which nothing else in the app uses.
    resolveAlias: { './mozilla-root-cas.js': './lib/net/tls-engine-root-cas.ts' },
  },
};
export default nextConfig;
