// Model-specific register indices the host names (Intel SDM vol. 4; KVM's Documentation/virt/kvm/x86/msr.rst); values only.

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_APIC_BASE = 0x1b;
export const MSR_IA32_TSC_ADJUST = 0x3b;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_IA32_CR_PAT = 0x277;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const MSR_EFER = 0xc000_0080;
export const MSR_STAR = 0xc000_0081;
export const MSR_LSTAR = 0xc000_0082;
export const MSR_CSTAR = 0xc000_0083;
export const MSR_SYSCALL_MASK = 0xc000_0084;
export const MSR_FS_BASE = 0xc000_0100;
export const MSR_GS_BASE = 0xc000_0101;
export const MSR_KERNEL_GS_BASE = 0xc000_0102;
export const MSR_TSC_AUX = 0xc000_0103;

// KVM's paravirtual MSRs (msr.rst): kvmclock, steal time, async page faults, PV EOI.
export const MSR_KVM_WALL_CLOCK_NEW = 0x4b56_4d00;
export const MSR_KVM_SYSTEM_TIME_NEW = 0x4b56_4d01;
export const MSR_KVM_ASYNC_PF_EN = 0x4b56_4d02;
export const MSR_KVM_STEAL_TIME = 0x4b56_4d03;
export const MSR_KVM_PV_EOI_EN = 0x4b56_4d04;
export const MSR_KVM_POLL_CONTROL = 0x4b56_4d05;
export const MSR_KVM_ASYNC_PF_INT = 0x4b56_4d06;
export const MSR_KVM_ASYNC_PF_ACK = 0x4b56_4d07;
/** The legacy kvmclock MSRs. */
export const MSR_KVM_WALL_CLOCK = 0x11;
export const MSR_KVM_SYSTEM_TIME = 0x12;

/**
 * MSRs whose value moves on its own (time) or that KVM derives from other state, so two
 * vCPUs never agree on them; state comparisons skip them.
 */
export const TIME_VARYING_MSRS: ReadonlySet<number> = new Set([MSR_IA32_TSC, MSR_IA32_TSC_DEADLINE, MSR_IA32_TSC_ADJUST]);
