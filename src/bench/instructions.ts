// Counts the guest instructions of simpleguest's init and of one Echo call by single-stepping
// (KVM_GUESTDBG_SINGLESTEP, one debug exit per instruction). A diagnostic for the benchmark's
// "where the time goes"; not a timing (single-stepped code runs thousands of times slower).
import * as C from '../kvm/constants.js';
import type { Vcpu } from '../kvm/vcpu.js';
import { parseElf } from '../elf/index.js';
import { DOORBELL_STRIDE, OP_CALL_FUNCTION, OP_HALT } from '../sandbox/abi.js';
import { resolveConfig } from '../sandbox/config.js';
import { GuestBinary, bundledGuestPath } from '../sandbox/guest-binary.js';
import { InterruptState } from '../sandbox/interrupt.js';
import { RunLoop } from '../sandbox/run-loop.js';
import { ParameterValue } from '../sandbox/values.js';
import { closeMachine, createMachine, layoutFor } from '../sandbox/machine.js';

export interface InstructionCounts {
  /** Instructions from the entry point to init's halt. */
  init: number;
  /** Instructions of Echo("hi"), from resuming the vCPU to the call's halt. */
  echo: number;
  /** Doorbell exits seen while counting init and Echo (each also an instruction). */
  ioExits: number;
  /** Wall time of the single-stepped runs, ns per step (a debug exit's cost). */
  nsPerStep: number;
}

const STEP_LIMIT = 5_000_000;

/** Single-steps until the guest halts; returns instructions (debug exits + doorbell exits). */
function stepToHalt(vcpu: Vcpu, io: { exits: number }): number {
  let steps = 0;
  for (;;) {
    const exit = vcpu.run();
    if (exit.kind === 'debug') {
      if (++steps > STEP_LIMIT) throw new Error(`no halt within ${STEP_LIMIT} instructions`);
      continue;
    }
    if (exit.kind === 'mmio' && exit.isWrite) {
      io.exits++;
      const op = Number(exit.address & 0xfffn) / DOORBELL_STRIDE;
      if (op === OP_HALT) return steps + 1;
      if (op === OP_CALL_FUNCTION) throw new Error('the counted code made a host call');
      steps++;
      continue; // a print or log: the bytes are not needed for counting
    }
    throw new Error(`unexpected exit ${exit.kind} while single-stepping`);
  }
}

/** Counts simpleguest's init and Echo instructions on a machine of its own. */
export function countInstructions(): InstructionCounts {
  const image = parseElf(GuestBinary.filePath(bundledGuestPath('simpleguest')).bytes());
  const layout = layoutFor(image, resolveConfig(undefined));
  const machine = createMachine(layout, { kind: 'elf', image, logLevel: 6 });
  const interrupt = new InterruptState();
  const loop = new RunLoop(machine, interrupt, { debugPrint: () => undefined });
  try {
    machine.vcpu.setGuestDebug({ control: C.KVM_GUESTDBG_ENABLE | C.KVM_GUESTDBG_SINGLESTEP });
    const io = { exits: 0 };
    const t0 = process.hrtime.bigint();
    const init = stepToHalt(machine.vcpu, io);
    loop.io.startCall(loop.codec.encodeFunctionCall('Echo', [ParameterValue.String('hi')], 'guest', 'String'));
    const echo = stepToHalt(machine.vcpu, io);
    const ns = Number(process.hrtime.bigint() - t0);
    return { init, echo, ioExits: io.exits, nsPerStep: ns / (init + echo) };
  } finally {
    loop.close();
    interrupt.close();
    closeMachine(machine);
  }
}
