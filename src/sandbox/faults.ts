// Turns what a failed guest left behind (the CPL0 stub's exception frame, a shutdown, an emulation failure) into typed errors with guest addresses named in the ELF; it never resumes the guest.
import type { ElfImage } from '../elf/index.js';
import { nearestSymbol } from '../elf/index.js';
import { HyperlightError } from '../errors.js';
import { KVM_INTERNAL_ERROR_EMULATION } from '../kvm/constants.js';
import { walk } from '../mem/x86_64/index.js';
import { hostBytes, hostView } from '../mem/guest-memory.js';
import {
  EXCEPTION_FRAME_SIZE, FRAME_OFF_RAX, RFLAGS_RESERVED_1, FRAME_OFF_RFLAGS, FRAME_OFF_RIP, FRAME_OFF_VECTOR, PF_FETCH, PF_USER,
  SEL_USER_CODE, SYSCALL_ENTRY_SENTINEL, SYSCALL_RESUME, VECTOR_PF, VECTOR_UD, readExceptionFrame,
} from '../x86_64/index.js';
import {
  EmulationFailureError, type GuestCodeLocation, GuestExceptionError, GuestTripleFaultError, StackOverflowError,
  UnexpectedExitError,
} from './errors.js';
import type { Machine } from './machine.js';

/** The flags a ring-3 program may change itself: CF PF AF ZF SF DF OF AC (SDM vol. 1, 3.4.3). */
const USER_RFLAGS = 0x40cd5n;

/** A guest system call read from the stub's frame (FaultReporter.syscall). */
export interface PendingSyscall {
  /** RAX: the system-call number. */
  nr: bigint;
  /** RDI RSI RDX R10 R8 R9. */
  args: bigint[];
  /** Where the guest resumes: after its `syscall` instruction. */
  returnRip: bigint;
  rflags: bigint;
  /** Guest address of the frame's lowest byte. */
  frameAt: number;
}

/** Names guest addresses in the guest's ELF (image offset, link address, nearest function). */
export class Symbolizer {
  readonly #image: ElfImage | undefined;
  readonly #base: number;

  /** `image` loaded at guest address `base`; without an image, nothing is named. */
  constructor(image: ElfImage | undefined, base: number) {
    this.#image = image;
    this.#base = base;
  }

