// The vCPU run loop: runs the guest until it halts or asks the host for something, handing each exit to its handler from a table (doorbell stores, the CPL0 stubs' exception reports, KVM's own exits). It never calls host functions itself: step() returns the pending host call, so a synchronous or an asynchronous driver can answer it.
import type { IoExit, MmioExit, VcpuExit } from '../kvm/exit.js';
import { PORT_CPU_EXCEPTION } from '../x86_64/index.js';
import {
  DEBUG_PRINT_MAX, DOORBELL_STRIDE, OP_ABORT, OP_CALL_FUNCTION, OP_DEBUG_PRINT, OP_HALT, OP_LOG, ABORT_MAX_BYTES,
} from './abi.js';
import { decodeAbortRecord } from './abort.js';
import { type DecodedFunctionCall, type GuestLogRecord, WireCodec, decodeGuestLogData } from './codec.js';
import { GuestAbortedError, GuestProtocolError, MemoryAccessViolationError, UnexpectedExitError } from './errors.js';
import { FaultReporter, Symbolizer } from './faults.js';
import { SyscallServer } from './syscalls.js';
import { EXCEPTION_FRAME_SIZE, FRAME_OFF_RFLAGS, MSR_FS_BASE } from '../x86_64/index.js';
import { CANCEL_NONE, type InterruptState } from './interrupt.js';
import { IoBuffers } from './iobuf.js';
import type { Machine } from './machine.js';
import { TimeLimit } from './time-limit.js';
import { hostBytes, hostView } from '../mem/guest-memory.js';
import { consumeKicks } from '../kvm/libc.js';
import type { ElfImage } from '../elf/index.js';

/** What the guest wants when step() returns. `value` of a halt: the doorbell argument (the dispatch address at init). */
export type PendingAction =
  | { kind: 'halt'; value: bigint }
  | { kind: 'host-call'; call: DecodedFunctionCall };

/** A debugger the run loop hands CPU exceptions to (the gdb stub, gdb-stub.ts). */
export interface GuestDebugger {
  /** The guest raised `vector` (the stub's frame is on the exception stack): true when it resumes the guest, false to fail as usual. */
  exception(vector: number): boolean;
  /** A served system call is about to return to the guest; the frame's RFLAGS is at `rflagsAt`. */
  keepStepping(rflagsAt: number): void;
}

/** Receives every VM exit when tracing (see EvolveOptions.exits). */
export interface ExitSink {
  /** `exit` is reused by the next run; copy what you keep. `rip` is read only for tracing. */
  exit(exit: VcpuExit, rip: bigint, timeNs: bigint): void;
  /**
   * The exit just reported was a guest system call, which the host served: its number and
   * the RAX it returned (a negative errno as a u64 two's complement, e.g. -ENOSYS).
   */
  syscall?(nr: bigint, result: bigint): void;
}

/** Where guest output goes. */
export interface OutputSinks {
  /** Text the guest prints through DebugPrint, one doorbell store at a time. */
  debugPrint(text: string): void;
  /** A GuestLogData record; absent: logs are dropped. */
  log?: (record: GuestLogRecord) => void;
}

type Handler = (exit: VcpuExit) => PendingAction | undefined;

const utf8 = new TextDecoder();
/** The GuestAborted(0, ...) message of an abort record longer than 1 + ABORT_MAX_BYTES, as Hyperlight reports it. */
export const ABORT_OVERFLOW_MESSAGE = 'Guest abort buffer overflowed';

/** Drives one machine's vCPU. Not reentrant: one call at a time. */
export class RunLoop {
  readonly codec = new WireCodec();
  readonly io: IoBuffers;
  readonly timeLimit: TimeLimit;
  readonly faults: FaultReporter;
  /** The Linux system calls the guest's libc makes (docs/guest-abi.md "System calls"). */
  readonly syscalls: SyscallServer;
  readonly #m: Machine;
  readonly #interrupt: InterruptState;
  readonly #sinks: OutputSinks;
  readonly #halt: { kind: 'halt'; value: bigint } = { kind: 'halt', value: 0n };
  readonly #handlers: Readonly<Record<VcpuExit['kind'], Handler>>;
  readonly #bytes: Uint8Array;
  readonly #doorbell: number;
  /** The guest's own memory (everything from the PEB up): where pointers it passes may point. */
  readonly #userLo: number;
  #mmioView: DataView | undefined;
  /** A served system call left the stub's frame on the exception stack (cleared at the next Halt). */
  #frameLeft = false;
  /** Host calls, prints and logs the guest has made (guest init is replayable only at 0). */
  guestOutputs = 0;
  /** Whether the guest was entered since the caller last cleared this (errors before that do not poison). */
  guestEntered = false;
  /** Exit tracing; undefined (the default) costs one property check per exit. */
  exitSink: ExitSink | undefined;
  /** The gdb stub (debug.gdbPort); undefined (the default) costs one property check per exception report. */
  debugger: GuestDebugger | undefined;
  /** Where the guest's ELF was loaded minus its link address (0 for a position-dependent ELF at its link address). */
  readonly loadOffset: bigint;

