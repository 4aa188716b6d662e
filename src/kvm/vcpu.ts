// A KVM vCPU fd: registers, CPUID, MSRs, FPU, debug, translation and KVM_RUN with its
// decoded exit. Buffers are made once per vCPU; run() allocates nothing.
import { KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from './constants.js';
import { KvmIoctlError, ResourceClosedError } from './errors.js';
import { ExitDecoder, type VcpuExit } from './exit.js';
import * as I from './ioctl.js';
import {
  kvm_debugregs, kvm_fpu, kvm_guest_debug, kvm_msr_entry, kvm_msrs, kvm_regs, kvm_run, kvm_sregs,
  kvm_translation, kvm_vcpu_events, kvm_xcr, kvm_xcrs, kvm_xsave,
} from './layouts.generated.js';
import { LIBC, type Mapping, close, ioctlOnce, ioctlWithBuffer, ioctlWithInt, mmap, munmap, retire, viewOf } from './libc.js';
import {
  type CpuidEntry, type Regs, type Sregs, decodeRegs, decodeSregs, emptyRegs, encodeCpuid, encodeEnableCap, encodeRegs,
  encodeSregs,
} from './structs.js';

const EINTR = 4;

export interface Fpu {
  /** x87 registers, 8 x 16 bytes. */
  fpr: Uint8Array;
  fcw: number; fsw: number; ftwx: number; lastOpcode: number; lastIp: bigint; lastDp: bigint;
  /** XMM registers, 16 x 16 bytes. */
  xmm: Uint8Array;
  mxcsr: number;
}
export interface MsrEntry { index: number; data: bigint }
/** One extended control register (kvm_xcr): XCR0 is `xcr: 0`. */
export interface XcrEntry { xcr: number; value: bigint }
export interface Translation { physicalAddress: bigint; valid: boolean; writeable: boolean; usermode: boolean }
export interface GuestDebug { control: number; debugreg?: readonly bigint[] }
/** Debug registers (kvm_debugregs): DR0-DR3 in `db`. */
export interface DebugRegs { db: readonly bigint[]; dr6: bigint; dr7: bigint }

export class Vcpu {
  #fd: number;
  #run: Mapping | undefined;
  readonly #runBytes: Uint8Array;
  /** Whether `kvmRun` handed the view out: close() then retires the mapping (libc.ts: retire). */
  #runHandedOut = false;
  readonly #decoder: ExitDecoder;
  readonly #onClose: () => void;
  readonly #regsBuf = new Uint8Array(kvm_regs.size);
  readonly #regsView = new DataView(this.#regsBuf.buffer);
  readonly #sregsBuf = new Uint8Array(kvm_sregs.size);
  readonly #sregsView = new DataView(this.#sregsBuf.buffer);
  readonly #runView: DataView;
  readonly #syncRegsView: DataView;
  readonly #syncSregsView: DataView;
  /** Whether KVM_CAP_SYNC_REGS is available (else syncRegs/syncSregs use the ioctls). */
  readonly hasSyncRegs: boolean;

  /** Use `vm.createVcpu()`. Maps the vCPU's kvm_run area (`mmapSize` bytes). */
  constructor(fd: number, mmapSize: number, onClose: () => void, hasSyncRegs = false) {
    this.#fd = fd;
    this.#onClose = onClose;
    this.hasSyncRegs = hasSyncRegs;
    this.#run = mmap(mmapSize, LIBC.PROT_READ | LIBC.PROT_WRITE, LIBC.MAP_SHARED, fd, 0);
    // FFI: kvm_run plus its data pages, `mmapSize` bytes shared with the kernel; owned by
    // this vCPU and unmapped in close() (retired instead once `kvmRun` handed it out).
    this.#runBytes = viewOf(this.#run);
    this.#decoder = new ExitDecoder(this.#runBytes);
    const b = this.#runBytes;
    this.#runView = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.#syncRegsView = new DataView(b.buffer, b.byteOffset + kvm_run.fields['s.regs.regs'][0], kvm_regs.size);
    this.#syncSregsView = new DataView(b.buffer, b.byteOffset + kvm_run.fields['s.regs.sregs'][0], kvm_sregs.size);
  }

  #pendingSync(): number {
    return Number(this.#runView.getBigUint64(kvm_run.fields.kvm_dirty_regs[0], true));
  }

  #clearPendingSync(bits: number): void {
    const at = kvm_run.fields.kvm_dirty_regs[0];
    const v = this.#runView.getBigUint64(at, true);
    if ((Number(v) & bits) !== 0) this.#runView.setBigUint64(at, v & ~BigInt(bits), true);
  }

  #markPendingSync(bits: number): void {
    const at = kvm_run.fields.kvm_dirty_regs[0];
    this.#runView.setBigUint64(at, this.#runView.getBigUint64(at, true) | BigInt(bits), true);
  }

  /**
   * Sets the general registers for the next KVM_RUN through kvm_run's sync area
   * (KVM_CAP_SYNC_REGS): no ioctl now, KVM loads them on entry. Falls back to
   * KVM_SET_REGS when the capability is missing. getRegs() sees the pending values.
   */
  syncRegs(regs: Regs | Uint8Array): void {
    if (regs instanceof Uint8Array) {
      if (regs.length !== kvm_regs.size) throw new RangeError(`kvm_regs bytes must be ${kvm_regs.size} long`);
      if (!this.hasSyncRegs) return this.setRegs(decodeRegs(new DataView(regs.buffer, regs.byteOffset, regs.length)));
      this.#runBytes.set(regs, kvm_run.fields['s.regs.regs'][0]);
    } else {
      if (!this.hasSyncRegs) return this.setRegs(regs);
      encodeRegs(this.#syncRegsView, regs);
    }
    this.#markPendingSync(KVM_SYNC_X86_REGS);
  }

  /** Like syncRegs, for the special registers (KVM_SYNC_X86_SREGS); bytes are a kvm_sregs. */
  syncSregs(sregs: Sregs | Uint8Array): void {
    if (sregs instanceof Uint8Array) {
      if (sregs.length !== kvm_sregs.size) throw new RangeError(`kvm_sregs bytes must be ${kvm_sregs.size} long`);
      if (!this.hasSyncRegs) return this.setSregs(decodeSregs(new DataView(sregs.buffer, sregs.byteOffset, sregs.length)));
      this.#runBytes.set(sregs, kvm_run.fields['s.regs.sregs'][0]);
    } else {
      if (!this.hasSyncRegs) return this.setSregs(sregs);
      encodeSregs(this.#syncSregsView, sregs);
    }
    this.#markPendingSync(KVM_SYNC_X86_SREGS);
  }

  get fd(): number {
    if (this.#fd < 0) throw new ResourceClosedError('Vcpu');
    return this.#fd;
  }

  /**
   * The raw kvm_run area (for tools; the run loop uses `run()`). A view kept past close()
   * cannot fault the process: it then reads zeros (the vCPU is released; the address range
   * stays reserved until the view is collected).
   */
  get kvmRun(): Uint8Array {
    if (!this.#run) throw new ResourceClosedError('Vcpu');
    this.#runHandedOut = true;
    return this.#runBytes;
  }

  /** @internal where kvm_run is mapped (async/reclaim.ts), without handing out a view. */
  get kvmRunArea(): { readonly address: bigint; readonly length: number } {
    if (!this.#run) throw new ResourceClosedError('Vcpu');
    return { address: this.#run.address, length: this.#run.length };
  }

  private ioctlBuf(request: number, buf: Uint8Array): void {
    const r = ioctlWithBuffer(this.fd, request, buf);
    if (r < 0) throw new KvmIoctlError(request, -r);
  }

  /** KVM_GET_REGS. Pass `out` to reuse an object (no allocation). */
  getRegs(out?: Regs): Regs {
    if ((this.#pendingSync() & KVM_SYNC_X86_REGS) !== 0) return decodeRegs(this.#syncRegsView, out ?? emptyRegs());
    this.ioctlBuf(I.KVM_GET_REGS, this.#regsBuf);
    return decodeRegs(this.#regsView, out ?? emptyRegs());
  }

  /** KVM_SET_REGS. */
  setRegs(regs: Regs): void {
    this.#clearPendingSync(KVM_SYNC_X86_REGS);
    encodeRegs(this.#regsView, regs);
    this.ioctlBuf(I.KVM_SET_REGS, this.#regsBuf);
  }

  /** KVM_GET_SREGS. */
  getSregs(): Sregs {
    if ((this.#pendingSync() & KVM_SYNC_X86_SREGS) !== 0) return decodeSregs(this.#syncSregsView);
    this.ioctlBuf(I.KVM_GET_SREGS, this.#sregsBuf);
    return decodeSregs(this.#sregsView);
  }

  /** KVM_SET_SREGS. */
  setSregs(sregs: Sregs): void {
    this.#clearPendingSync(KVM_SYNC_X86_SREGS);
    encodeSregs(this.#sregsView, sregs);
    this.ioctlBuf(I.KVM_SET_SREGS, this.#sregsBuf);
  }

  /** KVM_GET_FPU. */
  getFpu(): Fpu {
    const buf = new Uint8Array(kvm_fpu.size);
    this.ioctlBuf(I.KVM_GET_FPU, buf);
    const v = new DataView(buf.buffer);
    const F = kvm_fpu.fields;
    return {
      fpr: buf.slice(F.fpr[0], F.fpr[0] + F.fpr[1]),
      fcw: v.getUint16(F.fcw[0], true), fsw: v.getUint16(F.fsw[0], true),
      ftwx: v.getUint8(F.ftwx[0]), lastOpcode: v.getUint16(F.last_opcode[0], true),
      lastIp: v.getBigUint64(F.last_ip[0], true), lastDp: v.getBigUint64(F.last_dp[0], true),
      xmm: buf.slice(F.xmm[0], F.xmm[0] + F.xmm[1]), mxcsr: v.getUint32(F.mxcsr[0], true),
    };
  }

  /** KVM_SET_FPU. */
  setFpu(fpu: Fpu): void {
    const buf = new Uint8Array(kvm_fpu.size);
    const v = new DataView(buf.buffer);
    const F = kvm_fpu.fields;
    buf.set(fpu.fpr.subarray(0, F.fpr[1]), F.fpr[0]);
    v.setUint16(F.fcw[0], fpu.fcw, true);
    v.setUint16(F.fsw[0], fpu.fsw, true);
    v.setUint8(F.ftwx[0], fpu.ftwx);
    v.setUint16(F.last_opcode[0], fpu.lastOpcode, true);
    v.setBigUint64(F.last_ip[0], fpu.lastIp, true);
    v.setBigUint64(F.last_dp[0], fpu.lastDp, true);
    buf.set(fpu.xmm.subarray(0, F.xmm[1]), F.xmm[0]);
    v.setUint32(F.mxcsr[0], fpu.mxcsr, true);
    this.ioctlBuf(I.KVM_SET_FPU, buf);
  }

  /**
   * KVM_GET_XSAVE (KVM_CAP_XSAVE): the x87/SSE/AVX state in XSAVE format (the 4 KiB
   * kvm_xsave region). Writes into `out` when given (4096 bytes), else a new buffer.
   */
  getXsave(out?: Uint8Array): Uint8Array {
    const buf = out ?? new Uint8Array(kvm_xsave.size);
    if (buf.length !== kvm_xsave.size) throw new RangeError(`kvm_xsave is ${kvm_xsave.size} bytes`);
    this.ioctlBuf(I.KVM_GET_XSAVE, buf);
    return buf;
  }

  /** KVM_SET_XSAVE (KVM_CAP_XSAVE): loads a kvm_xsave region from getXsave(). */
  setXsave(region: Uint8Array): void {
    if (region.length !== kvm_xsave.size) throw new RangeError(`kvm_xsave is ${kvm_xsave.size} bytes`);
    this.ioctlBuf(I.KVM_SET_XSAVE, region);
  }

  /** KVM_GET_XCRS (KVM_CAP_XCRS): the extended control registers, XCR0 first. */
  getXcrs(): XcrEntry[] {
    const buf = new Uint8Array(kvm_xcrs.size);
    this.ioctlBuf(I.KVM_GET_XCRS, buf);
    const v = new DataView(buf.buffer);
    const n = Math.min(v.getUint32(kvm_xcrs.fields.nr_xcrs[0], true), 16);
    const at = kvm_xcrs.fields.xcrs[0];
    return Array.from({ length: n }, (_, i) => ({
      xcr: v.getUint32(at + i * kvm_xcr.size + kvm_xcr.fields.xcr[0], true),
      value: v.getBigUint64(at + i * kvm_xcr.size + kvm_xcr.fields.value[0], true),
    }));
  }

  /** KVM_SET_XCRS (KVM_CAP_XCRS), e.g. `[{ xcr: 0, value: 7n }]` for x87|SSE|AVX. */
  setXcrs(xcrs: readonly XcrEntry[]): void {
    const buf = new Uint8Array(kvm_xcrs.size);
    const v = new DataView(buf.buffer);
    v.setUint32(kvm_xcrs.fields.nr_xcrs[0], xcrs.length, true);
    const at = kvm_xcrs.fields.xcrs[0];
    xcrs.slice(0, 16).forEach((x, i) => {
      v.setUint32(at + i * kvm_xcr.size + kvm_xcr.fields.xcr[0], x.xcr, true);
      v.setBigUint64(at + i * kvm_xcr.size + kvm_xcr.fields.value[0], x.value, true);
    });
    this.ioctlBuf(I.KVM_SET_XCRS, buf);
  }

  /** KVM_GET_VCPU_EVENTS: pending exceptions, interrupts, NMIs and SMIs as raw kvm_vcpu_events bytes. */
  getVcpuEvents(): Uint8Array {
    const buf = new Uint8Array(kvm_vcpu_events.size);
    this.ioctlBuf(I.KVM_GET_VCPU_EVENTS, buf);
    return buf;
  }

  /** KVM_SET_VCPU_EVENTS from raw kvm_vcpu_events bytes (getVcpuEvents()). */
  setVcpuEvents(events: Uint8Array): void {
    if (events.length !== kvm_vcpu_events.size) throw new RangeError(`kvm_vcpu_events is ${kvm_vcpu_events.size} bytes`);
    this.ioctlBuf(I.KVM_SET_VCPU_EVENTS, events.slice());
  }

  /** KVM_ENABLE_CAP on the vCPU fd (e.g. KVM_CAP_ENFORCE_PV_FEATURE_CPUID with args [1]). */
  enableCap(cap: number, args: readonly bigint[] = []): void {
    const buf = encodeEnableCap(cap, args);
    this.ioctlBuf(I.KVM_ENABLE_CAP, buf);
  }

  /** KVM_SET_CPUID2: the CPUID the guest sees (entries, or a kvm_cpuid2 already encoded). */
  setCpuid2(entries: readonly CpuidEntry[] | Uint8Array): void {
    this.ioctlBuf(I.KVM_SET_CPUID2, entries instanceof Uint8Array ? entries : encodeCpuid(entries));
  }

  /** KVM_GET_MSRS for the given MSR indices. */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const buf = new Uint8Array(kvm_msrs.size + indices.length * kvm_msr_entry.size);
    const v = new DataView(buf.buffer);
    v.setUint32(kvm_msrs.fields.nmsrs[0], indices.length, true);
    const at = (i: number): number => kvm_msrs.fields.entries[0] + i * kvm_msr_entry.size;
    indices.forEach((index, i) => v.setUint32(at(i) + kvm_msr_entry.fields.index[0], index, true));
    const r = ioctlWithBuffer(this.fd, I.KVM_GET_MSRS, buf);
    if (r < 0) throw new KvmIoctlError(I.KVM_GET_MSRS, -r);
    if (r !== indices.length) {
      throw new KvmIoctlError(I.KVM_GET_MSRS, 22, `read ${r} of ${indices.length} MSRs; MSR 0x${indices[r]?.toString(16)} is not supported`);
    }
    return indices.map((index, i) => ({ index, data: v.getBigUint64(at(i) + kvm_msr_entry.fields.data[0], true) }));
  }

  /** KVM_SET_MSRS. */
  setMsrs(entries: readonly MsrEntry[]): void {
    const buf = new Uint8Array(kvm_msrs.size + entries.length * kvm_msr_entry.size);
    const v = new DataView(buf.buffer);
    v.setUint32(kvm_msrs.fields.nmsrs[0], entries.length, true);
    entries.forEach((e, i) => {
      const at = kvm_msrs.fields.entries[0] + i * kvm_msr_entry.size;
      v.setUint32(at + kvm_msr_entry.fields.index[0], e.index, true);
      v.setBigUint64(at + kvm_msr_entry.fields.data[0], e.data, true);
    });
    const r = ioctlWithBuffer(this.fd, I.KVM_SET_MSRS, buf);
    if (r < 0) throw new KvmIoctlError(I.KVM_SET_MSRS, -r);
    if (r !== entries.length) {
      throw new KvmIoctlError(I.KVM_SET_MSRS, 22, `wrote ${r} of ${entries.length} MSRs; MSR 0x${entries[r]?.index.toString(16)} was refused`);
    }
  }

  /** KVM_SET_GUEST_DEBUG (KVM_CAP_SET_GUEST_DEBUG), e.g. ENABLE|SINGLESTEP. */
  setGuestDebug(debug: GuestDebug): void {
    const buf = new Uint8Array(kvm_guest_debug.size);
    const v = new DataView(buf.buffer);
    v.setUint32(kvm_guest_debug.fields.control[0], debug.control, true);
    (debug.debugreg ?? []).slice(0, 8).forEach((d, i) =>
      v.setBigUint64(kvm_guest_debug.fields['arch.debugreg'][0] + 8 * i, d, true));
    this.ioctlBuf(I.KVM_SET_GUEST_DEBUG, buf);
  }

  /** KVM_GET_DEBUGREGS (KVM_CAP_DEBUGREGS): DR0-DR3, DR6, DR7. */
  getDebugRegs(): DebugRegs {
    const buf = new Uint8Array(kvm_debugregs.size);
    this.ioctlBuf(I.KVM_GET_DEBUGREGS, buf);
    const v = new DataView(buf.buffer);
    const F = kvm_debugregs.fields;
    return {
      db: [0, 1, 2, 3].map((i) => v.getBigUint64(F.db[0] + 8 * i, true)),
      dr6: v.getBigUint64(F.dr6[0], true), dr7: v.getBigUint64(F.dr7[0], true),
    };
  }

  /** KVM_SET_DEBUGREGS (KVM_CAP_DEBUGREGS). */
  setDebugRegs(regs: DebugRegs): void {
    const buf = new Uint8Array(kvm_debugregs.size);
    const v = new DataView(buf.buffer);
    const F = kvm_debugregs.fields;
    regs.db.slice(0, 4).forEach((d, i) => v.setBigUint64(F.db[0] + 8 * i, d, true));
    v.setBigUint64(F.dr6[0], regs.dr6, true);
    v.setBigUint64(F.dr7[0], regs.dr7, true);
    this.ioctlBuf(I.KVM_SET_DEBUGREGS, buf);
  }

  /** KVM_TRANSLATE: walks the guest's page tables for a guest-virtual address. */
  translate(gva: bigint): Translation {
    const buf = new Uint8Array(kvm_translation.size);
    const v = new DataView(buf.buffer);
    const F = kvm_translation.fields;
    v.setBigUint64(F.linear_address[0], gva, true);
    this.ioctlBuf(I.KVM_TRANSLATE, buf);
    return {
      physicalAddress: v.getBigUint64(F.physical_address[0], true),
      valid: v.getUint8(F.valid[0]) !== 0,
      writeable: v.getUint8(F.writeable[0]) !== 0,
      usermode: v.getUint8(F.usermode[0]) !== 0,
    };
  }

  /**
   * KVM_SET_SIGNAL_MASK: the signal mask the thread has while inside KVM_RUN (a kernel
   * sigset of 8 bytes). Signals it leaves unblocked end KVM_RUN with EINTR even when the
   * thread blocks them elsewhere.
   */
  setSignalMask(kernelSigset: Uint8Array): void {
    const buf = new Uint8Array(4 + kernelSigset.length);
    new DataView(buf.buffer).setUint32(0, kernelSigset.length, true);
    buf.set(kernelSigset, 4);
    this.ioctlBuf(I.KVM_SET_SIGNAL_MASK, buf);
  }

  /** Sets kvm_run.immediate_exit (KVM_CAP_IMMEDIATE_EXIT): the next KVM_RUN returns EINTR at once. */
  setImmediateExit(on: boolean): void {
    this.#runBytes[kvm_run.fields.immediate_exit[0]] = on ? 1 : 0;
  }

  /**
   * KVM_RUN: runs the vCPU until its next exit and decodes it. Returns
   * `{ kind: 'interrupted' }` when a signal interrupted it (EINTR). The returned object is
   * reused by the next run() on this vCPU.
   * @throws KvmIoctlError for any other failure.
   */
  run(): VcpuExit {
    const fd = this.fd;
    this.#decoder.commitInput();
    const r = ioctlOnce(fd, I.KVM_RUN, 0);
    if (r < 0 && r !== -EINTR) throw new KvmIoctlError(I.KVM_RUN, -r);
    return this.#decoder.decode(r);
  }

  /**
   * For a KVM_RUN another thread makes on this vCPU (exitless mode): gives KVM the data the
   * caller wrote for the last exit, as run() does before its ioctl. Call before that KVM_RUN.
   */
  prepareRun(): void {
    this.#decoder.commitInput();
  }

  /**
   * Decodes the exit of a KVM_RUN another thread made on this vCPU; `result` is what that
   * ioctl returned (0, or -EINTR). The returned object is reused like run()'s.
   */
  decodeExit(result: number): VcpuExit {
    return this.#decoder.decode(result);
  }

  /** Host address and length of the kvm_run mapping (another thread's view of it: exitless mode). */
  get runMapping(): { readonly address: bigint; readonly length: number } {
    if (!this.#run) throw new ResourceClosedError('Vcpu');
    return { address: this.#run.address, length: this.#run.length };
  }

  /** KVM_GET_TSC_KHZ (KVM_CAP_GET_TSC_KHZ): the guest's TSC frequency in kHz. */
  getTscKhz(): number {
    const r = ioctlWithInt(this.fd, I.KVM_GET_TSC_KHZ, 0);
    if (r < 0) throw new KvmIoctlError(I.KVM_GET_TSC_KHZ, -r);
    return r;
  }

  /** Unmaps kvm_run and closes the vCPU fd; idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    if (this.#run && this.#runHandedOut) retire(this.#run, this.#runBytes.buffer);
    else if (this.#run) munmap(this.#run);
    this.#run = undefined;
    close(fd);
    this.#onClose();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
