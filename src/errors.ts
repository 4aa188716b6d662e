// The error base class every library error extends, and the errors shared by layers.
// Sandbox-level errors live in src/sandbox/errors.ts, KVM ones in src/kvm/errors.ts.

/** Base of every error this library throws. `code` is stable and safe to switch on. */
export class HyperlightError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
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
