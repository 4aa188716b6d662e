// A guest's machine and its life: create (memory, image, page tables, the host's privileged environment, PEB, a VM with one vCPU at CPL3), reset for reuse, close, and the idle-VM pool. No run loop here.
import { randomFillSync } from 'node:crypto';
import { isMainThread } from 'node:worker_threads';
import type { ElfImage } from '../elf/index.js';
import { Kvm } from '../kvm/kvm.js';
import * as K from '../kvm/constants.js';
import type { CpuidEntry, Regs, Segment, Sregs } from '../kvm/structs.js';
import { emptyRegs, encodeCpuid } from '../kvm/structs.js';
import type { Vcpu } from '../kvm/vcpu.js';
import type { Vm } from '../kvm/vm.js';
import { GuestMemory, PAGE_SIZE, hostBytes, hostSlice, hostView } from '../mem/guest-memory.js';
import type { MemorySnapshot } from '../mem/snapshot.js';
import { type MemoryLayout, buildPageTables, mappedRangesFor, planLayout } from '../mem/x86_64/index.js';
import * as X from '../x86_64/index.js';
import { type PebFields, writePeb, writePebRandomSeed } from './abi.js';
import type { ResolvedConfig } from './config.js';
import { holdKernelAnchor, releaseKernelAnchor } from './kernel-anchor.js';
import { denyGuestMsrAccess, guestMsrAccessDenied } from './msr-filter.js';
import {
  type GuestCpuState, type VcpuState, applyGuestCpuState, captureVcpuState, resetPrivileged,
} from './vcpu-state.js';

/** Phases of machine start-up, reported to a tracer when one is given. */
export type StartPhase = 'open' | 'create-vm' | 'map-memory' | 'reset-vm' | 'load-elf' | 'page-tables' |
  'copy-template' | 'create-vcpu' | 'guest-init';

/** Receives timings; when absent, no clock is read. */
export interface PhaseSink {
  phase(name: StartPhase | 'call', startNs: bigint, endNs: bigint): void;
}

/** CPU features the host turned on for the guest (from the CPUID it gives it). */
export interface GuestFeatures {
  /** CR4.OSXSAVE with XCR0 = `xcr0`: xgetbv works, AVX when XCR0 has it. */
  readonly xsave: boolean;
  readonly xcr0: bigint;
  /** CR4.FSGSBASE: ring 3 may use rdfsbase/wrfsbase (e.g. for TLS). */
  readonly fsgsbase: boolean;
  readonly cr4: bigint;
}

export interface Machine {
  readonly layout: MemoryLayout;
  readonly memory: GuestMemory;
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  readonly cr3: bigint;
  readonly entry: bigint;
  readonly features: GuestFeatures;
  /**
   * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is on: reading the dirty log does not write-protect
   * pages again, so the log accumulates every page written since the last clear.
   */
  readonly manualDirtyLog: boolean;
  /** The special registers this machine's guest starts with (VM reuse loads them again). */
  readonly startSregs: Sregs;
  /**
   * The state of a vCPU of this process right after set-up, before any guest code ran:
   * what VM reuse and a poisoned restore put back (XSAVE, XCR0, debug registers, events,
   * MSRs). Captured once per process, from the first vCPU created, and shared.
   */
  readonly reference: VcpuState;
}

/** The memory slot the guest lives in (one slot, guest-physical 0). */
export const GUEST_SLOT = 0;

/** Plans the layout for an image under a configuration (throws ConfigInvalidError). */
export function layoutFor(image: ElfImage, config: ResolvedConfig): MemoryLayout {
  return planLayout({
    heapSize: config.heapSize,
    stackSize: config.stackSize,
    inputDataSize: config.inputDataSize,
    outputDataSize: config.outputDataSize,
    exceptionStackSize: config.exceptionStackSize,
    image: image.fixedBase === undefined ? { span: image.span } : { span: image.span, fixedBase: image.fixedBase },
  });
}

const has = (e: CpuidEntry | undefined, reg: 'ebx' | 'ecx' | 'edx', bit: number): boolean =>
  e !== undefined && (e[reg] & bit) !== 0;

