// Snapshots on disk and sandboxes from snapshots, on real KVM: save, load, fromSnapshot, the pages shared copy-on-write, and every refusal of a damaged or foreign file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SnapshotFileError, SnapshotIncompatibleError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { Snapshot } from '../../src/sandbox/snapshot.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { catchError } from '../helpers/errors.js';
import { dummySnapshotFile, fuzzSnapshotFile } from '../helpers/snapshot-fuzz.js';
import { describeKvm } from '../helpers/kvm.js';

const dir = mkdtempSync(join(tmpdir(), 'hlts-snap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const simple = GuestBinary.filePath(bundledGuestPath('simpleguest'));

function evolved(binary = simple): MultiUseSandbox {
  const u = UninitializedSandbox.create(binary);
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b);
  return u.evolve();
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (e) { return e; }
  throw new Error('expected a rejection');
}

describeKvm('snapshot files', () => {
  it('save, load and fromSnapshot give back the guest state, without running init, and restore works', async () => {
    const sb = evolved();
    let file: string;
    try {
      expect(sb.call('AddToStatic', 'Int', 37)).toBe(37);
      file = join(dir, 'a.hlsnap');
      await sb.snapshot().save(file);
    } finally {
      sb.close();
    }
    const snap = await Snapshot.load(file, { expectBinary: simple });
    expect(snap.binaryHash).toBe(simple.contentHash());
    const printed: string[] = [];
    const a = MultiUseSandbox.fromSnapshot(snap, {
      HostAdd: { params: ['Int', 'Int'], returns: 'Int', fn: (x: number, y: number) => x + y },
    }, { print: (t) => { printed.push(t); } });
    const b = MultiUseSandbox.fromSnapshot(snap);
    try {
      expect(a.call('GetStatic', 'Int')).toBe(37);
      expect(a.call('AddToStatic', 'Int', 5)).toBe(42);
      expect(b.call('GetStatic', 'Int')).toBe(37); // sandboxes share pages copy-on-write, never writes
      expect(a.call('Echo', 'String', 'from a file')).toBe('from a file');
      expect(a.call('PrintOutput', 'Int', 'hi\n')).toBe(3);
      expect(printed.join('')).toBe('hi\n');
      a.restore(snap);
      expect(a.call('GetStatic', 'Int')).toBe(37);
      const again = a.snapshot();
      a.call('AddToStatic', 'Int', 1);
      a.restore(again);
      expect(a.call('GetStatic', 'Int')).toBe(37);
      expect(a.machine.memory.mappedFrom).toBe(snap.memory);
    } finally {
      a.close();
      b.close();
    }
  });

  it('a loaded snapshot restores into an evolved sandbox of the same binary when allowed, not of another', async () => {
    const sb = evolved();
    const file = join(dir, 'b.hlsnap');
    try {
      sb.call('AddToStatic', 'Int', 9);
      await sb.snapshot().save(file);
      sb.call('AddToStatic', 'Int', 1);
      const loaded = await Snapshot.load(file);
      const refused = catchError(() => sb.restore(loaded));
      expect(refused).toBeInstanceOf(SnapshotIncompatibleError);
      expect((refused as Error).message).toMatch(/loaded from a file.*allowOtherSandbox: true/);
      expect(sb.call('GetStatic', 'Int')).toBe(10); // refused before anything was touched
      sb.restore(loaded, { allowOtherSandbox: true });
      expect(sb.call('GetStatic', 'Int')).toBe(9);
    } finally {
      sb.close();
    }
    const other = GuestBinary.filePath(bundledGuestPath('dummyguest'));
    expect(await rejection(Snapshot.load(file, { expectBinary: other }))).toBeInstanceOf(SnapshotIncompatibleError);
  });

  it('refuses missing, truncated, corrupted and foreign-version files with typed errors', async () => {
    const sb = evolved();
    const file = join(dir, 'c.hlsnap');
    try {
      await sb.snapshot().save(file);
    } finally {
      sb.close();
    }
    const good = readFileSync(file);
    const write = (bytes: Uint8Array): string => { const p = join(dir, 'bad.hlsnap'); writeFileSync(p, bytes); return p; };
    expect(await rejection(Snapshot.load(join(dir, 'missing')))).toMatchObject({ code: 'ERR_SNAPSHOT_FILE', reason: 'io' });
    expect(await rejection(Snapshot.load(write(good.subarray(0, 100))))).toMatchObject({ reason: 'truncated' });
    expect(await rejection(Snapshot.load(write(good.subarray(0, good.length - 1))))).toMatchObject({ reason: 'truncated' });
    const flipped = Buffer.from(good);
    flipped[flipped.length - 5000]! ^= 1;
    expect(await rejection(Snapshot.load(write(flipped)))).toMatchObject({ reason: 'checksum' });
    for (const version of [1, 3]) { // an earlier format (another layout) and a later one
      const other = Buffer.from(good);
      other.writeUInt32LE(version, 8);
      const e = await rejection(Snapshot.load(write(other)));
      expect(e).toBeInstanceOf(SnapshotIncompatibleError);
      expect((e as Error).message).toContain(`format version ${version}; this library reads version 2`);
    }
    expect(catchError(() => Snapshot.fromFileBytes(new Uint8Array(8)))).toBeInstanceOf(SnapshotFileError);
  });
});

describe('snapshot file format (no KVM)', () => {
  it('has its magic at 0', () => {
    expect(Buffer.from('HLTSSNAP').readBigUInt64LE(0)).toBe(0x50414e5353544c48n);
  });
});

/** Mutated files per run here; the soak suite runs 10^5 (test/soak/snapshot-fuzz.test.ts). */
export const SNAPSHOT_FUZZ_FILES = 4_000;

describeKvm('snapshot file fuzz', () => {
  it(`${SNAPSHOT_FUZZ_FILES} mutated files: each loads or is refused with a typed snapshot error`, async () => {
    const counts = fuzzSnapshotFile(await dummySnapshotFile(join(dir, 'fuzz.hlsnap')), SNAPSHOT_FUZZ_FILES, 0x5eed17);
    expect(counts.truncated).toBeGreaterThan(SNAPSHOT_FUZZ_FILES / 5);
    expect(counts.checksum).toBeGreaterThan(SNAPSHOT_FUZZ_FILES / 5);
    expect(counts.corrupt).toBeGreaterThan(SNAPSHOT_FUZZ_FILES / 10); // re-checksummed mutations the parser caught
    expect(counts.loaded).toBeLessThan(SNAPSHOT_FUZZ_FILES / 2);
  });
});
