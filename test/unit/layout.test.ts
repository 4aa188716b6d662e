// Unit tests of the guest memory layout planner (pure arithmetic; no KVM, no page tables built here).
import { describe, expect, it } from 'vitest';
import { ConfigInvalidError, ElfInvalidError } from '../../src/errors.js';
import {
  formatLayout, HYPERLIGHT_DEFAULTS, IMAGE_ALIGN, MAX_TOTAL_SIZE, pageTableAreaSize, planLayout, type LayoutConfig,
} from '../../src/mem/x86_64/index.js';

const base: LayoutConfig = { ...HYPERLIGHT_DEFAULTS, image: { span: 0x5000 } };

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigInvalidError);
    expect((e as ConfigInvalidError).code).toBe('ERR_CONFIG_INVALID');
    return (e as ConfigInvalidError).field;
  }
  throw new Error('expected a ConfigInvalidError');
}

describe('planLayout', () => {
  it('lays out the default config at fixed addresses', () => {
    const l = planLayout(base);
    expect(l.nullPage).toEqual({ gpa: 0, size: 0x1000 });
    expect(l.pageTables).toEqual({ gpa: 0x1000, size: 0x4000 });
    expect(l.sysTables).toEqual({ gpa: 0x5000, size: 0x1000 });
    expect(l.sysCode).toEqual({ gpa: 0x6000, size: 0x1000 });
    expect(l.exceptionStackGuard).toEqual({ gpa: 0x7000, size: 0x1000 });
    expect(l.exceptionStack).toEqual({ gpa: 0x8000, size: 0x1000 });
    expect(l.peb).toEqual({ gpa: 0x9000, size: 0x1000 });
    // A static PIE starts on IMAGE_ALIGN (32 KiB) after an unmapped gap.
    expect(l.regions.find((r) => r.name === 'gap')).toEqual(
      { name: 'gap', gpa: 0xa000, size: 0x6000, mapped: false, writable: false, executable: false, user: false });
    expect(l.image).toEqual({ gpa: 0x10000, size: 0x5000 });
    expect(l.inputData).toEqual({ gpa: 0x15000, size: 0x4000 });
    expect(l.outputData).toEqual({ gpa: 0x19000, size: 0x4000 });
    expect(l.initData).toBeNull();
    expect(l.heap).toEqual({ gpa: 0x1d000, size: 0x20000 });
    expect(l.stackGuard).toEqual({ gpa: 0x3d000, size: 0x1000 });
    expect(l.stack).toEqual({ gpa: 0x3e000, size: 0x20000 });
    expect(l.totalSize).toBe(0x5e000);
    // The doorbell: the first page past the slot, mapped but with no memory.
    expect(l.doorbell).toEqual({ gpa: 0x5e000, size: 0x1000 });
  });

  it('matches the drawing in docs/memory-layout.md (a 72 KiB image)', () => {
    const l = planLayout({ ...HYPERLIGHT_DEFAULTS, image: { span: 0x12000 } });
    expect(l.regions.map((r) => [r.name, r.gpa])).toEqual([
      ['nullPage', 0], ['pageTables', 0x1000], ['sysTables', 0x5000], ['sysCode', 0x6000],
      ['exceptionStackGuard', 0x7000], ['exceptionStack', 0x8000], ['peb', 0x9000], ['gap', 0xa000], ['image', 0x10000],
      ['inputData', 0x22000], ['outputData', 0x26000], ['heap', 0x2a000], ['stackGuard', 0x4a000], ['stack', 0x4b000],
    ]);
    expect(l.totalSize).toBe(0x6b000);
    expect(l.doorbell.gpa).toBe(0x6b000);
  });

  it('tiles [0, total) with page-aligned regions in the documented order and rights', () => {
    const l = planLayout({ ...base, initDataSize: 100 });
    expect(l.regions.map((r) => r.name)).toEqual(['nullPage', 'pageTables', 'sysTables', 'sysCode',
      'exceptionStackGuard', 'exceptionStack', 'peb', 'gap', 'image', 'inputData', 'outputData', 'initData', 'heap',
      'stackGuard', 'stack']);
    let cursor = 0;
    for (const r of l.regions) {
      expect(r.gpa).toBe(cursor);
      expect(r.gpa % 0x1000).toBe(0);
      expect(r.size % 0x1000).toBe(0);
      expect(r.size).toBeGreaterThan(0);
      expect(r.writable && r.executable).toBe(false);
      cursor += r.size;
    }
    expect(cursor).toBe(l.totalSize);
    const by = Object.fromEntries(l.regions.map((r) => [r.name, r]));
    for (const n of ['nullPage', 'pageTables', 'stackGuard', 'exceptionStackGuard']) expect(by[n]!.mapped).toBe(false);
    for (const n of ['peb', 'initData']) expect(by[n]).toMatchObject({ mapped: true, writable: false, executable: false, user: true });
    for (const n of ['inputData', 'outputData', 'heap', 'stack']) {
      expect(by[n]).toMatchObject({ mapped: true, writable: true, executable: false, user: true });
    }
    // The host's privileged environment: supervisor-only, W^X.
    expect(by.sysTables).toMatchObject({ mapped: true, writable: false, executable: false, user: false });
    expect(by.sysCode).toMatchObject({ mapped: true, writable: false, executable: true, user: false });
    expect(by.exceptionStack).toMatchObject({ mapped: true, writable: true, executable: false, user: false });
    expect(by.image).toMatchObject({ mapped: true, user: true });
    expect(l.initData).toEqual({ gpa: by.initData!.gpa, size: 0x1000 });
    expect(l.stackGuard.gpa + 0x1000).toBe(l.stack.gpa);
    expect(l.exceptionStackGuard.gpa + 0x1000).toBe(l.exceptionStack.gpa);
  });

  it('rounds sizes up to 4 KiB', () => {
    const l = planLayout({ ...base, heapSize: 0x1001, stackSize: 0x1fff, inputDataSize: 0x2001, image: { span: 1 } });
    expect(l.heap.size).toBe(0x2000);
    expect(l.stack.size).toBe(0x2000);
    expect(l.inputData.size).toBe(0x3000);
    expect(l.image.size).toBe(0x1000);
  });

  it('sizes the page-table area from the total so the tables always fit', () => {
    for (const heapSize of [0x1000, 0x20_0000, 0x1000_0000, 0x3000_0000]) {
      const l = planLayout({ ...base, heapSize });
      expect(l.pageTables.size).toBeGreaterThanOrEqual(pageTableAreaSize(l.totalSize));
    }
    expect(planLayout({ ...base, heapSize: 0x3000_0000 }).pageTables.size).toBe((3 + 385) * 0x1000);
  });

  it('starts a static PIE on IMAGE_ALIGN, whatever lies below it, with an unmapped gap only when needed', () => {
    for (const exceptionStackSize of [0x1000, 0x2000, 0x6000, 0x7000, 0x8000]) {
      const l = planLayout({ ...base, exceptionStackSize });
      expect(l.image.gpa % IMAGE_ALIGN, `exception stack 0x${exceptionStackSize.toString(16)}`).toBe(0);
      const pebEnd = l.peb.gpa + l.peb.size;
      const gap = l.regions.find((r) => r.name === 'gap');
      if (pebEnd % IMAGE_ALIGN === 0) expect(gap).toBeUndefined();
      else expect(gap).toMatchObject({ gpa: pebEnd, size: l.image.gpa - pebEnd, mapped: false });
    }
    expect(IMAGE_ALIGN).toBe(0x8000); // 8 page-table entries: the group KVM's shadow MMU fills per fault
  });

  it('places an ET_EXEC image at its fixed base with an unmapped gap', () => {
    const l = planLayout({ ...base, image: { span: 0x4000, fixedBase: 0x40_0000 } });
    expect(l.image).toEqual({ gpa: 0x40_0000, size: 0x4000 });
    const gap = l.regions.find((r) => r.name === 'gap');
    // 4.3 MiB total: PML4 + PDPT + PD + three PTs.
    expect(l.pageTables).toEqual({ gpa: 0x1000, size: 0x6000 });
    expect(l.peb).toEqual({ gpa: 0xb000, size: 0x1000 });
    expect(gap).toEqual({ name: 'gap', gpa: 0xc000, size: 0x40_0000 - 0xc000, mapped: false, writable: false, executable: false, user: false });
    expect(l.inputData.gpa).toBe(0x40_4000);
    expect(planLayout({ ...base, image: { span: 0x4000, fixedBase: 0xa000 } }).regions.some((r) => r.name === 'gap')).toBe(false);
  });

  it('refuses a misplaced fixed base with ElfInvalidError saying why', () => {
    expect(() => planLayout({ ...base, image: { span: 0x4000, fixedBase: 0x40_0800 } })).toThrow(/not 4 KiB aligned/);
    expect(() => planLayout({ ...base, image: { span: 0x4000, fixedBase: 0x1000 } })).toThrow(ElfInvalidError);
    expect(() => planLayout({ ...base, image: { span: 0x4000, fixedBase: 0x1000 } })).toThrow(/below the end of the PEB/);
    expect(() => planLayout({ ...base, image: { span: 0x4000, fixedBase: 2 ** 40 } })).toThrow(ElfInvalidError);
    expect(fieldOf(() => planLayout({ ...base, image: { span: 0x4000, fixedBase: -4096 } }))).toBe('image.fixedBase');
    expect(fieldOf(() => planLayout({ ...base, image: { span: 0x4000, fixedBase: 1.5 } }))).toBe('image.fixedBase');
  });

  it.each([
    ['heapSize', { heapSize: 0 }], ['heapSize', { heapSize: -1 }], ['heapSize', { heapSize: 0xfff }],
    ['heapSize', { heapSize: 1.5 }], ['heapSize', { heapSize: Number.NaN }], ['heapSize', { heapSize: '4096' }],
    ['heapSize', { heapSize: 2 ** 60 }], ['heapSize', { heapSize: Infinity }],
    ['stackSize', { stackSize: 0 }], ['stackSize', { stackSize: 0x800 }], ['stackSize', { stackSize: MAX_TOTAL_SIZE + 1 }],
    ['inputDataSize', { inputDataSize: 0x1fff }], ['inputDataSize', { inputDataSize: undefined }],
    ['outputDataSize', { outputDataSize: 0x1000 }], ['outputDataSize', { outputDataSize: 2 ** 53 }],
    ['exceptionStackSize', { exceptionStackSize: 0 }], ['exceptionStackSize', { exceptionStackSize: 0x10 }],
    ['initDataSize', { initDataSize: -1 }], ['initDataSize', { initDataSize: 0.5 }],
    ['image.span', { image: { span: 0 } }], ['image.span', { image: { span: 64 * 1024 * 1024 + 1 } }],
    ['image', { image: null }],
    ['totalSize', { heapSize: 0x3000_0000, stackSize: 0x1000_0000 }],
    ['totalSize', { heapSize: MAX_TOTAL_SIZE }],
  ])('names the field %s for %o', (field, patch) => {
    expect(fieldOf(() => planLayout({ ...base, ...(patch as Partial<LayoutConfig>) } as LayoutConfig))).toBe(field);
  });

  it('accepts the largest layout that fits in 1 GiB', () => {
    const l = planLayout({ ...base, heapSize: MAX_TOTAL_SIZE - 0x100_0000 });
    expect(l.totalSize).toBeLessThanOrEqual(MAX_TOTAL_SIZE);
  });

  it('returns frozen results', () => {
    const l = planLayout(base);
    expect(Object.isFrozen(l)).toBe(true);
    expect(Object.isFrozen(l.regions)).toBe(true);
    expect(Object.isFrozen(l.regions[0])).toBe(true);
  });
});

