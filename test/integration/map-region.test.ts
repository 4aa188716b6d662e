// mapRegion on real KVM: a host buffer or file read by the guest, read-only regions faulting on write, copy-on-write files, the PEB's region table, unmapping by restore and close.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ConfigInvalidError } from '../../src/errors.js';
import { GuestExceptionError, SnapshotIncompatibleError } from '../../src/sandbox/errors.js';
import { catchError } from '../helpers/errors.js';
import { describeKvm } from '../helpers/kvm.js';
import { simpleSandbox } from '../helpers/sandbox.js';

const dir = mkdtempSync(join(tmpdir(), 'hlts-map-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = 0x1_0000_0000n; // 4 GiB, far above the sandbox's memory
const pattern = (n: number, k = 3): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * k + 11) & 0xff);

describeKvm('mapRegion', () => {
  it('maps a host buffer read-only: the guest reads it, finds it in the PEB, and a write is a page fault', () => {
    const { sandbox } = simpleSandbox();
    try {
      const data = pattern(10_000);
      expect(sandbox.mapRegion(data, BASE, { writable: false })).toBe(12_288);
      expect(sandbox.call('MappedRegionBase', 'ULong', 0)).toBe(BASE);
      expect(sandbox.call('MappedRegionBase', 'ULong', 1)).toBe(0n);
      expect(sandbox.call('ReadMappedBuffer', 'VecBytes', BASE, 10_000n)).toEqual(data);
      expect(sandbox.call('ReadMappedBuffer', 'VecBytes', BASE + 9_990n, 10n)).toEqual(data.subarray(9_990));
      const e = catchError(() => sandbox.call('WriteMappedBuffer', 'Bool', BASE, 16n));
      expect(e).toBeInstanceOf(GuestExceptionError);
      expect(e).toMatchObject({ vector: 14, cr2: BASE });
      expect(sandbox.poisoned).toBe(true);
    } finally {
      sandbox.close();
    }
  });

  it('a writable file region is copy-on-write: the guest sees its writes, the file never changes', () => {
    const file = join(dir, 'input.bin');
    const bytes = pattern(8192, 5);
    writeFileSync(file, bytes);
    const { sandbox } = simpleSandbox();
    try {
      sandbox.mapRegion(file, BASE, { writable: true });
      expect(sandbox.call('ReadMappedBuffer', 'VecBytes', BASE, 8192n)).toEqual(bytes);
      expect(sandbox.call('WriteMappedBuffer', 'Bool', BASE, 4n)).toBe(true);
      expect(sandbox.call('ReadMappedBuffer', 'VecBytes', BASE, 4n)).toEqual(Uint8Array.of(1, 8, 15, 22));
      expect(new Uint8Array(readFileSync(file))).toEqual(bytes);
    } finally {
      sandbox.close();
    }
  });

  it('restore to a snapshot taken before unmaps the region; one taken after keeps it', () => {
    const { sandbox } = simpleSandbox();
    try {
      const before = sandbox.snapshot();
      sandbox.mapRegion(pattern(4096), BASE);
      const after = sandbox.snapshot();
      sandbox.mapRegion(pattern(4096, 7), BASE + 0x10_0000n);
      expect(sandbox.call('MappedRegionBase', 'ULong', 1)).toBe(BASE + 0x10_0000n);
      sandbox.restore(after);
      expect(sandbox.call('MappedRegionBase', 'ULong', 1)).toBe(0n);
      expect(sandbox.call('ReadMappedBuffer', 'VecBytes', BASE, 4n)).toEqual(pattern(4));
      sandbox.restore(before);
      expect(sandbox.call('MappedRegionBase', 'ULong', 0)).toBe(0n);
      const e = catchError(() => sandbox.call('ReadMappedBuffer', 'VecBytes', BASE, 4n));
      expect(e).toBeInstanceOf(GuestExceptionError); // unmapped: a page fault, not stale data
      expect(e).toMatchObject({ vector: 14 });
      sandbox.restore(before);
      expect(catchError(() => sandbox.restore(after))).toBeInstanceOf(SnapshotIncompatibleError);
      // The same place can be mapped again after the restore took it away.
      sandbox.mapRegion(pattern(4096, 9), BASE);
      expect(sandbox.call('ReadMappedBuffer', 'VecBytes', BASE, 4n)).toEqual(pattern(4, 9));
    } finally {
      sandbox.close();
    }
  });

  it('refuses addresses inside the sandbox, misaligned or overlapping, and saving a snapshot with regions', async () => {
    const { sandbox } = simpleSandbox();
    try {
      expect(catchError(() => sandbox.mapRegion(pattern(16), 0x2000n))).toBeInstanceOf(ConfigInvalidError);
      expect(catchError(() => sandbox.mapRegion(pattern(16), BASE + 1n))).toBeInstanceOf(ConfigInvalidError);
      expect(catchError(() => sandbox.mapRegion(new Uint8Array(0), BASE))).toBeInstanceOf(ConfigInvalidError);
      expect(catchError(() => sandbox.mapRegion(join(dir, 'missing'), BASE))).toBeInstanceOf(ConfigInvalidError);
      sandbox.mapRegion(pattern(16), BASE);
      expect(catchError(() => sandbox.mapRegion(pattern(16), BASE))).toBeInstanceOf(ConfigInvalidError);
      await expect(sandbox.snapshot().save(join(dir, 's.hlsnap'))).rejects.toBeInstanceOf(SnapshotIncompatibleError);
      expect(sandbox.call('Echo', 'String', 'still fine')).toBe('still fine');
    } finally {
      sandbox.close();
    }
  });
});
