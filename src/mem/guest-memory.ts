// Guest memory: one page-aligned anonymous mapping with PROT_NONE guard pages around it,
// and bounds-checked reads and writes. Knows nothing about layout or KVM slots.
import { GuestMemoryBoundsError } from '../errors.js';
import { LIBC, type Mapping, madvise, mincore, mmap, mmapOver, mprotect, munmap, retire, viewOf } from '../kvm/libc.js';
import { ResourceClosedError } from '../kvm/errors.js';
import type { MemorySnapshot } from './snapshot.js';

export const PAGE_SIZE = 4096;
const GUARD = PAGE_SIZE;

const utf8 = new TextDecoder('utf-8', { fatal: false });

// The library's own zero-copy access (not exported from the package): views it takes this
// way never outlive the memory, so close() can unmap at once. Set in GuestMemory's static block.
let internalBytes: (m: GuestMemory) => Uint8Array;
let internalView: (m: GuestMemory) => DataView;

/** The whole memory as bytes, for the library's own code (does not count as a view handed out). */
export function hostBytes(m: GuestMemory): Uint8Array {
  return internalBytes(m);
}

/** A DataView over the whole memory, for the library's own code. */
export function hostView(m: GuestMemory): DataView {
  return internalView(m);
}

/** A zero-copy view of `length` bytes at `offset`, for the library's own code. */
export function hostSlice(m: GuestMemory, offset: number, length: number): Uint8Array {
  m.check(offset, length);
  return internalBytes(m).subarray(offset, offset + length);
}

/**
 * Guest memory backed by mmap (private, anonymous, no-reserve), with a host-side
 * PROT_NONE guard page before and after it: a host bug that runs off the end faults
 * instead of touching other memory. Every accessor checks bounds and throws
 * GuestMemoryBoundsError (ERR_GUEST_MEMORY_BOUNDS) with the offset and length.
 */
export class GuestMemory {
  #mapping: Mapping | undefined;
  #bytes: Uint8Array;
  #view: DataView;
  /** Host-virtual address of byte 0 (after the leading guard page). */
  readonly hostAddress: bigint;
  /** Size in bytes (a multiple of the page size). */
  readonly size: number;
  /** The snapshot whose stored pages are mapped copy-on-write into this memory, if any. */
  readonly mappedFrom: MemorySnapshot | undefined;
  /** Whether a view went out through `bytes`, `view` or `slice()`: close() then retires the mapping instead of unmapping it. */
  #handedOut = false;

  static {
    internalBytes = (m) => {
      if (!m.#mapping) throw new ResourceClosedError('GuestMemory');
      return m.#bytes;
    };
    internalView = (m) => {
      if (!m.#mapping) throw new ResourceClosedError('GuestMemory');
      return m.#view;
    };
  }

  private constructor(mapping: Mapping, size: number, mappedFrom?: MemorySnapshot) {
    this.#mapping = mapping;
    this.size = size;
    this.mappedFrom = mappedFrom;
    this.hostAddress = mapping.address + BigInt(GUARD);
    // FFI: a view of the usable part of the mapping (not the guards), `size` bytes,
    // owned by this object; dropped in close() before munmap.
    this.#bytes = viewOf(mapping).subarray(GUARD, GUARD + size);
    this.#view = new DataView(this.#bytes.buffer, this.#bytes.byteOffset, size);
  }

  /** Maps `size` bytes (rounded up to whole pages) of zeroed memory between guard pages. */
  static allocate(size: number): GuestMemory {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`guest memory size must be a positive integer, got ${size}`);
    }
    const rounded = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    const mapping = mmap(rounded + 2 * GUARD, LIBC.PROT_NONE,
      LIBC.MAP_PRIVATE | LIBC.MAP_ANONYMOUS | LIBC.MAP_NORESERVE);
    try {
      mprotect(mapping, GUARD, rounded, LIBC.PROT_READ | LIBC.PROT_WRITE);
      return new GuestMemory(mapping, rounded);
    } catch (e) {
      munmap(mapping);
      throw e;
    }
  }

  /**
   * Memory holding `snapshot`'s contents, with its stored pages mapped MAP_PRIVATE from its
   * backing file (copy-on-write: sandboxes share them until they write) and zero pages
   * anonymous. Without a backing file, allocates and copies.
   */
  static fromSnapshot(snapshot: MemorySnapshot): GuestMemory {
    const backing = snapshot.backing;
    const memory = GuestMemory.allocate(snapshot.size);
    if (!backing) {
      snapshot.restoreIntoZeroed(memory);
      return memory;
    }
    const mapping = memory.#mapping!;
    try {
      for (const run of snapshot.storedRuns()) {
        mmapOver(mapping, GUARD + run.page * PAGE_SIZE, run.pages * PAGE_SIZE, LIBC.PROT_READ | LIBC.PROT_WRITE,
          LIBC.MAP_PRIVATE | LIBC.MAP_NORESERVE, backing.fd, run.dataOffset);
      }
    } catch (e) {
      memory.close();
      throw e;
    }
    memory.#mapping = undefined; // hand the mapping over to the new object
    return new GuestMemory(mapping, memory.size, snapshot);
  }

