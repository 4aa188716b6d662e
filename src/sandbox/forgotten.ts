// Releasing sandboxes the application dropped without close(): a FinalizationRegistry
// closes their VM, memory and timer once the sandbox object is garbage collected, and
// warns once per process. It is process-wide by nature (one registry, one warning flag).
import type { RunLoop } from './run-loop.js';
import type { InterruptState } from './interrupt.js';
import { type Machine, closeMachine } from './machine.js';

/** What a sandbox owns that must be released; holds no reference to the sandbox itself. */
export interface SandboxResources {
  readonly machine: Machine;
  readonly loop: RunLoop;
  readonly interrupt: InterruptState;
}

let warned = false;

function release(r: SandboxResources): void {
  try {
    r.interrupt.close();
    r.loop.close();
    closeMachine(r.machine);
  } finally {
    if (!warned) {
      warned = true;
      process.emitWarning(
        'a hyperlight-ts sandbox was garbage collected without close(): its VM was released now, but fds and ' +
        'memory were held until the garbage collector ran. Call sandbox.close() or declare it with `using`.',
        { code: 'HYPERLIGHT_SANDBOX_NOT_CLOSED' });
    }
  }
}

const registry = new FinalizationRegistry<SandboxResources>(release);

/** Releases `resources` when `owner` is collected, unless forget(owner) was called first. */
export function releaseWhenCollected(owner: object, resources: SandboxResources): void {
  registry.register(owner, resources, owner);
}

/** The owner was closed properly: nothing to do at collection. */
export function forget(owner: object): void {
  registry.unregister(owner);
}
