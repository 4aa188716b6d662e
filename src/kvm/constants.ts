// KVM constants (linux/kvm.h): capabilities, exit reasons, flags. Values only; the x86 architecture's own bits live in src/x86_64/.

/** The only KVM API version there is (KVM_GET_API_VERSION). */
export const KVM_API_VERSION = 12;

// Capabilities (KVM_CHECK_EXTENSION), linux/kvm.h.
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_HLT = 1;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_SET_TSS_ADDR = 4;
export const KVM_CAP_EXT_CPUID = 7;
export const KVM_CAP_NR_VCPUS = 9;
export const KVM_CAP_NR_MEMSLOTS = 10;
export const KVM_CAP_SYNC_MMU = 16;
export const KVM_CAP_SET_GUEST_DEBUG = 23;
export const KVM_CAP_MAX_VCPUS = 66;
export const KVM_CAP_READONLY_MEM = 81;
export const KVM_CAP_IMMEDIATE_EXIT = 136;
export const KVM_CAP_GUEST_DEBUG_HW_BPS = 119;
export const KVM_CAP_X86_MSR_FILTER = 189;
export const KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
export const KVM_CAP_SYNC_REGS = 74;
export const KVM_CAP_XSAVE = 55;
export const KVM_CAP_XCRS = 56;
export const KVM_CAP_DEBUGREGS = 50;
export const KVM_CAP_ENFORCE_PV_FEATURE_CPUID = 190;

// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 arguments (Documentation/virt/kvm/api.rst 7.18).
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1 << 0;

// kvm_run.kvm_valid_regs / kvm_dirty_regs bits (asm/kvm.h, KVM_CAP_SYNC_REGS).
export const KVM_SYNC_X86_REGS = 1 << 0;
export const KVM_SYNC_X86_SREGS = 1 << 1;
export const KVM_SYNC_X86_EVENTS = 1 << 2;

// Memory region flags (kvm_userspace_memory_region.flags).
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
export const KVM_MEM_READONLY = 1 << 1;

// Exit reasons (kvm_run.exit_reason).
export const KVM_EXIT_UNKNOWN = 0;
export const KVM_EXIT_EXCEPTION = 1;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HYPERCALL = 3;
export const KVM_EXIT_DEBUG = 4;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_IRQ_WINDOW_OPEN = 7;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_SET_TPR = 11;
export const KVM_EXIT_TPR_ACCESS = 12;
export const KVM_EXIT_NMI = 16;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_SYSTEM_EVENT = 24;

/** Exit reason number -> kernel name. */
export const EXIT_REASON_NAMES: Readonly<Record<number, string>> = {
  0: 'KVM_EXIT_UNKNOWN', 1: 'KVM_EXIT_EXCEPTION', 2: 'KVM_EXIT_IO', 3: 'KVM_EXIT_HYPERCALL',
  4: 'KVM_EXIT_DEBUG', 5: 'KVM_EXIT_HLT', 6: 'KVM_EXIT_MMIO', 7: 'KVM_EXIT_IRQ_WINDOW_OPEN',
  8: 'KVM_EXIT_SHUTDOWN', 9: 'KVM_EXIT_FAIL_ENTRY', 10: 'KVM_EXIT_INTR', 11: 'KVM_EXIT_SET_TPR',
  12: 'KVM_EXIT_TPR_ACCESS', 13: 'KVM_EXIT_S390_SIEIC', 14: 'KVM_EXIT_S390_RESET',
  15: 'KVM_EXIT_DCR', 16: 'KVM_EXIT_NMI', 17: 'KVM_EXIT_INTERNAL_ERROR', 18: 'KVM_EXIT_OSI',
  19: 'KVM_EXIT_PAPR_HCALL', 20: 'KVM_EXIT_S390_UCONTROL', 21: 'KVM_EXIT_WATCHDOG',
  22: 'KVM_EXIT_S390_TSCH', 23: 'KVM_EXIT_EPR', 24: 'KVM_EXIT_SYSTEM_EVENT',
  25: 'KVM_EXIT_S390_STSI', 26: 'KVM_EXIT_IOAPIC_EOI', 27: 'KVM_EXIT_HYPERV',
  28: 'KVM_EXIT_ARM_NISV', 29: 'KVM_EXIT_X86_RDMSR', 30: 'KVM_EXIT_X86_WRMSR',
  31: 'KVM_EXIT_DIRTY_RING_FULL', 32: 'KVM_EXIT_AP_RESET_HOLD', 33: 'KVM_EXIT_X86_BUS_LOCK',
  34: 'KVM_EXIT_XEN', 35: 'KVM_EXIT_RISCV_SBI', 36: 'KVM_EXIT_RISCV_CSR', 37: 'KVM_EXIT_NOTIFY',
  38: 'KVM_EXIT_LOONGARCH_IOCSR', 39: 'KVM_EXIT_MEMORY_FAULT',
};

// kvm_run.io.direction.
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

// kvm_run.internal.suberror.
export const KVM_INTERNAL_ERROR_EMULATION = 1;
export const KVM_INTERNAL_ERROR_SIMUL_EX = 2;
export const KVM_INTERNAL_ERROR_DELIVERY_EV = 3;

// kvm_guest_debug.control.
export const KVM_GUESTDBG_ENABLE = 0x1;
export const KVM_GUESTDBG_SINGLESTEP = 0x2;
export const KVM_GUESTDBG_USE_SW_BP = 0x10000;
