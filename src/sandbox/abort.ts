// Decodes the abort record a guest hands the host with the ABORT doorbell (docs/guest-abi.md) into an AbortReport; it does not decide what the abort means for the sandbox.
import { ABORT_MAX_BYTES } from './abi.js';
import { GuestProtocolError } from './errors.js';

/** One guest abort. */
export interface AbortReport {
  /** The abort code (the record's first byte). */
  code: number;
  /** The message text (UTF-8; invalid sequences replaced by U+FFFD, never thrown). */
  message: string;
  /** The message was longer than ABORT_MAX_BYTES; the rest was not read. */
  truncated: boolean;
}

const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // keep a leading U+FEFF

/**
 * Decodes `record` (the code byte, then the message) as copied out of guest memory.
 * `claimed` is the length the guest gave; the caller copied at most 1 + ABORT_MAX_BYTES.
 * @throws GuestProtocolError for an empty record.
 */
export function decodeAbortRecord(record: Uint8Array, claimed: number): AbortReport {
  if (record.length === 0 || claimed === 0) throw new GuestProtocolError('abort record is empty (it needs at least the code byte)');
  const message = record.subarray(1, 1 + ABORT_MAX_BYTES);
  return { code: record[0]!, message: lenientUtf8.decode(message), truncated: claimed > 1 + ABORT_MAX_BYTES };
}
