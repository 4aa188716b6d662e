// Snapshots of guest memory: capture (all-zero pages skipped), restore by full copy, and
// restore of only the pages a dirty bitmap names. Knows nothing of vCPUs or sandboxes.
import { GuestMemoryBoundsError } from '../errors.js';
import { PAGE_SIZE, type GuestMemory, hostBytes } from './guest-memory.js';

const WORDS_PER_PAGE = PAGE_SIZE / 4;
/** What a zero page is compared with and copied from (never written). */
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/**
 * Where a snapshot's stored pages also live as a file (a memfd holding exactly `data`, page
 * by page), so guest memory can map them copy-on-write instead of copying them.
 */
export interface PageBacking {
  /** An fd whose bytes [0, storedPages * 4096) equal the stored pages, in order. */
  readonly fd: number;
}

/** A run of stored pages that are consecutive both in guest memory and in the stored data. */
export interface StoredRun {
  /** First guest page. */
  readonly page: number;
  readonly pages: number;
  /** Byte offset of its first page in the stored data (and in the backing file). */
  readonly dataOffset: number;
}

/** An immutable copy of guest memory. Pages that were all zero are not stored. */
export class MemorySnapshot {
  /** Size of the memory it was taken from, in bytes. */
  readonly size: number;
  /** For page i: offset of its copy in `data`, or -1 when the page was all zero. */
  readonly #pageOffsets: Int32Array;
  readonly #data: Uint8Array;
  /** `#data` as a Buffer (no copy): its copy() and compare() take offsets, so restores make no views. */
  readonly #dataBuf: Buffer;
  /** Set for a snapshot loaded from a file: the pages can be mapped rather than copied. */
  readonly backing: PageBacking | undefined;
  /** storedRuns(), made at the first restoreIntoZeroed (the snapshot never changes). */
  #runs: StoredRun[] | undefined;

  private constructor(size: number, pageOffsets: Int32Array, data: Uint8Array, backing?: PageBacking) {
    this.size = size;
    this.#pageOffsets = pageOffsets;
    this.#data = data;
    this.#dataBuf = Buffer.from(data.buffer, data.byteOffset, data.length);
    this.backing = backing;
  }

  /**
   * A snapshot from stored pages: `pageOffsets[i]` is page i's offset in `data` (a multiple
   * of 4096) or -1 for a zero page; stored pages must appear in `data` in page order, each
   * once, and fill it exactly. `data` is kept, not copied (it may be a view of `backing`).
   * @throws GuestMemoryBoundsError when the index does not describe `data` that way.
   */
  static fromStoredPages(pageOffsets: Int32Array, data: Uint8Array, backing?: PageBacking): MemorySnapshot {
    let next = 0;
    for (let p = 0; p < pageOffsets.length; p++) {
      const at = pageOffsets[p]!;
      if (at === -1) continue;
      if (at !== next) throw new GuestMemoryBoundsError(at, PAGE_SIZE, data.length, `stored page data (page ${p} out of order)`);
      next += PAGE_SIZE;
    }
    if (next !== data.length) throw new GuestMemoryBoundsError(0, next, data.length, 'stored page data (length differs from the index)');
    return new MemorySnapshot(pageOffsets.length * PAGE_SIZE, pageOffsets, data, backing);
  }

  /** Whether page `p` is stored (it was not all zero). */
  storesPage(p: number): boolean {
    return (this.#pageOffsets[p] ?? -1) >= 0;
  }

  /** The stored pages as runs consecutive in memory and in the data, lowest page first. */
  storedRuns(): StoredRun[] {
    const runs: StoredRun[] = [];
    const offsets = this.#pageOffsets;
    for (let p = 0; p < offsets.length;) {
      const at = offsets[p]!;
      if (at < 0) { p++; continue; }
      let q = p + 1;
      while (q < offsets.length && offsets[q] === at + (q - p) * PAGE_SIZE) q++;
      runs.push({ page: p, pages: q - p, dataOffset: at });
      p = q;
    }
    return runs;
  }

  /** For tools and the file writer: page i's offset in the stored data, -1 for a zero page. */
  pageOffset(p: number): number {
    return this.#pageOffsets[p] ?? -1;
  }

  /** The stored pages, in page order (a view: do not modify). */
  get storedData(): Uint8Array {
    return this.#data;
  }

  /** Number of non-zero pages held. */
  get storedPages(): number {
    return this.#data.length / PAGE_SIZE;
  }

  /** Copies every non-zero page of `memory`. */
  static capture(memory: GuestMemory): MemorySnapshot {
    const bytes = hostBytes(memory);
    const pages = memory.size / PAGE_SIZE;
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const offsets = new Int32Array(pages).fill(-1);
    let stored = 0;
    for (let p = 0; p < pages; p++) {
      if (!isZeroPage(words, p)) offsets[p] = stored++ * PAGE_SIZE;
    }
    const data = new Uint8Array(stored * PAGE_SIZE);
    for (let p = 0; p < pages; p++) {
      const at = offsets[p]!;
      if (at >= 0) data.set(bytes.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), at);
    }
    return new MemorySnapshot(memory.size, offsets, data);
  }

