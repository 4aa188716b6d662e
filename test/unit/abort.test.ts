// Unit tests of the abort record decoder: code and message, truncation at ABORT_MAX_BYTES, lenient UTF-8, rejection of an empty record.
import { describe, expect, it } from 'vitest';
import { ABORT_MAX_BYTES } from '../../src/sandbox/abi.js';
import { decodeAbortRecord } from '../../src/sandbox/abort.js';
import { GuestProtocolError } from '../../src/sandbox/errors.js';

const record = (code: number, message: string | Uint8Array): Uint8Array => {
  const m = typeof message === 'string' ? new TextEncoder().encode(message) : message;
  const r = new Uint8Array(1 + m.length);
  r[0] = code;
  r.set(m, 1);
  return r;
};

describe('decodeAbortRecord', () => {
  it('reads the code byte and the message', () => {
    const r = record(42, 'disk on fire');
    expect(decodeAbortRecord(r, r.length)).toEqual({ code: 42, message: 'disk on fire', truncated: false });
  });

  it('a code alone has an empty message', () => {
    expect(decodeAbortRecord(Uint8Array.of(0xfd), 1)).toEqual({ code: 0xfd, message: '', truncated: false });
  });

  it('keeps exactly ABORT_MAX_BYTES message bytes and says when the guest claimed more', () => {
    const r = record(7, 'x'.repeat(ABORT_MAX_BYTES + 50));
    const report = decodeAbortRecord(r, r.length);
    expect(report.message).toBe('x'.repeat(ABORT_MAX_BYTES));
    expect(report.truncated).toBe(true);
    // The host copies at most 1 + ABORT_MAX_BYTES bytes; the claimed length decides truncation.
    expect(decodeAbortRecord(r.subarray(0, 1 + ABORT_MAX_BYTES), 0xffff_ffff).truncated).toBe(true);
    expect(decodeAbortRecord(r.subarray(0, 1 + ABORT_MAX_BYTES), 1 + ABORT_MAX_BYTES).truncated).toBe(false);
  });

  it('keeps a leading byte-order mark and replaces invalid UTF-8 instead of throwing', () => {
    expect(decodeAbortRecord(record(1, '\ufeffhi'), 6).message).toBe('\ufeffhi');
    expect(decodeAbortRecord(record(1, Uint8Array.of(0xc3, 0x28, 0xff)), 4).message).toBe('\ufffd(\ufffd');
  });

  it('rejects an empty record', () => {
    expect(() => decodeAbortRecord(new Uint8Array(0), 0)).toThrow(GuestProtocolError);
    expect(() => decodeAbortRecord(Uint8Array.of(1), 0)).toThrow(/abort record is empty/);
  });
});
