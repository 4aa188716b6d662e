// Builds and walks x86-64 4-level page tables in a plain Uint8Array; it does not touch KVM, mmap or any live guest.
//
// Bit positions follow the Intel SDM Vol. 3A, §4.5 "4-Level Paging and 5-Level Paging",
// tables "Format of a PML4 Entry", "... PDPTE ...", "... PDE that Maps a 2-MByte Page",
// "... PDE that References a Page Table" and "Format of a 4-Level Page-Table Entry that
// Maps a 4-KByte Page"; access rights in §4.6, Accessed/Dirty flags in §4.8.

import { ConfigInvalidError, GuestMemoryBoundsError, HyperlightError } from '../../errors.js';

/** P: the entry is present (SDM Vol. 3A §4.5, bit 0 of every paging-structure entry). */
export const PTE_PRESENT_BIT = 0n;
export const PTE_PRESENT = 1n << PTE_PRESENT_BIT;
/** R/W: writes allowed (SDM §4.5 bit 1; with CR0.WP also for supervisor code, §4.6). */
export const PTE_WRITABLE_BIT = 1n;
export const PTE_WRITABLE = 1n << PTE_WRITABLE_BIT;
/**
 * U/S: user-mode access allowed (SDM §4.5 bit 2). Set on every non-leaf entry and on the
 * leaves of ranges marked `user` (the guest at CPL3); clear on the host's system area, so
 * ring 3 can neither read nor write it.
 */
export const PTE_USER_BIT = 2n;
export const PTE_USER = 1n << PTE_USER_BIT;
/** A: accessed (SDM §4.5 bit 5, §4.8). Pre-set so the CPU never writes it. */
export const PTE_ACCESSED_BIT = 5n;
export const PTE_ACCESSED = 1n << PTE_ACCESSED_BIT;
/** D: dirty (SDM §4.5 bit 6 of leaf entries, §4.8; ignored in non-leaf entries). Pre-set. */
export const PTE_DIRTY_BIT = 6n;
export const PTE_DIRTY = 1n << PTE_DIRTY_BIT;
/** PS: this PDPTE/PDE maps a 1 GiB/2 MiB page (SDM §4.5 bit 7; reserved in a PML4E). */
export const PTE_PAGE_SIZE_BIT = 7n;
export const PTE_PAGE_SIZE = 1n << PTE_PAGE_SIZE_BIT;
/** XD/NX: instruction fetches not allowed (SDM §4.5 bit 63, §4.6; needs EFER.NXE). */
export const PTE_NX_BIT = 63n;
export const PTE_NX = 1n << PTE_NX_BIT;
/** Physical-address bits 51:12 of an entry (SDM §4.5, MAXPHYADDR at most 52). */
export const PTE_ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** Flags of a non-leaf entry: present, writable and user (the leaf decides both), A and D set. */
export const PTE_TABLE_FLAGS = PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED | PTE_DIRTY;
/** Flags every leaf entry carries: present, supervisor, A and D set. */
export const PTE_LEAF_FLAGS = PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY;

const PAGE_4K = 0x1000;
const PAGE_2M = 0x20_0000;
const SPAN_PD = 0x4000_0000; // 1 GiB: one page directory
const SPAN_PDPT = 512 * SPAN_PD; // 512 GiB: one PDPT
/** First non-canonical lower-half address (48-bit virtual addresses). */
const LOWER_HALF_END = 2 ** 47;
const ENTRIES = 512;

/** A guest range to map, identity (gva = gpa). Both fields 4 KiB aligned. */
export interface MappedRange {
  readonly gpa: number;
  /** Bytes, > 0, a multiple of 4 KiB. */
  readonly size: number;
  readonly writable: boolean;
  readonly executable: boolean;
  /** Ring 3 may access it (U/S = 1 in its leaf entries); false: supervisor-only. */
  readonly user?: boolean;
  /** For error messages. */
  readonly name?: string;
}

