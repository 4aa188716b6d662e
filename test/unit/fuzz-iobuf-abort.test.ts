// Fuzzes what fuzz-decoders.test.ts leaves out: pushes onto buffers whose stack pointer the guest corrupted, and abort streams carrying exception payloads split at every chunk boundary, checked against a reference model.
import { describe, expect, it } from 'vitest';
import { ABORT_END, ABORT_MAX_BYTES } from '../../src/sandbox/abi.js';
import { AbortStream } from '../../src/sandbox/abort.js';
import { BufferOverflowError, GuestProtocolError } from '../../src/sandbox/errors.js';
import { popElement, pushElement, readStackPointer, resetStack } from '../../src/sandbox/iobuf.js';
import { prng } from '../helpers/prng.js';

/** Inputs per fuzz target; docs/security.md cites this number. */
export const FUZZ_IOBUF_ABORT_INPUTS = 50_000;
const SEED = 0x1b0f_ab07;

describe(`I/O buffer and abort stream fuzzing (seed 0x${SEED.toString(16)})`, () => {
  it(`pushElement: ${FUZZ_IOBUF_ABORT_INPUTS} pushes onto guest-corrupted buffers write only inside the region or throw`, () => {
    const rnd = prng(SEED);
    const int = (n: number): number => Math.floor(rnd() * n);
    const mem = new Uint8Array(0x800);
    const view = new DataView(mem.buffer);
    let pushed = 0;
    let refused = 0;
    for (let i = 0; i < FUZZ_IOBUF_ABORT_INPUTS; i++) {
      const off = 0x100 + int(0x100);
      const size = 0x10 + int(0x300);
      mem.fill(0xcc);
      resetStack(mem, view, off, size);
      // The guest writes any u64 as the stack pointer.
      const r = int(6);
      const lo = r === 0 ? int(size + 64) : r === 1 ? size - int(16) : r === 2 ? 0xffff_ffff : r === 3 ? 8 + int(size) : int(16);
      const hi = int(8) === 0 ? [1, 0x1f_ffff, 0x20_0000, 0xffff_ffff][int(4)]! : 0;
      view.setUint32(off, lo >>> 0, true);
      view.setUint32(off + 4, hi, true);
      const element = new Uint8Array(4 + int(0x120)).fill(0x5a);
      new DataView(element.buffer).setUint32(0, element.length - 4, true); // a well-formed element
      try {
        pushElement(mem, view, off, size, element);
        pushed++;
        if (readStackPointer(mem, view, off, size) > size) throw new Error('sp beyond the region');
        // What was pushed pops back unchanged.
        if (popElement(mem, view, off, size).length !== element.length) throw new Error('pop differs');
      } catch (e) {
        if (!(e instanceof GuestProtocolError) && !(e instanceof BufferOverflowError)) throw e;
        refused++;
      }
      // Nothing outside [off, off + size) was touched.
      for (let k = 0; k < off; k++) if (mem[k] !== 0xcc) throw new Error(`write below the region at ${k}`);
      for (let k = off + size; k < mem.length; k++) if (mem[k] !== 0xcc) throw new Error(`write above the region at ${k}`);
    }
    expect(pushed).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it(`AbortStream: ${FUZZ_IOBUF_ABORT_INPUTS} exception reports split at random chunk sizes parse exactly as sent`, () => {
    const rnd = prng(SEED + 1);
    const int = (n: number): number => Math.floor(rnd() * n);
    const s = new AbortStream();
    let exceptions = 0;
    let short = 0;
    for (let i = 0; i < FUZZ_IOBUF_ABORT_INPUTS; i++) {
      // code, vector, error code, RIP, CR2, message: sometimes cut short, sometimes too long.
      const code = [0xfe, 0xfd, int(256)][int(3)]!;
      const messageLength = int(8) === 0 ? ABORT_MAX_BYTES + int(200) : int(40);
      const full = new Uint8Array(26 + messageLength);
      for (let k = 1; k < full.length; k++) full[k] = k >= 26 ? 0x61 + int(26) : int(256);
      full[0] = code;
      const length = int(6) === 0 ? int(26) : full.length;
      const data = full.subarray(0, length);
      s.reset();
      let report;
      let error: unknown;
      try {
        for (let p = 0; p < data.length;) {
          const n = Math.min(1 + int(3), data.length - p);
          let w = n;
          for (let k = 0; k < n; k++) w |= data[p + k]! << (8 * (k + 1));
          if (s.feed(w >>> 0) !== undefined) throw new Error('a report before the end chunk');
          p += n;
        }
        report = s.feed(ABORT_END);
      } catch (e) {
        error = e;
      }
      const kept = Math.min(length, ABORT_MAX_BYTES);
      const isException = code === 0xfe || code === 0xfd;
      if (length === 0) {
        expect(error).toBeInstanceOf(GuestProtocolError);
        continue;
      }
      if (isException && kept < 26) {
        expect(error).toBeInstanceOf(GuestProtocolError);
        short++;
        continue;
      }
      expect(error).toBeUndefined();
      expect(report?.code).toBe(code);
      expect(report?.truncated).toBe(length > ABORT_MAX_BYTES);
      const v = new DataView(full.buffer);
      if (isException) {
        exceptions++;
        expect(report?.exception).toEqual({
          vector: full[1], errorCode: v.getBigUint64(2, true), rip: v.getBigUint64(10, true),
          cr2: v.getBigUint64(18, true), stackOverflow: code === 0xfd,
        });
        expect(report?.message).toBe(Buffer.from(full.subarray(26, kept)).toString('latin1'));
      } else {
        expect(report?.exception).toBeUndefined();
        expect(report?.message.length).toBeLessThanOrEqual(ABORT_MAX_BYTES - 1);
      }
    }
    expect(exceptions).toBeGreaterThan(1000);
    expect(short).toBeGreaterThan(100);
  });
});
