// Soak: 10^5 mutated snapshot files, each decoded or refused with a typed snapshot error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeKvm } from '../helpers/kvm.js';
import { dummySnapshotFile, fuzzSnapshotFile } from '../helpers/snapshot-fuzz.js';

/** docs/security.md quotes it. */
export const SNAPSHOT_SOAK_FUZZ_FILES = 100_000;

describeKvm('snapshot file fuzz (soak)', () => {
  it(`${SNAPSHOT_SOAK_FUZZ_FILES} mutated files`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hlts-snap-soak-'));
    try {
      const counts = fuzzSnapshotFile(await dummySnapshotFile(join(dir, 's.hlsnap')), SNAPSHOT_SOAK_FUZZ_FILES, 0xf00d);
      expect(counts.corrupt).toBeGreaterThan(SNAPSHOT_SOAK_FUZZ_FILES / 10);
      expect(counts.checksum + counts.truncated + counts.corrupt + counts.incompatible + counts.loaded).toBe(SNAPSHOT_SOAK_FUZZ_FILES);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
