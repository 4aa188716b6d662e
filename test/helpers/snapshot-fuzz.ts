// Test helper: mutates a snapshot file many ways (truncation, byte flips, re-checksummed flips) and counts how each mutant was refused.
import { readFileSync } from 'node:fs';
import { SnapshotFileError, SnapshotIncompatibleError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { crc32, decodeSnapshotFile } from '../../src/sandbox/snapshot-file.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { prng } from './prng.js';

/** A snapshot file of the smallest bundled guest (fewer pages to checksum per mutant), saved at `path`. */
export async function dummySnapshotFile(path: string): Promise<Uint8Array> {
  const sb = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('dummyguest'))).evolve();
  try {
    await sb.snapshot().save(path);
  } finally {
    sb.close();
  }
  return new Uint8Array(readFileSync(path));
}

export interface FuzzCounts { loaded: number; truncated: number; corrupt: number; checksum: number; incompatible: number }

/**
 * Decodes `count` mutants of `good`; any error other than SnapshotFileError or
 * SnapshotIncompatibleError is rethrown (fails the test).
 */
export function fuzzSnapshotFile(good: Uint8Array, count: number, seed: number): FuzzCounts {
  const dataOffset = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(40, true));
  const rand = prng(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  const counts: FuzzCounts = { loaded: 0, truncated: 0, corrupt: 0, checksum: 0, incompatible: 0 };
  for (let i = 0; i < count; i++) {
    let m: Uint8Array;
    const kind = pick(4);
    if (kind === 0) {
      m = good.subarray(0, pick(good.length));
    } else {
      m = good.slice();
      // Mostly the header, metadata, index and host-owned pages, where the parser looks.
      const span = rand() < 0.8 ? Math.min(m.length, dataOffset + 6 * 4096) : m.length;
      for (let k = 1 + pick(4); k > 0; k--) {
        const at = pick(span);
        if (rand() < 0.5) m[at] = pick(256); else m[at]! ^= 1 << pick(8);
      }
      if (kind >= 2) new DataView(m.buffer).setUint32(m.length - 4, crc32(m.subarray(0, m.length - 4)), true);
    }
    try {
      decodeSnapshotFile(m);
      counts.loaded++;
    } catch (e) {
      if (e instanceof SnapshotFileError) counts[e.reason === 'io' ? 'corrupt' : e.reason]++;
      else if (e instanceof SnapshotIncompatibleError) counts.incompatible++;
      else throw e;
    }
  }
  return counts;
}
