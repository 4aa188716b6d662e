// Unit tests of the x86-64 page-table builder and walker on a plain Uint8Array (no KVM).
import { describe, expect, it } from 'vitest';
import { ConfigInvalidError, ElfInvalidError, GuestMemoryBoundsError } from '../../src/errors.js';
import {
  buildPageTables, HYPERLIGHT_DEFAULTS, mappedRangesFor, planLayout, physReader, PTE_ACCESSED, PTE_DIRTY,
  PTE_PAGE_SIZE, PTE_PRESENT, PTE_USER, walk, walkRanges, type MappedRange, type MemoryLayout,
} from '../../src/mem/x86_64/index.js';

const segments = [
  { offsetInImage: 0, memSize: 0x270, writable: false, executable: false },
  { offsetInImage: 0x1000, memSize: 0x1c, writable: false, executable: true },
  { offsetInImage: 0x2000, memSize: 0x4c, writable: false, executable: false },
  { offsetInImage: 0x3f00, memSize: 0x2b0, writable: true, executable: false },
];

/** Plans, builds the tables into a whole-guest memory array, and returns both. */
function buildGuest(patch: Partial<Parameters<typeof planLayout>[0]> = {}): {
  layout: MemoryLayout; memory: Uint8Array; cr3: number; ranges: MappedRange[]; used: number;
} {
  const layout = planLayout({ ...HYPERLIGHT_DEFAULTS, image: { span: 0x5000 }, ...patch });
  const memory = new Uint8Array(layout.totalSize);
  const ranges = mappedRangesFor(layout, segments);
  const area = memory.subarray(layout.pageTables.gpa, layout.pageTables.gpa + layout.pageTables.size);
  const built = buildPageTables(ranges, layout.pageTables, area);
  expect(built.bytes.buffer).toBe(memory.buffer);
  return { layout, memory, cr3: built.cr3, ranges, used: built.used };
}

/** Every 8-byte entry of the used table pages that is present. */
function presentEntries(memory: Uint8Array, areaGpa: number, used: number): bigint[] {
  const view = new DataView(memory.buffer, areaGpa, used);
  const out: bigint[] = [];
  for (let off = 0; off < used; off += 8) {
    const e = view.getBigUint64(off, true);
    if (e & PTE_PRESENT) out.push(e);
  }
  return out;
}