/**
 * CPUID for guests: the supported set with VMX and SVM hidden (no nested virtualisation)
 * and KVM's paravirtual features cleared (no kvmclock, steal time, async PF, PV EOI, ...:
 * leaf 0x4000_0001 EAX and EDX zero), so with KVM_CAP_ENFORCE_PV_FEATURE_CPUID their MSRs
 * and hypercalls are refused. The hypervisor signature leaf stays.
 */
export function guestCpuid(kvm: Kvm): CpuidEntry[] {
  return kvm.getSupportedCpuid().map((e) => {
    if (e.function === 1) return { ...e, ecx: e.ecx & ~X.CPUID_1_ECX_VMX };
    if (e.function === 0x8000_0001) return { ...e, ecx: e.ecx & ~X.CPUID_80000001_ECX_SVM };
    if (e.function === X.CPUID_KVM_FEATURES) return { ...e, eax: 0, edx: 0 };
    return e;
  });
}

/** The features to enable for a guest given its CPUID. */
export function guestFeatures(cpuid: readonly CpuidEntry[]): GuestFeatures {
  const leaf1 = cpuid.find((e) => e.function === 1);
  const leaf7 = cpuid.find((e) => e.function === 7 && e.index === 0);
  const xsave = has(leaf1, 'ecx', X.CPUID_1_ECX_XSAVE);
  const avx = xsave && has(leaf1, 'ecx', X.CPUID_1_ECX_AVX);
  const fsgsbase = has(leaf7, 'ebx', X.CPUID_7_EBX_FSGSBASE);
  let cr4 = X.CR4_PAE | X.CR4_OSFXSR | X.CR4_OSXMMEXCPT;
  if (xsave) cr4 |= X.CR4_OSXSAVE;
  if (fsgsbase) cr4 |= X.CR4_FSGSBASE;
  if (has(leaf7, 'ebx', X.CPUID_7_EBX_SMEP)) cr4 |= X.CR4_SMEP;
  if (has(leaf7, 'ebx', X.CPUID_7_EBX_SMAP)) cr4 |= X.CR4_SMAP;
  if (has(leaf7, 'ecx', X.CPUID_7_ECX_UMIP)) cr4 |= X.CR4_UMIP;
  return { xsave, xcr0: X.XCR0_X87 | X.XCR0_SSE | (avx ? X.XCR0_AVX : 0n), fsgsbase, cr4 };
}

// Facts of this process's KVM that never change, asked for once: the guest CPUID (entries
// and encoded), its features, and the special registers of a freshly created vCPU.
let cpuidBytes: Uint8Array | undefined;
let features: GuestFeatures | undefined;
let resetSregs: Readonly<Sregs> | undefined;
let reference: VcpuState | undefined;


function userSegment(selector: number, code: boolean): Segment {
  return {
    base: 0n, limit: 0xffff_ffff, selector, type: code ? X.SEG_TYPE_CODE_XR_ACCESSED : X.SEG_TYPE_DATA_RW_ACCESSED,
    present: 1, dpl: 3, db: code ? 0 : 1, s: 1, l: code ? 1 : 0, g: 1, avl: 0, unusable: 0,
  };
}

/**
 * The special registers a guest starts with: CPL3 (CS 0x33 64-bit, SS/DS/ES/FS/GS 0x2b,
 * all DPL 3), the host's GDT, IDT and TSS, paging with `cr3`, CR0/CR4/EFER per
 * docs/how-a-microvm-starts.md. Starts from a new vCPU's registers (`base`) for the rest.
 */
export function guestSregs(base: Sregs, cr3: bigint, tables: X.SystemTables, feat: GuestFeatures): Sregs {
  const data = userSegment(X.SEL_USER_DATA, false);
  return {
    ...base,
    cs: userSegment(X.SEL_USER_CODE, true),
    ds: data, es: { ...data }, fs: { ...data }, gs: { ...data }, ss: { ...data },
    tr: {
      base: tables.tss.base, limit: tables.tss.limit, selector: X.SEL_TSS, type: X.SEG_TYPE_TSS64_BUSY, present: 1,
      dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0,
    },
    gdt: { ...tables.gdt },
    idt: { ...tables.idt },
    cr0: X.CR0_GUEST, cr2: 0n, cr3, cr4: feat.cr4, efer: X.EFER_GUEST,
  };
}

