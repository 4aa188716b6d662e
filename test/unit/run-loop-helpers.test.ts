// The run loop's pure helpers: recognising x87/SSE/AVX instruction bytes for the
// emulation-failure message.
import { describe, expect, it } from 'vitest';
import { isFloatingPointInstruction } from '../../src/sandbox/run-loop.js';

describe('isFloatingPointInstruction', () => {
  it.each([
    ['fld1', [0xd9, 0xe8]],
    ['fstp st(0)', [0xdd, 0xd8]],
    ['movq %rax,%xmm0', [0x66, 0x48, 0x0f, 0x6e, 0xc0]],
    ['addsd %xmm1,%xmm0', [0xf2, 0x0f, 0x58, 0xc1]],
    ['movaps %xmm0,%xmm1', [0x0f, 0x28, 0xc8]],
    ['vaddps (VEX)', [0xc5, 0xf0, 0x58, 0xc2]],
    ['fxsave', [0x0f, 0xae, 0x00]],
  ])('%s is floating point', (_name, bytes) => {
    expect(isFloatingPointInstruction(Uint8Array.from(bytes))).toBe(true);
  });

  it.each([
    ['ud2', [0x0f, 0x0b]],
    ['mov %rax,%rbx', [0x48, 0x89, 0xc3]],
    ['int3', [0xcc]],
    ['out %eax,(%dx)', [0xef]],
    ['empty', []],
  ])('%s is not', (_name, bytes) => {
    expect(isFloatingPointInstruction(Uint8Array.from(bytes))).toBe(false);
  });
});