describe('buildPageTables + walk', () => {
  it('maps every region of the default layout with its rights, first and last page', () => {
    const { layout, memory, cr3 } = buildGuest();
    expect(cr3).toBe(layout.pageTables.gpa);
    for (const r of layout.regions) {
      if (r.name === 'image') continue;
      for (const gva of [r.gpa, r.gpa + r.size - 1, r.gpa + r.size - 0x1000]) {
        const t = walk(memory, cr3, gva);
        if (!r.mapped) {
          expect(t, `${r.name} at 0x${gva.toString(16)}`).toBeNull();
        } else {
          expect(t, r.name).toEqual({ gpa: gva, pageSize: 0x1000, writable: r.writable, executable: r.executable, user: r.user });
        }
      }
    }
  });

  it('maps image pages per segment: r--, r-x, r--, rw-', () => {
    const { layout, memory, cr3 } = buildGuest();
    const at = (off: number) => walk(memory, cr3, layout.image.gpa + off);
    expect(at(0)).toMatchObject({ writable: false, executable: false });
    expect(at(0x1010)).toMatchObject({ writable: false, executable: true });
    expect(at(0x2fff)).toMatchObject({ writable: false, executable: false });
    expect(at(0x3000)).toMatchObject({ writable: true, executable: false });
    expect(at(0x41af)).toMatchObject({ writable: true, executable: false, gpa: layout.image.gpa + 0x41af });
  });

  it('leaves the null page, page tables and guard pages unmapped', () => {
    const { layout, memory, cr3 } = buildGuest();
    expect(walk(memory, cr3, 0)).toBeNull();
    expect(walk(memory, cr3, 0xfff)).toBeNull();
    expect(walk(memory, cr3, layout.pageTables.gpa)).toBeNull();
    expect(walk(memory, cr3, layout.stackGuard.gpa + 0x800)).toBeNull();
    expect(walk(memory, cr3, layout.exceptionStackGuard.gpa)).toBeNull();
    // The doorbell page past the slot is mapped user-writable (no memory behind it: MMIO).
    expect(walk(memory, cr3, layout.totalSize)).toEqual({ gpa: layout.totalSize, pageSize: 0x1000, writable: true, executable: false, user: true });
    expect(walk(memory, cr3, layout.totalSize + 0x1000)).toBeNull();
    expect(walk(memory, cr3, 2 ** 40)).toBeNull();
    expect(walk(memory, cr3, 0x8000_0000_0000n)).toBeNull(); // not canonical
    expect(walk(memory, cr3, 0xffff_8000_0000_0000n)).toBeNull(); // canonical, upper half, unmapped
  });

  it('presets A and D in every present entry; U/S is set on tables and user leaves only', () => {
    const { layout, memory, cr3, used } = buildGuest();
    const entries = presentEntries(memory, layout.pageTables.gpa, used);
    expect(entries.length).toBeGreaterThan(80);
    for (const e of entries) {
      expect(e & PTE_ACCESSED).toBe(PTE_ACCESSED);
      expect(e & PTE_DIRTY).toBe(PTE_DIRTY);
    }
    // Ring 3 reaches its own pages and never the host's system area.
    for (const r of layout.regions.filter((x) => x.mapped)) {
      expect(walk(memory, cr3, r.gpa)?.user, r.name).toBe(r.user);
    }
    expect(walk(memory, cr3, layout.sysTables.gpa)?.user).toBe(false);
    expect(walk(memory, cr3, layout.exceptionStack.gpa)?.user).toBe(false);
    expect(walk(memory, cr3, layout.image.gpa + 0x1010)?.user).toBe(true);
    expect(entries.some((e) => (e & PTE_USER) === 0n)).toBe(true);
  });

  it('uses 2 MiB pages where a range covers an aligned 2 MiB window, 4 KiB elsewhere', () => {
    const { layout, memory, cr3 } = buildGuest({ heapSize: 0x80_0000 });
    const heapEnd = layout.heap.gpa + layout.heap.size;
    const firstHuge = Math.ceil(layout.inputData.gpa / 0x20_0000) * 0x20_0000;
    expect(walk(memory, cr3, firstHuge)).toEqual({ gpa: firstHuge, pageSize: 0x20_0000, writable: true, executable: false, user: true });
    expect(walk(memory, cr3, firstHuge - 1)?.pageSize).toBe(0x1000);
    expect(walk(memory, cr3, heapEnd - 1)?.pageSize).toBe(0x1000);
    expect(walk(memory, cr3, heapEnd - 1)?.writable).toBe(true);
    const summary = walkRanges(memory, cr3);
    expect(summary.some((s) => s.gva <= firstHuge && s.gva + s.size >= firstHuge + 0x60_0000)).toBe(true);
    let huge = 0;
    const view = new DataView(memory.buffer);
    for (let off = layout.pageTables.gpa; off < layout.pageTables.gpa + layout.pageTables.size; off += 8) {
      const e = view.getBigUint64(off, true);
      if (e & PTE_PRESENT && e & PTE_PAGE_SIZE) huge++;
    }
    expect(huge).toBeGreaterThanOrEqual(3);
  });

  it('maps a range across a 1 GiB boundary', () => {
    const area = { gpa: 0x1000, size: 0x10_000 };
    const built = buildPageTables([{ gpa: 0x3fe0_0000, size: 0x40_1000, writable: true, executable: false }], area);
    const read = (gpa: number): bigint => {
      const off = gpa - area.gpa;
      if (off < 0 || off + 8 > built.bytes.length) throw new GuestMemoryBoundsError(gpa, 8, 0);
      return new DataView(built.bytes.buffer, built.bytes.byteOffset).getBigUint64(off, true);
    };
    expect(walk(read, built.cr3, 0x3fe0_0000)?.pageSize).toBe(0x20_0000);
    expect(walk(read, built.cr3, 0x4000_0000)?.pageSize).toBe(0x20_0000);
    expect(walk(read, built.cr3, 0x4020_0fff)).toMatchObject({ pageSize: 0x1000, gpa: 0x4020_0fff });
    expect(walk(read, built.cr3, 0x4020_1000)).toBeNull();
    expect(walkRanges(read, built.cr3)).toEqual([
      { gva: 0x3fe0_0000, gpa: 0x3fe0_0000, size: 0x40_1000, writable: true, executable: false, user: false },
    ]);
  });

  it('summarises the default mapping as runs', () => {
    const { layout, memory, cr3 } = buildGuest();
    const runs = walkRanges(memory, cr3);
    // The host's system area first: tables r--, stubs r-x, their stack rw-, all supervisor.
    expect(runs.slice(0, 3)).toEqual([
      { gva: layout.sysTables.gpa, gpa: layout.sysTables.gpa, size: 0x1000, writable: false, executable: false, user: false },
      { gva: layout.sysCode.gpa, gpa: layout.sysCode.gpa, size: 0x1000, writable: false, executable: true, user: false },
      { gva: layout.exceptionStack.gpa, gpa: layout.exceptionStack.gpa, size: layout.exceptionStack.size, writable: true,
        executable: false, user: false },
    ]);
    // The PEB alone (the unmapped gap follows it), then the image's first (read-only) page.
    expect(runs[3]).toMatchObject({ gva: layout.peb.gpa, size: 0x1000, writable: false, executable: false, user: true });
    expect(runs[4]).toMatchObject({ gva: layout.image.gpa, size: 0x1000, writable: false, executable: false, user: true });
    expect(runs.find((r) => r.executable && r.user)).toMatchObject({ gva: layout.image.gpa + 0x1000, size: 0x1000 });
    // input + output + heap coalesce into one rw run ending at the stack guard.
    expect(runs).toContainEqual({ gva: layout.image.gpa + 0x3000, gpa: layout.image.gpa + 0x3000,
      size: layout.stackGuard.gpa - (layout.image.gpa + 0x3000), writable: true, executable: false, user: true });
    // The stack and the doorbell page just past the slot make the last run.
    expect(runs[runs.length - 1]).toMatchObject({ gva: layout.stack.gpa, size: layout.stack.size + 0x1000, user: true });
    for (const r of runs) expect(r.writable && r.executable).toBe(false);
  });

  it('refuses W^X violations, misaligned, overlapping and table-area ranges', () => {
    const area = { gpa: 0x1000, size: 0x4000 };
    const ok = { gpa: 0x10000, size: 0x1000, writable: false, executable: true };
    const err = (ranges: MappedRange[]): ConfigInvalidError => {
      try { buildPageTables(ranges, area); } catch (e) { expect(e).toBeInstanceOf(ConfigInvalidError); return e as ConfigInvalidError; }
      throw new Error('expected ConfigInvalidError');
    };
    expect(err([{ ...ok, writable: true, name: 'bad' }]).message).toMatch(/ranges\[0\] \(bad\).*W\^X/);
    expect(err([{ ...ok, gpa: 0x10800 }]).field).toBe('ranges[0]');
    expect(err([{ ...ok, size: 0 }]).field).toBe('ranges[0]');
    expect(err([ok, { ...ok, gpa: 0x10000 }]).field).toBe('ranges');
    expect(err([ok, { ...ok, gpa: 0x2000 }]).message).toMatch(/page-table area/);
    expect(err([{ ...ok, gpa: 2 ** 47 }]).message).toMatch(/lower half/);
  });

  it('throws when the area runs out of table pages', () => {
    expect(() => buildPageTables([{ gpa: 0x10000, size: 0x1000, writable: false, executable: false }],
      { gpa: 0x1000, size: 0x3000 })).toThrow(/too small/);
    expect(() => buildPageTables([], { gpa: 0x1000, size: 0x1000 }, new Uint8Array(0x800))).toThrow(GuestMemoryBoundsError);
  });

  it('zeroes stale bytes in the area before building', () => {
    const target = new Uint8Array(0x4000).fill(0xff);
    const built = buildPageTables([{ gpa: 0x10000, size: 0x1000, writable: false, executable: false }], { gpa: 0x1000, size: 0x4000 }, target);
    expect(built.used).toBe(0x4000);
    const view = new DataView(target.buffer);
    let present = 0;
    for (let off = 0; off < 0x4000; off += 8) if (view.getBigUint64(off, true) & PTE_PRESENT) present++;
    expect(present).toBe(4);
  });

  it('reports a table address outside the memory as a bounds error', () => {
    const memory = new Uint8Array(0x2000);
    new DataView(memory.buffer).setBigUint64(0x1000, 0x10_0000n | PTE_PRESENT, true);
    expect(() => walk(memory, 0x1000, 0)).toThrow(GuestMemoryBoundsError);
    expect(() => walk(physReader(memory), 0x1000, 0)).toThrow(GuestMemoryBoundsError);
  });

  it('bounds walkRanges on tables that fan out to themselves', () => {
    const memory = new Uint8Array(0x2000);
    const view = new DataView(memory.buffer);
    for (let i = 0; i < 512; i++) view.setBigUint64(0x1000 + i * 8, 0x1000n | PTE_PRESENT, true);
    expect(() => walkRanges(memory, 0x1000)).toThrow(/more than/);
  });
});