/** Words of CSPRNG output drawn per refill (randomU64). */
const RANDOM_POOL_WORDS = 64;
const randomPool = new BigUint64Array(RANDOM_POOL_WORDS);
let randomLeft = 0;

/**
 * 64 random bits from the host's CSPRNG. Drawn from a block of 64 filled at once: one
 * crypto call costs 2-50 us (the most right after a VM was built, its caches cold), about
 * as much for 512 bytes as for 8, and a cold start needs one or two. A word is zeroed once
 * drawn, so no value is handed out twice or kept.
 */
function randomU64(): bigint {
  if (randomLeft === 0) {
    randomFillSync(randomPool);
    randomLeft = RANDOM_POOL_WORDS;
  }
  const v = randomPool[--randomLeft]!;
  randomPool[randomLeft] = 0n;
  return v;
}

/** 64 random bits from the host's CSPRNG, never 0 (0 in the PEB means "no host seed"). */
export function freshSeed(): bigint {
  return randomU64() | 1n;
}

/** Entry registers per docs/guest-abi.md. */
export function entryRegs(layout: MemoryLayout, entry: bigint, logLevel: number): Regs {
  const regs = emptyRegs();
  regs.rip = entry;
  regs.rsp = BigInt(layout.stack.gpa + layout.stack.size);
  regs.rflags = X.RFLAGS_RESERVED_1;
  regs.rdi = BigInt(layout.peb.gpa);
  regs.rsi = randomU64();
  regs.rdx = BigInt(PAGE_SIZE);
  regs.rcx = BigInt(logLevel);
  return regs;
}

/** Writes image, page tables, system area and PEB; returns CR3 and where the tables are. */
function writeMemoryImage(memory: GuestMemory, layout: MemoryLayout, image: ElfImage, sink?: PhaseSink): bigint {
  let t = sink ? process.hrtime.bigint() : 0n;
  image.load(hostSlice(memory, layout.image.gpa, layout.image.size), layout.image.gpa);
  if (sink) { const n = process.hrtime.bigint(); sink.phase('load-elf', t, n); t = n; }
  const ranges = mappedRangesFor(layout, image.segments);
  const tables = buildPageTables(ranges, layout.pageTables,
    hostSlice(memory, layout.pageTables.gpa, layout.pageTables.size));
  writeSystemArea(memory, layout);
  writePeb(hostView(memory), layout.peb.gpa, { ...pebFieldsOf(layout), randomSeed: freshSeed() });
  if (sink) sink.phase('page-tables', t, process.hrtime.bigint());
  return BigInt(tables.cr3);
}

/** The PEB's fields for `layout` (docs/guest-abi.md). */
export function pebFieldsOf(layout: MemoryLayout): PebFields {
  return {
    inputSize: layout.inputData.size, inputPtr: layout.inputData.gpa,
    outputSize: layout.outputData.size, outputPtr: layout.outputData.gpa,
    initSize: layout.initData?.size ?? 0, initPtr: layout.initData?.gpa ?? 0,
    heapSize: layout.heap.size, heapPtr: layout.heap.gpa,
    stackSize: layout.stack.size, stackPtr: layout.stack.gpa,
    doorbellSize: layout.doorbell.size, doorbellPtr: layout.doorbell.gpa,
  };
}

function writeSystemArea(memory: GuestMemory, layout: MemoryLayout): X.SystemTables {
  return X.writeSystemArea(hostBytes(memory), {
    tables: layout.sysTables.gpa, code: layout.sysCode.gpa,
    exceptionStackTop: layout.exceptionStack.gpa + layout.exceptionStack.size,
  });
}

