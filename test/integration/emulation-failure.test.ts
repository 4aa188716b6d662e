// x87/SSE code in a guest: on PVM hosts KVM cannot run it and reports an internal error;
// the sandbox must turn that into EmulationFailureError naming the bytes at RIP.
import { expect, it } from 'vitest';
import { EmulationFailureError } from '../../src/sandbox/errors.js';
import { bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { describeKvm } from '../helpers/kvm.js';

describeKvm('floating-point instructions in a guest', () => {
  it.each([
    ['x87 fld1', [0xd9, 0xe8]],
    ['SSE movq %rax,%xmm0', [0x66, 0x48, 0x0f, 0x6e, 0xc0]],
  ])('%s is an EmulationFailureError (or runs, on hosts that can) and poisons', (_name, code) => {
    const sandbox = UninitializedSandbox.create(bundledGuestPath('simpleguest')).evolve();
    try {
      const snap = sandbox.snapshot();
      // Put the instruction where the next call starts: the guest's dispatch entry.
      sandbox.machine.memory.copyIn(Number(sandbox.dispatchAddress), Uint8Array.from([...code, 0x0f, 0x0b]));
      let error: unknown;
      try {
        sandbox.call('Echo', 'String', 'x');
      } catch (e) {
        error = e;
      }
      if (error instanceof EmulationFailureError) {
        expect(error.code).toBe('ERR_EMULATION_FAILURE');
        expect(error.rip).toBe(sandbox.dispatchAddress);
        expect([...error.instructionBytes.slice(0, code.length)]).toEqual(code);
        expect(error.message).toContain('x87/SSE/AVX');
        expect(error.message).toContain(code.map((b) => b.toString(16).padStart(2, '0')).join(' '));
      } else {
        // A host whose KVM runs the instruction reaches the ud2 after it instead.
        expect(error).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', vector: 6 });
      }
      expect(sandbox.poisoned).toBe(true);
      sandbox.restore(snap); // a different baseline: full restore puts the code back
    } finally {
      sandbox.close();
    }
  });
});
