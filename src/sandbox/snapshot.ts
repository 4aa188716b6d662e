// A sandbox snapshot: guest memory plus the vCPU state a ring-3 guest can change, tied to a
// guest binary, a memory layout and the sandbox it came from; and the check that a snapshot fits.
import type { Regs, Sregs } from '../kvm/structs.js';
import type { MemorySnapshot } from '../mem/snapshot.js';
import type { GuestCpuState } from './vcpu-state.js';
import type { MemoryLayout } from '../mem/x86_64/index.js';
import { SnapshotIncompatibleError } from './errors.js';

/** A key that two sandboxes share exactly when their memory maps are the same. */
export function layoutKey(layout: MemoryLayout): string {
  return layout.regions.map((r) => `${r.name}@${r.gpa.toString(16)}+${r.size.toString(16)}`).join(',');
}

/** Who a snapshot belongs to: the sandbox (an opaque token), its binary and its layout. */
export interface SnapshotOwner {
  readonly origin: object;
  readonly layoutKey: string;
  /** SHA-256 of the guest ELF (hex); a function, so it is computed only when needed. */
  readonly binaryHash: () => string;
}

/**
 * The state of a sandbox at one moment, from `MultiUseSandbox.snapshot()`. Immutable;
 * restore it any number of times into the sandbox it came from, or, when asked for
 * explicitly (`restore(s, { allowOtherSandbox: true })`), into another sandbox of the same
 * guest binary (same content hash) with the same memory layout.
 */
export class Snapshot {
  /** @internal use `MultiUseSandbox.snapshot()`. */
  constructor(
    /** @internal the sandbox it was taken from. */
    readonly origin: object,
    /** SHA-256 of the guest ELF it was taken from (hex). */
    readonly binaryHash: string,
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

/**
 * Throws SnapshotIncompatibleError unless `snapshot` may be restored into `owner`: taken
 * from it, or (with `allowOtherSandbox`) from a sandbox of the same binary and layout.
 */
export function checkSnapshotFits(snapshot: unknown, owner: SnapshotOwner, allowOtherSandbox: boolean): asserts snapshot is Snapshot {
  if (!(snapshot instanceof Snapshot)) throw new SnapshotIncompatibleError('restore() needs a Snapshot from snapshot()');
  if (snapshot.origin === owner.origin) return;
  if (snapshot.binaryHash !== owner.binaryHash()) {
    throw new SnapshotIncompatibleError('snapshot was taken from a sandbox of a different guest binary');
  }
  if (snapshot.layoutKey !== owner.layoutKey) {
    throw new SnapshotIncompatibleError('snapshot was taken from a sandbox with a different memory layout');
  }
  if (!allowOtherSandbox) {
    throw new SnapshotIncompatibleError(
      'snapshot was taken from another sandbox of the same binary; pass { allowOtherSandbox: true } to restore it here');
  }
}