export interface BuiltPageTables {
  /** Guest-physical address of the PML4 (the value for CR3). */
  readonly cr3: number;
  /** The page-table area, `area.size` bytes (a view of `target` when one was given). */
  readonly bytes: Uint8Array;
  /** Bytes of the area actually holding tables (from its start). */
  readonly used: number;
}

/**
 * Bytes the page-table area needs to map any set of ranges inside [0, totalSize), in the
 * worst case (all 4 KiB pages): one PML4 plus one PDPT per 512 GiB, one PD per 1 GiB and
 * one PT per 2 MiB window touched.
 */
export function pageTableAreaSize(totalSize: number): number {
  const windows = (span: number): number => Math.max(1, Math.ceil(totalSize / span));
  return (1 + windows(SPAN_PDPT) + windows(SPAN_PD) + windows(PAGE_2M)) * PAGE_4K;
}

function checkRanges(ranges: readonly MappedRange[], area: { gpa: number; size: number }): MappedRange[] {
  const sorted: MappedRange[] = [];
  ranges.forEach((r, i) => {
    const field = `ranges[${i}]${r.name ? ` (${r.name})` : ''}`;
    if (!Number.isInteger(r.gpa) || !Number.isInteger(r.size) || r.gpa < 0 || r.size <= 0 ||
        r.gpa % PAGE_4K !== 0 || r.size % PAGE_4K !== 0) {
      throw new ConfigInvalidError(field, `gpa 0x${r.gpa.toString(16)} size 0x${r.size.toString(16)} ` +
        'must be positive multiples of 4 KiB');
    }
    if (r.gpa + r.size > LOWER_HALF_END) {
      throw new ConfigInvalidError(field, 'ends beyond the 47-bit lower half of the address space');
    }
    if (r.writable && r.executable) {
      throw new ConfigInvalidError(field, 'is both writable and executable; W^X forbids it');
    }
    if (r.gpa < area.gpa + area.size && area.gpa < r.gpa + r.size) {
      throw new ConfigInvalidError(field, 'overlaps the page-table area, which must stay unmapped');
    }
    sorted.push(r);
  });
  sorted.sort((a, b) => a.gpa - b.gpa);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.gpa < prev.gpa + prev.size) {
      throw new ConfigInvalidError('ranges', `${cur.name ?? 'a range'} at 0x${cur.gpa.toString(16)} overlaps ` +
        `${prev.name ?? 'another range'} at 0x${prev.gpa.toString(16)}`);
    }
  }
  // Merge neighbours with equal permissions, so more of them can use 2 MiB pages.
  const merged: MappedRange[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && last.gpa + last.size === r.gpa && last.writable === r.writable &&
        last.executable === r.executable && (last.user ?? false) === (r.user ?? false)) {
      merged[merged.length - 1] = { ...last, size: last.size + r.size };
    } else {
      merged.push(r);
    }
  }
  return merged;
}

/**
 * Writes 4-level page tables identity-mapping `ranges` into the page-table area (its
 * guest-physical place is `area`; `target`, if given, is that area's memory, at least
 * `area.size` bytes, and is zeroed first). The PML4 is the area's first page; other tables
 * follow in allocation order. 2 MiB pages are used where an aligned 2 MiB window lies
 * inside one run of equal permissions. Leaves are user-accessible for `user` ranges and
 * supervisor-only otherwise, with A and D preset; writable ranges are NX. Everything outside `ranges` stays non-present.
 * @throws ConfigInvalidError for a misaligned/overlapping range, a writable+executable
 *   range (W^X), a range overlapping the area, or an area too small for the tables.
 */
