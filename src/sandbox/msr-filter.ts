// Refuses guest `wrmsr` with a KVM MSR filter, so no MSR value written by a guest call can outlive restore(); reads stay allowed.
//
// Without it a ring-0 guest could set LSTAR, STAR, SFMASK, KERNEL_GS_BASE, SYSENTER_*, PAT,
// TSC_ADJUST, MTRRs, ... and the values would survive restore(), which puts back memory,
// kvm_regs and kvm_sregs only. KVM_X86_SET_MSR_FILTER (KVM_CAP_X86_MSR_FILTER) with a
// zero write bitmap over the architectural and AMD MSR index ranges makes every guest
// `wrmsr` in them fault with #GP (GuestExceptionError, vector 13). Host-side KVM_SET_MSRS is
// not affected. On a KVM without the capability, MultiUseSandbox falls back to saving and
// restoring a list of MSRs with each snapshot (one extra ioctl per restore).
import { KVM_CAP_X86_MSR_FILTER } from '../kvm/constants.js';
import { KvmIoctlError } from '../kvm/errors.js';
import { KVMIO, _IOW } from '../kvm/ioctl.js';
import { LIBC, type Mapping, ioctlWithBuffer, mmap } from '../kvm/libc.js';
import type { Vm } from '../kvm/vm.js';

// struct kvm_msr_filter_range { u32 flags, nmsrs, base; u8 *bitmap; } (24 bytes with padding)
// struct kvm_msr_filter { u32 flags; struct kvm_msr_filter_range ranges[16]; } (392 bytes)
const RANGE_SIZE = 24;
const MAX_RANGES = 16;
const FILTER_SIZE = 8 + MAX_RANGES * RANGE_SIZE;
const KVM_X86_SET_MSR_FILTER = _IOW(KVMIO, 0xc6, FILTER_SIZE);
const KVM_MSR_FILTER_DEFAULT_ALLOW = 0;
const KVM_MSR_FILTER_WRITE = 2;
/** MSRs per range; the bitmap then takes 1 KiB (KVM allows up to 0x600 bytes). */
const RANGE_MSRS = 0x2000;
/** Intel architectural MSRs, the AMD64 0xC000_0000 block, the AMD 0xC001_0000 block. */
const DENIED_BASES = [0x0000_0000, 0xc000_0000, 0xc001_0000];

let zeroBitmap: Mapping | undefined;
let filter: Uint8Array | undefined;
const denied = new WeakSet<Vm>();

function filterBytes(): Uint8Array {
  if (filter) return filter;
  // FFI: one zero-filled page that lives as long as the process; KVM copies the bitmap
  // during the ioctl, so the same page serves every range and every VM.
  zeroBitmap ??= mmap(4096, LIBC.PROT_READ | LIBC.PROT_WRITE, LIBC.MAP_PRIVATE | LIBC.MAP_ANONYMOUS);
  const bytes = new Uint8Array(FILTER_SIZE);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, KVM_MSR_FILTER_DEFAULT_ALLOW, true);
  DENIED_BASES.forEach((base, i) => {
    const at = 8 + i * RANGE_SIZE;
    v.setUint32(at, KVM_MSR_FILTER_WRITE, true);
    v.setUint32(at + 4, RANGE_MSRS, true);
    v.setUint32(at + 8, base, true);
    v.setBigUint64(at + 16, zeroBitmap!.address, true);
  });
  filter = bytes;
  return bytes;
}

/**
 * Makes every guest `wrmsr` fault (#GP) on `vm`, if this KVM supports MSR filters. Returns
 * whether the filter is installed. Call before the first KVM_RUN.
 */
export function denyGuestMsrWrites(vm: Vm): boolean {
  if (vm.checkExtension(KVM_CAP_X86_MSR_FILTER) <= 0) return false;
  const r = ioctlWithBuffer(vm.fd, KVM_X86_SET_MSR_FILTER, filterBytes());
  if (r < 0) throw new KvmIoctlError('KVM_X86_SET_MSR_FILTER', -r);
  denied.add(vm);
  return true;
}

/** Whether denyGuestMsrWrites() installed the filter on `vm`. */
export function guestMsrWritesDenied(vm: Vm): boolean {
  return denied.has(vm);
}