describe('formatLayout', () => {
  it('draws one row per region plus the total', () => {
    const text = formatLayout(planLayout(base));
    const lines = text.split('\n');
    expect(lines.filter((s) => s.startsWith('| ')).length).toBe(1 + 14 + 1 + 1);
    expect(text).toMatch(/\| peb +\| 0x00009000 \| 0x0000a000 +\| 4 KiB +\| user r-- NX/);
    expect(text).toMatch(/\| gap +\| 0x0000a000 \| 0x00010000 +\| 24 KiB +\| unmapped/);
    expect(text).toMatch(/\| heap +\| 0x0001d000 \| 0x0003d000 +\| 128 KiB +\| user rw- NX/);
    expect(text).toMatch(/\| sysCode +\| 0x00006000 \| 0x00007000 +\| 4 KiB +\| supervisor r-x/);
    expect(text).toMatch(/\| stackGuard +\| .* unmapped/);
    expect(text).toMatch(/\| image +\| .* user, per segment/);
    expect(text).toMatch(/\| doorbell +\| 0x0005e000 \| 0x0005f000 .* no memory/);
    expect(text).toMatch(/\| total +\| 0x00000000 \| 0x0005e000 +\| 376 KiB/);
    const widths = new Set(lines.map((s) => s.length));
    expect(widths.size).toBe(1);
  });
});
