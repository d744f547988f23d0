// The full test suite, as the README's quick start and CI run it: install what is missing, then type-check, build
// the PWA (static export and service worker; the Playwright suites load out/), and run every vitest project (Node,
// headless Chromium, and the end-to-end suites).
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureChromium, ensureNodeModules, root } from './setup.mjs';

ensureNodeModules();
ensureChromium();

const steps = [
  ['type-check', 'npx', ['tsc', '--noEmit']],
  ['PWA build', 'npx', ['next', 'build']],
  ['service worker build', 'node', ['scripts/build-sw.mjs']],
  ['tests', 'npx', ['vitest', 'run', '--reporter=default', '--reporter=json', '--outputFile.json=test-results/vitest.json']],
];

mkdirSync(path.join(root, 'test-results'), { recursive: true });
// A report left by an earlier run must not be counted when this one stops before vitest.
rmSync(path.join(root, 'test-results/vitest.json'), { force: true });
let failedStep = null;
for (const [name, cmd, args] of steps) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } });
  if (r.status !== 0) {
    failedStep = name;
    break;
  }
}

let passed = 0;
let failed = 0;
try {
  const report = JSON.parse(readFileSync(path.join(root, 'test-results/vitest.json'), 'utf8'));
  passed = report.numPassedTests;
  failed = report.numFailedTests;
} catch {
  // No report: the run stopped before vitest; the failed step below says why.
}
if (failedStep) {
  console.log(`\n${failedStep} failed`);
  failed = Math.max(failed, 1);
}
console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && !failedStep ? 0 : 1);
