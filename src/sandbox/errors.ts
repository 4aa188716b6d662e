// Errors a sandbox raises, and the one place that decides which of them poison it.
import { exceptionName } from '../x86_64/exceptions.js';
import { HyperlightError } from '../errors.js';

export interface GuestRegistersSnapshot {
  rip: bigint;
  rsp: bigint;
  rax: bigint;
  rflags: bigint;
  cr0?: bigint;
  cr2?: bigint;
  cr3?: bigint;
  cr4?: bigint;
  efer?: bigint;
}

/** The guest function returned an error (`GuestError` in its FunctionCallResult). */
export class GuestError extends HyperlightError {
  /** Hyperlight's ErrorCode (e.g. 4 GuestFunctionNotFound, 17 HostError). */
  readonly guestCode: number;
  readonly guestMessage: string;

  constructor(guestCode: number, guestMessage: string, options?: { cause?: unknown }) {
    super('ERR_GUEST_ERROR', `guest error ${guestCode} (${errorCodeName(guestCode)}): ${guestMessage}`, options);
    this.guestCode = guestCode;
    this.guestMessage = guestMessage;
  }
}

/** The guest aborted (hl_abort_with_code*, or a guest runtime failure). */
export class GuestAbortedError extends HyperlightError {
  readonly abortCode: number;
  readonly guestMessage: string;

  constructor(abortCode: number, guestMessage: string) {
    super('ERR_GUEST_ABORTED',
      `guest aborted with code ${abortCode}${guestMessage ? `: ${guestMessage}` : ''}`);
    this.abortCode = abortCode;
    this.guestMessage = guestMessage;
  }
}

/** Where a guest address lies in the guest's ELF: the offset from the image base, and the nearest function symbol. */
export interface GuestCodeLocation {
  /** Byte offset of the address from the first byte of the loaded image. */
  readonly imageOffset: number;
  /** The address as the ELF was linked (offset + link base), what `objdump -d` shows. */
  readonly linkAddress: number;
  /** The function containing it (or the nearest below), when the ELF has a symbol table. */
  readonly symbol?: string;
  readonly symbolOffset?: number;
}

function describeLocation(at: GuestCodeLocation | undefined): string {
  if (!at) return '';
  const sym = at.symbol !== undefined ? ` ${at.symbol}+0x${(at.symbolOffset ?? 0).toString(16)}` : '';
  return ` (ELF 0x${at.linkAddress.toString(16)}${sym})`;
}

/** An unhandled CPU exception in the guest, caught by the host's CPL0 exception stubs. */
export class GuestExceptionError extends HyperlightError {
  readonly vector: number;
  readonly errorCode: bigint;
  readonly rip: bigint;
  readonly cr2: bigint;
  readonly guestMessage: string;
  /** The RIP in the guest's ELF, when it lies in the image. */
  readonly location: GuestCodeLocation | undefined;

  constructor(vector: number, errorCode: bigint, rip: bigint, cr2: bigint, guestMessage = '', location?: GuestCodeLocation) {
    const name = exceptionName(vector);
    super('ERR_GUEST_EXCEPTION',
      `Exception: ${name} | Exception vector: ${vector} | error code 0x${errorCode.toString(16)}` +
      ` at RIP 0x${rip.toString(16)}${describeLocation(location)}` + (vector === 14 ? ` (CR2 0x${cr2.toString(16)})` : '') +
      (guestMessage ? `: ${guestMessage}` : ''));
    this.vector = vector;
    this.errorCode = errorCode;
    this.rip = rip;
    this.cr2 = cr2;
    this.guestMessage = guestMessage;
    this.location = location;
  }
}

/** The guest ran past the bottom of its stack into the guard page. */
export class StackOverflowError extends HyperlightError {
  readonly rip: bigint;
  readonly address: bigint;
  readonly location: GuestCodeLocation | undefined;

