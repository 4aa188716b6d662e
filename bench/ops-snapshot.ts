// Snapshot files and sandboxes from snapshots, timed through the public API: fromSnapshot() of a loaded snapshot file, alone and as a cold start. Not evolve() (ops-sandbox.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MultiUseSandbox } from '../src/sandbox/multi-use-sandbox.js';
import { Snapshot } from '../src/sandbox/snapshot.js';
import { echo, uninitialized } from './ops-sandbox.js';
import { type LoopOptions, timeLoop } from './stats.js';

/** A simpleguest snapshot right after init, saved to a file and loaded back (as Snapshot.load does, synchronously). */
export async function loadedSimpleguestSnapshot(): Promise<Snapshot> {
  const dir = mkdtempSync(join(tmpdir(), 'hlts-bench-snap-'));
  try {
    const sandbox = uninitialized('simpleguest').evolve();
    const file = join(dir, 'simpleguest.hlsnap');
    try {
      await sandbox.snapshot().save(file);
    } finally {
      sandbox.close();
    }
    return Snapshot.fromFileBytes(new Uint8Array(readFileSync(file)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hostFunctions = {
  HostAdd: { params: ['Int', 'Int'] as const, returns: 'Int' as const, fn: (a: number, b: number) => a + b },
};
const silent = { print: (text: string) => text.length };

/** MultiUseSandbox.fromSnapshot() alone (VM, memory mapped from the snapshot's memfd, vCPU); close untimed. */
export function fromSnapshotOp(snapshot: Snapshot, opts: LoopOptions): Float64Array {
  return timeLoop(opts, () => undefined, () => MultiUseSandbox.fromSnapshot(snapshot, hostFunctions, silent), (s) => s.close());
}

/** fromSnapshot() + Echo("hi") + close: a cold start from a snapshot file. */
export function coldStartFromSnapshot(snapshot: Snapshot, opts: LoopOptions): Float64Array {
  return timeLoop(opts, () => undefined, () => {
    const sandbox = MultiUseSandbox.fromSnapshot(snapshot, hostFunctions, silent);
    try {
      echo(sandbox, 'simpleguest');
    } finally {
      sandbox.close();
    }
  });
}