describe('mappedRangesFor', () => {
  it('refuses a page shared by a writable and an executable segment', () => {
    const layout = planLayout({ ...HYPERLIGHT_DEFAULTS, image: { span: 0x2000 } });
    expect(() => mappedRangesFor(layout, [
      { offsetInImage: 0, memSize: 0x800, writable: false, executable: true },
      { offsetInImage: 0x800, memSize: 0x800, writable: true, executable: false },
    ])).toThrow(ElfInvalidError);
    expect(() => mappedRangesFor(layout, [{ offsetInImage: 0x1800, memSize: 0x1000, writable: false, executable: false }]))
      .toThrow(/outside the image span/);
  });

  it('gives a shared read-only/executable page the union and leaves gaps unmapped', () => {
    const layout = planLayout({ ...HYPERLIGHT_DEFAULTS, image: { span: 0x4000 } });
    const image = mappedRangesFor(layout, [
      { offsetInImage: 0, memSize: 0x800, writable: false, executable: false },
      { offsetInImage: 0x800, memSize: 0x1000, writable: false, executable: true },
      { offsetInImage: 0x3000, memSize: 0x10, writable: true, executable: false },
    ]).filter((r) => r.name?.startsWith('image'));
    expect(image).toEqual([
      { gpa: layout.image.gpa, size: 0x2000, writable: false, executable: true, user: true, name: 'image r-x' },
      { gpa: layout.image.gpa + 0x3000, size: 0x1000, writable: true, executable: false, user: true, name: 'image rw-' },
    ]);
  });
});
