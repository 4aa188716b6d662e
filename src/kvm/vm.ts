// A KVM VM fd: memory slots, dirty logs and vCPU creation. No policy.
import { KVM_CAP_SYNC_REGS, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from './constants.js';
import { KvmIoctlError, ResourceClosedError } from './errors.js';
import * as I from './ioctl.js';
import { kvm_clear_dirty_log, kvm_dirty_log, kvm_userspace_memory_region } from './layouts.generated.js';
import { addressOf, close, ioctlWithBuffer, ioctlWithInt, kickableSignalMask } from './libc.js';
import { encodeEnableCap } from './structs.js';
import { Vcpu } from './vcpu.js';

export interface UserMemoryRegion {
  slot: number;
  /** KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY. */
  flags?: number;
  guestPhysAddr: bigint;
  /** Bytes; 0 deletes the slot. */
  memorySize: bigint;
  /** Host-virtual address of the backing memory (page-aligned). */
  userspaceAddr: bigint;
}

interface DirtyBitmap { bytes: Uint8Array; pages: number; all?: Uint8Array }

/** Vm.capability's answers by capability (the same for every VM of the process). */
const capabilities = new Map<number, number>();

/** `ask(cap)` the first time, then its answer from `answers` (Vm.capability, Kvm.capability). */
export function askedOnce(answers: Map<number, number>, cap: number, ask: (cap: number) => number): number {
  let r = answers.get(cap);
  if (r === undefined) {
    r = ask(cap);
    answers.set(cap, r);
  }
  return r;
}

export class Vm {
  #fd: number;
  readonly #vcpuMmapSize: number;
  readonly #vcpus = new Set<Vcpu>();
  readonly #bitmaps = new Map<number, DirtyBitmap>();
  readonly #regionBuf = new Uint8Array(kvm_userspace_memory_region.size);
  readonly #regionView = new DataView(this.#regionBuf.buffer);
  readonly #dirtyBuf = new Uint8Array(kvm_dirty_log.size);
  readonly #dirtyView = new DataView(this.#dirtyBuf.buffer);
  readonly #clearBuf = new Uint8Array(kvm_clear_dirty_log.size);

  /** Use `Kvm.createVm()`. */
  constructor(fd: number, vcpuMmapSize: number) {
    this.#fd = fd;
    this.#vcpuMmapSize = vcpuMmapSize;
  }

  get fd(): number {
    if (this.#fd < 0) throw new ResourceClosedError('Vm');
    return this.#fd;
  }

  /** KVM_CHECK_EXTENSION on the VM fd (some capabilities are per VM). */
  checkExtension(cap: number): number {
    const r = ioctlWithInt(this.fd, I.KVM_CHECK_EXTENSION, cap);
    if (r < 0) throw new KvmIoctlError(I.KVM_CHECK_EXTENSION, -r);
    return r;
  }

  /**
   * checkExtension(cap), asked of the first VM that needs it and remembered: every VM here
   * is of the default type, and what KVM offers does not change while the process runs.
   */
  capability(cap: number): number {
    return askedOnce(capabilities, cap, (c) => this.checkExtension(c));
  }

  /** KVM_SET_USER_MEMORY_REGION: maps host memory at a guest-physical address. */
  setUserMemoryRegion(region: UserMemoryRegion): void {
    const F = kvm_userspace_memory_region.fields;
    const v = this.#regionView;
    v.setUint32(F.slot[0], region.slot, true);
    v.setUint32(F.flags[0], region.flags ?? 0, true);
    v.setBigUint64(F.guest_phys_addr[0], region.guestPhysAddr, true);
    v.setBigUint64(F.memory_size[0], region.memorySize, true);
    v.setBigUint64(F.userspace_addr[0], region.userspaceAddr, true);
    const r = ioctlWithBuffer(this.fd, I.KVM_SET_USER_MEMORY_REGION, this.#regionBuf);
    if (r < 0) {
      throw new KvmIoctlError(I.KVM_SET_USER_MEMORY_REGION, -r,
        `slot ${region.slot}, gpa 0x${region.guestPhysAddr.toString(16)}, size 0x${region.memorySize.toString(16)}`);
    }
    this.#dropBitmap(region.slot);
    if (((region.flags ?? 0) & 1) !== 0 && region.memorySize > 0n) {
      const pages = Number((region.memorySize + 4095n) / 4096n);
      const length = Math.ceil(pages / 64) * 8;
      this.#bitmaps.set(region.slot, { bytes: new Uint8Array(length), pages });
    }
  }

  /**
   * KVM_GET_DIRTY_LOG: the pages written since the last call (one bit per 4 KiB page,
   * little-endian u64 words), for a slot created with KVM_MEM_LOG_DIRTY_PAGES. The
   * returned view is reused by the next call for the same slot.
   */
  getDirtyLog(slot: number): Uint8Array {
    const bitmap = this.#bitmaps.get(slot);
    if (!bitmap) throw new KvmIoctlError(I.KVM_GET_DIRTY_LOG, 2 /* ENOENT */, `slot ${slot} has no dirty logging`);
    const F = kvm_dirty_log.fields;
    this.#dirtyView.setUint32(F.slot[0], slot, true);
    // FFI: the kernel writes the bitmap into this JS buffer during the (synchronous) ioctl;
    // its address is taken right before the call, so a moving GC cannot invalidate it.
    this.#dirtyView.setBigUint64(F.dirty_bitmap[0], addressOf(bitmap.bytes), true);
    const r = ioctlWithBuffer(this.fd, I.KVM_GET_DIRTY_LOG, this.#dirtyBuf);
    if (r < 0) throw new KvmIoctlError(I.KVM_GET_DIRTY_LOG, -r, `slot ${slot}`);
    return bitmap.bytes;
  }

  /**
   * KVM_CLEAR_DIRTY_LOG (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled): clears the dirty bits
   * of every page of `slot` and write-protects the pages again, so the next guest write to
   * each is logged anew.
   */
  clearDirtyLog(slot: number): void {
    const bitmap = this.#bitmaps.get(slot);
    if (!bitmap) throw new KvmIoctlError(I.KVM_CLEAR_DIRTY_LOG, 2 /* ENOENT */, `slot ${slot} has no dirty logging`);
    const F = kvm_clear_dirty_log.fields;
    const buf = this.#clearBuf;
    const v = new DataView(buf.buffer);
    bitmap.all ??= new Uint8Array(bitmap.bytes.length).fill(0xff);
    v.setUint32(F.slot[0], slot, true);
    v.setUint32(F.num_pages[0], bitmap.pages, true);
    v.setBigUint64(F.first_page[0], 0n, true);
    // FFI: the kernel reads the all-ones bitmap during the synchronous ioctl.
    v.setBigUint64(F.dirty_bitmap[0], addressOf(bitmap.all), true);
    const r = ioctlWithBuffer(this.fd, I.KVM_CLEAR_DIRTY_LOG, buf);
    if (r < 0) throw new KvmIoctlError(I.KVM_CLEAR_DIRTY_LOG, -r, `slot ${slot}`);
  }

  /** KVM_ENABLE_CAP on the VM fd with up to four arguments. */
  enableCap(cap: number, args: readonly bigint[] = []): void {
    const buf = encodeEnableCap(cap, args);
    const r = ioctlWithBuffer(this.fd, I.KVM_ENABLE_CAP, buf);
    if (r < 0) throw new KvmIoctlError(I.KVM_ENABLE_CAP, -r, `capability ${cap}`);
  }

  /** The fds of this VM's open vCPUs. */
  vcpuFds(): number[] {
    return [...this.#vcpus].map((v) => v.fd);
  }

  /** KVM_CREATE_VCPU, then mmap of its kvm_run area. */
  createVcpu(id = 0): Vcpu {
    const r = ioctlWithInt(this.fd, I.KVM_CREATE_VCPU, id);
    if (r < 0) throw new KvmIoctlError(I.KVM_CREATE_VCPU, -r, `vcpu ${id}`);
    let vcpu: Vcpu;
    try {
      const syncRegs = (this.capability(KVM_CAP_SYNC_REGS) & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) ===
        (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
      vcpu = new Vcpu(r, this.#vcpuMmapSize, () => this.#vcpus.delete(vcpu), syncRegs);
    } catch (e) {
      close(r);
      throw e;
    }
    try {
      // Kicks stay pending while the thread is outside KVM_RUN (blockKickSignal) and end
      // the next KVM_RUN: this mask lets them in there. No kick is ever lost.
      vcpu.setSignalMask(kickableSignalMask());
    } catch (e) {
      vcpu.close();
      throw e;
    }
    this.#vcpus.add(vcpu);
    return vcpu;
  }

  #dropBitmap(slot: number): void {
    this.#bitmaps.delete(slot);
  }

  /** Closes the VM's vCPUs (if still open), its dirty bitmaps, then the VM fd. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    for (const vcpu of [...this.#vcpus]) vcpu.close();
    for (const slot of [...this.#bitmaps.keys()]) this.#dropBitmap(slot);
    const fd = this.#fd;
    this.#fd = -1;
    close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
