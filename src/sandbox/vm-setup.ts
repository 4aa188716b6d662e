// Building a guest's machine: memory from the layout, the loaded image, page tables, the
// PEB, and a VM with one vCPU in long mode at the guest's entry point. No run loop here.
import { randomBytes } from 'node:crypto';
import type { ElfImage } from '../elf/index.js';
import { Kvm } from '../kvm/kvm.js';
import * as C from '../kvm/constants.js';
import type { CpuidEntry, Regs, Sregs } from '../kvm/structs.js';
import { emptyRegs, encodeCpuid, flatSegment } from '../kvm/structs.js';
import type { DebugRegs, Fpu, Vcpu } from '../kvm/vcpu.js';
import type { Vm } from '../kvm/vm.js';
import { GuestMemory, PAGE_SIZE } from '../mem/guest-memory.js';
import type { MemorySnapshot } from '../mem/snapshot.js';
import { type MemoryLayout, buildPageTables, mappedRangesFor, planLayout } from '../mem/x86_64/index.js';
import { SEL_CODE, SEL_DATA, SEL_TSS, writePeb, writePebRandomSeed } from './abi.js';
import type { ResolvedConfig } from './config.js';
import { denyGuestMsrWrites, guestMsrWritesDenied } from './msr-filter.js';

/** Phases of machine start-up, reported to a tracer when one is given. */
export type StartPhase = 'open' | 'create-vm' | 'map-memory' | 'reset-vm' | 'load-elf' | 'page-tables' |
  'copy-template' | 'create-vcpu' | 'guest-init';

/** Receives timings; when absent, no clock is read. */
export interface PhaseSink {
  phase(name: StartPhase | 'call', startNs: bigint, endNs: bigint): void;
}