  /**
   * The whole memory as bytes (zero-copy). A view kept past close() cannot fault the process:
   * it then reads zeros and its writes go nowhere (the address range stays reserved until
   * every such view has been collected).
   */
  get bytes(): Uint8Array {
    const bytes = internalBytes(this);
    this.#handedOut = true;
    return bytes;
  }

  /** A DataView over the whole memory (zero-copy; after close() like `bytes`). */
  get view(): DataView {
    const view = internalView(this);
    this.#handedOut = true;
    return view;
  }

  /** Throws unless [offset, offset + length) lies inside the memory. */
  check(offset: number, length: number): void {
    if (!this.#mapping) throw new ResourceClosedError('GuestMemory');
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 &&
      offset + length <= this.size)) {
      throw new GuestMemoryBoundsError(offset, length, this.size);
    }
  }

  readU8(offset: number): number { this.check(offset, 1); return this.#view.getUint8(offset); }
  readU16(offset: number): number { this.check(offset, 2); return this.#view.getUint16(offset, true); }
  readU32(offset: number): number { this.check(offset, 4); return this.#view.getUint32(offset, true); }
  readU64(offset: number): bigint { this.check(offset, 8); return this.#view.getBigUint64(offset, true); }
  writeU8(offset: number, v: number): void { this.check(offset, 1); this.#view.setUint8(offset, v); }
  writeU16(offset: number, v: number): void { this.check(offset, 2); this.#view.setUint16(offset, v, true); }
  writeU32(offset: number, v: number): void { this.check(offset, 4); this.#view.setUint32(offset, v, true); }
  writeU64(offset: number, v: bigint): void {
    this.check(offset, 8);
    this.#view.setBigUint64(offset, BigInt.asUintN(64, v), true);
  }

  /** A zero-copy view of `length` bytes at `offset` (after close() like `bytes`). */
  slice(offset: number, length: number): Uint8Array {
    const bytes = hostSlice(this, offset, length);
    this.#handedOut = true;
    return bytes;
  }

  /** A copy of `length` bytes at `offset`. */
  copyOut(offset: number, length: number): Uint8Array {
    return hostSlice(this, offset, length).slice();
  }

  /** Copies `data` into guest memory at `offset`. */
  copyIn(offset: number, data: Uint8Array): void {
    this.check(offset, data.length);
    this.#bytes.set(data, offset);
  }

  /** Fills `length` bytes at `offset` with `value`. */
  fill(offset: number, length: number, value = 0): void {
    this.check(offset, length);
    this.#bytes.fill(value, offset, offset + length);
  }

  /**
   * Reads a NUL-terminated UTF-8 string starting at `offset`, looking at most `maxLength`
   * bytes (and never past the end of memory). Throws when no NUL is found in that window.
   */
  readCString(offset: number, maxLength: number): string {
    this.check(offset, 0);
    const end = Math.min(this.size, offset + maxLength);
    const nul = this.#bytes.subarray(offset, end).indexOf(0);
    if (nul < 0) throw new GuestMemoryBoundsError(offset, end - offset + 1, this.size, 'a NUL-terminated string window');
    return utf8.decode(this.#bytes.subarray(offset, offset + nul));
  }

  /**
   * Gives pages back to the kernel: they read as zero afterwards and stop counting as
   * resident (MADV_DONTNEED on private anonymous memory). Page-aligned ranges only. Not for
   * memory mapped from a snapshot (its pages would read as the snapshot's again).
   */
  discard(offset: number, length: number): void {
    this.check(offset, length);
    if (offset % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0) {
      throw new GuestMemoryBoundsError(offset, length, this.size, 'page-aligned guest memory');
    }
    if (!this.#mapping) throw new ResourceClosedError('GuestMemory');
    if (this.mappedFrom) throw new GuestMemoryBoundsError(offset, length, this.size, 'memory not mapped from a snapshot file');
    madvise(this.#mapping, GUARD + offset, length, LIBC.MADV_DONTNEED);
  }

  /**
   * Which pages are resident (have been touched and not discarded): `out[p]` bit 0 for page
   * `p` (mincore). A page that is not resident reads as zero (or, for memory mapped from a
   * snapshot, as the snapshot's page).
   */
  residentPages(out: Uint8Array = new Uint8Array(this.size / PAGE_SIZE)): Uint8Array {
    if (!this.#mapping) throw new ResourceClosedError('GuestMemory');
    mincore(this.#mapping, GUARD, this.size, out);
    return out;
  }

  /**
   * Releases the memory; idempotent. Unmapped at once unless a view was handed out
   * (`bytes`, `view`, `slice()`): then zero pages replace it, so that view reads zeros
   * instead of faulting, and the range is unmapped when the views are collected.
   */
  close(): void {
    const m = this.#mapping;
    if (!m) return;
    const buffer = this.#bytes.buffer;
    this.#mapping = undefined;
    this.#bytes = new Uint8Array(0);
    this.#view = new DataView(new ArrayBuffer(0));
    if (this.#handedOut) retire(m, buffer);
    else munmap(m);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
