// The x86-64 memory corner: layout planner, page-table builder/walker, and the bridge from a layout plus image segments to mapped ranges. No KVM, no mmap.

import { ElfInvalidError } from '../../errors.js';
import { PAGE_SIZE, type MemoryLayout } from './layout.js';
import type { MappedRange } from './page-tables.js';

export {
  planLayout, formatLayout, pageUp, HYPERLIGHT_DEFAULTS, PAGE_SIZE, MAX_TOTAL_SIZE, MAX_IMAGE_SPAN,
  MIN_IO_BUFFER_SIZE, MIN_HEAP_SIZE, MIN_STACK_SIZE, MIN_EXCEPTION_STACK_SIZE, IMAGE_ALIGN,
  type LayoutConfig, type MemoryLayout, type Region, type RegionName, type Span,
} from './layout.js';
export {
  buildPageTables, pageTableAreaSize, walk, walkRanges, physReader, mapIntoTables, extraTablePages, type PhysAccess,
  PTE_PRESENT_BIT, PTE_PRESENT, PTE_WRITABLE_BIT, PTE_WRITABLE, PTE_USER_BIT, PTE_USER,
  PTE_ACCESSED_BIT, PTE_ACCESSED, PTE_DIRTY_BIT, PTE_DIRTY, PTE_PAGE_SIZE_BIT, PTE_PAGE_SIZE,
  PTE_NX_BIT, PTE_NX, PTE_ADDR_MASK, PTE_TABLE_FLAGS, PTE_LEAF_FLAGS,
  type MappedRange, type BuiltPageTables, type PhysReader, type Translation, type MappedSpan,
} from './page-tables.js';

/** What `mappedRangesFor` needs of a loaded image's segment (an `ElfImage` segment fits). */
export interface ImageSegmentPerms {
  /** Byte offset of the segment's first byte from the image base. */
  readonly offsetInImage: number;
  /** Bytes the segment occupies in memory. */
  readonly memSize: number;
  readonly writable: boolean;
  readonly executable: boolean;
}

/**
 * The ranges to hand to `buildPageTables` for `layout` with an image made of `segments`:
 * every mapped layout region with its permissions, and for the image each page touched by
 * a segment with the union of those segments' rights (pages no segment touches stay
 * unmapped). Ranges come out sorted and named.
 * @throws ElfInvalidError when a segment lies outside the layout's image span, or a page
 *   shared by segments would be both writable and executable.
 */
export function mappedRangesFor(layout: MemoryLayout, segments: readonly ImageSegmentPerms[]): MappedRange[] {
  const ranges: MappedRange[] = [];
  for (const region of layout.regions) {
    if (!region.mapped) continue;
    if (region.name === 'image') {
      ranges.push(...imageRanges(layout.image.gpa, layout.image.size, segments));
    } else {
      ranges.push({ gpa: region.gpa, size: region.size, writable: region.writable,
        executable: region.executable, user: region.user, name: region.name });
    }
  }
  ranges.push({ gpa: layout.doorbell.gpa, size: layout.doorbell.size, writable: true, executable: false, user: true,
    name: 'doorbell' });
  return ranges;
}

// Per-page rights: 0 = untouched, 1 = read, 2 = write, 4 = execute.
const R = 1;
const W = 2;
const X = 4;

function imageRanges(base: number, span: number, segments: readonly ImageSegmentPerms[]): MappedRange[] {
  const pages = new Uint8Array(span / PAGE_SIZE);
  for (const [i, s] of segments.entries()) {
    if (!Number.isInteger(s.offsetInImage) || !Number.isInteger(s.memSize) || s.offsetInImage < 0 ||
        s.memSize < 0 || s.offsetInImage + s.memSize > span) {
      throw new ElfInvalidError(`segment ${i} (offset 0x${s.offsetInImage.toString(16)}, ` +
        `0x${s.memSize.toString(16)} bytes) lies outside the image span 0x${span.toString(16)}`);
    }
    if (s.memSize === 0) continue;
    const first = Math.floor(s.offsetInImage / PAGE_SIZE);
    const last = Math.floor((s.offsetInImage + s.memSize - 1) / PAGE_SIZE);
    const bits = R | (s.writable ? W : 0) | (s.executable ? X : 0);
    for (let p = first; p <= last; p++) {
      const union = pages[p]! | bits;
      if ((union & (W | X)) === (W | X)) {
        throw new ElfInvalidError(`image page at offset 0x${(p * PAGE_SIZE).toString(16)} is shared by ` +
          'a writable and an executable segment; W^X forbids mapping it');
      }
      pages[p] = union;
    }
  }
  const out: MappedRange[] = [];
  let p = 0;
  while (p < pages.length) {
    const bits = pages[p]!;
    let q = p + 1;
    while (q < pages.length && pages[q] === bits) q++;
    if (bits !== 0) {
      const writable = (bits & W) !== 0;
      const executable = (bits & X) !== 0;
      out.push({ gpa: base + p * PAGE_SIZE, size: (q - p) * PAGE_SIZE, writable, executable, user: true,
        name: `image ${writable ? 'rw-' : executable ? 'r-x' : 'r--'}` });
    }
    p = q;
  }
  return out;
}
