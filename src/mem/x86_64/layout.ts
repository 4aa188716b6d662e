// Plans the guest-physical memory map of one sandbox (pure arithmetic); it allocates no memory and builds no page tables.
//
// The map is one KVM memory slot starting at guest-physical 0, identity-mapped
// (guest-virtual = guest-physical). Regions, in address order:
//
//   null page (unmapped) | page tables (unmapped) | system tables (S r--) | system code (S r-x)
//   | exception-stack guard (unmapped) | exception stack (S rw-) | PEB (U r--) | [gap]
//   | image (U, per segment) | input (U rw-) | output (U rw-) | [init data (U r--)]
//   | heap (U rw-) | stack guard (unmapped) | stack (U rw-)
//
// S: supervisor-only (the host's privileged environment: GDT, TSS, IDT, CPL0 stubs and their
// stack); U: user pages the guest reaches at CPL3. Beyond the slot, the doorbell page (U rw-)
// is mapped in the page tables but backed by no memory: a guest store to it is an MMIO exit.
// Every writable region is NX; see docs/memory-layout.md for the drawing and the rules.

import { ConfigInvalidError, ElfInvalidError } from '../../errors.js';
import { pageTableAreaSize } from './page-tables.js';

/** The x86-64 base page size in bytes; every region starts and ends on it. */
export const PAGE_SIZE = 0x1000;
/** Largest total guest memory a layout may describe, in bytes (1 GiB). */
export const MAX_TOTAL_SIZE = 0x4000_0000;
/** Largest image span a layout accepts, in bytes (64 MiB, the ELF loader's default too). */
export const MAX_IMAGE_SPAN = 0x400_0000;
/** Smallest input/output buffer, in bytes: Hyperlight's minimum. */
export const MIN_IO_BUFFER_SIZE = 0x2000;
/** Smallest heap, in bytes: one page (our choice; the guest's allocator needs somewhere to live). */
export const MIN_HEAP_SIZE = 0x1000;
/** Smallest stack, in bytes: one page. */
export const MIN_STACK_SIZE = 0x1000;
/** Smallest exception (IST1) stack of the host's CPL0 stubs, in bytes: one page. */
export const MIN_EXCEPTION_STACK_SIZE = 0x1000;
/**
 * A static PIE's image starts on a multiple of this, after an unmapped gap: 8 pages, the
 * group of page-table entries KVM's shadow MMU fills in one fault (its PTE_PREFETCH_NUM).
 * A fresh VM faults on the first touch of every page; in a fault KVM also maps the other
 * pages of the faulting entry's group, in order, and stops at the first it cannot map,
 * which a writable page of a dirty-logged slot always is. Right after the PEB the image
 * shared its first group with the exception stack (writable), so each of its first code
 * pages faulted alone (~25 us each on kvm_pvm; 2-3 faults fewer per cold start aligned).
 * The gap costs no memory (never mapped nor touched). KVM with EPT/NPT does not prefetch
 * and loses nothing by it.
 */
export const IMAGE_ALIGN = 8 * PAGE_SIZE;

/**
 * Default sizes in bytes. Heap and I/O buffers are Hyperlight's defaults. The stack is
 * our choice: 128 KiB, enough for the StackAllocate/LargeVar style test guests while an
 * idle sandbox stays small (untouched pages cost no resident memory). The exception stack
 * holds only the host's CPL0 stub frames (72 bytes): one page.
 */
export const HYPERLIGHT_DEFAULTS = Object.freeze({
  heapSize: 128 * 1024,
  stackSize: 128 * 1024,
  inputDataSize: 0x4000,
  outputDataSize: 0x4000,
  exceptionStackSize: 0x1000,
});

/**
 * Sizes in bytes. Each is rounded up to a multiple of 4 KiB after validation (the minimums
 * apply to the value as given).
 */
