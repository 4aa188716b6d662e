// A sandbox snapshot: guest memory plus the vCPU state a ring-3 guest can change, tied to a memory layout.
import type { Regs, Sregs } from '../kvm/structs.js';
import type { MemorySnapshot } from '../mem/snapshot.js';
import type { GuestCpuState } from './vcpu-state.js';
import type { MemoryLayout } from '../mem/x86_64/index.js';

/** A key that two sandboxes share exactly when their memory maps are the same. */
export function layoutKey(layout: MemoryLayout): string {
  return layout.regions.map((r) => `${r.name}@${r.gpa.toString(16)}+${r.size.toString(16)}`).join(',');
}

/**
 * The state of a sandbox at one moment, from `MultiUseSandbox.snapshot()`. Immutable;
 * restore it any number of times into the sandbox it came from or another sandbox with the
 * same memory layout.
 */
export class Snapshot {
  /** @internal use `MultiUseSandbox.snapshot()`. */
  constructor(
    readonly layoutKey: string,
    readonly memory: MemorySnapshot,
    /** General and special registers and the XSAVE area (see vcpu-state.ts for why that is all). */
    readonly cpu: GuestCpuState,
  ) {
    Object.freeze(this);
  }

  /** The general registers captured. */
  get regs(): Readonly<Regs> {
    return this.cpu.regs;
  }

  /** The special registers captured. */
  get sregs(): Readonly<Sregs> {
    return this.cpu.sregs;
  }

  /** Bytes of guest memory held (all-zero pages are not stored). */
  get storedBytes(): number {
    return this.memory.storedPages * 4096;
  }
}
