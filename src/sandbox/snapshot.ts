// A sandbox snapshot: guest memory plus the vCPU state a ring-3 guest can change, tied to a memory layout; saved to and loaded from files (snapshot-file.ts has the format).
import { open as openFile, rename, unlink } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import type { Regs, Sregs } from '../kvm/structs.js';
import { LIBC, close as closeFd, memfdCreate, mmap, munmap, viewOf, type Mapping } from '../kvm/libc.js';
import { MemorySnapshot } from '../mem/snapshot.js';
import type { GuestCpuState } from './vcpu-state.js';
import type { MemoryLayout } from '../mem/x86_64/index.js';
import { MAX_TOTAL_SIZE } from '../mem/x86_64/index.js';
import { SnapshotFileError, SnapshotIncompatibleError } from './errors.js';
import { type SnapshotSource, OFF_META, decodeSnapshotFile, encodeSnapshotFile } from './snapshot-file.js';
import type { GuestBinary } from './guest-binary.js';

export type { SnapshotSource } from './snapshot-file.js';

/** A key that two sandboxes share exactly when their memory maps are the same. */
export function layoutKey(layout: MemoryLayout): string {
  let key = layoutKeys.get(layout);
  if (key === undefined) {
    key = layout.regions.map((r) => `${r.name}@${r.gpa.toString(16)}+${r.size.toString(16)}`).join(',');
    layoutKeys.set(layout, key);
  }
  return key;
}

/** layoutKey's results by layout object (layouts are never changed after planLayout). */
const layoutKeys = new WeakMap<MemoryLayout, string>();

/** Options of `Snapshot.load`. */
export interface SnapshotLoadOptions {
  /** Refuse (SnapshotIncompatibleError) a snapshot of any other guest ELF than this one. */
  expectBinary?: GuestBinary;
}

/** The memfd and read-only mapping behind a loaded snapshot's pages; released when it is collected. */
const backings = new FinalizationRegistry<{ fd: number; mapping: Mapping }>((b) => {
  try { munmap(b.mapping); } finally { closeFd(b.fd); }
});

/**
 * The state of a sandbox at one moment, from `MultiUseSandbox.snapshot()` or
 * `Snapshot.load()`. Immutable; restore it any number of times into the sandbox it came
 * from (or, with `restore(snapshot, { allowOtherSandbox: true })`, into another sandbox of
 * the same guest binary and memory layout), save it to a file, or start new sandboxes from
 * it (`MultiUseSandbox.fromSnapshot`).
 */
export class Snapshot {
  /** @internal the library's way to make one (the constructor is private): `MultiUseSandbox.snapshot()` and `Snapshot.load()`. */
  static of(layoutKey: string, memory: MemorySnapshot, cpu: GuestCpuState, source: SnapshotSource,
    mappedRegionsUpTo = 0, origin?: object): Snapshot {
    return new Snapshot(layoutKey, memory, cpu, source, mappedRegionsUpTo, origin);
  }

  // Private, so `new Snapshot()` does not type-check for users.
  private constructor(
    readonly layoutKey: string,
    readonly memory: MemorySnapshot,
    /** General and special registers and the XSAVE area (see vcpu-state.ts for why that is all). */
    readonly cpu: GuestCpuState,
    /** @internal what a file needs and what fromSnapshot builds a sandbox from. */
    readonly source: SnapshotSource,
    /** @internal the id of the newest region mapped (mapRegion) when it was taken; 0: none. */
    readonly mappedRegionsUpTo = 0,
    /**
     * @internal the identity of the sandbox it was taken from; undefined for a loaded file.
     * restore() into any other sandbox needs `{ allowOtherSandbox: true }`.
     */
    readonly origin: object | undefined = undefined,
  ) {
    Object.freeze(this);
  }

  /** The general registers captured. */
  get regs(): Readonly<Regs> {
    return this.cpu.regs;
  }

  /** The special registers captured. */
  get sregs(): Readonly<Sregs> {
    return this.cpu.sregs;
  }

  /** Bytes of guest memory held (all-zero pages are not stored). */
  get storedBytes(): number {
    return this.memory.storedPages * 4096;
  }

