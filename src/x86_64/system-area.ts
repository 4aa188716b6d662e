// Writes the host-owned privileged environment into guest memory: GDT, TSS, IDT and the CPL0 exception stubs, and reads the frame a stub leaves; it maps nothing and runs nothing.
//
// The system area is supervisor-only (the guest at CPL3 can neither read nor write it):
//   tables page: GDT at +0 (GDT_SIZE bytes), TSS at +0x80, IDT at +0x100 (32 gates)
//   code page:   the CPL0 stubs (cpl0-stubs.generated.ts), stub v at +16 v
//   exception stack: RSP0 and IST1 point at its top; an unmapped guard page lies below.
import { CPL0_STUBS_HEX } from './cpl0-stubs.generated.js';
import {
  GATE_SIZE, GDT_SIZE, SEG_TYPE_CODE_XR_ACCESSED, SEG_TYPE_DATA_RW_ACCESSED, SEL_KERNEL_CODE, SEL_KERNEL_DATA,
  SEL_TSS, SEL_USER32_CODE, SEL_USER_CODE, SEL_USER_DATA, TSS_OFF_IOMAP_BASE, TSS_OFF_IST1, TSS_OFF_RSP0, TSS_SIZE,
  codeDataDescriptor, interruptGate, tssDescriptor,
} from './descriptors.js';
import { VECTOR_BP, VECTOR_OF } from './exceptions.js';

export const SYS_OFF_GDT = 0;
export const SYS_OFF_TSS = 0x80;
export const SYS_OFF_IDT = 0x100;
/** Exception vectors with a gate; any other vector is beyond the IDT limit (#GP). */
export const IDT_VECTORS = 32;
/** Bytes between two stubs. */
export const STUB_STRIDE = 16;
/** The I/O port the stubs report on (an OUT only CPL0 can execute). */
export const PORT_CPU_EXCEPTION = 0xe0;

/** The stubs' bytes, decoded once. */
export const CPL0_STUBS: Uint8Array = Uint8Array.from(Buffer.from(CPL0_STUBS_HEX, 'hex'));

export interface SystemAreaAddresses {
  /** Guest address of the tables page (GDT, TSS, IDT). */
  readonly tables: number;
  /** Guest address of the code page (stubs). */
  readonly code: number;
  /** One past the highest byte of the exception stack (16-byte aligned). */
  readonly exceptionStackTop: number;
}

/** What KVM_SET_SREGS needs to point the CPU at the tables. */
export interface SystemTables {
  readonly gdt: { base: bigint; limit: number };
  readonly idt: { base: bigint; limit: number };
  readonly tss: { base: bigint; limit: number };
}

/**
 * Writes GDT, TSS, IDT and stubs into `memory` (all of guest memory, indexed by guest
 * address). The caller maps the two pages supervisor-only (tables read-only NX, code
 * read+execute) and the exception stack supervisor read/write NX.
 */
