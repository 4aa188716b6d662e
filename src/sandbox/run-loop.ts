// The vCPU run loop: runs the guest until it halts or asks the host for something, handing
// each exit kind to its own handler. It never calls host functions itself: step() returns
// the pending host call, so a synchronous or an asynchronous driver can answer it.
import { HyperlightError } from '../errors.js';
import type { VcpuExit, IoExit } from '../kvm/exit.js';
import { KVM_INTERNAL_ERROR_EMULATION } from '../kvm/constants.js';
import { walk } from '../mem/x86_64/index.js';
import {
  ABORT_CODE_EXCEPTION, ABORT_CODE_STACK_OVERFLOW, PORT_ABORT, PORT_CALL_FUNCTION, PORT_DEBUG_PRINT,
  PORT_HALT, PORT_LOG,
} from './abi.js';
import { AbortStream, type AbortReport } from './abort.js';
import { type DecodedFunctionCall, type GuestLogRecord, WireCodec, decodeGuestLogData } from './codec.js';
import {
  EmulationFailureError, ExecutionCanceledError, GuestAbortedError, GuestExceptionError,
  GuestProtocolError, GuestTripleFaultError, MemoryAccessViolationError, StackOverflowError,
  UnexpectedExitError,
} from './errors.js';
import { popElement, pushElement, resetStack } from './iobuf.js';
import { Deadline } from './deadline.js';
import { ProcessSignalWatch } from './process-signals.js';
import { CANCEL_NONE, CANCEL_TIMEOUT, type InterruptState } from './interrupt.js';
import type { Machine } from './vm-setup.js';

/** What the guest wants when step() returns. */
export type PendingAction =
  | { kind: 'halt' }
  | { kind: 'host-call'; call: DecodedFunctionCall };

const HALT: PendingAction = { kind: 'halt' };

/** Receives every VM exit when tracing (see EvolveOptions.exits). */
export interface ExitSink {
  /** `exit` is reused by the next run; copy what you keep. `rip` is read only for tracing. */
  exit(exit: VcpuExit, rip: bigint, timeNs: bigint): void;
}

/** Where guest output goes. */
export interface OutputSinks {
  /** Text the guest prints through DebugPrint (port 103), a line or a flush at a time. */
  debugPrint(text: string): void;
  /** A GuestLogData record (port 99); absent: logs are dropped. */
  log?: (record: GuestLogRecord) => void;
}

const DEBUG_LINE_MAX = 4096;
const utf8 = new TextDecoder();

/** Drives one machine's vCPU. Not reentrant: one call at a time. */
export class RunLoop {
  readonly codec = new WireCodec();
  readonly #m: Machine;
  readonly #interrupt: InterruptState;
  readonly #sinks: OutputSinks;
  readonly #abort = new AbortStream();
  readonly #debugLine = new Uint8Array(DEBUG_LINE_MAX);
  #debugLength = 0;
  readonly #deadline = new Deadline();
  readonly #signals = new ProcessSignalWatch();
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  /** Highest byte offset (exclusive) the host wrote into each buffer since `clearHostWrites()`. */
  hostWriteEndInput = 0;
  hostWriteEndOutput = 0;
  /** Host calls, prints and logs the guest has made (guest init is replayable only at 0). */
  guestOutputs = 0;
  /** Whether the guest has been entered since startCall() (errors before that do not poison). */
  guestEntered = false;
  /** Exit tracing; undefined (the default) costs one property check per exit. */
  exitSink: ExitSink | undefined;

  constructor(machine: Machine, interrupt: InterruptState, sinks: OutputSinks) {
    this.#m = machine;
    this.#interrupt = interrupt;
    this.#sinks = sinks;
    this.#bytes = machine.memory.bytes;
    this.#view = machine.memory.view;
  }

  // ---- I/O buffers -------------------------------------------------------------------

