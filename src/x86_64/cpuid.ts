// CPUID leaves and feature bits the host reads or hides (Intel SDM vol. 2A "CPUID"; AMD APM vol. 3; KVM's Documentation/virt/kvm/x86/cpuid.rst); values only.

/** Leaf 1 ECX: VMX (bit 5), XSAVE (26), OSXSAVE (27), AVX (28), hypervisor present (31). */
export const CPUID_1_ECX_VMX = 1 << 5;
export const CPUID_1_ECX_XSAVE = 1 << 26;
export const CPUID_1_ECX_OSXSAVE = 1 << 27;
export const CPUID_1_ECX_AVX = 1 << 28;
/** Leaf 7 subleaf 0 EBX: FSGSBASE (bit 0), SMEP (7), SMAP (20). ECX: UMIP (2). */
export const CPUID_7_EBX_FSGSBASE = 1 << 0;
export const CPUID_7_EBX_SMEP = 1 << 7;
export const CPUID_7_EBX_SMAP = 1 << 20;
export const CPUID_7_ECX_UMIP = 1 << 2;
/** Leaf 0x8000_0001 ECX: SVM (bit 2). */
export const CPUID_80000001_ECX_SVM = 1 << 2;
/** KVM's leaves: 0x4000_0000 signature "KVMKVMKVM", 0x4000_0001 EAX paravirtual features. */
export const CPUID_KVM_SIGNATURE = 0x4000_0000;
export const CPUID_KVM_FEATURES = 0x4000_0001;
/** The range hypervisors put their leaves in. */
export const CPUID_HYPERVISOR_FIRST = 0x4000_0000;
export const CPUID_HYPERVISOR_LAST = 0x4fff_ffff;