export interface LayoutConfig {
  readonly heapSize: number;
  readonly stackSize: number;
  readonly inputDataSize: number;
  readonly outputDataSize: number;
  /** Default 0x4000. */
  readonly exceptionStackSize?: number;
  /** 0 or absent: no init-data region. */
  readonly initDataSize?: number;
  /**
   * The guest image: `span` bytes from its page-aligned first address to its page-rounded end.
   * `fixedBase` (ET_EXEC images) is the guest address it was linked at.
   */
  readonly image: { readonly span: number; readonly fixedBase?: number };
}

export type RegionName =
  | 'nullPage' | 'pageTables' | 'sysTables' | 'sysCode' | 'exceptionStackGuard' | 'exceptionStack' | 'peb'
  | 'gap' | 'image' | 'inputData' | 'outputData' | 'initData' | 'heap' | 'stackGuard' | 'stack';

/** A guest-physical range (identity-mapped, so also its guest-virtual range). */
export interface Span {
  /** First guest-physical address, 4 KiB aligned. */
  readonly gpa: number;
  /** Length in bytes, a multiple of 4 KiB. */
  readonly size: number;
}

/**
 * One region of the map. `mapped: false` regions are backed by the memory slot but have
 * no page-table entry. For `image`, `writable`/`executable` are false here: its page
 * permissions come from the ELF segments (see `mappedRangesFor`).
 */
export interface Region extends Span {
  readonly name: RegionName;
  readonly mapped: boolean;
  readonly writable: boolean;
  readonly executable: boolean;
  /** Mapped for ring 3 (U/S = 1); false for the host's supervisor-only system area. */
  readonly user: boolean;
}

export interface MemoryLayout {
  /** All regions in address order; they tile [0, totalSize) without holes. */
  readonly regions: readonly Region[];
  readonly nullPage: Span;
  readonly pageTables: Span;
  /** GDT, TSS and IDT (supervisor, read-only). */
  readonly sysTables: Span;
  /** The host's CPL0 exception stubs (supervisor, read+execute). */
  readonly sysCode: Span;
  readonly peb: Span;
  readonly image: Span;
  readonly inputData: Span;
  readonly outputData: Span;
  /** null when the config asks for no init data. */
  readonly initData: Span | null;
  readonly heap: Span;
  readonly stackGuard: Span;
  readonly stack: Span;
  /** The stubs' stack (TSS RSP0 and IST1), supervisor read/write. */
  readonly exceptionStackGuard: Span;
  readonly exceptionStack: Span;
  /**
   * The doorbell page, just past the memory slot: mapped user-writable in the page tables
   * but backed by no memory, so each guest store to it exits to the host (KVM_EXIT_MMIO).
   */
  readonly doorbell: Span;
  /** Size of the memory slot in bytes (the end of the stack). */
  readonly totalSize: number;
}

/** Rounds `n` bytes up to a multiple of 4 KiB. */
export function pageUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

function checkSize(field: string, value: unknown, min: number, max: number, zeroOk = false): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ConfigInvalidError(field, `must be an integer number of bytes, got ${String(value)}`);
  }
  if (value === 0 && zeroOk) return 0;
  if (value <= 0) throw new ConfigInvalidError(field, `must be > 0, got ${value}`);
  if (value < min) {
    throw new ConfigInvalidError(field, `must be at least 0x${min.toString(16)} bytes, got 0x${value.toString(16)}`);
  }
  if (value > max) {
    throw new ConfigInvalidError(field, `must be at most 0x${max.toString(16)} bytes, got 0x${value.toString(16)}`);
  }
  return pageUp(value);
}

interface Sizes {
  heap: number; stack: number; input: number; output: number; exceptionStack: number;
  initData: number; imageSpan: number; fixedBase: number | undefined;
}

