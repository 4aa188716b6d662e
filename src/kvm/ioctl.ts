// ioctl request numbers for /dev/kvm, computed from struct sizes with the kernel's
// _IO/_IOR/_IOW/_IOWR encoding (include/uapi/asm-generic/ioctl.h). No hex typed by hand.
import * as L from './layouts.generated.js';

const IOC_NRBITS = 8;
const IOC_TYPEBITS = 8;
const IOC_SIZEBITS = 14;
const IOC_NRSHIFT = 0;
const IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

function ioc(dir: number, type: number, nr: number, size: number): number {
  if (size >= 1 << IOC_SIZEBITS) throw new RangeError(`ioctl argument size ${size} too large`);
  // >>> 0 keeps the result an unsigned 32-bit number (direction bits reach bit 31).
  return ((dir << IOC_DIRSHIFT) | (type << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT) |
    (size << IOC_SIZESHIFT)) >>> 0;
}

export const _IO = (type: number, nr: number): number => ioc(IOC_NONE, type, nr, 0);
export const _IOR = (type: number, nr: number, size: number): number => ioc(IOC_READ, type, nr, size);
export const _IOW = (type: number, nr: number, size: number): number => ioc(IOC_WRITE, type, nr, size);
export const _IOWR = (type: number, nr: number, size: number): number =>
  ioc(IOC_READ | IOC_WRITE, type, nr, size);

/** KVMIO, the ioctl type byte of KVM (linux/kvm.h). */
export const KVMIO = 0xae;

// System ioctls (on the /dev/kvm fd).
export const KVM_GET_API_VERSION = _IO(KVMIO, 0x00);
export const KVM_CREATE_VM = _IO(KVMIO, 0x01);
export const KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03);
export const KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04);
export const KVM_GET_MSR_INDEX_LIST = _IOWR(KVMIO, 0x02, L.kvm_msr_list.size);
export const KVM_GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, L.kvm_cpuid2.size);

// VM ioctls.
export const KVM_CREATE_VCPU = _IO(KVMIO, 0x41);
export const KVM_GET_DIRTY_LOG = _IOW(KVMIO, 0x42, L.kvm_dirty_log.size);
export const KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, L.kvm_userspace_memory_region.size);
export const KVM_SET_TSS_ADDR = _IO(KVMIO, 0x47);
export const KVM_ENABLE_CAP = _IOW(KVMIO, 0xa3, L.kvm_enable_cap.size);
export const KVM_CLEAR_DIRTY_LOG = _IOWR(KVMIO, 0xc0, L.kvm_clear_dirty_log.size);

// vCPU ioctls.
export const KVM_RUN = _IO(KVMIO, 0x80);
export const KVM_GET_REGS = _IOR(KVMIO, 0x81, L.kvm_regs.size);
export const KVM_SET_REGS = _IOW(KVMIO, 0x82, L.kvm_regs.size);
export const KVM_GET_SREGS = _IOR(KVMIO, 0x83, L.kvm_sregs.size);
export const KVM_SET_SREGS = _IOW(KVMIO, 0x84, L.kvm_sregs.size);
export const KVM_TRANSLATE = _IOWR(KVMIO, 0x85, L.kvm_translation.size);
export const KVM_GET_MSRS = _IOWR(KVMIO, 0x88, L.kvm_msrs.size);
export const KVM_SET_MSRS = _IOW(KVMIO, 0x89, L.kvm_msrs.size);
export const KVM_GET_FPU = _IOR(KVMIO, 0x8c, L.kvm_fpu.size);
export const KVM_SET_FPU = _IOW(KVMIO, 0x8d, L.kvm_fpu.size);
export const KVM_SET_CPUID2 = _IOW(KVMIO, 0x90, L.kvm_cpuid2.size);
/** struct kvm_signal_mask is `__u32 len; __u8 sigset[]`: 4 bytes before its flexible array. */
export const KVM_SET_SIGNAL_MASK = _IOW(KVMIO, 0x8b, 4);
export const KVM_SET_GUEST_DEBUG = _IOW(KVMIO, 0x9b, L.kvm_guest_debug.size);
/** Returns the vCPU's TSC frequency in kHz (KVM_CAP_GET_TSC_KHZ). */
export const KVM_GET_TSC_KHZ = _IO(KVMIO, 0xa3);
export const KVM_GET_DEBUGREGS = _IOR(KVMIO, 0xa1, L.kvm_debugregs.size);
export const KVM_SET_DEBUGREGS = _IOW(KVMIO, 0xa2, L.kvm_debugregs.size);
export const KVM_GET_VCPU_EVENTS = _IOR(KVMIO, 0x9f, L.kvm_vcpu_events.size);
export const KVM_SET_VCPU_EVENTS = _IOW(KVMIO, 0xa0, L.kvm_vcpu_events.size);
export const KVM_GET_XSAVE = _IOR(KVMIO, 0xa4, L.kvm_xsave.size);
export const KVM_SET_XSAVE = _IOW(KVMIO, 0xa5, L.kvm_xsave.size);
export const KVM_GET_XCRS = _IOR(KVMIO, 0xa6, L.kvm_xcrs.size);
export const KVM_SET_XCRS = _IOW(KVMIO, 0xa7, L.kvm_xcrs.size);