/** Where the system tables of `layout` are (the same numbers writeSystemArea returns). */
export function systemTablesOf(layout: MemoryLayout): X.SystemTables {
  const t = layout.sysTables.gpa;
  return {
    gdt: { base: BigInt(t + X.SYS_OFF_GDT), limit: X.GDT_SIZE - 1 },
    idt: { base: BigInt(t + X.SYS_OFF_IDT), limit: X.IDT_VECTORS * X.GATE_SIZE - 1 },
    tss: { base: BigInt(t + X.SYS_OFF_TSS), limit: X.TSS_SIZE - 1 },
  };
}

/** What a new machine starts from: a fresh ELF load, or the memory and CPU state a
 * finished guest init left behind (see UninitializedSandbox.evolve). */
export type MachineStart =
  | { kind: 'elf'; image: ElfImage; logLevel: number }
  | { kind: 'template'; template: InitTemplate };

/** The state right after guest init: memory, CPU state, and where things are. */
export interface InitTemplate {
  readonly memory: MemorySnapshot;
  readonly cpu: GuestCpuState;
  readonly cr3: bigint;
  readonly entry: bigint;
}

/**
 * Creates the machine: memory, its contents (ELF image, tables, system area and PEB, or a
 * template), VM (MSR filter, manual dirty log), vCPU (CPUID, XCR0) and registers. On
 * failure everything made so far is released before the error propagates. With `reuse`,
 * resets that idle machine instead (see resetMachine).
 */
export function createMachine(layout: MemoryLayout, start: MachineStart, sink?: PhaseSink, reuse?: Machine): Machine {
  if (reuse) return resetMachine(reuse, start, sink);
  const clock = (): bigint => (sink ? process.hrtime.bigint() : 0n);
  let t = clock();
  const kvm = systemKvm();
  let vm: Vm | undefined;
  let memory: GuestMemory | undefined;
  try {
    if (sink) { const n = clock(); sink.phase('open', t, n); t = n; }
    vm = kvm.createVm();
    const manualDirtyLog = enableManualDirtyLog(vm);
    if (sink) { const n = clock(); sink.phase('create-vm', t, n); t = n; }
    // A template loaded from a snapshot file maps its pages copy-on-write (GuestMemory.fromSnapshot).
    memory = start.kind === 'template' && start.template.memory.backing
      ? GuestMemory.fromSnapshot(start.template.memory) : GuestMemory.allocate(layout.totalSize);
    vm.setUserMemoryRegion({
      slot: GUEST_SLOT, flags: K.KVM_MEM_LOG_DIRTY_PAGES, guestPhysAddr: 0n,
      memorySize: BigInt(memory.size), userspaceAddr: memory.hostAddress,
    });
    if (sink) sink.phase('map-memory', t, clock());
    const { cr3, entry } = loadContents(memory, layout, start, sink);
    t = clock();
    const vcpu = vm.createVcpu(0);
    if (!cpuidBytes) {
      const cpuid = guestCpuid(kvm);
      features = guestFeatures(cpuid);
      cpuidBytes = encodeCpuid(cpuid);
    }
    vcpu.setCpuid2(cpuidBytes);
    enforcePvCpuid(vcpu, kvm);
    // `syscall` on kvm_pvm jumps to LSTAR at CPL3: make that a recognisable fault (faults.ts).
    vcpu.setMsrs([{ index: X.MSR_LSTAR, data: X.SYSCALL_ENTRY_SENTINEL }]);
    if (features!.xsave) vcpu.setXcrs([{ xcr: 0, value: features!.xcr0 }]);
    resetSregs ??= vcpu.getSregs();
    const startSregs = guestSregs(resetSregs, cr3, systemTablesOf(layout), features!);
    if (!reference) {
      vcpu.setSregs(startSregs); // once per process: the reference must hold the guest's sregs
      reference = captureVcpuState(vcpu);
    }
    loadRegisters(vcpu, layout, start, startSregs, entry);
    // No guest rdmsr/wrmsr at all (ring 3 cannot run them anyway). Installed last, before the
    // first KVM_RUN: the ioctl waits for an SRCU grace period, which KVM expedites only when
    // the VM's SRCU has been idle for a while (not right after KVM_CREATE_VM).
    denyGuestMsrAccess(vm);
    holdKernelAnchor(kvm, vm);
    if (sink) sink.phase('create-vcpu', t, clock());
    return { layout, memory, vm, vcpu, cr3, entry, features: features!, manualDirtyLog, startSregs, reference };
  } catch (e) {
    vm?.close();
    memory?.close();
    throw e;
  } finally {
    if (kvm !== mainThreadKvm) kvm.close();
  }
}