  constructor(machine: Machine, interrupt: InterruptState, sinks: OutputSinks, image?: ElfImage) {
    this.#m = machine;
    this.#interrupt = interrupt;
    this.#sinks = sinks;
    this.#bytes = hostBytes(machine.memory);
    const { layout } = machine;
    this.#doorbell = layout.doorbell.gpa;
    this.#userLo = layout.peb.gpa;
    this.io = new IoBuffers(hostBytes(machine.memory), hostView(machine.memory), layout.inputData, layout.outputData);
    this.timeLimit = new TimeLimit(interrupt);
    this.faults = new FaultReporter(machine, new Symbolizer(image, layout.image.gpa));
    this.loadOffset = BigInt(layout.image.gpa - (image?.linkBase ?? 0));
    this.syscalls = new SyscallServer(hostBytes(machine.memory), hostView(machine.memory), layout, machine.cr3, {
      print: (text) => { this.guestOutputs++; this.#sinks.debugPrint(text); },
      setFsBase: (value) => { machine.vcpu.setMsrs([{ index: MSR_FS_BASE, data: value }]); },
      fsBase: () => machine.vcpu.getMsrs([MSR_FS_BASE])[0]!.data,
    });
    const unexpected = (what: string): Handler => () => {
      throw new UnexpectedExitError(what);
    };
    this.#handlers = {
      mmio: (e) => this.#onMmio(e as MmioExit),
      io: (e) => this.#onIo(e as IoExit),
      interrupted: () => {
        consumeKicks(); // the kick that ended KVM_RUN is still pending (blocked outside it)
        this.timeLimit.check(this.#interrupt.cancelReason());
        return undefined; // a stray kick: run on
      },
      hlt: unexpected('the vCPU halted (only the host\'s exception stubs can execute hlt, after their report)'),
      shutdown: () => { throw this.faults.tripleFault(); },
      'internal-error': (e) => { throw this.faults.internalError((e as Extract<VcpuExit, { kind: 'internal-error' }>).suberror); },
      'fail-entry': (e) => {
        throw new UnexpectedExitError(`KVM could not enter the guest (hardware entry failure reason 0x${(e as Extract<VcpuExit, { kind: 'fail-entry' }>).hardwareReason.toString(16)})`);
      },
      debug: (e) => { throw new UnexpectedExitError(`debug exit at 0x${(e as Extract<VcpuExit, { kind: 'debug' }>).pc.toString(16)} with no debugger attached`); },
      'system-event': (e) => { throw new UnexpectedExitError(`system event ${(e as Extract<VcpuExit, { kind: 'system-event' }>).type}`); },
      unknown: (e) => {
        const u = e as Extract<VcpuExit, { kind: 'unknown' }>;
        throw new UnexpectedExitError(`unexpected exit ${u.name} (${u.reason})`);
      },
    };
  }

  /**
   * Runs the vCPU until the guest halts or makes a host call. Throws the typed error of
   * any other outcome (the caller decides poisoning via `poisons()`).
   */
  step(): PendingAction {
    const vcpu = this.#m.vcpu;
    const interrupt = this.#interrupt;
    for (;;) {
      const pending = interrupt.enterRun();
      // Before every entry: a kill, a passed deadline (also during a host function), a signal.
      if (pending !== CANCEL_NONE || this.timeLimit.due()) {
        interrupt.leaveRun();
        this.timeLimit.check(pending);
      }
      let exit: VcpuExit;
      this.guestEntered = true;
      try {
        exit = vcpu.run();
      } finally {
        interrupt.leaveRun();
      }
      if (this.exitSink !== undefined) this.exitSink.exit(exit, this.faults.rip(), process.hrtime.bigint());
      const action = this.#handlers[exit.kind](exit);
      if (action) return action;
    }
  }

  /** Hands one exit of a KVM_RUN made elsewhere (exitless mode's vCPU thread) to its handler. */
  handleExit(exit: VcpuExit): PendingAction | undefined {
    return this.#handlers[exit.kind](exit);
  }

  /** Where guest output goes (exitless mode delivers prints and logs itself). */
  get outputSinks(): OutputSinks {
    return this.#sinks;
  }

  // ---- the doorbell ------------------------------------------------------------------

  #onMmio(exit: MmioExit): PendingAction | undefined {
    const off = Number(exit.address) - this.#doorbell;
    if (!exit.isWrite || off < 0 || off >= 4096) {
      throw new MemoryAccessViolationError(exit.address, exit.isWrite ? 'write' : 'read', this.faults.rip());
    }
    if (off % DOORBELL_STRIDE !== 0 || exit.length !== 8) {
      throw new GuestProtocolError(`doorbell stores are aligned 8-byte writes, got ${exit.length} bytes at offset ${off}`);
    }
    // The argument as two u32 halves (no bigint on the hot path): address | length << 32.
    const data = (this.#mmioView ??= new DataView(exit.data.buffer, exit.data.byteOffset, 8));
    const lo = data.getUint32(0, true);
    const hi = data.getUint32(4, true);
    switch (off / DOORBELL_STRIDE) {
      case OP_HALT:
        if (this.#frameLeft) this.#clearFrame();
        this.#halt.value = lo === 0 && hi === 0 ? 0n : data.getBigUint64(0, true);
        return this.#halt;
      case OP_CALL_FUNCTION:
        this.guestOutputs++;
        return { kind: 'host-call', call: this.codec.decodeFunctionCall(this.io.popOutput()) };
      case OP_DEBUG_PRINT:
        this.guestOutputs++;
        this.#sinks.debugPrint(utf8.decode(this.#guestRange(lo, hi, DEBUG_PRINT_MAX, 'DebugPrint')));
        return undefined;
      case OP_LOG: {
        this.guestOutputs++;
        const record = decodeGuestLogData(this.io.popOutput());
        this.#sinks.log?.(record);
        return undefined;
      }
      case OP_ABORT: {
        const record = this.#guestRange(lo, Math.min(hi, 1 + ABORT_MAX_BYTES), 1 + ABORT_MAX_BYTES, 'the abort record');
        const report = decodeAbortRecord(record, hi);
        // Hyperlight's answer to a message longer than its abort buffer (docs/errors.md).
        if (report.truncated) throw new GuestAbortedError(0, ABORT_OVERFLOW_MESSAGE);
        throw new GuestAbortedError(report.code, report.message);
      }
      default:
        throw new GuestProtocolError(`doorbell op ${off / DOORBELL_STRIDE} is not one of the ABI's (docs/guest-abi.md)`);
    }
  }

  /**
   * The guest bytes an argument (address `addr`, length `len`) names, checked: at most `max`
   * bytes, inside the guest's own memory (from the PEB up; never the host's system area).
   * A view into guest memory: copy before the guest runs again.
   */
  #guestRange(addr: number, len: number, max: number, what: string): Uint8Array {
    if (len > max) throw new GuestProtocolError(`${what} of ${len} bytes exceeds the ${max}-byte limit`);
    if (addr < this.#userLo || addr + len > this.#bytes.length) {
      throw new GuestProtocolError(`${what} at 0x${addr.toString(16)} (${len} bytes) lies outside the guest's memory ` +
        `(0x${this.#userLo.toString(16)}..0x${this.#bytes.length.toString(16)})`);
    }
    return this.#bytes.subarray(addr, addr + len);
  }

  // ---- exceptions --------------------------------------------------------------------

  /**
   * Zeroes what the stubs left on the host's exception stack after served system calls, so
   * that between calls it holds what the host wrote there (nothing): snapshots and snapshot
   * files see the host's pages unchanged.
   */
  #clearFrame(): void {
    const { exceptionStack } = this.#m.layout;
    const top = exceptionStack.gpa + exceptionStack.size;
    this.#bytes.fill(0, top - EXCEPTION_FRAME_SIZE, top);
    this.#frameLeft = false;
  }