export function buildPageTables(ranges: readonly MappedRange[], area: { gpa: number; size: number },
  target?: Uint8Array): BuiltPageTables {
  if (!Number.isInteger(area.gpa) || !Number.isInteger(area.size) || area.gpa < 0 ||
      area.size < PAGE_4K || area.gpa % PAGE_4K !== 0 || area.size % PAGE_4K !== 0) {
    throw new ConfigInvalidError('pageTables', 'area must be a non-empty, 4 KiB aligned range');
  }
  const bytes = target ? target.subarray(0, area.size) : new Uint8Array(area.size);
  if (bytes.length < area.size) {
    throw new GuestMemoryBoundsError(0, area.size, bytes.length, 'the page-table target');
  }
  const merged = checkRanges(ranges, area);
  bytes.fill(0);
  // FFI: none; a DataView over the caller's area, area.size bytes, used only in this call.
  const view = new DataView(bytes.buffer, bytes.byteOffset, area.size);
  let nextPage = 1; // page 0 is the PML4
  const entryAt = (table: number, index: number): number => table - area.gpa + index * 8;
  const childTable = (table: number, index: number): number => {
    const off = entryAt(table, index);
    const entry = view.getBigUint64(off, true);
    if (entry & PTE_PRESENT) return Number(entry & PTE_ADDR_MASK);
    if ((nextPage + 1) * PAGE_4K > area.size) {
      throw new ConfigInvalidError('pageTables',
        `area of 0x${area.size.toString(16)} bytes is too small for these ranges`);
    }
    const child = area.gpa + nextPage++ * PAGE_4K;
    view.setBigUint64(off, BigInt(child) | PTE_TABLE_FLAGS, true);
    return child;
  };
  const cr3 = area.gpa;
  for (const r of merged) {
    const leaf = PTE_LEAF_FLAGS | (r.writable ? PTE_WRITABLE : 0n) | (r.executable ? 0n : PTE_NX) |
      (r.user ? PTE_USER : 0n);
    const end = r.gpa + r.size;
    for (let addr = r.gpa; addr < end;) {
      const pdpt = childTable(cr3, Math.floor(addr / SPAN_PDPT) % ENTRIES);
      const pd = childTable(pdpt, Math.floor(addr / SPAN_PD) % ENTRIES);
      const pdIndex = Math.floor(addr / PAGE_2M) % ENTRIES;
      if (addr % PAGE_2M === 0 && end - addr >= PAGE_2M) {
        view.setBigUint64(entryAt(pd, pdIndex), BigInt(addr) | leaf | PTE_PAGE_SIZE, true);
        addr += PAGE_2M;
      } else {
        const pt = childTable(pd, pdIndex);
        view.setBigUint64(entryAt(pt, Math.floor(addr / PAGE_4K) % ENTRIES), BigInt(addr) | leaf, true);
        addr += PAGE_4K;
      }
    }
  }
  return { cr3, bytes, used: nextPage * PAGE_4K };
}

/** Reads the little-endian u64 at a guest-physical address. */
export type PhysReader = (gpa: number) => bigint;

/** A reader over the whole guest memory (index 0 = gpa 0). */
export function physReader(memory: Uint8Array): PhysReader {
  // FFI: none; a DataView over the caller's memory, valid while the caller keeps it.
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  return (gpa: number): bigint => {
    if (!Number.isInteger(gpa) || gpa < 0 || gpa + 8 > memory.byteLength) {
      throw new GuestMemoryBoundsError(gpa, 8, memory.byteLength, 'guest memory (page-table walk)');
    }
    return view.getBigUint64(gpa, true);
  };
}

export interface Translation {
  readonly gpa: number;
  /** 4096, 2 MiB or 1 GiB. */
  readonly pageSize: number;
  readonly writable: boolean;
  readonly executable: boolean;
  readonly user: boolean;
}

const LEVEL_SHIFTS = [39n, 30n, 21n, 12n] as const;

/**
 * Translates `gva` the way the CPU would (4-level paging, rights combined over all levels,
 * SDM §4.6). Returns null when some level is not present, the address is not canonical,
 * or a PML4E has the reserved PS bit set.
 * @throws GuestMemoryBoundsError when a table address lies outside the given memory.
 */
