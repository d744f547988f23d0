// The committed protobuf code must be what `npm run gen:proto` makes from ids.proto today.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');

describe('generated protobuf code', () => {
  it('is up to date with lib/codec/proto/ids.proto', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'cerulean-proto-'));
    try {
      execFileSync(path.join(root, 'node_modules/.bin/buf'), ['generate', '--output', out], { cwd: root, stdio: 'pipe' });
      const fresh = readFileSync(path.join(out, 'lib/codec/proto/ids_pb.ts'), 'utf8');
      const committed = readFileSync(path.join(root, 'lib/codec/proto/ids_pb.ts'), 'utf8');
      expect(committed).toBe(fresh);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