function validate(config: LayoutConfig): Sizes {
  if (typeof config !== 'object' || config === null) {
    throw new ConfigInvalidError('config', 'must be an object');
  }
  const image: unknown = config.image;
  if (typeof image !== 'object' || image === null) {
    throw new ConfigInvalidError('image', 'must be an object { span, fixedBase? }');
  }
  const { span, fixedBase } = image as { span?: unknown; fixedBase?: unknown };
  if (fixedBase !== undefined &&
      (typeof fixedBase !== 'number' || !Number.isInteger(fixedBase) || fixedBase < 0)) {
    throw new ConfigInvalidError('image.fixedBase', `must be a non-negative integer, got ${String(fixedBase)}`);
  }
  return {
    heap: checkSize('heapSize', config.heapSize, MIN_HEAP_SIZE, MAX_TOTAL_SIZE),
    stack: checkSize('stackSize', config.stackSize, MIN_STACK_SIZE, MAX_TOTAL_SIZE),
    input: checkSize('inputDataSize', config.inputDataSize, MIN_IO_BUFFER_SIZE, MAX_TOTAL_SIZE),
    output: checkSize('outputDataSize', config.outputDataSize, MIN_IO_BUFFER_SIZE, MAX_TOTAL_SIZE),
    exceptionStack: checkSize('exceptionStackSize',
      config.exceptionStackSize ?? HYPERLIGHT_DEFAULTS.exceptionStackSize,
      MIN_EXCEPTION_STACK_SIZE, MAX_TOTAL_SIZE),
    initData: checkSize('initDataSize', config.initDataSize ?? 0, 1, MAX_TOTAL_SIZE, true),
    imageSpan: checkSize('image.span', span, 1, MAX_IMAGE_SPAN),
    fixedBase: fixedBase as number | undefined,
  };
}

const PERMS = {
  none: { mapped: false, writable: false, executable: false, user: false },
  ro: { mapped: true, writable: false, executable: false, user: true },
  rw: { mapped: true, writable: true, executable: false, user: true },
  sysRo: { mapped: true, writable: false, executable: false, user: false },
  sysRx: { mapped: true, writable: false, executable: true, user: false },
  sysRw: { mapped: true, writable: true, executable: false, user: false },
} as const;

function place(s: Sizes, pageTablesSize: number): MemoryLayout {
  const regions: Region[] = [];
  let cursor = 0;
  const add = (name: RegionName, size: number, perms: typeof PERMS[keyof typeof PERMS]): Span => {
    const r: Region = Object.freeze({ name, gpa: cursor, size, ...perms });
    regions.push(r);
    cursor += size;
    return Object.freeze({ gpa: r.gpa, size });
  };
  const nullPage = add('nullPage', PAGE_SIZE, PERMS.none);
  const pageTables = add('pageTables', pageTablesSize, PERMS.none);
  const sysTables = add('sysTables', PAGE_SIZE, PERMS.sysRo);
  const sysCode = add('sysCode', PAGE_SIZE, PERMS.sysRx);
  const exceptionStackGuard = add('exceptionStackGuard', PAGE_SIZE, PERMS.none);
  const exceptionStack = add('exceptionStack', s.exceptionStack, PERMS.sysRw);
  const peb = add('peb', PAGE_SIZE, PERMS.ro);
  if (s.fixedBase !== undefined) {
    if (s.fixedBase % PAGE_SIZE !== 0) {
      throw new ElfInvalidError(`fixed (ET_EXEC) image base 0x${s.fixedBase.toString(16)} is not 4 KiB aligned`);
    }
    if (s.fixedBase < cursor) {
      throw new ElfInvalidError(
        `fixed (ET_EXEC) image base 0x${s.fixedBase.toString(16)} lies below the end of the PEB ` +
        `(0x${cursor.toString(16)}); link the guest higher or build it as a static PIE`);
    }
    if (s.fixedBase > MAX_TOTAL_SIZE) {
      throw new ElfInvalidError(`fixed (ET_EXEC) image base 0x${s.fixedBase.toString(16)} is beyond the ` +
        `largest guest memory (0x${MAX_TOTAL_SIZE.toString(16)})`);
    }
    if (s.fixedBase > cursor) add('gap', s.fixedBase - cursor, PERMS.none);
  } else if (cursor % IMAGE_ALIGN !== 0) {
    add('gap', IMAGE_ALIGN - (cursor % IMAGE_ALIGN), PERMS.none);
  }
  const image = add('image', s.imageSpan, PERMS.none);
  // The image is mapped for ring 3, its permissions come from its segments.
  regions[regions.length - 1] = Object.freeze({ ...regions[regions.length - 1]!, mapped: true, user: true });
  const inputData = add('inputData', s.input, PERMS.rw);
  const outputData = add('outputData', s.output, PERMS.rw);
  const initData = s.initData > 0 ? add('initData', s.initData, PERMS.ro) : null;
  const heap = add('heap', s.heap, PERMS.rw);
  const stackGuard = add('stackGuard', PAGE_SIZE, PERMS.none);
  const stack = add('stack', s.stack, PERMS.rw);
  return Object.freeze({
    regions: Object.freeze(regions), nullPage, pageTables, sysTables, sysCode, exceptionStackGuard, exceptionStack,
    peb, image, inputData, outputData, initData, heap, stackGuard, stack,
    doorbell: Object.freeze({ gpa: cursor, size: PAGE_SIZE }), totalSize: cursor,
  });
}

