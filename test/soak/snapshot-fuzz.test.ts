// Soak: 10^5 mutated snapshot files, each decoded or refused with a typed snapshot error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeKvm } from '../helpers/kvm.js';
import { dummySnapshotFile, fuzzSnapshotFile } from '../helpers/snapshot-fuzz.js';

describeKvm('snapshot file fuzz (soak)', () => {
  it('100,000 mutated files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hlts-snap-soak-'));
    try {
      const counts = fuzzSnapshotFile(await dummySnapshotFile(join(dir, 's.hlsnap')), 100_000, 0xf00d);
      expect(counts.corrupt).toBeGreaterThan(10_000);
      expect(counts.checksum + counts.truncated + counts.corrupt + counts.incompatible + counts.loaded).toBe(100_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