  constructor(rip: bigint, address: bigint, location?: GuestCodeLocation) {
    super('ERR_STACK_OVERFLOW',
      `guest stack overflow: access to guard page at 0x${address.toString(16)} from RIP 0x${rip.toString(16)}` +
      describeLocation(location));
    this.rip = rip;
    this.address = address;
    this.location = location;
  }
}

/**
 * The call was stopped by `kill()` (`killed`), by `maxExecutionTimeMs` or a call's
 * `timeoutMs` (`timeout`), by the AbortSignal of an async call (`aborted`, `cause` = the
 * signal's reason), or by a SIGINT/SIGTERM the application listens for (`signal`).
 */
export class ExecutionCanceledError extends HyperlightError {
  readonly reason: 'killed' | 'timeout' | 'aborted' | 'signal';

  constructor(reason: 'killed' | 'timeout' | 'aborted' | 'signal', detail = '', options?: { cause?: unknown }) {
    super('ERR_EXECUTION_CANCELED',
      `guest execution canceled by the host (${CANCEL_WHY[reason]})${detail}`, options);
    this.reason = reason;
  }
}

const CANCEL_WHY = {
  killed: 'kill()', timeout: 'time limit reached', aborted: 'AbortSignal aborted', signal: 'process signal',
} as const;

/** The guest touched guest-physical memory it was not given (MMIO exit), or the host
 * found a guest-supplied address outside the region it must lie in. */
export class MemoryAccessViolationError extends HyperlightError {
  readonly address: bigint;
  readonly access: 'read' | 'write' | 'execute' | 'unknown';
  readonly rip: bigint;

  constructor(address: bigint, access: 'read' | 'write' | 'execute' | 'unknown', rip: bigint) {
    super('ERR_MEMORY_ACCESS_VIOLATION',
      `guest memory access violation: ${access} at 0x${address.toString(16)} from RIP 0x${rip.toString(16)}`);
    this.address = address;
    this.access = access;
    this.rip = rip;
  }
}

/** The vCPU shut down (triple fault). */
export class GuestTripleFaultError extends HyperlightError {
  readonly registers: GuestRegistersSnapshot;

  constructor(registers: GuestRegistersSnapshot) {
    super('ERR_GUEST_TRIPLE_FAULT',
      `guest triple fault (vCPU shutdown) at RIP 0x${registers.rip.toString(16)}, RSP 0x${registers.rsp.toString(16)}`);
    this.registers = registers;
  }
}

/** KVM could not emulate or execute an instruction of the guest. */
export class EmulationFailureError extends HyperlightError {
  readonly rip: bigint;
  readonly instructionBytes: Uint8Array;
  readonly suberror: number;

  constructor(message: string, rip: bigint, instructionBytes: Uint8Array, suberror: number) {
    super('ERR_EMULATION_FAILURE', message);
    this.rip = rip;
    this.instructionBytes = instructionBytes;
    this.suberror = suberror;
  }
}

/** The guest broke the wire protocol: bad buffer pointers, malformed flatbuffers,
 * an unknown port, an `in` instruction, an abort stream that never ends. */
export class GuestProtocolError extends HyperlightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_GUEST_PROTOCOL', `guest protocol violation: ${message}`, options);
  }
}

/** A call on a sandbox that an earlier failure left in an unknown state. */
export class PoisonedSandboxError extends HyperlightError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_SANDBOX_POISONED',
      'sandbox is poisoned by an earlier failure; restore(snapshot) to use it again', options);
  }
}

/** The guest called a host function that was never registered. */
export class HostFunctionNotFoundError extends HyperlightError {
  readonly functionName: string;

  constructor(functionName: string) {
    super('ERR_HOST_FUNCTION_NOT_FOUND', `host function not found: ${functionName}`);
    this.functionName = functionName;
  }
}

/** Argument count or types do not match the declared signature, or a value does not fit
 * its type (an Int outside i32, a Long that is not a bigint, ...). */
export class ParameterTypeMismatchError extends HyperlightError {
  constructor(message: string) {
    super('ERR_PARAMETER_TYPE_MISMATCH', message);
  }
}

