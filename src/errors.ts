// The error base class every library error extends, and the errors shared by layers.
// Sandbox-level errors live in src/sandbox/errors.ts, KVM ones in src/kvm/errors.ts.

/**
 * Every `code` a HyperlightError can carry (docs/errors.md lists each with its class; a
 * test keeps the two equal). A new error class adds its code here.
 */
export const ERROR_CODES = [
  'ERR_GUEST_ERROR', 'ERR_GUEST_ABORTED', 'ERR_GUEST_EXCEPTION', 'ERR_STACK_OVERFLOW', 'ERR_EXECUTION_CANCELED',
  'ERR_MEMORY_ACCESS_VIOLATION', 'ERR_GUEST_TRIPLE_FAULT', 'ERR_EMULATION_FAILURE', 'ERR_GUEST_PROTOCOL',
  'ERR_UNEXPECTED_EXIT', 'ERR_BUFFER_OVERFLOW', 'ERR_SANDBOX_POISONED', 'ERR_SANDBOX_BUSY',
  'ERR_SNAPSHOT_INCOMPATIBLE', 'ERR_SNAPSHOT_FILE', 'ERR_HOST_FUNCTION_NOT_FOUND', 'ERR_PARAMETER_TYPE_MISMATCH',
  'ERR_RETURN_TYPE_MISMATCH', 'ERR_CONFIG_INVALID', 'ERR_ELF_INVALID', 'ERR_PAGE_TABLES_TOO_LARGE',
  'ERR_GUEST_MEMORY_BOUNDS', 'ERR_KVM_IOCTL', 'ERR_KVM_UNAVAILABLE', 'ERR_CLOSED', 'ERR_GUEST_BUILD',
  'ERR_POOL_BUSY', 'ERR_WORKER_CRASHED', 'ERR_HOST_CALLBACK', 'ERR_OUTPUT_LIMIT', 'ERR_SYSTEM',
  'ERR_JS_EXCEPTION', 'ERR_JS_OUT_OF_MEMORY', 'ERR_JS_VALUE',
] as const;

/** The stable codes of HyperlightError, as a union to switch on exhaustively. */
export type ErrorCode = typeof ERROR_CODES[number];

/** Base of every error this library throws. `code` is stable and safe to switch on. */
export class HyperlightError extends Error {
  readonly code: ErrorCode;
  /**
   * Errors that happened while this one was already on its way to the caller (for example
   * a print callback that threw while the output of a failed call was flushed). Absent
   * when there were none; never replaces the error itself.
   */
  declare readonly suppressed?: readonly unknown[];
  /**
   * With `crashDumpDir` configured, on a guest exception or abort: the ELF core file written
   * for it (docs/debugging.md). Absent when no dump was asked for or writing it failed.
   */
  declare readonly crashDumpPath?: string;
  /** Why the crash dump asked for could not be written (the guest's error stays this one). */
  declare readonly crashDumpError?: unknown;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Records `extra` on `error.suppressed` (when `error` is a HyperlightError) and returns `error`. */
export function addSuppressed(error: unknown, extra: unknown): unknown {
  if (error instanceof HyperlightError) {
    const list = [...(error.suppressed ?? []), extra];
    Object.defineProperty(error, 'suppressed', { value: list, enumerable: false, configurable: true });
  }
  return error;
}

/** A configuration value is out of range, misaligned or the wrong type. */
export class ConfigInvalidError extends HyperlightError {
  /** The configuration field at fault, e.g. `heapSize`. */
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG_INVALID', `${field}: ${message}`, options);
    this.field = field;
  }
}

/** An access to guest memory fell outside the region it had to lie in. */
export class GuestMemoryBoundsError extends HyperlightError {
  readonly offset: number;
  readonly length: number;
  readonly limit: number;

  constructor(offset: number, length: number, limit: number, what = 'guest memory') {
    super('ERR_GUEST_MEMORY_BOUNDS',
      `access of ${length} bytes at offset 0x${offset.toString(16)} is outside ${what} ` +
      `(size 0x${limit.toString(16)})`);
    this.offset = offset;
    this.length = length;
    this.limit = limit;
  }
}

/** A guest ELF image failed validation or could not be loaded. */
export class ElfInvalidError extends HyperlightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ELF_INVALID', `invalid guest ELF: ${message}`, options);
  }
}