export function walk(memory: PhysReader | Uint8Array, cr3: number | bigint, gva: bigint | number): Translation | null {
  const read = typeof memory === 'function' ? memory : physReader(memory);
  const va = BigInt.asUintN(64, BigInt(gva));
  const top = va >> 47n;
  if (top !== 0n && top !== 0x1_ffffn) return null;
  let table = BigInt(cr3) & PTE_ADDR_MASK;
  let writable = true;
  let user = true;
  let executable = true;
  for (let level = 0; level < 4; level++) {
    const shift = LEVEL_SHIFTS[level]!;
    const entry = read(Number(table + ((va >> shift) & 0x1ffn) * 8n));
    if (!(entry & PTE_PRESENT)) return null;
    writable &&= (entry & PTE_WRITABLE) !== 0n;
    user &&= (entry & PTE_USER) !== 0n;
    executable &&= (entry & PTE_NX) === 0n;
    const huge = (entry & PTE_PAGE_SIZE) !== 0n;
    if (huge && level === 0) return null;
    if (level === 3 || huge) {
      const pageSize = 1n << shift;
      const frame = entry & PTE_ADDR_MASK & ~(pageSize - 1n);
      return { gpa: Number(frame | (va & (pageSize - 1n))), pageSize: Number(pageSize), writable, executable, user };
    }
    table = entry & PTE_ADDR_MASK;
  }
  return null;
}

/** A run of contiguous guest-virtual pages mapping contiguous guest-physical ones with equal rights. */
export interface MappedSpan {
  readonly gva: number;
  readonly gpa: number;
  readonly size: number;
  readonly writable: boolean;
  readonly executable: boolean;
  readonly user: boolean;
}

/**
 * Summarises the lower-half mappings reachable from `cr3` as maximal runs, lowest address
 * first (for `inspect`). Visits at most `maxLeaves` leaf entries (default 2^20) and
 * `maxTables` tables (default 4096), so tables that fan out absurdly cannot hang it.
 * @throws GuestMemoryBoundsError for a table outside the memory; HyperlightError
 *   ERR_PAGE_TABLES_TOO_LARGE past either limit.
 */
export function walkRanges(memory: PhysReader | Uint8Array, cr3: number | bigint,
  opts: { maxLeaves?: number; maxTables?: number } = {}): MappedSpan[] {
  const read = typeof memory === 'function' ? memory : physReader(memory);
  const maxLeaves = opts.maxLeaves ?? 1 << 20;
  const maxTables = opts.maxTables ?? 4096;
  const out: MappedSpan[] = [];
  let leaves = 0;
  let tables = 0;
  const emit = (gva: number, gpa: number, size: number, writable: boolean, executable: boolean, user: boolean): void => {
    if (++leaves > maxLeaves) {
      throw new HyperlightError('ERR_PAGE_TABLES_TOO_LARGE', `more than ${maxLeaves} leaf entries`);
    }
    const last = out[out.length - 1];
    if (last && last.gva + last.size === gva && last.gpa + last.size === gpa && last.writable === writable &&
        last.executable === executable && last.user === user) {
      out[out.length - 1] = { ...last, size: last.size + size };
    } else {
      out.push({ gva, gpa, size, writable, executable, user });
    }
  };
  const visit = (table: bigint, level: number, base: number, w: boolean, x: boolean, u: boolean): void => {
    if (++tables > maxTables) {
      throw new HyperlightError('ERR_PAGE_TABLES_TOO_LARGE', `more than ${maxTables} page tables`);
    }
    const shift = LEVEL_SHIFTS[level]!;
    const span = 2 ** Number(shift);
    const count = level === 0 ? ENTRIES / 2 : ENTRIES; // lower half only
    for (let i = 0; i < count; i++) {
      const entry = read(Number(table + BigInt(i) * 8n));
      if (!(entry & PTE_PRESENT)) continue;
      const ww = w && (entry & PTE_WRITABLE) !== 0n;
      const xx = x && (entry & PTE_NX) === 0n;
      const uu = u && (entry & PTE_USER) !== 0n;
      const gva = base + i * span;
      const huge = (entry & PTE_PAGE_SIZE) !== 0n;
      if (huge && level === 0) continue;
      if (level === 3 || huge) {
        const frame = Number(entry & PTE_ADDR_MASK & ~(BigInt(span) - 1n));
        emit(gva, frame, span, ww, xx, uu);
      } else {
        visit(entry & PTE_ADDR_MASK, level + 1, gva, ww, xx, uu);
      }
    }
  };
  visit(BigInt(cr3) & PTE_ADDR_MASK, 0, 0, true, true, true);
  return out;
}

