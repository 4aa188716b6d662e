// One model of a vCPU's state (registers, segments, XSAVE/XCR0, debug registers, MSRs, pending events), captured and applied through KVM; used by snapshots, init templates and VM reuse. No policy about when.
//
// What a ring-3 guest can change without an exception, and so what a snapshot holds: the
// general registers and RFLAGS (kvm_regs), segment selectors and FS/GS base (kvm_sregs,
// via mov and wrfsbase), and the x87/SSE/AVX state (XSAVE area). Everything else (control
// registers, descriptor tables, EFER, MSRs, XCR0, debug registers, KERNEL_GS_BASE) needs
// CPL0 or a #DB to change, and any exception poisons the sandbox: its restore also resets
// the debug registers and pending events to a new vCPU's (`resetPrivileged`).
import { Kvm } from '../kvm/kvm.js';
import type { DebugRegs, MsrEntry, Vcpu, XcrEntry } from '../kvm/vcpu.js';
import { type Regs, type Sregs, regsToBytes, sregsToBytes } from '../kvm/structs.js';
import { MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_APIC_BASE, TIME_VARYING_MSRS } from '../x86_64/index.js';

/** MSRs kvm_sregs also holds (EFER, FS/GS base, APIC base): set through sregs, never as MSRs. */
const SREGS_MSRS: ReadonlySet<number> = new Set([MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_APIC_BASE]);

/** Everything a vCPU holds that the host sets or compares, as plain values. */
export interface VcpuState {
  readonly regs: Readonly<Regs>;
  readonly sregs: Readonly<Sregs>;
  /** The kvm_xsave region (4 KiB): x87, MXCSR, XMM, YMM and the XSAVE header. */
  readonly xsave: Uint8Array;
  readonly xcrs: readonly XcrEntry[];
  readonly debugRegs: DebugRegs;
  /** Every MSR of KVM_GET_MSR_INDEX_LIST this KVM lets the host read, in index order. */
  readonly msrs: readonly MsrEntry[];
  /** kvm_vcpu_events bytes (pending exception, interrupt, NMI, SMI). */
  readonly events: Uint8Array;
}

/** The part of the state a ring-3 guest can change: what snapshots and templates store. */
export interface GuestCpuState {
  readonly regs: Readonly<Regs>;
  readonly sregs: Readonly<Sregs>;
  /** kvm_regs / kvm_sregs encoded once, so applying them only copies bytes into kvm_run. */
  readonly regsBytes: Uint8Array;
  readonly sregsBytes: Uint8Array;
  readonly xsave: Uint8Array;
}

let readableMsrs: readonly number[] | undefined;

/**
 * The MSRs of KVM_GET_MSR_INDEX_LIST that KVM_GET_MSRS and KVM_SET_MSRS accept on `vcpu`
 * with their own values (probed once per process, one by one).
 */
export function stateMsrIndices(vcpu: Vcpu): readonly number[] {
  if (readableMsrs) return readableMsrs;
  const kvm = Kvm.open();
  let list: number[];
  try {
    list = kvm.getMsrIndexList();
  } finally {
    kvm.close();
  }
  readableMsrs = list.filter((index) => {
    try {
      vcpu.setMsrs(vcpu.getMsrs([index]));
      return true;
    } catch {
      return false;
    }
  }).sort((a, b) => a - b);
  return readableMsrs;
}

/** Reads the whole state (eight ioctls: for tests, tools and the reference of a new vCPU). */
export function captureVcpuState(vcpu: Vcpu): VcpuState {
  return {
    regs: vcpu.getRegs(), sregs: vcpu.getSregs(), xsave: vcpu.getXsave(), xcrs: vcpu.getXcrs(),
    debugRegs: vcpu.getDebugRegs(), msrs: vcpu.getMsrs(stateMsrIndices(vcpu)), events: vcpu.getVcpuEvents(),
  };
}