/** A returned value does not have the declared return type. */
export class ReturnTypeMismatchError extends HyperlightError {
  constructor(message: string) {
    super('ERR_RETURN_TYPE_MISMATCH', message);
  }
}

/** Hyperlight's guest ErrorCode names (hyperlight-reference.md). */
const ERROR_CODE_NAMES: Readonly<Record<number, string>> = {
  0: 'NoError', 2: 'UnsupportedParameterType', 3: 'GuestFunctionNameNotProvided',
  4: 'GuestFunctionNotFound', 5: 'GuestFunctionIncorrecNoOfParameters',
  6: 'GispatchFunctionPointerNotSet', 7: 'OutbError', 8: 'UnknownError', 9: 'StackOverflow', 10: 'GsCheckFailed',
  11: 'TooManyGuestFunctions', 12: 'FailureInDlmalloc', 13: 'MallocFailed',
  14: 'GuestFunctionParameterTypeMismatch', 15: 'GuestError', 16: 'ArrayLengthParamIsMissing',
  17: 'HostFunctionError',
};

export function errorCodeName(code: number): string {
  return ERROR_CODE_NAMES[code] ?? 'Unknown';
}

/** How Hyperlight's own host reports the same outcome of a C guest (docs/errors.md maps each case). */
export interface HyperlightEquivalent {
  /** Hyperlight's HyperlightError variant. */
  readonly error: 'GuestError' | 'GuestAborted' | 'ExecutionCanceledByHost';
  /** Its code: the ErrorCode of a GuestError, the abort code of a GuestAborted. */
  readonly code?: number;
  readonly message?: string;
}

/**
 * The Hyperlight error a Hyperlight host would raise where this library raised `error`
 * (this library's classes are more precise in places; the code stays readable). Undefined
 * for errors Hyperlight has no counterpart for.
 */
export function hyperlightEquivalent(error: unknown): HyperlightEquivalent | undefined {
  if (error instanceof GuestError) {
    // Hyperlight's C guest aborts (code 13) where this SDK fails the call with MallocFailed.
    if (error.guestCode === 13) return { error: 'GuestAborted', code: 13, message: error.guestMessage };
    return { error: 'GuestError', code: error.guestCode, message: error.guestMessage };
  }
  if (error instanceof GuestAbortedError) return { error: 'GuestAborted', code: error.abortCode, message: error.guestMessage };
  // Hyperlight's C guest reports an exhausted stack as an abort with code 13.
  if (error instanceof StackOverflowError) return { error: 'GuestAborted', code: 13 };
  // Hyperlight's guest exception handler aborts with ErrorCode GuestError and a message that starts so.
  if (error instanceof GuestExceptionError) return { error: 'GuestAborted', code: 15, message: `Exception vector: ${error.vector}` };
  if (error instanceof ExecutionCanceledError) return { error: 'ExecutionCanceledByHost' };
  return undefined;
}

/**
 * Whether an error raised by a call leaves the sandbox poisoned. The one place this is
 * decided: an error that stopped the guest somewhere other than a clean Halt poisons.
 * An error raised before the guest was entered in this call (`guestEntered` false: a
 * system failure arming the time limit, say) never poisons: the guest is untouched.
 */
export function poisons(error: unknown, guestEntered = true): boolean {
  if (!guestEntered) return false; // e.g. no timer for the time limit: the guest is untouched
  if (!(error instanceof HyperlightError)) return true; // unknown failure mid-call
  switch (error.code) {
    case 'ERR_GUEST_ERROR':
    case 'ERR_HOST_FUNCTION_NOT_FOUND':
    case 'ERR_PARAMETER_TYPE_MISMATCH':
    case 'ERR_RETURN_TYPE_MISMATCH':
    case 'ERR_SANDBOX_POISONED':
    case 'ERR_SANDBOX_BUSY':
    case 'ERR_SNAPSHOT_INCOMPATIBLE':
    case 'ERR_SNAPSHOT_FILE':
    case 'ERR_CONFIG_INVALID':
    case 'ERR_CLOSED':
    case 'ERR_POOL_BUSY':
    case 'ERR_JS_EXCEPTION':
    case 'ERR_JS_OUT_OF_MEMORY':
    case 'ERR_JS_VALUE':
      return false;
    default:
      return true;
  }
}