/** Reads and writes u64 page-table entries by guest-physical address, across memory slots. */
export interface PhysAccess {
  read(gpa: number): bigint;
  write(gpa: number, value: bigint): void;
}

/**
 * Worst-case number of new table pages `mapIntoTables` needs for [gpa, gpa + size) below
 * 512 GiB: one PD per 1 GiB window and one PT per 2 MiB window touched.
 */
export function extraTablePages(gpa: number, size: number): number {
  const windows = (span: number): number => Math.floor((gpa + size - 1) / span) - Math.floor(gpa / span) + 1;
  return windows(SPAN_PD) + windows(PAGE_2M);
}

/**
 * Adds an identity mapping of `range` to live 4-level tables at `cr3` (e.g. a host region
 * mapped into a running guest), below 512 GiB only (the PML4's first PDPT must exist).
 * Tables it needs come from `allocTable` (the gpa of a zeroed page). Returns the gpas of
 * the entries it wrote in tables that existed before (the caller clears them to unmap).
 * @throws ConfigInvalidError when the range is misaligned, beyond 512 GiB, or overlaps a
 *   present mapping.
 */
export function mapIntoTables(mem: PhysAccess, cr3: number, range: MappedRange, allocTable: () => number,
  isNew: (tableGpa: number) => boolean): number[] {
  const { gpa, size } = range;
  if (!Number.isInteger(gpa) || !Number.isInteger(size) || gpa % PAGE_4K !== 0 || size % PAGE_4K !== 0 || size <= 0 ||
      gpa + size > SPAN_PDPT) {
    throw new ConfigInvalidError(range.name ?? 'range', 'must be 4 KiB aligned, non-empty and below 512 GiB');
  }
  if (range.writable && range.executable) throw new ConfigInvalidError(range.name ?? 'range', 'W^X forbids writable and executable');
  const touched: number[] = [];
  const set = (table: number, index: number, value: bigint): void => {
    const at = table + index * 8;
    if (mem.read(at) & PTE_PRESENT) {
      throw new ConfigInvalidError(range.name ?? 'range', `overlaps a present mapping (entry at 0x${at.toString(16)})`);
    }
    mem.write(at, value);
    if (!isNew(table)) touched.push(at);
  };
  const child = (table: number, index: number): number => {
    const entry = mem.read(table + index * 8);
    if (entry & PTE_PRESENT) {
      if (entry & PTE_PAGE_SIZE) throw new ConfigInvalidError(range.name ?? 'range', 'overlaps a present large page');
      return Number(entry & PTE_ADDR_MASK);
    }
    const page = allocTable();
    set(table, index, BigInt(page) | PTE_TABLE_FLAGS);
    return page;
  };
  const leaf = PTE_LEAF_FLAGS | PTE_USER | (range.writable ? PTE_WRITABLE : 0n) | (range.executable ? 0n : PTE_NX);
  const pml4e = mem.read(cr3);
  if (!(pml4e & PTE_PRESENT)) throw new ConfigInvalidError('pageTables', 'the first PML4 entry is not present');
  const pdpt = Number(pml4e & PTE_ADDR_MASK);
  const end = gpa + size;
  for (let addr = gpa; addr < end;) {
    const pd = child(pdpt, Math.floor(addr / SPAN_PD) % ENTRIES);
    const pdIndex = Math.floor(addr / PAGE_2M) % ENTRIES;
    if (addr % PAGE_2M === 0 && end - addr >= PAGE_2M && !(mem.read(pd + pdIndex * 8) & PTE_PRESENT)) {
      set(pd, pdIndex, BigInt(addr) | leaf | PTE_PAGE_SIZE);
      addr += PAGE_2M;
    } else {
      const pt = child(pd, pdIndex);
      set(pt, Math.floor(addr / PAGE_4K) % ENTRIES, BigInt(addr) | leaf);
      addr += PAGE_4K;
    }
  }
  return touched;
}