/** The main thread's /dev/kvm, kept open from its first machine on (see systemKvm). */
let mainThreadKvm: Kvm | undefined;

/**
 * The /dev/kvm a new machine is made with. The main thread keeps one open for the life of
 * the process, as a VMM keeps its system fd (an open, a version check and a close fewer
 * per evolve(); VMs do not need it after creation). A worker thread opens its own per
 * machine and closes it: a worker can end, or be terminated, without running any cleanup,
 * and a kept fd would then stay open in the process.
 */
function systemKvm(): Kvm {
  if (!isMainThread) return Kvm.open();
  mainThreadKvm ??= Kvm.open();
  return mainThreadKvm;
}

/**
 * Turns on KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 where the kernel has it: reading the log then
 * leaves pages writable, so a restore costs no write fault per page on the next call
 * (~27 us each when guest code runs natively). Returns whether it is on.
 */
function enableManualDirtyLog(vm: Vm): boolean {
  if ((vm.capability(K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) & K.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) === 0) return false;
  vm.enableCap(K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, [BigInt(K.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)]);
  return true;
}

/** KVM_CAP_ENFORCE_PV_FEATURE_CPUID: paravirtual MSRs and hypercalls only as CPUID offers them (none). */
function enforcePvCpuid(vcpu: Vcpu, kvm: Kvm): void {
  if (kvm.capability(K.KVM_CAP_ENFORCE_PV_FEATURE_CPUID) > 0) vcpu.enableCap(K.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, [1n]);
}

/** Writes the guest's starting memory: the ELF image, tables and PEB, or a template. */
function loadContents(memory: GuestMemory, layout: MemoryLayout, start: MachineStart, sink?: PhaseSink): { cr3: bigint; entry: bigint } {
  if (start.kind === 'elf') {
    return {
      cr3: writeMemoryImage(memory, layout, start.image, sink),
      entry: BigInt(layout.image.gpa + start.image.entryOffset),
    };
  }
  const t = sink ? process.hrtime.bigint() : 0n;
  start.template.memory.restoreIntoZeroed(memory);
  // Its own entropy, though the rest of memory is a copy of another guest's.
  writePebRandomSeed(hostView(memory), layout.peb.gpa, freshSeed());
  if (sink) sink.phase('copy-template', t, process.hrtime.bigint());
  return { cr3: start.template.cr3, entry: start.template.entry };
}

/**
 * Sets the starting registers through kvm_run's sync area (KVM loads them at the next
 * KVM_RUN); a template also brings its XSAVE area (one ioctl). A new vCPU's XSAVE state is
 * already the reset state; `resetFpuTo` loads a reference's into a reused one.
 */
function loadRegisters(vcpu: Vcpu, layout: MemoryLayout, start: MachineStart, sregs: Sregs, entry: bigint,
  resetFpuTo?: VcpuState): void {
  if (start.kind === 'elf') {
    if (resetFpuTo) vcpu.setXsave(resetFpuTo.xsave);
    vcpu.syncSregs(sregs);
    vcpu.syncRegs(entryRegs(layout, entry, start.logLevel));
  } else {
    applyGuestCpuState(vcpu, start.template.cpu);
  }
}

/**
 * Makes an idle machine (from a sandbox closed in a clean state) start over as if new:
 * all guest memory zeroed (in place, zeroForReuse) then loaded, and every
 * piece of vCPU state a new vCPU has put back from the reference captured at creation
 * (registers, segments, XSAVE, XCR0, debug registers, events, MSRs). What the guest cannot
 * change is kept: the VM, its memory slot, the MSR filter, the CPUID and the dirty log (see below).
 */
