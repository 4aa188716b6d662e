// Counts the guest instructions of simpleguest's init and of one Echo call by single-stepping
// (KVM_GUESTDBG_SINGLESTEP, one debug exit per instruction). A diagnostic for the benchmark's
// "where the time goes"; not a timing (single-stepped code runs thousands of times slower).
import * as C from '../src/kvm/constants.js';
import type { Vcpu } from '../src/kvm/vcpu.js';
import { parseElf } from '../src/elf/index.js';
import { PORT_CALL_FUNCTION, PORT_HALT } from '../src/sandbox/abi.js';
import { resolveConfig } from '../src/sandbox/config.js';
import { GuestBinary, bundledGuestPath } from '../src/sandbox/guest-binary.js';
import { InterruptState } from '../src/sandbox/interrupt.js';
import { RunLoop } from '../src/sandbox/run-loop.js';
import { ParameterValue } from '../src/sandbox/values.js';
import { closeMachine, createMachine, layoutFor } from '../src/sandbox/vm-setup.js';

export interface InstructionCounts {
  /** Instructions from the entry point to init's halt. */
  init: number;
  /** Instructions of Echo("hi"), from resuming the vCPU to the call's halt. */
  echo: number;
  /** I/O exits seen while counting init and Echo (each also an instruction). */
  ioExits: number;
  /** Wall time of the single-stepped runs, ns per step (a debug exit's cost). */
  nsPerStep: number;
}

const STEP_LIMIT = 5_000_000;

/** Single-steps until the guest halts; returns instructions (debug exits + I/O exits). */
function stepToHalt(vcpu: Vcpu, io: { exits: number }): number {
  let steps = 0;
  for (;;) {
    const exit = vcpu.run();
    if (exit.kind === 'debug') {
      if (++steps > STEP_LIMIT) throw new Error(`no halt within ${STEP_LIMIT} instructions`);
      continue;
    }
    if (exit.kind === 'hlt') return steps + 1;
    if (exit.kind === 'io' && exit.direction === 'out') {
      io.exits++;
      if (exit.port === PORT_HALT) return steps + 1;
      if (exit.port === PORT_CALL_FUNCTION) throw new Error('the counted code made a host call');
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
    loop.startCall(loop.codec.encodeFunctionCall('Echo', [ParameterValue.String('hi')], 'guest', 'String'));
    const echo = stepToHalt(machine.vcpu, io);
    const ns = Number(process.hrtime.bigint() - t0);
    return { init, echo, ioExits: io.exits, nsPerStep: ns / (init + echo) };
  } finally {
    loop.close();
    interrupt.close();
    closeMachine(machine);
  }
}