  #checkSize(memory: GuestMemory): void {
    if (memory.size !== this.size) {
      throw new GuestMemoryBoundsError(0, this.size, memory.size, 'the memory being restored (size differs from the snapshot)');
    }
  }

  /** Writes page `p` of the snapshot back into `bytes`. */
  #restorePage(bytes: Uint8Array, p: number): void {
    const at = this.#pageOffsets[p]!;
    const dst = p * PAGE_SIZE;
    if (at < 0) bytes.fill(0, dst, dst + PAGE_SIZE);
    else this.#dataBuf.copy(bytes, dst, at, at + PAGE_SIZE);
  }

  /**
   * Copies the stored pages into memory that is still all zero (a fresh allocation), so
   * pages that were zero are not touched and stay unallocated.
   */
  restoreIntoZeroed(memory: GuestMemory): void {
    this.#checkSize(memory);
    if (memory.mappedFrom === this) return; // its pages are the snapshot's already (mapped)
    const bytes = hostBytes(memory);
    // One copy per run of consecutive pages (a template's are a few long runs), no views.
    for (const run of (this.#runs ??= this.storedRuns())) {
      this.#dataBuf.copy(bytes, run.page * PAGE_SIZE, run.dataOffset, run.dataOffset + run.pages * PAGE_SIZE);
    }
  }

  /** Restores all of memory: every page equals the snapshot afterwards. */
  restoreFull(memory: GuestMemory): void {
    this.#checkSize(memory);
    const bytes = hostBytes(memory);
    const pages = this.size / PAGE_SIZE;
    for (let p = 0; p < pages; p++) this.#restorePage(bytes, p);
  }

  /**
   * Restores only the pages set in `bitmap` (one bit per page, little-endian u64 words, as
   * KVM_GET_DIRTY_LOG returns). Pages not named must already equal the snapshot.
   * @returns the number of pages restored.
   */
  restoreDirty(memory: GuestMemory, bitmap: Uint8Array): number {
    this.#checkSize(memory);
    const bytes = hostBytes(memory);
    const pages = this.size / PAGE_SIZE;
    let restored = 0;
    const n = Math.min(bitmap.length, Math.ceil(pages / 8));
    for (let i = 0; i < n; i++) {
      let b = bitmap[i]!;
      while (b !== 0) {
        const bit = 31 - Math.clz32(b & -b);
        b &= b - 1;
        const p = i * 8 + bit;
        if (p < pages) {
          this.#restorePage(bytes, p);
          restored++;
        }
      }
    }
    return restored;
  }

  /** Restores the pages overlapping [offset, offset + length). */
  restoreRange(memory: GuestMemory, offset: number, length: number): void {
    this.#checkSize(memory);
    memory.check(offset, length);
    if (length === 0) return;
    const bytes = hostBytes(memory);
    const last = Math.floor((offset + length - 1) / PAGE_SIZE);
    for (let p = Math.floor(offset / PAGE_SIZE); p <= last; p++) this.#restorePage(bytes, p);
  }

  /**
   * Restores exactly the bytes [offset, offset + length) (any number of pages), writing
   * only the pages whose part of the range differs from the snapshot: a page that equals it
   * is read, not written, so another CPU that holds its cache lines keeps them (exitless
   * mode's working-set restore, where the guest runs on another CPU). Makes no views.
   * @returns the number of pages written.
   */
  restoreChanged(memory: GuestMemory, offset: number, length: number): number {
    this.#checkSize(memory);
    memory.check(offset, length);
    const bytes = hostBytes(memory);
    const end = offset + length;
    let written = 0;
    for (let a = offset; a < end;) {
      const p = Math.floor(a / PAGE_SIZE);
      const segEnd = Math.min(end, (p + 1) * PAGE_SIZE);
      const at = this.#pageOffsets[p]!;
      const from = a - p * PAGE_SIZE;
      const src = at < 0 ? ZERO_PAGE : this.#dataBuf;
      const srcAt = at < 0 ? from : at + from;
      const srcEnd = srcAt + (segEnd - a);
      if (src.compare(bytes, a, segEnd, srcAt, srcEnd) !== 0) {
        src.copy(bytes, a, srcAt, srcEnd);
        written++;
      }
      a = segEnd;
    }
    return written;
  }

  /** The snapshot's copy of a page (zeros when it was not stored), for tests and tools. */
  page(p: number): Uint8Array {
    const at = this.#pageOffsets[p];
    if (at === undefined) throw new GuestMemoryBoundsError(p * PAGE_SIZE, PAGE_SIZE, this.size, 'the snapshot');
    return at < 0 ? new Uint8Array(PAGE_SIZE) : this.#data.slice(at, at + PAGE_SIZE);
  }
}

function isZeroPage(words: Uint32Array, p: number): boolean {
  const end = (p + 1) * WORDS_PER_PAGE;
  for (let w = p * WORDS_PER_PAGE; w < end; w++) if (words[w] !== 0) return false;
  return true;
}
