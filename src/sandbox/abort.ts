// Parses the abort stream the guest sends on port 102 (docs/guest-abi.md) into an AbortReport; it does not decide what the abort means for the sandbox.
import { ABORT_CODE_EXCEPTION, ABORT_CODE_STACK_OVERFLOW, ABORT_END, ABORT_MAX_BYTES } from './abi.js';
import { GuestProtocolError } from './errors.js';

/** The exception payload that follows abort codes 0xFE (CPU exception) and 0xFD (stack overflow). */
export interface AbortException {
  /** x86 exception vector (14 = page fault). */
  vector: number;
  errorCode: bigint;
  rip: bigint;
  /** The faulting address for a page fault; whatever CR2 held otherwise. */
  cr2: bigint;
  /** True for code 0xFD: a page fault on the stack guard page. */
  stackOverflow: boolean;
}

/** One finished abort stream. */
export interface AbortReport {
  /** The abort code (byte 0): 0..0xEF from hl_abort_with_code*, 0xFE exception, 0xFD stack overflow. */
  code: number;
  /** The message text (UTF-8; invalid sequences replaced by U+FFFD, never thrown). */
  message: string;
  /** More than ABORT_MAX_BYTES data bytes were sent; the rest was dropped. */
  truncated: boolean;
  /** Present for codes 0xFE and 0xFD. */
  exception?: AbortException;
}

/** Code byte + vector byte + three u64s. */
const EXCEPTION_HEADER_BYTES = 1 + 1 + 8 + 8 + 8;
const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // keep a leading U+FEFF

/**
 * Accumulates port-102 chunks. Each OUT carries EAX = n | b1 << 8 | b2 << 16 | b3 << 24 with
 * n in 0..3 data bytes; n = 0xFF ends the stream. At most ABORT_MAX_BYTES data bytes are kept
 * (in a buffer allocated once); the rest is counted as truncation. One instance per sandbox.
 */
export class AbortStream {
  private readonly data = new Uint8Array(ABORT_MAX_BYTES);
  private length = 0;
  private truncated = false;
  private started = false;

  /** Whether a stream has begun (at least one data chunk) and not yet ended. */
  get active(): boolean {
    return this.started;
  }

  /** Forgets any partial stream. */
  reset(): void {
    this.length = 0;
    this.truncated = false;
    this.started = false;
  }

  /**
   * Takes the EAX of one OUT to port 102. Returns the report when the chunk ends the stream
   * (and resets), otherwise undefined. Throws GuestProtocolError (and resets) for n in
   * 4..0xFE, an empty stream, or an exception code whose 25-byte payload is incomplete.
   */
  feed(eax: number): AbortReport | undefined {
    const word = eax >>> 0;
    const n = word & 0xff;
    if (n === ABORT_END) return this.finish();
    if (n > 3) {
      this.reset();
      throw new GuestProtocolError(`abort stream chunk claims ${n} data bytes (0..3, or 0xFF to end)`);
    }
    this.started = true;
    for (let i = 1; i <= n; i++) {
      if (this.length < ABORT_MAX_BYTES) this.data[this.length++] = (word >>> (8 * i)) & 0xff;
      else this.truncated = true;
    }
    return undefined;
  }

  private finish(): AbortReport {
    const len = this.length;
    const truncated = this.truncated;
    this.reset();
    if (len === 0) throw new GuestProtocolError('abort stream ended without an abort code');
    const d = this.data;
    const code = d[0]!;
    if (code !== ABORT_CODE_EXCEPTION && code !== ABORT_CODE_STACK_OVERFLOW) {
      return { code, message: lenientUtf8.decode(d.subarray(1, len)), truncated };
    }
    if (len < EXCEPTION_HEADER_BYTES) {
      throw new GuestProtocolError(
        `abort code 0x${code.toString(16)} needs a ${EXCEPTION_HEADER_BYTES - 1}-byte exception payload, got ${len - 1} bytes`);
    }
    const view = new DataView(d.buffer, d.byteOffset, len);
    return {
      code,
      message: lenientUtf8.decode(d.subarray(EXCEPTION_HEADER_BYTES, len)),
      truncated,
      exception: {
        vector: d[1]!,
        errorCode: view.getBigUint64(2, true),
        rip: view.getBigUint64(10, true),
        cr2: view.getBigUint64(18, true),
        stackOverflow: code === ABORT_CODE_STACK_OVERFLOW,
      },
    };
  }
}