  /** Empties both buffers and pushes `message` onto the input buffer. */
  startCall(message: Uint8Array): void {
    const { inputData: inp, outputData: out } = this.#m.layout;
    resetStack(this.#bytes, this.#view, out.gpa, out.size);
    resetStack(this.#bytes, this.#view, inp.gpa, inp.size);
    this.guestEntered = false;
    this.pushInput(message);
    if (this.hostWriteEndOutput < 8) this.hostWriteEndOutput = 8;
  }

  /** Pushes a message onto the input buffer (a call, or a host-call result). */
  pushInput(message: Uint8Array): void {
    const inp = this.#m.layout.inputData;
    pushElement(this.#bytes, this.#view, inp.gpa, inp.size, message);
    const sp = Number(this.#view.getBigUint64(inp.gpa, true));
    if (sp > this.hostWriteEndInput) this.hostWriteEndInput = sp;
  }

  /** Pops the guest's latest message from the output buffer (a view, valid until the next write). */
  popOutput(): Uint8Array {
    const out = this.#m.layout.outputData;
    return popElement(this.#bytes, this.#view, out.gpa, out.size);
  }

  clearHostWrites(): void {
    this.hostWriteEndInput = 0;
    this.hostWriteEndOutput = 0;
  }

  // ---- time limits -------------------------------------------------------------------

  /**
   * Arms the per-call time limit (0: none) and the SIGINT/SIGTERM watch. Call once per
   * guest call, on the vCPU thread.
   */
  armTimeLimit(ms: number): void {
    this.#deadline.arm(ms);
    this.#signals.begin();
  }

  disarmTimeLimit(): void {
    this.#deadline.disarm();
    this.#signals.end();
  }

  #checkCancel(reason: number): void {
    if (reason === CANCEL_NONE && this.#deadline.passed()) {
      this.#interrupt.timeout();
      reason = CANCEL_TIMEOUT;
    }
    if (reason !== CANCEL_NONE) {
      throw new ExecutionCanceledError(reason === CANCEL_TIMEOUT ? 'timeout' : 'killed');
    }
    const signal = this.#signals.caught();
    if (signal !== undefined) {
      throw new ExecutionCanceledError('signal', ` (${signal}; the application's listener runs when the call has returned)`);
    }
  }

  // ---- the loop ----------------------------------------------------------------------

  /**
   * Runs the vCPU until the guest halts or makes a host call. Throws the typed error of
   * any other outcome (the caller decides poisoning via `poisons()`).
   */
  step(): PendingAction {
    const vcpu = this.#m.vcpu;
    const interrupt = this.#interrupt;
    for (;;) {
      const pending = interrupt.enterRun();
      // Before every entry: a kill, or a deadline that passed (also during a host function).
      if (pending !== CANCEL_NONE || this.#deadline.passed() || this.#signals.caught() !== undefined) {
        interrupt.leaveRun();
        this.#checkCancel(pending);
      }
      let exit: VcpuExit;
      this.guestEntered = true;
      try {
        exit = vcpu.run();
      } finally {
        interrupt.leaveRun();
      }
      if (this.exitSink !== undefined) this.exitSink.exit(exit, this.#rip(), process.hrtime.bigint());
      if (exit.kind === 'io') {
        if (exit.direction === 'out') {
          if (exit.port === PORT_HALT) return this.#halt();
          const action = this.#onOut(exit);
          if (action) return action;
          continue;
        }
        throw new GuestProtocolError(`IN from port ${exit.port} (guests may only OUT to the Hyperlight ports)`);
      }
      const action = this.#onOtherExit(exit);
      if (action) return action;
    }
  }

  #halt(): PendingAction {
    this.flushDebugPrint();
    if (this.#abort.active) {
      this.#abort.reset();
      throw new GuestProtocolError('the guest halted in the middle of an abort stream (port 102 without its 0xFF end)');
    }
    return HALT;
  }

  #onOut(exit: IoExit): PendingAction | undefined {
    switch (exit.port) {
      case PORT_CALL_FUNCTION: return this.#onHostCall();
      case PORT_DEBUG_PRINT: this.#onDebugPrint(exit); return undefined;
      case PORT_LOG: this.#onLog(); return undefined;
      case PORT_ABORT: this.#onAbort(exit); return undefined;
      default:
        throw new GuestProtocolError(`OUT to unknown port ${exit.port}`);
    }
  }

  #onOtherExit(exit: VcpuExit): PendingAction | undefined {
    switch (exit.kind) {
      case 'hlt': return this.#halt();
      case 'interrupted':
        this.#checkCancel(this.#interrupt.cancelReason());
        return undefined; // a stray kick: run on
      case 'mmio':
        throw new MemoryAccessViolationError(exit.address, exit.isWrite ? 'write' : 'read', this.#rip());
      case 'shutdown': throw this.#tripleFault();
      case 'internal-error': throw this.#internalError(exit.suberror);
      case 'fail-entry':
        throw new UnexpectedExitError(`KVM could not enter the guest (hardware entry failure reason 0x${exit.hardwareReason.toString(16)})`);
      case 'debug':
        throw new UnexpectedExitError(`debug exit at 0x${exit.pc.toString(16)} with no debugger attached`);
      case 'system-event':
        throw new UnexpectedExitError(`system event ${exit.type}`);
      case 'unknown':
        throw new UnexpectedExitError(`unexpected exit ${exit.name} (${exit.reason})`);
      case 'io':
        return undefined; // handled in step()
    }
  }

  #onHostCall(): PendingAction {
    this.guestOutputs++;
    const bytes = this.popOutput();
    return { kind: 'host-call', call: this.codec.decodeFunctionCall(bytes) };
  }

  #onDebugPrint(exit: IoExit): void {
    this.guestOutputs++;
    // One character per OUT element (its low byte); a string OUT (`rep outsb`) carries many.
    const data = exit.data;
    const step = exit.size > 0 ? exit.size : 1;
    for (let i = 0; i < data.length; i += step) {
      const ch = data[i]!;
      this.#debugLine[this.#debugLength++] = ch;
      if (ch === 0x0a || this.#debugLength === DEBUG_LINE_MAX) this.flushDebugPrint();
    }
  }

  /** Sends buffered DebugPrint text to the sink. */
  flushDebugPrint(): void {
    if (this.#debugLength === 0) return;
    const text = utf8.decode(this.#debugLine.subarray(0, this.#debugLength));
    this.#debugLength = 0;
    this.#sinks.debugPrint(text);
  }

  #onLog(): void {
    this.guestOutputs++;
    const record = decodeGuestLogData(this.popOutput());
    this.#sinks.log?.(record);
  }

  #onAbort(exit: IoExit): void {
    if (exit.size !== 4 || exit.count !== 1 || exit.data.length !== 4) {
      throw new GuestProtocolError(`abort chunks are 4-byte OUTs, got ${exit.size} x ${exit.count}`);
    }
    const d = exit.data;
    const eax = (d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24)) >>> 0;
    const report = this.#abort.feed(eax);
    if (report) {
      this.#abort.reset();
      throw this.#abortError(report);
    }
  }

  #abortError(report: AbortReport): HyperlightError {
    const x = report.exception;
    if (x && (report.code === ABORT_CODE_EXCEPTION || report.code === ABORT_CODE_STACK_OVERFLOW)) {
      const guard = this.#m.layout.stackGuard;
      const inGuard = x.cr2 >= BigInt(guard.gpa) && x.cr2 < BigInt(guard.gpa + guard.size);
      if (x.stackOverflow || (x.vector === 14 && inGuard)) return new StackOverflowError(x.rip, x.cr2);
      return new GuestExceptionError(x.vector, x.errorCode, x.rip, x.cr2, report.message);
    }
    return new GuestAbortedError(report.code, report.message);
  }