/** Captures what a ring-3 guest can change (regs and sregs from kvm_run when pending, one XSAVE ioctl). */
export function captureGuestCpuState(vcpu: Vcpu): GuestCpuState {
  const regs = vcpu.getRegs();
  const sregs = vcpu.getSregs();
  return guestCpuState(regs, sregs, vcpu.getXsave());
}

export function guestCpuState(regs: Regs, sregs: Sregs, xsave: Uint8Array): GuestCpuState {
  return Object.freeze({ regs, sregs, regsBytes: regsToBytes(regs), sregsBytes: sregsToBytes(sregs), xsave });
}

/**
 * Loads a guest state: registers and segments through kvm_run's sync area (applied by KVM
 * at the next KVM_RUN, no ioctl), the XSAVE area with KVM_SET_XSAVE.
 */
export function applyGuestCpuState(vcpu: Vcpu, state: GuestCpuState): void {
  vcpu.syncSregs(state.sregsBytes);
  vcpu.syncRegs(state.regsBytes);
  vcpu.setXsave(state.xsave);
}

/**
 * Puts back what only CPL0 or an exception could have changed: debug registers, pending
 * events, and (with `msrs`) every MSR except those that count time. From `reference`, the
 * state of a new vCPU set up the same way.
 */
export function resetPrivileged(vcpu: Vcpu, reference: VcpuState, opts: { msrs: boolean }): void {
  vcpu.setDebugRegs(reference.debugRegs);
  vcpu.setVcpuEvents(reference.events);
  vcpu.setXcrs(reference.xcrs);
  if (opts.msrs) resetMsrs(vcpu, reference);
}

let resettable: readonly MsrEntry[] | undefined;

/** Writes every reference MSR except the time-varying and sregs-held ones. */
function resetMsrs(vcpu: Vcpu, reference: VcpuState): void {
  resettable ??= reference.msrs.filter((m) => !TIME_VARYING_MSRS.has(m.index) && !SREGS_MSRS.has(m.index));
  vcpu.setMsrs(resettable);
}

/**
 * The events bytes that are state: KVM reports the last exception's vector and error code
 * (kvm_vcpu_events.exception: injected, nr, has_error_code, pending, error_code) also after it
 * was delivered, e.g. the #PF or #UD of a served system call; when neither injected nor
 * pending is set, those bytes describe the past and are left out of comparisons.
 */
function eventState(events: Uint8Array): Uint8Array {
  if (events.length < 8 || events[0] !== 0 || events[3] !== 0) return events;
  const copy = Uint8Array.from(events);
  copy.fill(0, 1, 8);
  return copy;
}

/** Names the fields where two states differ (time-varying MSRs skipped), for tests and tools. */
export function diffVcpuStates(a: VcpuState, b: VcpuState): string[] {
  const out: string[] = [];
  const eq = (x: unknown, y: unknown): boolean => JSON.stringify(x, big) === JSON.stringify(y, big);
  for (const k of Object.keys(a.regs) as (keyof Regs)[]) if (a.regs[k] !== b.regs[k]) out.push(`regs.${k}`);
  for (const k of Object.keys(a.sregs) as (keyof Sregs)[]) if (!eq(a.sregs[k], b.sregs[k])) out.push(`sregs.${k}`);
  if (!bytesEqual(a.xsave, b.xsave)) out.push('xsave');
  if (!eq(a.xcrs, b.xcrs)) out.push('xcrs');
  if (!eq(a.debugRegs, b.debugRegs)) out.push('debugRegs');
  if (!bytesEqual(eventState(a.events), eventState(b.events))) out.push('events');
  const bm = new Map(b.msrs.map((m) => [m.index, m.data]));
  for (const m of a.msrs) {
    if (TIME_VARYING_MSRS.has(m.index)) continue;
    if (bm.get(m.index) !== m.data) out.push(`msr 0x${m.index.toString(16)}`);
  }
  if (a.msrs.length !== b.msrs.length) out.push('msr list');
  return out;
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
