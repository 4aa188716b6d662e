// A KVM MSR filter that denies every guest rdmsr/wrmsr not on an allow-list (the list is empty), so no MSR a guest could reach outlives restore(); host-side KVM_GET/SET_MSRS are unaffected.
//
// Defence in depth: guests run at CPL3, where rdmsr and wrmsr raise #GP anyway, and the
// host's CPL0 stubs touch no MSR. Should any guest code ever reach CPL0 (a KVM bug, a future
// stub), KVM_X86_SET_MSR_FILTER (KVM_CAP_X86_MSR_FILTER) with KVM_MSR_FILTER_DEFAULT_DENY makes
// every access outside the allowed ranges fault with #GP instead of setting, say, LSTAR,
// KERNEL_GS_BASE, the debug-control MSR or KVM's paravirtual MSRs (steal time makes KVM write
// into guest memory on every entry). A KVM without the capability relies on CPL3 alone.
import { KVM_CAP_X86_MSR_FILTER } from '../kvm/constants.js';
import { KvmIoctlError } from '../kvm/errors.js';
import { KVMIO, _IOW } from '../kvm/ioctl.js';
import { LIBC, type Mapping, ioctlWithBuffer, mmap, viewOf } from '../kvm/libc.js';
import type { Vm } from '../kvm/vm.js';

// struct kvm_msr_filter_range { u32 flags, nmsrs, base; u8 *bitmap; } (24 bytes with padding)
// struct kvm_msr_filter { u32 flags; struct kvm_msr_filter_range ranges[16]; } (392 bytes)
const RANGE_SIZE = 24;
const MAX_RANGES = 16;
const FILTER_SIZE = 8 + MAX_RANGES * RANGE_SIZE;
const KVM_X86_SET_MSR_FILTER = _IOW(KVMIO, 0xc6, FILTER_SIZE);
const KVM_MSR_FILTER_DEFAULT_DENY = 1;
const KVM_MSR_FILTER_READ = 1;
const KVM_MSR_FILTER_WRITE = 2;

/**
 * MSRs guest code may read or write. Empty: nothing the guest runs needs one (ring 3
 * cannot execute rdmsr/wrmsr; the CPL0 stubs use none). Add an index here, with the reason,
 * before adding host code that runs at CPL0 and needs it.
 */
export const GUEST_MSR_ALLOW: { readonly read: readonly number[]; readonly write: readonly number[] } =
  Object.freeze({ read: Object.freeze([]), write: Object.freeze([]) });

let bitmaps: Mapping | undefined;
let filter: Uint8Array | undefined;
const denied = new WeakSet<Vm>();

function filterBytes(): Uint8Array {
  if (filter) return filter;
  const bytes = new Uint8Array(FILTER_SIZE);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, KVM_MSR_FILTER_DEFAULT_DENY, true);
  // FFI: one page that lives as long as the process, first byte 0xFF (allow), second 0
  // (deny); KVM copies each bitmap during the ioctl. Ranges here cover one MSR each.
  bitmaps ??= mmap(4096, LIBC.PROT_READ | LIBC.PROT_WRITE, LIBC.MAP_PRIVATE | LIBC.MAP_ANONYMOUS);
  viewOf(bitmaps)[0] = 0xff;
  let range = 0;
  const add = (index: number, flags: number, allowIt: boolean): void => {
    const at = 8 + range++ * RANGE_SIZE;
    v.setUint32(at, flags, true);
    v.setUint32(at + 4, 1, true);
    v.setUint32(at + 8, index, true);
    v.setBigUint64(at + 16, bitmaps!.address + (allowIt ? 0n : 1n), true);
  };
  for (const index of GUEST_MSR_ALLOW.read) add(index, KVM_MSR_FILTER_READ, true);
  for (const index of GUEST_MSR_ALLOW.write) add(index, KVM_MSR_FILTER_WRITE, true);
  // KVM refuses a default-deny filter with no range (EINVAL): give it one that denies MSR 0.
  if (range === 0) add(0, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, false);
  filter = bytes;
  return bytes;
}

/**
 * Denies every guest MSR access not in GUEST_MSR_ALLOW on `vm`, if this KVM supports MSR
 * filters. Returns whether the filter is installed. Call before the first KVM_RUN.
 */
export function denyGuestMsrAccess(vm: Vm): boolean {
  if (vm.capability(KVM_CAP_X86_MSR_FILTER) <= 0) return false;
  const r = ioctlWithBuffer(vm.fd, KVM_X86_SET_MSR_FILTER, filterBytes());
  if (r < 0) throw new KvmIoctlError('KVM_X86_SET_MSR_FILTER', -r);
  denied.add(vm);
  return true;
}

/** Whether denyGuestMsrAccess() installed the filter on `vm`. */
export function guestMsrAccessDenied(vm: Vm): boolean {
  return denied.has(vm);
}