/** Names of the ioctls above, for error messages. */
export const IOCTL_NAMES: ReadonlyMap<number, string> = new Map([
  [KVM_GET_API_VERSION, 'KVM_GET_API_VERSION'], [KVM_CREATE_VM, 'KVM_CREATE_VM'],
  [KVM_CHECK_EXTENSION, 'KVM_CHECK_EXTENSION'], [KVM_GET_VCPU_MMAP_SIZE, 'KVM_GET_VCPU_MMAP_SIZE'],
  [KVM_GET_SUPPORTED_CPUID, 'KVM_GET_SUPPORTED_CPUID'], [KVM_CREATE_VCPU, 'KVM_CREATE_VCPU'],
  [KVM_GET_DIRTY_LOG, 'KVM_GET_DIRTY_LOG'], [KVM_SET_USER_MEMORY_REGION, 'KVM_SET_USER_MEMORY_REGION'],
  [KVM_SET_TSS_ADDR, 'KVM_SET_TSS_ADDR'], [KVM_RUN, 'KVM_RUN'], [KVM_GET_REGS, 'KVM_GET_REGS'],
  [KVM_SET_REGS, 'KVM_SET_REGS'], [KVM_GET_SREGS, 'KVM_GET_SREGS'], [KVM_SET_SREGS, 'KVM_SET_SREGS'],
  [KVM_TRANSLATE, 'KVM_TRANSLATE'], [KVM_GET_MSRS, 'KVM_GET_MSRS'], [KVM_SET_MSRS, 'KVM_SET_MSRS'],
  [KVM_GET_FPU, 'KVM_GET_FPU'], [KVM_SET_FPU, 'KVM_SET_FPU'], [KVM_SET_CPUID2, 'KVM_SET_CPUID2'],
  [KVM_SET_GUEST_DEBUG, 'KVM_SET_GUEST_DEBUG'], [KVM_GET_TSC_KHZ, 'KVM_GET_TSC_KHZ'], [KVM_GET_DEBUGREGS, 'KVM_GET_DEBUGREGS'],
  [KVM_SET_DEBUGREGS, 'KVM_SET_DEBUGREGS'], [KVM_GET_MSR_INDEX_LIST, 'KVM_GET_MSR_INDEX_LIST'],
  [KVM_ENABLE_CAP, 'KVM_ENABLE_CAP'], [KVM_CLEAR_DIRTY_LOG, 'KVM_CLEAR_DIRTY_LOG'],
  [KVM_GET_VCPU_EVENTS, 'KVM_GET_VCPU_EVENTS'], [KVM_SET_VCPU_EVENTS, 'KVM_SET_VCPU_EVENTS'],
  [KVM_GET_XSAVE, 'KVM_GET_XSAVE'], [KVM_SET_XSAVE, 'KVM_SET_XSAVE'], [KVM_GET_XCRS, 'KVM_GET_XCRS'],
  [KVM_SET_XCRS, 'KVM_SET_XCRS'], [KVM_SET_SIGNAL_MASK, 'KVM_SET_SIGNAL_MASK'],
]);