  locate(address: bigint): GuestCodeLocation | undefined {
    const img = this.#image;
    if (!img) return undefined;
    const off = Number(address - BigInt(this.#base));
    if (!Number.isSafeInteger(off) || off < 0 || off >= img.span) return undefined;
    const linkAddress = img.linkBase + off;
    const hit = nearestSymbol(img.functionSymbols(), linkAddress);
    return hit
      ? { imageOffset: off, linkAddress, symbol: hit.symbol.name, symbolOffset: hit.offset }
      : { imageOffset: off, linkAddress };
  }
}

/** Builds the errors of a machine's faults. One per sandbox. */
export class FaultReporter {
  readonly #m: Machine;
  readonly #symbols: Symbolizer;

  constructor(machine: Machine, symbols: Symbolizer) {
    this.#m = machine;
    this.#symbols = symbols;
  }

  /**
   * The error for a CPU exception the host's stub reported (an OUT from CPL0): reads the
   * frame from the top of the exception stack. A page fault in the stack guard page is a
   * StackOverflowError; a frame whose CS is not the guest's means the fault happened at
   * CPL0 (in the host's own stubs), which is reported as such.
   */
  exception(): HyperlightError {
    const { layout, memory } = this.#m;
    const top = layout.exceptionStack.gpa + layout.exceptionStack.size;
    const f = readExceptionFrame(hostView(memory), top);
    if (f.cs !== SEL_USER_CODE) {
      return new UnexpectedExitError(`CPU exception ${f.vector} at CPL0 (CS 0x${f.cs.toString(16)}, RIP ` +
        `0x${f.rip.toString(16)}): the host's exception stubs faulted`);
    }
    const at = this.#symbols.locate(f.rip);
    const guard = layout.stackGuard;
    if (f.vector === VECTOR_PF && f.cr2 >= BigInt(guard.gpa) && f.cr2 < BigInt(guard.gpa + guard.size)) {
      return new StackOverflowError(f.rip, f.cr2, at);
    }
    return new GuestExceptionError(f.vector, f.errorCode, f.rip, f.vector === VECTOR_PF ? f.cr2 : 0n, '', at);
  }

  /**
   * The system call a stub's report stands for, if it is one: a #UD at a `syscall`
   * instruction (0F 05) in ring 3 (VMX/SVM, EFER.SCE clear), or an instruction-fetch #PF in
   * ring 3 at SYSCALL_ENTRY_SENTINEL, where LSTAR points (kvm_pvm, whose `syscall` jumps there
   * at CPL3 with the return address in RCX and RFLAGS in R11). Reads the registers for the
   * arguments (one KVM_GET_REGS). Undefined for every other exception.
   */
  syscall(): PendingSyscall | undefined {
    const { layout, memory } = this.#m;
    const top = layout.exceptionStack.gpa + layout.exceptionStack.size;
    const f = readExceptionFrame(hostView(memory), top);
    if (f.cs !== SEL_USER_CODE) return undefined;
    let returnRip: bigint;
    let rflags = f.rflags;
    const r = () => this.#m.vcpu.getRegs();
    let regs: ReturnType<typeof r>;
    if (f.vector === VECTOR_UD) {
      const code = this.instructionBytes(f.rip);
      if (code[0] !== 0x0f || code[1] !== 0x05) return undefined;
      regs = r();
      returnRip = f.rip + 2n;
    } else if (f.vector === VECTOR_PF && f.rip === SYSCALL_ENTRY_SENTINEL && f.cr2 === SYSCALL_ENTRY_SENTINEL &&
      (f.errorCode & (PF_FETCH | PF_USER)) === (PF_FETCH | PF_USER)) {
      regs = r();
      returnRip = regs.rcx;
      rflags = regs.r11; // what `syscall` saved; the guest could have set it to anything
    } else {
      return undefined;
    }
    // Back in ring 3 with the flags a ring-3 program can set and nothing else (IF, IOPL, TF
    // and the rest as the guest started: clear).
    return {
      nr: f.rax, args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9],
      returnRip, rflags: RFLAGS_RESERVED_1 | (rflags & USER_RFLAGS), frameAt: top - EXCEPTION_FRAME_SIZE,
    };
  }

  /** Makes the stub that reported `call` return `result` to the guest after its `syscall` (cpl0-stubs.S). */
  resumeSyscall(call: PendingSyscall, result: bigint): void {
    const v = hostView(this.#m.memory);
    v.setBigUint64(call.frameAt + FRAME_OFF_RAX, result, true);
    v.setBigUint64(call.frameAt + FRAME_OFF_RIP, call.returnRip, true);
    v.setBigUint64(call.frameAt + FRAME_OFF_RFLAGS, call.rflags, true);
    v.setBigUint64(call.frameAt + FRAME_OFF_VECTOR, SYSCALL_RESUME, true);
  }

  /** The vector in the stub's frame. */
  vector(): number {
    const { layout, memory } = this.#m;
    return readExceptionFrame(memory.view, layout.exceptionStack.gpa + layout.exceptionStack.size).vector;
  }

  tripleFault(): HyperlightError {
    const r = this.#m.vcpu.getRegs();
    const s = this.#m.vcpu.getSregs();
    return new GuestTripleFaultError({
      rip: r.rip, rsp: r.rsp, rax: r.rax, rflags: r.rflags,
      cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, efer: s.efer,
    });
  }

  rip(): bigint {
    try {
      return this.#m.vcpu.getRegs().rip;
    } catch {
      return 0n;
    }
  }

  /**
   * Up to 15 instruction bytes at `rip`, read through the host-built page tables (a guest
   * at CPL3 cannot change CR3). A walk that leaves guest memory ends the bytes.
   */
  instructionBytes(rip: bigint): Uint8Array {
    const bytes = hostBytes(this.#m.memory);
    const out: number[] = [];
    for (let i = 0n; i < 15n; i++) {
      let t: ReturnType<typeof walk>;
      try {
        t = walk(bytes, this.#m.cr3, rip + i);
      } catch {
        break;
      }
      if (!t || t.gpa >= bytes.length) break;
      out.push(bytes[t.gpa]!);
    }
    return Uint8Array.from(out);
  }

  /** KVM_EXIT_INTERNAL_ERROR: KVM could not emulate an instruction (CPL0 code, or an MMIO access it cannot decode). */
  internalError(suberror: number): HyperlightError {
    const rip = this.rip();
    const code = this.instructionBytes(rip);
    const hex = [...code].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const what = suberror === KVM_INTERNAL_ERROR_EMULATION
      ? 'an instruction KVM had to emulate and could not (an MMIO access through an unusual instruction, or CPL0 code)'
      : `an instruction KVM could not handle (internal error suberror ${suberror})`;
    const at = this.#symbols.locate(rip);
    const where = at ? ` (ELF 0x${at.linkAddress.toString(16)}${at.symbol ? ` ${at.symbol}+0x${(at.symbolOffset ?? 0).toString(16)}` : ''})` : '';
    return new EmulationFailureError(`guest executed ${what} at RIP 0x${rip.toString(16)}${where}: bytes [${hex}]`,
      rip, code, suberror);
  }
}