/** The host tried to push an element that does not fit in the free space of an I/O buffer
 * (arguments or a host-function result larger than the configured buffer). */
export class BufferOverflowError extends HyperlightError {
  /** Bytes the push needed (element + 8-byte back-pointer). */
  readonly needed: number;
  /** Bytes free in the buffer. */
  readonly available: number;

  constructor(needed: number, available: number, what = 'I/O buffer') {
    super('ERR_BUFFER_OVERFLOW',
      `${what} overflow: pushing ${needed} bytes (element + 8-byte back-pointer) with ${available} bytes free; ` +
      'raise inputDataSize/outputDataSize or send less data');
    this.needed = needed;
    this.available = available;
  }
}

/** The vCPU stopped for a reason the sandbox does not handle (entry failure, debug exit,
 * an unknown exit reason). */
export class UnexpectedExitError extends HyperlightError {
  constructor(message: string) {
    super('ERR_UNEXPECTED_EXIT', message);
  }
}

/** A snapshot was restored into a sandbox whose memory layout differs from its origin. */
export class SnapshotIncompatibleError extends HyperlightError {
  constructor(message: string) {
    super('ERR_SNAPSHOT_INCOMPATIBLE', message);
  }
}

/** Why a snapshot file was refused: cut short, damaged, failing its SHA-256, or unreadable. */
export type SnapshotFileProblem = 'truncated' | 'corrupt' | 'checksum' | 'io';

/** A snapshot file could not be read or failed validation (docs/snapshot-format.md). */
export class SnapshotFileError extends HyperlightError {
  readonly reason: SnapshotFileProblem;

  constructor(reason: SnapshotFileProblem, message: string, options?: { cause?: unknown }) {
    super('ERR_SNAPSHOT_FILE', `snapshot file ${reason === 'io' ? 'unreadable' : reason}: ${message}`, options);
    this.reason = reason;
  }
}

/** A call was made on a sandbox that is already running a call (e.g. from a host function). */
export class SandboxBusyError extends HyperlightError {
  constructor() {
    super('ERR_SANDBOX_BUSY', 'sandbox is already running a guest call (calls cannot be nested from host functions)');
  }
}

/** Which application callback failed (see HostCallbackError). */
export type CallbackKind = 'print' | 'log' | 'exit-sink' | 'phase-sink';

/**
 * An application callback the library called (the print or log function, an exit or phase
 * sink) threw. `cause` is what it threw. Raised while the guest was stopped at an exit, it
 * ends the call and poisons the sandbox; raised after the guest halted, it does not.
 */
export class HostCallbackError extends HyperlightError {
  readonly callback: CallbackKind;

  constructor(callback: CallbackKind, cause: unknown) {
    super('ERR_HOST_CALLBACK', `the application's ${callback} callback threw: ${describeThrown(cause)}`, { cause });
    this.callback = callback;
  }
}

/**
 * A one-line description of anything a callback may throw, which itself never throws (a
 * thrown value may be a Proxy, an object without a prototype, or have a throwing getter).
 */
export function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return String(value.message);
    if (typeof value === 'string') return value;
    if (typeof value === 'object' && value !== null) return Object.prototype.toString.call(value);
    return String(value);
  } catch {
    return 'a value that cannot be described';
  }
}

/** The guest sent more output (print and log text) in one call than `maxOutputBytesPerCall`. */
export class OutputLimitError extends HyperlightError {
  readonly limit: number;
  readonly bytes: number;

  constructor(limit: number, bytes: number) {
    super('ERR_OUTPUT_LIMIT',
      `guest output exceeded maxOutputBytesPerCall (${limit} bytes) with ${bytes} bytes in one call; ` +
      'raise maxOutputBytesPerCall (0: no limit) or make the guest print less');
    this.limit = limit;
    this.bytes = bytes;
  }
}