  #rip(): bigint {
    try {
      return this.#m.vcpu.getRegs().rip;
    } catch {
      return 0n;
    }
  }

  #tripleFault(): HyperlightError {
    const r = this.#m.vcpu.getRegs();
    const s = this.#m.vcpu.getSregs();
    return new GuestTripleFaultError({
      rip: r.rip, rsp: r.rsp, rax: r.rax, rflags: r.rflags,
      cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, efer: s.efer,
    });
  }

  /**
   * Up to 15 instruction bytes at `rip`, read through the page tables the guest is using
   * now (its CR3 may point at tables it built itself). The tables are guest data: a walk
   * that leaves guest memory ends the bytes instead of throwing.
   */
  instructionBytes(rip: bigint): Uint8Array {
    const bytes = this.#bytes;
    const out: number[] = [];
    let cr3 = this.#m.cr3;
    try {
      cr3 = this.#m.vcpu.getSregs().cr3;
    } catch {
      // keep the host-built tables
    }
    for (let i = 0n; i < 15n; i++) {
      let t: ReturnType<typeof walk>;
      try {
        t = walk(bytes, cr3, rip + i);
      } catch {
        break; // a table entry pointing outside guest memory
      }
      if (!t || t.gpa >= bytes.length) break;
      out.push(bytes[t.gpa]!);
    }
    return Uint8Array.from(out);
  }

  #internalError(suberror: number): HyperlightError {
    const rip = this.#rip();
    const code = this.instructionBytes(rip);
    const hex = [...code].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const fp = suberror === KVM_INTERNAL_ERROR_EMULATION && isFloatingPointInstruction(code);
    const what = fp
      ? 'an x87/SSE/AVX instruction, which this KVM cannot execute in guests (build guests with -mgeneral-regs-only)'
      : `an instruction KVM could not emulate (internal error suberror ${suberror})`;
    return new EmulationFailureError(`guest executed ${what} at RIP 0x${rip.toString(16)}: bytes [${hex}]`, rip, code, suberror);
  }

  /**
   * Lets KVM finish the instruction of the last exit without running any guest code. KVM
   * completes an IN, MMIO read or string I/O on the next KVM_RUN, writing the result into
   * the registers and moving RIP past the instruction; a restore that set registers before
   * that would have them overwritten by the old instruction's completion (the guest then
   * resumed inside the hostile function). KVM_RUN with immediate_exit runs only that
   * completion and returns EINTR (docs/security.md).
   */
  completePendingExit(): void {
    const vcpu = this.#m.vcpu;
    vcpu.setImmediateExit(true);
    try {
      vcpu.run();
    } finally {
      vcpu.setImmediateExit(false);
    }
  }

  /** Forgets a half-received abort stream and unflushed DebugPrint text (after restore). */
  resetGuestStreams(): void {
    this.#abort.reset();
    this.#debugLength = 0;
  }

  close(): void {
    this.#deadline.close();
  }
}

/**
 * Whether the bytes start with an x87 (D8-DF), VEX/EVEX (C4, C5, 62 in 64-bit mode) or
 * SSE/MMX (0F-prefixed, optionally after 66/F2/F3) instruction.
 */
export function isFloatingPointInstruction(code: Uint8Array): boolean {
  let i = 0;
  while (i < code.length && (code[i] === 0x66 || code[i] === 0xf2 || code[i] === 0xf3 || (code[i]! & 0xf0) === 0x40)) i++;
  const op = code[i];
  if (op === undefined) return false;
  if (op >= 0xd8 && op <= 0xdf) return true;
  if (op === 0xc4 || op === 0xc5 || op === 0x62) return true;
  if (op !== 0x0f) return false;
  const op2 = code[i + 1];
  if (op2 === undefined) return false;
  return (op2 >= 0x10 && op2 <= 0x17) || (op2 >= 0x28 && op2 <= 0x2f) || (op2 >= 0x50 && op2 <= 0x7f) ||
    (op2 >= 0xc2 && op2 <= 0xc6) || op2 >= 0xd0 || op2 === 0xae || op2 === 0x38 || op2 === 0x3a;
}
