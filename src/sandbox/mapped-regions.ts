// Host memory mapped into a running guest (mapRegion): a host buffer or a file as an extra KVM memory slot, user page-table entries for it, the PEB's region table; unmapped on close and by restore to an earlier snapshot.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { ConfigInvalidError } from '../errors.js';
import * as K from '../kvm/constants.js';
import { LIBC, type Mapping, mmap, munmap, viewOf } from '../kvm/libc.js';
import { PAGE_SIZE, hostView } from '../mem/guest-memory.js';
import { type PhysAccess, extraTablePages, mapIntoTables, pageUp } from '../mem/x86_64/index.js';
import { MAPPED_REGIONS_MAX, MAPPED_REGION_ENTRY_SIZE, MAPPED_REGION_WRITABLE, PEB_OFF_REGIONS } from './abi.js';
import type { Machine } from './machine.js';

/** Options of `MultiUseSandbox.mapRegion`. */
export interface MapRegionOptions {
  /** Let the guest write (a file is then copy-on-write: the file never changes). Default false. */
  writable?: boolean;
}

/** Highest end address of a mapped region (and its page tables): 512 GiB, the first PDPT's reach. */
const REGION_LIMIT = 2 ** 39;

interface Region {
  readonly id: number;
  readonly gpa: number;
  readonly size: number;
  readonly writable: boolean;
  readonly slot: number;
  readonly memory: Mapping;
  /** Page tables the region needed, in a slot of their own just above it (never mapped for the guest). */
  readonly tablesGpa: number;
  readonly tables: Mapping | undefined;
  /** Entries written into tables that existed before (cleared on unmap). */
  readonly touched: readonly number[];
}

/** The mapped regions of one machine. */
export class MappedRegions {
  readonly #m: Machine;
  readonly #regions: Region[] = [];
  #nextId = 1;
  #nextSlot = 1;

  constructor(machine: Machine) {
    this.#m = machine;
  }

  /** The id of the newest mapped region (0: none); a snapshot records it. */
  get lastId(): number {
    return this.#regions.length === 0 ? 0 : this.#regions[this.#regions.length - 1]!.id;
  }

  /** Whether region `id` is still mapped. */
  has(id: number): boolean {
    return this.#regions.some((r) => r.id === id);
  }

  get count(): number {
    return this.#regions.length;
  }

  /** Maps `source` at `guestAddress`; see MultiUseSandbox.mapRegion. Returns its size in bytes. */
  map(source: Uint8Array | string, guestAddress: bigint | number, options: MapRegionOptions): number {
    const writable = options.writable === true;
    const gpa = typeof guestAddress === 'bigint' ? Number(guestAddress) : guestAddress;
    if (!Number.isSafeInteger(gpa) || gpa % PAGE_SIZE !== 0) {
      throw new ConfigInvalidError('guestAddress', `must be a 4 KiB aligned address, got ${String(guestAddress)}`);
    }
    if (this.#regions.length >= MAPPED_REGIONS_MAX) throw new ConfigInvalidError('mapRegion', `at most ${MAPPED_REGIONS_MAX} regions`);
    const memory = hostMemory(source, writable);
    let tables: Mapping | undefined;
    const slot = this.#nextSlot;
    try {
      const size = memory.length;
      const pages = extraTablePages(gpa, size);
      const tablesGpa = gpa + size;
      this.#checkPlace(gpa, tablesGpa + pages * PAGE_SIZE);
      tables = mmap(pages * PAGE_SIZE, LIBC.PROT_READ | LIBC.PROT_WRITE, LIBC.MAP_PRIVATE | LIBC.MAP_ANONYMOUS);
      const { vm } = this.#m;
      vm.setUserMemoryRegion({
        slot, flags: writable ? 0 : K.KVM_MEM_READONLY, guestPhysAddr: BigInt(gpa), memorySize: BigInt(size),
        userspaceAddr: memory.address,
      });
      vm.setUserMemoryRegion({
        slot: slot + 1, flags: 0, guestPhysAddr: BigInt(tablesGpa), memorySize: BigInt(tables.length), userspaceAddr: tables.address,
      });
      this.#nextSlot += 2;
      let used = 0;
      const touched = mapIntoTables(this.#phys(tablesGpa, tables), Number(this.#m.cr3),
        { gpa, size, writable, executable: false, user: true, name: 'mapRegion' },
        () => tablesGpa + used++ * PAGE_SIZE, (t) => t >= tablesGpa && t < tablesGpa + tables!.length);
      this.#regions.push({ id: this.#nextId++, gpa, size, writable, slot, memory, tablesGpa, tables, touched });
      this.#writeTable();
      this.#flushTlb();
      return size;
    } catch (e) {
      if (this.#nextSlot !== slot) this.#deleteSlots(slot);
      if (tables) munmap(tables);
      munmap(memory);
      throw e;
    }
  }

  /** Unmaps every region newer than `id` (restore to a snapshot taken when `id` was the newest). */
  unmapNewerThan(id: number): void {
    let changed = false;
    while (this.#regions.length > 0 && this.#regions[this.#regions.length - 1]!.id > id) {
      this.#unmap(this.#regions.pop()!);
      changed = true;
    }
    this.#writeTable();
    if (changed) this.#flushTlb();
  }

  /** Unmaps everything (close). */
  closeAll(): void {
    this.unmapNewerThan(0);
  }

  #unmap(r: Region): void {
    const phys = this.#phys(r.tablesGpa, r.tables!);
    for (const at of r.touched) phys.write(at, 0n);
    this.#deleteSlots(r.slot);
    munmap(r.memory);
    if (r.tables) munmap(r.tables);
  }

  #deleteSlots(slot: number): void {
    for (const s of [slot, slot + 1]) {
      try {
        this.#m.vm.setUserMemoryRegion({ slot: s, flags: 0, guestPhysAddr: 0n, memorySize: 0n, userspaceAddr: 0n });
      } catch {
        // a slot that was never created: nothing to delete
      }
    }
  }

