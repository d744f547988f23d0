import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';

// Debian's chromium, never a downloaded browser. The flags keep it off the (closed) network at start-up.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export default defineConfig({
  // Tests import ../shared/vectors from beside the repository.
  server: { fs: { allow: ['..'] } },
  // Pre-bundled up front so the browser run does not discover them mid-run and reload.
  optimizeDeps: {
    include: [
      '@noble/curves/nist.js',
      '@noble/hashes/hkdf.js',
      '@noble/hashes/hmac.js',
      '@noble/hashes/legacy.js',
      '@noble/hashes/sha2.js',
      '@bufbuild/protobuf',
      '@bufbuild/protobuf/codegenv2',
      'fast-check',
      'reflect-metadata',
      '@peculiar/x509',
      '@reclaimprotocol/tls',
      'idb',
      'fflate',
    ],
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          environment: 'node',
          include: ['tests/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          // Real servers started by the tests (sandbox, bridge, TLS, WebSockets) on loopback.
          name: 'integration',
          environment: 'node',
          include: ['tests/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          // lib/ must run unchanged in a browser: every lib suite runs again in real Chromium (tooling
          // tests need Node's fs and child_process and stay Node-only).
          name: 'chromium',
          include: ['tests/unit/**/*.test.ts', 'tests/browser/**/*.test.ts'],
          exclude: ['tests/unit/tooling/**', '**/node_modules/**'],
          testTimeout: 60_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: chromiumPath, args: chromiumArgs } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
      {
        extends: true,
        test: {
          // Playwright suites: the built app (out/, from `npm run build`) in Debian's chromium against an in-process
          // sandbox, bridge and static server (tests/e2e/harness.ts). One file at a time: each drives a browser.
          name: 'e2e',
          environment: 'node',
          include: ['tests/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
