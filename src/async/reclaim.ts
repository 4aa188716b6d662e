// Releasing the VM of a worker thread that died without closing its sandbox: a thread
// ended by worker.terminate() (or an uncaught error) runs no cleanup, but its file
// descriptors and mappings belong to the process. Only what the worker reported is touched.
import { type Mapping, close, deleteOrphanedTimer, munmap, watchThreadTimers } from '../kvm/libc.js';
import type { Machine } from '../sandbox/machine.js';

/** The kernel resources of one VM, as numbers that can cross threads. */
export interface VmResources {
  vcpuFd: number;
  vmFd: number;
  /** kvm_run of the vCPU, then guest memory (its usable part; the guard pages stay reserved). */
  maps: { address: bigint; length: number }[];
  /**
   * Ids of the POSIX timers the worker and its threads hold (-1: a free slot), kept up to
   * date by the worker (trackTimers): a time limit's timer may be made after `ready`.
   */
  timers: Int32Array;
}

/** Slots of VmResources.timers: the worker's time limit, an exitless vCPU thread's slice, spares. */
const TIMER_SLOTS = 4;

/**
 * Called in the worker before it builds its sandbox: from then on every timer a ThreadTimer of
 * this thread makes or deletes is kept in the returned shared slots.
 */
export function trackTimers(): Int32Array {
  const slots = new Int32Array(new SharedArrayBuffer(TIMER_SLOTS * 4)).fill(-1);
  watchThreadTimers((id, live) => {
    if (live) trackTimer(slots, id);
    else replaceSlot(slots, id, -1);
  });
  return slots;
}

/** Adds the id of a timer (one another thread of the worker made too: an exitless vCPU thread's) to `slots`. */
export function trackTimer(slots: Int32Array, id: number): void {
  if (id >= 0) replaceSlot(slots, -1, id);
}

/** Puts `to` in the first slot holding `from`, if any (no slot free: that timer goes untracked). */
function replaceSlot(slots: Int32Array, from: number, to: number): void {
  const i = slots.indexOf(from);
  if (i >= 0) Atomics.store(slots, i, to);
}

/** Called in the worker once its sandbox exists; `timers` from trackTimers(). */
export function resourcesOf(m: Machine, timers: Int32Array): VmResources {
  const run = m.vcpu.kvmRunArea;
  return {
    timers,
    vcpuFd: m.vcpu.fd,
    vmFd: m.vm.fd,
    // FFI: addresses of mappings owned by the worker's Vcpu and GuestMemory; used only
    // after that thread has exited without closing them (see releaseOrphaned).
    maps: [{ address: run.address, length: run.length }, { address: m.memory.hostAddress, length: m.memory.size }],
  };
}

/**
 * Unmaps and closes what `r` names, in the sandbox's close order (vCPU, memory, VM). Call
 * only after the worker thread has exited and only if it had not closed its sandbox: the
 * numbers would otherwise name someone else's resources. Returns the failures (each step
 * is tried).
 */
export function releaseOrphaned(r: VmResources): unknown[] {
  const failures: unknown[] = [];
  const attempt = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      failures.push(e);
    }
  };
  // First the timers, so that nothing signals a thread that is gone.
  for (const id of r.timers) if (id >= 0) attempt(() => { deleteOrphanedTimer(id); });
  const [run, memory] = r.maps;
  if (run) attempt(() => munmap({ address: run.address, length: run.length, pointer: null } satisfies Mapping));
  attempt(() => close(r.vcpuFd));
  if (memory) attempt(() => munmap({ address: memory.address, length: memory.length, pointer: null } satisfies Mapping));
  attempt(() => close(r.vmFd));
  return failures;
}