  #checkPlace(start: number, end: number): void {
    const low = this.#m.layout.doorbell.gpa + this.#m.layout.doorbell.size;
    if (start < low) {
      throw new ConfigInvalidError('guestAddress', `0x${start.toString(16)} lies in the sandbox's memory (below 0x${low.toString(16)})`);
    }
    if (end > REGION_LIMIT) throw new ConfigInvalidError('guestAddress', 'the region and its page tables must end below 512 GiB');
    for (const r of this.#regions) {
      const rEnd = r.tablesGpa + (r.tables?.length ?? 0);
      if (start < rEnd && r.gpa < end) {
        throw new ConfigInvalidError('guestAddress', `overlaps the region mapped at 0x${r.gpa.toString(16)} (with its page tables)`);
      }
    }
  }

  /** Entries by gpa: the sandbox's own memory, the new tables' pages, or those of earlier regions. */
  #phys(tablesGpa: number, tables: Mapping): PhysAccess {
    const main = hostView(this.#m.memory);
    // FFI: views of the tables' mappings (this region's and earlier ones'), used only during map().
    const areas = [{ gpa: tablesGpa, mapping: tables }, ...this.#regions.filter((r) => r.tables)
      .map((r) => ({ gpa: r.tablesGpa, mapping: r.tables! }))]
      .map((a) => ({ gpa: a.gpa, end: a.gpa + a.mapping.length, view: new DataView(viewOf(a.mapping).buffer) }));
    const at = (gpa: number): [DataView, number] => {
      if (gpa >= 0 && gpa + 8 <= main.byteLength) return [main, gpa];
      for (const a of areas) if (gpa >= a.gpa && gpa + 8 <= a.end) return [a.view, gpa - a.gpa];
      throw new ConfigInvalidError('pageTables', `table entry 0x${gpa.toString(16)} is outside the tables`);
    };
    return {
      read: (gpa) => { const [v, o] = at(gpa); return v.getBigUint64(o, true); },
      write: (gpa, value) => { const [v, o] = at(gpa); v.setBigUint64(o, value, true); },
    };
  }

  /** The PEB's region table (docs/guest-abi.md), rewritten whole. */
  #writeTable(): void {
    const view = hostView(this.#m.memory);
    const base = this.#m.layout.peb.gpa + PEB_OFF_REGIONS;
    view.setBigUint64(base, BigInt(this.#regions.length), true);
    for (let i = 0; i < MAPPED_REGIONS_MAX; i++) {
      const r = this.#regions[i];
      const at = base + 8 + i * MAPPED_REGION_ENTRY_SIZE;
      view.setBigUint64(at, r ? BigInt(r.gpa) : 0n, true);
      view.setBigUint64(at + 8, r ? BigInt(r.size) : 0n, true);
      view.setBigUint64(at + 16, r?.writable ? BigInt(MAPPED_REGION_WRITABLE) : 0n, true);
    }
  }

  /** Loads the special registers again, so the vCPU drops cached translations of changed tables. */
  #flushTlb(): void {
    const { vcpu } = this.#m;
    vcpu.setSregs(vcpu.getSregs());
  }
}

/** Page-aligned host memory for a region: a file mapped MAP_PRIVATE, or a copy of a buffer. */
function hostMemory(source: Uint8Array | string, writable: boolean): Mapping {
  const prot = LIBC.PROT_READ | (writable ? LIBC.PROT_WRITE : 0);
  if (typeof source === 'string') {
    let fd: number;
    try {
      fd = openSync(source, 'r');
    } catch (e) {
      throw new ConfigInvalidError('mapRegion', `cannot open ${source}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= 0 || size > REGION_LIMIT) throw new ConfigInvalidError('mapRegion', `${source} is empty or too large`);
      return mmap(pageUp(size), prot, LIBC.MAP_PRIVATE, fd, 0);
    } finally {
      closeSync(fd);
    }
  }
  if (!(source instanceof Uint8Array) || source.length === 0) {
    throw new ConfigInvalidError('mapRegion', 'source must be a non-empty Uint8Array or a file path');
  }
  const m = mmap(pageUp(source.length), LIBC.PROT_READ | LIBC.PROT_WRITE, LIBC.MAP_PRIVATE | LIBC.MAP_ANONYMOUS);
  viewOf(m).set(source);
  return m;
}
