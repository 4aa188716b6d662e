// GuestMemory without KVM: bounds checks on every accessor, guard pages, strings, discard;
// MemorySnapshot capture and restore (full, dirty bitmap, range) byte for byte.
import { describe, expect, it } from 'vitest';
import { GuestMemoryBoundsError } from '../../src/errors.js';
import { GuestMemory, PAGE_SIZE } from '../../src/mem/guest-memory.js';
import { MemorySnapshot } from '../../src/mem/snapshot.js';

describe('GuestMemory', () => {
  it('rounds up to pages, starts zeroed and reads back what was written', () => {
    using mem = GuestMemory.allocate(5000);
    expect(mem.size).toBe(2 * PAGE_SIZE);
    expect(mem.bytes.every((b) => b === 0)).toBe(true);
    mem.writeU8(0, 0xab);
    mem.writeU16(2, 0xbeef);
    mem.writeU32(4, 0xdeadbeef);
    mem.writeU64(8, 0x0123_4567_89ab_cdefn);
    expect([mem.readU8(0), mem.readU16(2), mem.readU32(4), mem.readU64(8)])
      .toEqual([0xab, 0xbeef, 0xdeadbeef, 0x0123_4567_89ab_cdefn]);
    mem.copyIn(100, Uint8Array.of(1, 2, 3));
    expect([...mem.copyOut(100, 3)]).toEqual([1, 2, 3]);
    expect(mem.hostAddress % 4096n).toBe(0n);
  });

  it('throws ERR_GUEST_MEMORY_BOUNDS with offset and length for every out-of-range access', () => {
    using mem = GuestMemory.allocate(PAGE_SIZE);
    const cases: [() => unknown, number, number][] = [
      [() => mem.readU8(PAGE_SIZE), PAGE_SIZE, 1],
      [() => mem.readU16(PAGE_SIZE - 1), PAGE_SIZE - 1, 2],
      [() => mem.readU32(-1), -1, 4],
      [() => mem.readU64(PAGE_SIZE - 7), PAGE_SIZE - 7, 8],
      [() => mem.writeU64(PAGE_SIZE, 0n), PAGE_SIZE, 8],
      [() => mem.copyIn(PAGE_SIZE - 2, Uint8Array.of(1, 2, 3)), PAGE_SIZE - 2, 3],
      [() => mem.copyOut(0, PAGE_SIZE + 1), 0, PAGE_SIZE + 1],
      [() => mem.slice(1.5, 1), 1.5, 1],
      [() => mem.fill(10, PAGE_SIZE), 10, PAGE_SIZE],
    ];
    for (const [fn, offset, length] of cases) {
      let err: unknown;
      try { fn(); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(GuestMemoryBoundsError);
      expect(err).toMatchObject({ code: 'ERR_GUEST_MEMORY_BOUNDS', offset, length });
    }
  });

  it('reads NUL-terminated strings within a maximum length', () => {
    using mem = GuestMemory.allocate(PAGE_SIZE);
    mem.copyIn(10, new TextEncoder().encode('héllo\0'));
    expect(mem.readCString(10, 100)).toBe('héllo');
    expect(() => mem.readCString(10, 3)).toThrow(GuestMemoryBoundsError);
    mem.fill(0, PAGE_SIZE, 0x41);
    expect(() => mem.readCString(PAGE_SIZE - 4, 1000)).toThrow(GuestMemoryBoundsError);
  });

  it('discard() zeroes whole pages and refuses partial ones', () => {
    using mem = GuestMemory.allocate(2 * PAGE_SIZE);
    mem.fill(0, 2 * PAGE_SIZE, 7);
    mem.discard(PAGE_SIZE, PAGE_SIZE);
    expect(mem.readU8(PAGE_SIZE - 1)).toBe(7);
    expect(mem.readU8(PAGE_SIZE)).toBe(0);
    expect(() => mem.discard(1, PAGE_SIZE)).toThrow(GuestMemoryBoundsError);
  });

  it('close() is idempotent and later access throws ERR_CLOSED', () => {
    const mem = GuestMemory.allocate(PAGE_SIZE);
    mem.close();
    mem.close();
    expect(() => mem.readU8(0)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });

  it('has PROT_NONE guard pages around it (checked in a child process, which must crash)', async () => {
    const { spawnSync } = await import('node:child_process');
    const script = `
      const { GuestMemory } = await import(${JSON.stringify(new URL('../../dist/src/mem/guest-memory.js', import.meta.url).href)});
      const koffi = (await import('koffi')).default;
      const mem = GuestMemory.allocate(4096);
      const past = new Uint8Array(koffi.view(koffi.as(mem.hostAddress + 4096n, 'void *'), 1));
      console.log('mapped'); past[0] = 1; console.log('no guard');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stdout).not.toContain('no guard');
    expect(r.signal ?? r.status).not.toBe(0);
  });
});

describe('MemorySnapshot', () => {
  function scatter(mem: GuestMemory, seed: number): void {
    for (let p = 0; p < mem.size / PAGE_SIZE; p += 3) mem.writeU32(p * PAGE_SIZE + ((seed * 17) % 4000), seed + p);
  }

  it('skips all-zero pages and restores everything by full copy', () => {
    using mem = GuestMemory.allocate(64 * PAGE_SIZE);
    scatter(mem, 1);
    const snap = MemorySnapshot.capture(mem);
    expect(snap.storedPages).toBe(22);
    const expected = mem.copyOut(0, mem.size);
    scatter(mem, 2);
    mem.fill(5 * PAGE_SIZE, PAGE_SIZE, 9);
    snap.restoreFull(mem);
    expect(Buffer.from(mem.bytes).equals(expected)).toBe(true);
  });

  it('restores only the pages a dirty bitmap names', () => {
    using mem = GuestMemory.allocate(100 * PAGE_SIZE);
    scatter(mem, 3);
    const snap = MemorySnapshot.capture(mem);
    const expected = mem.copyOut(0, mem.size);
    const bitmap = new Uint8Array(Math.ceil(100 / 64) * 8);
    for (const p of [0, 7, 8, 63, 64, 99]) {
      mem.writeU8(p * PAGE_SIZE + 5, 0xee);
      bitmap[p >> 3]! |= 1 << (p & 7);
    }
    expect(snap.restoreDirty(mem, bitmap)).toBe(6);
    expect(Buffer.from(mem.bytes).equals(expected)).toBe(true);
    // A page changed but not named stays changed: the bitmap is trusted.
    mem.writeU8(50 * PAGE_SIZE, 1);
    snap.restoreDirty(mem, new Uint8Array(bitmap.length));
    expect(mem.readU8(50 * PAGE_SIZE)).toBe(1);
    snap.restoreRange(mem, 50 * PAGE_SIZE, 1);
    expect(Buffer.from(mem.bytes).equals(expected)).toBe(true);
  });

  it('restoreChanged puts back exactly a byte range across pages and writes only the pages that differ', () => {
    using mem = GuestMemory.allocate(8 * PAGE_SIZE);
    scatter(mem, 4); // pages 0, 3 and 6 stored; the others zero
    const snap = MemorySnapshot.capture(mem);
    const expected = mem.copyOut(0, mem.size);
    mem.writeU8(3 * PAGE_SIZE + 100, 0xaa); // a stored page, inside the range
    mem.writeU8(4 * PAGE_SIZE + 7, 0xbb); // a zero page, inside the range
    mem.writeU8(5 * PAGE_SIZE + 9, 0xcc); // just outside the range's end
    mem.writeU8(3 * PAGE_SIZE + 1, 0xdd); // just before its start
    // [3 * 4096 + 2, 5 * 4096 + 9): pages 3 and 4 differ inside it; page 5's part does not.
    expect(snap.restoreChanged(mem, 3 * PAGE_SIZE + 2, 2 * PAGE_SIZE + 7)).toBe(2);
    expect(mem.readU8(3 * PAGE_SIZE + 100)).toBe(expected[3 * PAGE_SIZE + 100]);
    expect(mem.readU8(4 * PAGE_SIZE + 7)).toBe(0);
    expect(mem.readU8(5 * PAGE_SIZE + 9)).toBe(0xcc);
    expect(mem.readU8(3 * PAGE_SIZE + 1)).toBe(0xdd);
    expect(snap.restoreChanged(mem, 3 * PAGE_SIZE + 2, 2 * PAGE_SIZE + 7)).toBe(0); // equal now: nothing written
    expect(snap.restoreChanged(mem, 0, mem.size)).toBe(2);
    expect(Buffer.from(mem.bytes).equals(expected)).toBe(true);
    expect(() => snap.restoreChanged(mem, 7 * PAGE_SIZE, PAGE_SIZE + 1)).toThrow(GuestMemoryBoundsError);
  });

  it('refuses memory of another size', () => {
    using a = GuestMemory.allocate(PAGE_SIZE);
    using b = GuestMemory.allocate(2 * PAGE_SIZE);
    expect(() => MemorySnapshot.capture(a).restoreFull(b)).toThrow(GuestMemoryBoundsError);
  });
});