export function resetMachine(m: Machine, start: MachineStart, sink?: PhaseSink): Machine {
  const t = sink ? process.hrtime.bigint() : 0n;
  zeroForReuse(m.memory, start);
  // The dirty log keeps the pages the last guest wrote: a superset of what the next one
  // writes is all a restore needs (it copies those pages back too; they equal the snapshot),
  // and the new sandbox's snapshot() empties it. Clearing it here would write-protect the
  // pages again, and the next guest's first write to each would fault (~27 us natively).
  resetPrivileged(m.vcpu, m.reference, { msrs: true });
  if (sink) sink.phase('reset-vm', t, process.hrtime.bigint());
  const { cr3, entry } = loadContents(m.memory, m.layout, start, sink);
  loadRegisters(m.vcpu, m.layout, start, m.startSregs, entry, m.reference);
  return { ...m, cr3, entry };
}

/**
 * Makes memory read as all zero before it is loaded again (loadContents), keeping its pages
 * mapped: each resident page is zeroed in place, except those a template's copy overwrites
 * whole. A page mincore does not call resident was never touched or is in swap: those are
 * discarded (MADV_DONTNEED, one call per run of them), so a swapped-out page of the last
 * guest reads as zero too. Discarding all of them instead also drops KVM's mappings of the
 * resident pages, and the next guest's first touch of each then faults again (~27-35 us a
 * page when guest code runs natively, as on kvm_pvm; about a microsecond on VMX/SVM).
 */
function zeroForReuse(memory: GuestMemory, start: MachineStart): void {
  // Memory mapped from a snapshot file never reaches the idle pool; discard() refuses it.
  if (memory.mappedFrom) return memory.discard(0, memory.size);
  const bytes = hostBytes(memory);
  const resident = memory.residentPages();
  const template = start.kind === 'template' ? start.template.memory : undefined;
  for (let p = 0; p < resident.length;) {
    if ((resident[p]! & 1) !== 0) {
      if (!template?.storesPage(p)) bytes.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
      p++;
      continue;
    }
    let end = p + 1; // a run of pages that are not resident
    while (end < resident.length && (resident[end]! & 1) === 0) end++;
    memory.discard(p * PAGE_SIZE, (end - p) * PAGE_SIZE);
    p = end;
  }
}

/** Whether a machine may be reset for another sandbox: its guest could not touch MSRs. */
export function reusable(m: Machine): boolean {
  return guestMsrAccessDenied(m.vm);
}

/**
 * Releases a machine: vCPU, then VM, then guest memory, so that no live VM ever maps
 * memory that is gone.
 */
export function closeMachine(m: Machine): void {
  try {
    m.vcpu.close();
  } finally {
    try {
      m.vm.close();
    } finally {
      try {
        m.memory.close();
      } finally {
        releaseKernelAnchor(m.vm);
      }
    }
  }
}

/**
 * Idle machines of cleanly closed sandboxes, per memory layout, kept for reuse (a
 * GuestBinary's `vmPool`). Holds at most `capacity` per layout.
 */
export class IdleMachinePool {
  readonly #idle = new Map<string, Machine[]>();

  constructor(readonly capacity: number) {}

  /** An idle machine for layout `key`, if any (the caller resets it). */
  take(key: string): Machine | undefined {
    return this.#idle.get(key)?.pop();
  }

  /** Keeps a machine; false when the pool for `key` is full (the caller closes it). */
  offer(key: string, machine: Machine): boolean {
    let list = this.#idle.get(key);
    if (!list) this.#idle.set(key, (list = []));
    if (list.length >= this.capacity) return false;
    list.push(machine);
    return true;
  }

  get size(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /** Closes every idle machine. */
  clear(): void {
    for (const list of this.#idle.values()) {
      for (const m of list.splice(0)) closeMachine(m);
    }
  }
}
