// The main thread's kernel anchor: one idle VM with one vCPU, held while the thread has
// machines and for ANCHOR_LINGER_MS after its last one closed.
//
// Why: KVM switches kernel static keys (jump labels) when the host's first VM or first
// vCPU without an in-kernel APIC appears and when the last one goes (preempt notifiers in
// KVM_CREATE_VM / VM teardown, kvm_has_noapic_vcpu or the APIC key in KVM_CREATE_VCPU /
// vCPU teardown). Each switch rewrites kernel text and synchronises every CPU with IPIs:
// four of them per cycle when sandboxes are made and closed one after another (an
// init-template cold start, a CLI run), ~400 us of a ~1.6 ms cycle on the nested Intel VM
// of docs/benchmarks.md (perf: smp_call_function_many_cond under static_key_slow_inc/dec).
// While any VM of the host lives, the counts never reach zero and nothing is rewritten.
// This is generic KVM code (virt/kvm/kvm_main.c, arch/x86/kvm), so it helps on VMX/SVM
// hosts too, where an IPI round is cheaper but still costs every CPU of the host.
//
// Cost: two file descriptors and a few pages of kernel memory (no guest memory, never
// run). Only the main thread keeps one: a worker can end without running any cleanup, and
// its fds would then stay open in the process (as for the kept /dev/kvm fd, machine.ts).
// It is an optimisation only: if it cannot be made, machines work as before.
import { isMainThread } from 'node:worker_threads';
import type { Kvm } from '../kvm/kvm.js';
import type { Vm } from '../kvm/vm.js';

/** How long the anchor outlives the thread's last machine. */
export const ANCHOR_LINGER_MS = 2000;

let anchor: Vm | undefined;
/** The anchor could not be made once: not tried again in this process. */
let unavailable = false;
/** VMs of this thread's machines that hold the anchor (created, not yet closed). */
const holding = new WeakSet<Vm>();
let holders = 0;
let lastRelease = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

/** A new machine of this thread, with VM `vm`, exists: keep the anchor (made with `kvm` if needed). */
export function holdKernelAnchor(kvm: Kvm, vm: Vm): void {
  if (!isMainThread || holding.has(vm)) return;
  holding.add(vm);
  holders++;
  if (anchor || unavailable) return;
  try {
    const idle = kvm.createVm();
    try {
      idle.createVcpu(0);
    } catch (e) {
      idle.close();
      throw e;
    }
    anchor = idle;
  } catch {
    unavailable = true; // e.g. out of fds: the cycle then pays the switches, nothing else changes
  }
}

/** The machine with VM `vm` was closed; the last holder's release starts the linger time. */
export function releaseKernelAnchor(vm: Vm): void {
  if (!holding.delete(vm)) return;
  if (--holders > 0 || !anchor) return;
  lastRelease = performance.now();
  timer ??= setTimeout(expire, ANCHOR_LINGER_MS).unref();
}

function expire(): void {
  timer = undefined;
  if (!anchor || holders > 0) return; // the next last release arms it again
  const idle = performance.now() - lastRelease;
  if (idle < ANCHOR_LINGER_MS) {
    timer = setTimeout(expire, ANCHOR_LINGER_MS - idle).unref();
    return;
  }
  closeKernelAnchor();
}

/** Closes the anchor now (it is made again by the next machine). For tests and shutdown. */
export function closeKernelAnchor(): void {
  if (timer) clearTimeout(timer);
  timer = undefined;
  const vm = anchor;
  anchor = undefined;
  vm?.close();
}

/** The anchor's file descriptors (VM first), none when it is not open: for fd accounting. */
export function kernelAnchorFds(): number[] {
  if (!anchor) return [];
  return [anchor.fd, ...anchor.vcpuFds()];
}