  #onIo(exit: IoExit): PendingAction | undefined {
    if (exit.direction === 'out' && exit.port === PORT_CPU_EXCEPTION) {
      const call = this.faults.syscall();
      if (!call) {
        const d = this.debugger;
        if (d !== undefined && d.exception(this.faults.vector())) {
          this.#frameLeft = true;
          return undefined;
        }
        throw this.faults.exception();
      }
      const result = this.syscalls.serve(call.nr, call.args);
      this.faults.resumeSyscall(call, result);
      this.debugger?.keepStepping(call.frameAt + FRAME_OFF_RFLAGS);
      this.exitSink?.syscall?.(call.nr, result);
      this.#frameLeft = true;
      return undefined;
    }
    // Ring 3 cannot execute in/out (IOPL 0, no I/O bitmap): only host code could get here.
    throw new UnexpectedExitError(`port I/O ${exit.direction} ${exit.port} (guests cannot do port I/O)`);
  }

  /**
   * Lets KVM finish the instruction of the last exit without running any guest code. KVM
   * completes an OUT, IN or MMIO read on the next KVM_RUN, writing registers and moving RIP;
   * a restore that set registers before that would have them overwritten. KVM_RUN with
   * immediate_exit runs only that completion and returns EINTR (docs/security.md).
   */
  completePendingExit(): void {
    const vcpu = this.#m.vcpu;
    vcpu.setImmediateExit(true);
    try {
      vcpu.run();
    } finally {
      vcpu.setImmediateExit(false);
      consumeKicks(); // late kicks of the failed call would end the next entry
    }
  }

  close(): void {
    this.timeLimit.close();
  }
}
