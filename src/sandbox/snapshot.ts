// A sandbox snapshot: guest memory plus vCPU registers, tied to a memory layout.
import { type Regs, type Sregs, regsToBytes, sregsToBytes } from '../kvm/structs.js';
import type { MemorySnapshot } from '../mem/snapshot.js';
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
  /** kvm_regs and kvm_sregs encoded once, so restore() only copies bytes. */
  readonly regsBytes: Uint8Array;
  readonly sregsBytes: Uint8Array;

  /** @internal use `MultiUseSandbox.snapshot()`. */
  constructor(
    readonly layoutKey: string,
    readonly memory: MemorySnapshot,
    readonly regs: Readonly<Regs>,
    readonly sregs: Readonly<Sregs>,
  ) {
    this.regsBytes = regsToBytes(regs);
    this.sregsBytes = sregsToBytes(sregs);
    Object.freeze(this);
  }

  /** Bytes of guest memory held (all-zero pages are not stored). */
  get storedBytes(): number {
    return this.memory.storedPages * 4096;
  }
}