export interface Machine {
  readonly layout: MemoryLayout;
  readonly memory: GuestMemory;
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  readonly cr3: bigint;
  readonly entry: bigint;
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

/** CPUID for guests: the supported set with VMX and SVM hidden (no nested virtualisation). */
export function guestCpuid(kvm: Kvm): CpuidEntry[] {
  return kvm.getSupportedCpuid().map((e) => {
    if (e.function === 1) return { ...e, ecx: e.ecx & ~C.CPUID_1_ECX_VMX };
    if (e.function === 0x8000_0001) return { ...e, ecx: e.ecx & ~C.CPUID_80000001_ECX_SVM };
    return e;
  });
}

// Facts of this process's KVM that never change, asked for once: the guest CPUID as an
// encoded kvm_cpuid2, and the special registers of a freshly created vCPU.
let cpuidBytes: Uint8Array | undefined;
let resetSregs: Readonly<Sregs> | undefined;

/** Long-mode special registers per docs/guest-abi.md, starting from the vCPU's reset state. */
export function longModeSregs(base: Sregs, cr3: bigint): Sregs {
  const data = flatSegment(SEL_DATA, C.SEG_TYPE_DATA_RW_ACCESSED, false);
  return {
    ...base,
    cs: flatSegment(SEL_CODE, C.SEG_TYPE_CODE_XR_ACCESSED, true),
    ds: data, es: { ...data }, fs: { ...data }, gs: { ...data }, ss: { ...data },
    tr: {
      base: 0n, limit: 0x67, selector: SEL_TSS, type: C.SEG_TYPE_TSS64_BUSY, present: 1, dpl: 0,
      db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0,
    },
    gdt: { base: 0n, limit: 0 },
    idt: { base: 0n, limit: 0 },
    cr0: C.CR0_INIT, cr3, cr4: C.CR4_INIT, efer: C.EFER_INIT,
  };
}

/** 64 random bits from the host's CSPRNG, never 0 (0 in the PEB means "no host seed"). */
export function freshSeed(): bigint {
  return randomBytes(8).readBigUInt64LE(0) | 1n;
}

/** Entry registers per docs/guest-abi.md. */
export function entryRegs(layout: MemoryLayout, entry: bigint, logLevel: number): Regs {
  const regs = emptyRegs();
  regs.rip = entry;
  regs.rsp = BigInt(layout.stack.gpa + layout.stack.size);
  regs.rflags = C.RFLAGS_RESERVED_1;
  regs.rdi = BigInt(layout.peb.gpa);
  regs.rsi = randomBytes(8).readBigUInt64LE(0);
  regs.rdx = BigInt(PAGE_SIZE);
  regs.rcx = BigInt(logLevel);
  return regs;
}

function writeMemoryImage(memory: GuestMemory, layout: MemoryLayout, image: ElfImage, sink?: PhaseSink): bigint {
  let t = sink ? process.hrtime.bigint() : 0n;
  image.load(memory.slice(layout.image.gpa, layout.image.size), layout.image.gpa);
  if (sink) { const n = process.hrtime.bigint(); sink.phase('load-elf', t, n); t = n; }
  const ranges = mappedRangesFor(layout, image.segments);
  const tables = buildPageTables(ranges, layout.pageTables,
    memory.slice(layout.pageTables.gpa, layout.pageTables.size));
  const view = memory.view;
  writePeb(view, layout.peb.gpa, {
    inputSize: layout.inputData.size, inputPtr: layout.inputData.gpa,
    outputSize: layout.outputData.size, outputPtr: layout.outputData.gpa,
    initSize: layout.initData?.size ?? 0, initPtr: layout.initData?.gpa ?? 0,
    heapSize: layout.heap.size, heapPtr: layout.heap.gpa,
    stackSize: layout.stack.size, stackPtr: layout.stack.gpa,
    exnStackSize: layout.exceptionStack.size, exnStackPtr: layout.exceptionStack.gpa,
    randomSeed: freshSeed(),
  });
  if (sink) sink.phase('page-tables', t, process.hrtime.bigint());
  return BigInt(tables.cr3);
}

/** What a new machine starts from: a fresh ELF load, or the memory and registers a
 * finished guest init left behind (see UninitializedSandbox.evolve). */
export type MachineStart =
  | { kind: 'elf'; image: ElfImage; logLevel: number }
  | { kind: 'template'; template: InitTemplate };

/** The state right after guest init: memory, registers, and where things are. */
export interface InitTemplate {
  readonly memory: MemorySnapshot;
  readonly regs: Regs;
  readonly sregs: Sregs;
  readonly cr3: bigint;
  readonly entry: bigint;
}

/**
 * Creates the machine: memory, its contents (ELF image, tables and PEB, or a template),
 * VM, vCPU and registers. On failure everything made so far is released before the error
 * propagates. With `reuse`, resets that idle machine instead (see resetMachine).
 */
export function createMachine(layout: MemoryLayout, start: MachineStart, sink?: PhaseSink, reuse?: Machine): Machine {
  if (reuse) return resetMachine(reuse, start, sink);
  const clock = (): bigint => (sink ? process.hrtime.bigint() : 0n);
  let t = clock();
  const kvm = Kvm.open();
  let vm: Vm | undefined;
  let memory: GuestMemory | undefined;
  try {
    if (sink) { const n = clock(); sink.phase('open', t, n); t = n; }
    vm = kvm.createVm();
    denyGuestMsrWrites(vm); // guest wrmsr faults: no MSR state can survive restore()
    if (sink) { const n = clock(); sink.phase('create-vm', t, n); t = n; }
    memory = GuestMemory.allocate(layout.totalSize);
    vm.setUserMemoryRegion({
      slot: GUEST_SLOT, flags: C.KVM_MEM_LOG_DIRTY_PAGES, guestPhysAddr: 0n,
      memorySize: BigInt(memory.size), userspaceAddr: memory.hostAddress,
    });
    if (sink) sink.phase('map-memory', t, clock());
    const { cr3, entry } = loadContents(memory, layout, start, sink);
    t = clock();
    const vcpu = vm.createVcpu(0);
    cpuidBytes ??= encodeCpuid(guestCpuid(kvm));
    vcpu.setCpuid2(cpuidBytes);
    resetSregs ??= vcpu.getSregs();
    loadRegisters(vcpu, layout, start, cr3, entry);
    if (sink) sink.phase('create-vcpu', t, clock());
    return { layout, memory, vm, vcpu, cr3, entry };
  } catch (e) {
    vm?.close();
    memory?.close();
    throw e;
  } finally {
    kvm.close();
  }
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
  writePebRandomSeed(memory.view, layout.peb.gpa, freshSeed());
  if (sink) sink.phase('copy-template', t, process.hrtime.bigint());
  return { cr3: start.template.cr3, entry: start.template.entry };
}

/** Sets the starting registers through kvm_run's sync area: KVM loads them at the next KVM_RUN. */
function loadRegisters(vcpu: Vcpu, layout: MemoryLayout, start: MachineStart, cr3: bigint, entry: bigint): void {
  if (start.kind === 'elf') {
    vcpu.syncSregs(longModeSregs(resetSregs!, cr3));
    vcpu.syncRegs(entryRegs(layout, entry, start.logLevel));
  } else {
    vcpu.syncSregs(start.template.sregs);
    vcpu.syncRegs(start.template.regs);
  }
}

/** x87/SSE state of a reset CPU (Intel SDM vol. 1, 8.1.5 and 10.2.3): FCW 0x37F, MXCSR 0x1F80. */
const CLEAN_FPU: Fpu = {
  fpr: new Uint8Array(128), fcw: 0x37f, fsw: 0, ftwx: 0, lastOpcode: 0, lastIp: 0n, lastDp: 0n,
  xmm: new Uint8Array(256), mxcsr: 0x1f80,
};
/** Debug registers of a reset CPU (Intel SDM vol. 3B, 18.2): DR6 0xFFFF0FF0, DR7 0x400. */
const CLEAN_DEBUG_REGS: DebugRegs = { db: [0n, 0n, 0n, 0n], dr6: 0xffff_0ff0n, dr7: 0x400n };

/**
 * Makes an idle machine (from a sandbox closed in a clean state) start over as if new:
 * all guest memory zeroed (MADV_DONTNEED) then loaded, the dirty log emptied, general,
 * special, x87/SSE and debug registers reset. What the guest cannot change is kept: the
 * VM, its memory slot, the MSR filter (guest MSR writes fault) and the CPUID.
 */
export function resetMachine(m: Machine, start: MachineStart, sink?: PhaseSink): Machine {
  const t = sink ? process.hrtime.bigint() : 0n;
  m.memory.discard(0, m.memory.size);
  m.vm.getDirtyLog(GUEST_SLOT);
  m.vcpu.setFpu(CLEAN_FPU);
  m.vcpu.setDebugRegs(CLEAN_DEBUG_REGS);
  if (sink) sink.phase('reset-vm', t, process.hrtime.bigint());
  const { cr3, entry } = loadContents(m.memory, m.layout, start, sink);
  loadRegisters(m.vcpu, m.layout, start, cr3, entry);
  return { ...m, cr3, entry };
}

/** Whether a machine may be reset for another sandbox: its guest cannot have changed MSRs. */
export function reusable(m: Machine): boolean {
  return guestMsrWritesDenied(m.vm);
}

/**
 * Releases a machine: vCPU, then VM, then guest memory, so that no live VM ever maps
 * memory that is gone. (Measured on an idle machine, the order makes no difference to the
 * time; an earlier reading on a loaded machine suggested otherwise.)
 */
export function closeMachine(m: Machine): void {
  try {
    m.vcpu.close();
  } finally {
    try {
      m.vm.close();
    } finally {
      m.memory.close();
    }
  }
}
