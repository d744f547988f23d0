// `npm run bench:crypto`: pair and pair-ec per-device costs, a 100-device fan-out and frame decoding, in Node
// and in headless Chromium. Prints one JSON document; targets are reported, not asserted.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInChromium } from './browser';
import { runCryptoBench, type CryptoBenchResult } from './crypto-core';

const here = path.dirname(fileURLToPath(import.meta.url));

function targets(r: CryptoBenchResult, fanoutBudgetMs: number) {
  return {
    pairEncryptSignPerDeviceAtMost0_5ms: r.pair.encryptSignMsPerDevice <= 0.5,
    pairEcEncryptSignPerDeviceAtMost0_5ms: r.pairEc.encryptSignMsPerDevice <= 0.5,
    [`fanout100AtMost${fanoutBudgetMs}ms`]: r.pair.fanout100Ms <= fanoutBudgetMs && r.pairEc.fanout100Ms <= fanoutBudgetMs,
  };
}

const node = await runCryptoBench(`node ${process.version}`);
const chromium = await runInChromium<CryptoBenchResult>(path.join(here, 'crypto-browser-entry.ts'));
console.log(
  JSON.stringify(
    {
      benchmark: 'crypto',
      node: { ...node, targetsMet: targets(node, 50) },
      chromium: { ...chromium, targetsMet: targets(chromium, 100) },
    },
    null,
    2,
  ),
);
