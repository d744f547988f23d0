// Child process for the store crash test: writes (and sometimes deletes) as fast as it can with many writes in
// flight, and reports each one on stdout only after its promise resolved. The parent kills it with SIGKILL.
import { Store } from '../../sandbox/store';

const [dir, tag] = process.argv.slice(2);
if (!dir || !tag) throw new Error('usage: sandbox-store-writer <dir> <tag>');
// A small snapshot threshold so kills also land during snapshots and journal truncation.
const store = await Store.open(dir, { snapshotEvery: 150 });
let n = 0;

async function worker(w: number): Promise<void> {
  for (;;) {
    const i = n++;
    const key = `${tag}-${w}-${i}`;
    await store.put('rows', key, { key, pad: 'x'.repeat(40 + (i % 60)) });
    process.stdout.write(`put ${key}\n`);
    // Every fifth key is deleted right after its put is acknowledged.
    if (i % 5 === 0) {
      await store.delete('rows', key);
      process.stdout.write(`del ${key}\n`);
    }
  }
}

for (let w = 0; w < 8; w++) void worker(w);
