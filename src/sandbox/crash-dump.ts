// Crash dumps (SandboxConfig.crashDumpDir): on a guest exception or abort, an ELF core file of the guest's registers at the fault and its user memory at guest-virtual addresses, which gdb opens with the guest's ELF (docs/debugging.md).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AT_ENTRY, AT_PAGESZ, AT_PHDR, AT_PHENT, AT_PHNUM, type CoreSegment, FPREGSET_SIZE, PF_R, PF_W, PF_X, type UserRegs,
  buildCoreFile,
} from '../elf/core-file.js';
import { walkRanges } from '../mem/x86_64/index.js';
import { SEL_USER_CODE, SEL_USER_DATA, readExceptionFrame } from '../x86_64/index.js';
import { GuestAbortedError, GuestExceptionError, StackOverflowError } from './errors.js';
import type { Machine } from './machine.js';
import { hostBytes, hostView } from '../mem/guest-memory.js';

/** Linux signal numbers a core file names for the fault. */
const SIGILL = 4;
const SIGTRAP = 5;
const SIGABRT = 6;
const SIGBUS = 7;
const SIGFPE = 8;
const SIGSEGV = 11;

/** The signal Linux would deliver for CPU exception `vector`. */
export function signalOfVector(vector: number): number {
  switch (vector) {
    case 0: case 16: case 19: return SIGFPE; // #DE #MF #XM
    case 1: case 3: return SIGTRAP; // #DB #BP
    case 6: return SIGILL; // #UD
    case 17: return SIGBUS; // #AC
    default: return SIGSEGV;
  }
}

/** Errors a crash dump is written for: the guest faulted or aborted. */
export function isGuestCrash(e: unknown): e is GuestExceptionError | StackOverflowError | GuestAbortedError {
  return e instanceof GuestExceptionError || e instanceof StackOverflowError || e instanceof GuestAbortedError;
}

/**
 * The guest's registers at the fault. A CPU exception: RIP, CS, RFLAGS, RSP, SS and RAX from
 * the ring-3 frame the CPL0 stub left on the exception stack (the stub changed only RAX and
 * RSP), the rest from the vCPU at the stub's report. An abort: the vCPU at its doorbell
 * store, which is guest code.
 */
export function faultRegisters(m: Machine, fromFrame: boolean): UserRegs {
  const r = m.vcpu.getRegs();
  const s = m.vcpu.getSregs();
  const regs: UserRegs = {
    r15: r.r15, r14: r.r14, r13: r.r13, r12: r.r12, rbp: r.rbp, rbx: r.rbx, r11: r.r11, r10: r.r10, r9: r.r9,
    r8: r.r8, rax: r.rax, rcx: r.rcx, rdx: r.rdx, rsi: r.rsi, rdi: r.rdi, orig_rax: -1n, rip: r.rip,
    cs: BigInt(SEL_USER_CODE), eflags: r.rflags, rsp: r.rsp, ss: BigInt(SEL_USER_DATA), fs_base: s.fs.base,
    gs_base: s.gs.base, ds: BigInt(s.ds.selector), es: BigInt(s.es.selector), fs: BigInt(s.fs.selector),
    gs: BigInt(s.gs.selector),
  };
  if (fromFrame) {
    const { exceptionStack } = m.layout;
    const f = readExceptionFrame(hostView(m.memory), exceptionStack.gpa + exceptionStack.size);
    Object.assign(regs, { rip: f.rip, cs: BigInt(f.cs), eflags: f.rflags, rsp: f.rsp, ss: BigInt(f.ss), rax: f.rax });
  }
  return regs;
}

/**
 * The guest's user-visible memory as core segments: every run of the host-built page tables
 * that ring 3 can reach and that lies in the guest's memory slot (not the doorbell, not
 * regions mapped with mapRegion), at its guest-virtual address with its rights.
 */
export function userSegments(m: Machine): CoreSegment[] {
  const bytes = hostBytes(m.memory);
  const out: CoreSegment[] = [];
  for (const r of walkRanges(bytes, m.cr3)) {
    // A run may go on past the slot's end (the doorbell page follows the stack): cut it there.
    const end = Math.min(r.gpa + r.size, bytes.length);
    if (!r.user || end <= r.gpa) continue;
    out.push({
      vaddr: BigInt(r.gva), data: bytes.subarray(r.gpa, end),
      flags: PF_R | (r.writable ? PF_W : 0) | (r.executable ? PF_X : 0),
    });
  }
  return out;
}

/** AT_ENTRY (where the guest's entry point was loaded) and, when the image starts with its ELF header, AT_PHDR: how gdb finds a PIE's load address. */
function auxvOf(m: Machine): Array<readonly [bigint, bigint]> {
  const out: Array<readonly [bigint, bigint]> = [[AT_ENTRY, m.entry], [AT_PAGESZ, 4096n]];
  const base = m.layout.image.gpa;
  const v = hostView(m.memory);
  if (v.getUint32(base, true) === 0x464c457f && base + 64 <= m.memory.size) {
    const phoff = v.getBigUint64(base + 32, true);
    if (phoff < BigInt(m.layout.image.size)) {
      out.push([AT_PHDR, BigInt(base) + phoff], [AT_PHENT, BigInt(v.getUint16(base + 54, true))],
        [AT_PHNUM, BigInt(v.getUint16(base + 56, true))]);
    }
  }
  return out;
}

let dumps = 0;

/** Writes the core file of `error` into `dir`; returns its path. */
export function writeCrashDump(m: Machine, error: GuestExceptionError | StackOverflowError | GuestAbortedError,
  dir: string, guestName: string): string {
  const exception = !(error instanceof GuestAbortedError);
  const signal = error instanceof GuestExceptionError ? signalOfVector(error.vector)
    : error instanceof StackOverflowError ? SIGSEGV : SIGABRT;
  const fpregs = m.vcpu.getXsave().slice(0, FPREGSET_SIZE);
  const core = buildCoreFile({
    regs: faultRegisters(m, exception), signal, pid: process.pid, name: guestName.slice(0, 15),
    args: guestName, fpregs, auxv: auxvOf(m), segments: userSegments(m),
  });
  const path = join(dir, `hyperlight-${process.pid}-${Date.now()}-${++dumps}.core`);
  writeFileSync(path, core, { flag: 'wx', mode: 0o600 });
  return path;
}

/**
 * With a crash-dump directory, writes the dump of `error` when it is a guest crash and
 * records the path on the error (`crashDumpPath`), or why it failed (`crashDumpError`).
 * Never throws: the guest's error is what the caller sees.
 */
export function dumpOnCrash(error: unknown, m: Machine, dir: string | undefined, guestName: string): void {
  if (dir === undefined || !isGuestCrash(error)) return;
  let field: 'crashDumpPath' | 'crashDumpError';
  let value: unknown;
  try {
    value = writeCrashDump(m, error, dir, guestName);
    field = 'crashDumpPath';
  } catch (e) {
    value = e;
    field = 'crashDumpError';
  }
  Object.defineProperty(error, field, { value, enumerable: true, configurable: true, writable: false });
}
