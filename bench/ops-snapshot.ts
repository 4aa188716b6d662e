// Hyperlight's host features, timed through the public API: fromSnapshot() of a loaded snapshot file (alone and as a cold start), and 64 MiB of input passed by mapRegion against by copy. Not evolve() (ops-sandbox.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestBinary, bundledGuestPath } from '../src/sandbox/guest-binary.js';
import { MultiUseSandbox } from '../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../src/sandbox/uninitialized-sandbox.js';
import { Snapshot } from '../src/sandbox/snapshot.js';
import { echo, uninitialized } from './ops-sandbox.js';
import { type LoopOptions, timeLoop } from './stats.js';

/** The time limit of the 64 MiB rows' calls: a first touch of 16,384 new pages on a loaded machine can pass the default 1 s. */
const BIG_INPUT_LIMIT_MS = 60_000;

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

/** 64 MiB of input: the map-against-copy rows. */
export const INPUT_BYTES = 64 * 1024 * 1024;
const MAP_AT = 0x1_0000_0000n;

function inputBytes(): Uint8Array {
  const bytes = new Uint8Array(INPUT_BYTES);
  for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i >>> 12;
  return bytes;
}

/** The guest's SumMappedBuffer / SumBytes result for inputBytes(), computed here. */
function expectedSum(bytes: Uint8Array): bigint {
  const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
  let s = 0n;
  for (let i = 0; i < words.length; i += 512) s += words[i]!;
  return BigInt.asUintN(64, s);
}

/** mapRegion(64 MiB file, read-only) + SumMappedBuffer over all of it + restore (which unmaps it). */
export function inputByMapping(opts: LoopOptions): Float64Array {
  const dir = mkdtempSync(join(tmpdir(), 'hlts-bench-map-'));
  try {
    const bytes = inputBytes();
    const file = join(dir, 'input.bin');
    writeFileSync(file, bytes);
    const want = expectedSum(bytes);
    const sandbox = uninitialized('simpleguest', 0, { maxExecutionTimeMs: BIG_INPUT_LIMIT_MS }).evolve();
    try {
      const clean = sandbox.snapshot();
      return timeLoop(opts, () => undefined, () => {
        sandbox.mapRegion(file, MAP_AT, { writable: false });
        const sum = sandbox.call('SumMappedBuffer', 'ULong', MAP_AT, BigInt(INPUT_BYTES));
        if (sum !== want) throw new Error(`SumMappedBuffer returned ${sum}, expected ${want}`);
        sandbox.restore(clean);
      });
    } finally {
      sandbox.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** SumBytes(64 MiB VecBytes): the same input copied through the input buffer (inputDataSize 64 MiB + 64 KiB). */
export function inputByCopy(opts: LoopOptions): Float64Array {
  const bytes = inputBytes();
  const want = expectedSum(bytes);
  const sandbox = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')),
    { inputDataSize: INPUT_BYTES + 0x10000, maxExecutionTimeMs: BIG_INPUT_LIMIT_MS }).evolve();
  try {
    return timeLoop(opts, () => undefined, () => {
      const sum = sandbox.call('SumBytes', 'ULong', bytes);
      if (sum !== want) throw new Error(`SumBytes returned ${sum}, expected ${want}`);
    });
  } finally {
    sandbox.close();
  }
}