export function writeSystemArea(memory: Uint8Array, at: SystemAreaAddresses): SystemTables {
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const q = (off: number, v: bigint): void => view.setBigUint64(off, v, true);
  const gdt = at.tables + SYS_OFF_GDT;
  memory.fill(0, at.tables, at.tables + 4096);
  q(gdt + SEL_KERNEL_CODE, codeDataDescriptor({ type: SEG_TYPE_CODE_XR_ACCESSED, dpl: 0, code: true, long: true, present: true }));
  q(gdt + SEL_KERNEL_DATA, codeDataDescriptor({ type: SEG_TYPE_DATA_RW_ACCESSED, dpl: 0, code: false, long: false, present: true }));
  q(gdt + SEL_USER32_CODE, codeDataDescriptor({ type: SEG_TYPE_CODE_XR_ACCESSED, dpl: 3, code: true, long: false, present: false }));
  q(gdt + (SEL_USER_DATA & ~7), codeDataDescriptor({ type: SEG_TYPE_DATA_RW_ACCESSED, dpl: 3, code: false, long: false, present: true }));
  q(gdt + (SEL_USER_CODE & ~7), codeDataDescriptor({ type: SEG_TYPE_CODE_XR_ACCESSED, dpl: 3, code: true, long: true, present: true }));
  const tss = at.tables + SYS_OFF_TSS;
  const [tssLo, tssHi] = tssDescriptor(BigInt(tss), TSS_SIZE - 1);
  q(gdt + SEL_TSS, tssLo);
  q(gdt + SEL_TSS + 8, tssHi);

  const top = BigInt(at.exceptionStackTop);
  q(tss + TSS_OFF_RSP0, top);
  q(tss + TSS_OFF_IST1, top);
  view.setUint16(tss + TSS_OFF_IOMAP_BASE, TSS_SIZE, true); // no I/O bitmap: every port faults at CPL3

  const idt = at.tables + SYS_OFF_IDT;
  for (let v = 0; v < IDT_VECTORS; v++) {
    // int3 and into are the two vectors ring 3 may raise with an instruction (as under Linux).
    const dpl = v === VECTOR_BP || v === VECTOR_OF ? 3 : 0;
    const [lo, hi] = interruptGate(BigInt(at.code + STUB_STRIDE * v), SEL_KERNEL_CODE, 1, dpl);
    q(idt + GATE_SIZE * v, lo);
    q(idt + GATE_SIZE * v + 8, hi);
  }
  memory.fill(0, at.code, at.code + 4096);
  memory.set(CPL0_STUBS, at.code);
  return {
    gdt: { base: BigInt(gdt), limit: GDT_SIZE - 1 },
    idt: { base: BigInt(idt), limit: IDT_VECTORS * GATE_SIZE - 1 },
    tss: { base: BigInt(tss), limit: TSS_SIZE - 1 },
  };
}

/** What a stub leaves on the exception stack (cpl0-stubs.S), read back by the host. */
export interface ExceptionFrame {
  vector: number;
  errorCode: bigint;
  rip: bigint;
  cs: number;
  rflags: bigint;
  rsp: bigint;
  ss: number;
  cr2: bigint;
  /** The guest's RAX (the stub uses the register). */
  rax: bigint;
}

/** Bytes of the frame below the exception stack's top: cr2, rax, vector, error, rip, cs, rflags, rsp, ss. */
export const EXCEPTION_FRAME_SIZE = 72;

/**
 * Reads the stub's frame below `top`. The stack is supervisor-only, so the guest cannot
 * forge it; its values are still guest state (a RIP, an RSP) and are treated as data.
 */
export function readExceptionFrame(view: DataView, top: number): ExceptionFrame {
  const at = top - EXCEPTION_FRAME_SIZE;
  const u = (i: number): bigint => view.getBigUint64(at + 8 * i, true);
  return {
    cr2: u(0), rax: u(1), vector: Number(u(2) & 0xffn), errorCode: u(3), rip: u(4), cs: Number(u(5) & 0xffffn),
    rflags: u(6), rsp: u(7), ss: Number(u(8) & 0xffffn),
  };
}

/**
 * Where LSTAR points: a canonical lower-half address the host never maps. On kvm_pvm a ring-3
 * `syscall` jumps there without entering CPL0 (environment.md) and faults (#PF, instruction
 * fetch, CR2 = RIP = this address, RCX = the return address); on VMX/SVM EFER.SCE is clear and
 * `syscall` raises #UD at the instruction. The host serves both forms (docs/guest-abi.md).
 */
export const SYSCALL_ENTRY_SENTINEL = 0x7fff_ffff_0000n;
/** The vector-slot value that tells a resumed stub to return to the guest (cpl0-stubs.S). */
export const SYSCALL_RESUME = 0x5cn;
/** Offsets of the frame's slots from its lowest byte (EXCEPTION_FRAME_SIZE below the stack top). */
export const FRAME_OFF_RAX = 8;
export const FRAME_OFF_VECTOR = 16;
export const FRAME_OFF_RIP = 32;
export const FRAME_OFF_RFLAGS = 48;
