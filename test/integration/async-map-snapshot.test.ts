// mapRegion and fromSnapshot on the asynchronous API (AsyncSandbox, src/async): the worker maps host memory into its guest and starts sandboxes from snapshots, with host functions and print on the main thread.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AsyncSandbox } from '../../src/async/async-sandbox.js';
import { ConfigInvalidError } from '../../src/errors.js';
import { GuestExceptionError, SnapshotIncompatibleError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { Snapshot } from '../../src/sandbox/snapshot.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { describeKvm } from '../helpers/kvm.js';

const dir = mkdtempSync(join(tmpdir(), 'hlts-async-map-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const simple = GuestBinary.filePath(bundledGuestPath('simpleguest'));
const BASE = 0x1_0000_0000n;
const pattern = (n: number, k = 3): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * k + 11) & 0xff);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (e) { return e; }
  throw new Error('expected a rejection');
}

describeKvm('AsyncSandbox: mapRegion and fromSnapshot', () => {
  it('mapRegion maps a buffer read-only and a file copy-on-write; restore to an earlier snapshot unmaps; bad arguments are typed errors', async () => {
    const s = await UninitializedSandbox.create(simple).evolveAsync();
    try {
      const before = await s.snapshot();
      const data = pattern(10_000);
      expect(await s.mapRegion(data, BASE)).toBe(12_288);
      expect(await s.call('ReadMappedBuffer', 'VecBytes', BASE, 10_000n)).toEqual(data);
      const e = await rejection(s.call('WriteMappedBuffer', 'Bool', BASE, 16n));
      expect(e).toBeInstanceOf(GuestExceptionError);
      expect(e).toMatchObject({ vector: 14, cr2: BASE });
      await s.restore(before);
      expect(await s.call('MappedRegionBase', 'ULong', 0)).toBe(0n);
      const file = join(dir, 'region.bin');
      writeFileSync(file, pattern(8192, 5));
      expect(await s.mapRegion(file, BASE + 0x10_0000n, { writable: true })).toBe(8192);
      expect(await s.call('WriteMappedBuffer', 'Bool', BASE + 0x10_0000n, 4n)).toBe(true);
      expect(await s.call('ReadMappedBuffer', 'VecBytes', BASE + 0x10_0000n, 4n)).toEqual(Uint8Array.of(1, 8, 15, 22));
      expect(await rejection(s.mapRegion(pattern(16), 0x1000n))).toBeInstanceOf(ConfigInvalidError); // inside the sandbox
      expect(await rejection(s.mapRegion(42 as never, BASE))).toBeInstanceOf(ConfigInvalidError);
      expect(await rejection(s.mapRegion(pattern(16), 'x' as never))).toBeInstanceOf(ConfigInvalidError);
      expect(await s.call('Echo', 'String', 'still fine')).toBe('still fine');
    } finally {
      await s.close();
    }
  });

  it('fromSnapshot starts a worker sandbox from a saved or an in-memory snapshot, with host functions and print here', async () => {
    const sync = UninitializedSandbox.create(simple).evolve();
    let file: string;
    let live: Snapshot;
    try {
      sync.call('AddToStatic', 'Int', 37);
      live = sync.snapshot();
      file = join(dir, 'a.hlsnap');
      await live.save(file);
    } finally {
      sync.close();
    }
    const printed: string[] = [];
    const a = await AsyncSandbox.fromSnapshot(await Snapshot.load(file, { expectBinary: simple }), {
      HostAdd: { params: ['Int', 'Int'], returns: 'Int', fn: async (x: number, y: number) => x + y },
    }, { print: (t) => { printed.push(t); } });
    await expect(AsyncSandbox.fromSnapshot(live, {}, { pollUs: -1 })).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', field: 'pollUs' });
    const b = await AsyncSandbox.fromSnapshot(live, {}, { pollUs: 0 });
    try {
      expect(await a.call('GetStatic', 'Int')).toBe(37);
      expect(await a.call('AddToStatic', 'Int', 5)).toBe(42);
      expect(await b.call('GetStatic', 'Int')).toBe(37);
      expect(await a.call('Add', 'Int', 40, 2)).toBe(42); // the guest calls HostAdd, an async function on this thread
      expect(await a.call('PrintOutput', 'Int', 'hi\n')).toBe(3);
      expect(printed.join('')).toBe('hi\n');
      const snap = await a.snapshot();
      await a.call('AddToStatic', 'Int', 1);
      await a.restore(snap);
      expect(await a.call('GetStatic', 'Int')).toBe(42);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('fromSnapshot refuses what is not a snapshot, a snapshot with mapped regions, and bad host functions', async () => {
    const sync = UninitializedSandbox.create(simple).evolve();
    try {
      sync.mapRegion(pattern(4096), BASE);
      const mapped = sync.snapshot();
      expect(await rejection(AsyncSandbox.fromSnapshot({} as never))).toBeInstanceOf(SnapshotIncompatibleError);
      expect(await rejection(AsyncSandbox.fromSnapshot(mapped))).toBeInstanceOf(SnapshotIncompatibleError);
      expect(await rejection(AsyncSandbox.fromSnapshot(mapped, { H: null as never }))).toBeInstanceOf(ConfigInvalidError);
    } finally {
      sync.close();
    }
  });
});
