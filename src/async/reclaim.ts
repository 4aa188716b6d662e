// Releasing the VM of a worker thread that died without closing its sandbox: a thread
// ended by worker.terminate() (or an uncaught error) runs no cleanup, but its file
// descriptors and mappings belong to the process. Only what the worker reported is touched.
import { type Mapping, close, munmap } from '../kvm/libc.js';
import type { Machine } from '../sandbox/machine.js';

/** The kernel resources of one VM, as numbers that can cross threads. */
export interface VmResources {
  vcpuFd: number;
  vmFd: number;
  /** kvm_run of the vCPU, then guest memory (its usable part; the guard pages stay reserved). */
  maps: { address: bigint; length: number }[];
}

/** Called in the worker once its sandbox exists. */
export function resourcesOf(m: Machine): VmResources {
  const run = m.vcpu.kvmRunArea;
  return {
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
  const [run, memory] = r.maps;
  if (run) attempt(() => munmap({ address: run.address, length: run.length, pointer: null } satisfies Mapping));
  attempt(() => close(r.vcpuFd));
  if (memory) attempt(() => munmap({ address: memory.address, length: memory.length, pointer: null } satisfies Mapping));
  attempt(() => close(r.vmFd));
  return failures;
}