  /** SHA-256 (hex) of the guest ELF the snapshot was taken from. */
  get binaryHash(): string {
    return this.source.binaryHash();
  }

  /**
   * Writes the snapshot to `path` in the format of docs/snapshot-format.md (zero pages
   * omitted, SHA-256 checked), through a temporary file renamed into place, so a reader
   * never sees half a file.
   * @throws (rejects with) SnapshotFileError `io` when the file cannot be written;
   *   SnapshotIncompatibleError for a snapshot taken while regions were mapped.
   */
  async save(path: string): Promise<void> {
    if (this.mappedRegionsUpTo !== 0) {
      throw new SnapshotIncompatibleError('a snapshot taken while host regions were mapped (mapRegion) cannot be saved');
    }
    const bytes = encodeSnapshotFile(this);
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    try {
      const f = await openFile(tmp, 'wx', 0o600);
      try {
        await f.writeFile(bytes);
        await f.sync();
      } finally {
        await f.close();
      }
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw new SnapshotFileError('io', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Reads and validates a snapshot file (every field, the SHA-256, the host-owned pages).
   * Its memory pages are copied once into a private memfd, which sandboxes created from
   * the snapshot map copy-on-write (MAP_PRIVATE): they share its pages until they write.
   * @throws (rejects with) SnapshotFileError (`truncated`, `corrupt`, `checksum`, `io`),
   *   SnapshotIncompatibleError for another format version or another binary than
   *   `expectBinary`.
   */
  static async load(path: string, options: SnapshotLoadOptions = {}): Promise<Snapshot> {
    let bytes: Uint8Array;
    try {
      const f = await openFile(path, 'r');
      try {
        const { size } = await f.stat();
        if (size > MAX_TOTAL_SIZE + OFF_META + 0x10_0000 * 2) {
          throw new SnapshotFileError('corrupt', `${size} bytes is larger than any snapshot`);
        }
        bytes = new Uint8Array(size);
        let got = 0;
        while (got < size) {
          const { bytesRead } = await f.read(bytes, got, size - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got < size) bytes = bytes.subarray(0, got);
      } finally {
        await f.close();
      }
    } catch (e) {
      if (e instanceof SnapshotFileError) throw e;
      throw new SnapshotFileError('io', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    return Snapshot.fromFileBytes(bytes, options);
  }

  /** @internal decodes file bytes (what load() does after reading). */
  static fromFileBytes(bytes: Uint8Array, options: SnapshotLoadOptions = {}): Snapshot {
    const d = decodeSnapshotFile(bytes);
    const expected = options.expectBinary?.contentHash();
    if (expected !== undefined && expected !== d.source.binaryHash()) {
      throw new SnapshotIncompatibleError(`snapshot was taken from guest binary ${d.source.binaryHash().slice(0, 16)}..., ` +
        `not ${expected.slice(0, 16)}...`);
    }
    const memory = backedPages(d.pageOffsets, bytes.subarray(d.dataOffset, d.dataOffset + d.dataLength));
    return Snapshot.of(layoutKey(d.source.layout), memory, d.cpu, d.source);
  }
}

/** The stored pages in a private memfd, mapped read-only for restores; fds and mappings freed by GC. */
function backedPages(pageOffsets: Int32Array, data: Uint8Array): MemorySnapshot {
  if (data.length === 0) return MemorySnapshot.fromStoredPages(pageOffsets, data.slice());
  const fd = memfdCreate('hyperlight-snapshot');
  let mapping: Mapping | undefined;
  try {
    for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done, done);
    mapping = mmap(data.length, LIBC.PROT_READ, LIBC.MAP_SHARED, fd, 0);
    // FFI: a read-only view of the memfd mapping, data.length bytes; the mapping lives until
    // the last view of it (the MemorySnapshot's data and its subarrays) is collected (backings).
    const view = viewOf(mapping);
    const snap = MemorySnapshot.fromStoredPages(pageOffsets, view, { fd });
    backings.register(view.buffer, { fd, mapping }); // every view of the pages shares this buffer
    return snap;
  } catch (e) {
    if (mapping) munmap(mapping);
    closeFd(fd);
    throw e;
  }
}
