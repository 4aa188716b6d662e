// Fuzzes what fuzz-decoders.test.ts leaves out: pushes onto buffers whose stack pointer the guest corrupted, checked against a reference model.
import { describe, expect, it } from 'vitest';
import { BufferOverflowError, GuestProtocolError } from '../../src/sandbox/errors.js';
import { popElement, pushElement, readStackPointer, resetStack } from '../../src/sandbox/iobuf.js';
import { prng } from '../helpers/prng.js';

/** Inputs per fuzz target; docs/security.md cites this number. */
export const FUZZ_IOBUF_ABORT_INPUTS = 50_000;
const SEED = 0x1b0f_ab07;

describe(`I/O buffer fuzzing (seed 0x${SEED.toString(16)})`, () => {
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
});