/**
 * Plans the memory map for `config`.
 * @throws ConfigInvalidError (naming the field) for a size that is not an integer, not
 *   positive, below its minimum, above 1 GiB, an image span above 64 MiB, or a total above
 *   `MAX_TOTAL_SIZE`.
 * @throws ElfInvalidError when `image.fixedBase` is not page-aligned or lies below the end
 *   of the PEB page.
 */
export function planLayout(config: LayoutConfig): MemoryLayout {
  const sizes = validate(config);
  // The page-table area depends on the total, which depends on the area: grow it until it fits.
  let pageTablesSize = PAGE_SIZE;
  for (;;) {
    const layout = place(sizes, pageTablesSize);
    if (layout.totalSize > MAX_TOTAL_SIZE) {
      throw new ConfigInvalidError('totalSize',
        `the layout needs 0x${layout.totalSize.toString(16)} bytes, more than the maximum ` +
        `0x${MAX_TOTAL_SIZE.toString(16)} (1 GiB)`);
    }
    const needed = pageTableAreaSize(layout.doorbell.gpa + layout.doorbell.size);
    if (needed <= pageTablesSize) return layout;
    pageTablesSize = needed;
  }
}

function hex(n: number, width: number): string {
  return '0x' + n.toString(16).padStart(width, '0');
}

function human(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function perms(r: Region): string {
  if (!r.mapped) return 'unmapped';
  if (r.name === 'image') return 'user, per segment';
  return `${r.user ? 'user' : 'supervisor'} r${r.writable ? 'w' : '-'}${r.executable ? 'x' : '-'}${r.executable ? '' : ' NX'}`;
}

/** Renders the layout as a fixed-width ASCII table, one row per region, lowest address first. */
export function formatLayout(layout: MemoryLayout): string {
  const width = Math.max(8, layout.totalSize.toString(16).length);
  const head = ['region', 'start', 'end (excl.)', 'size', 'access'];
  const rows = layout.regions.map((r) =>
    [r.name, hex(r.gpa, width), hex(r.gpa + r.size, width), human(r.size), perms(r)]);
  rows.push(['doorbell', hex(layout.doorbell.gpa, width), hex(layout.doorbell.gpa + layout.doorbell.size, width),
    human(layout.doorbell.size), 'user -w- NX, no memory (MMIO exit)']);
  rows.push(['total', hex(0, width), hex(layout.totalSize, width), human(layout.totalSize), '']);
  const cols = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    '| ' + cells.map((c, i) => c.padEnd(cols[i]!)).join(' | ') + ' |';
  const rule = '+' + cols.map((c) => '-'.repeat(c + 2)).join('+') + '+';
  const body = rows.map(line);
  return [rule, line(head), rule, ...body.slice(0, -1), rule, body[body.length - 1]!, rule].join('\n');
}
