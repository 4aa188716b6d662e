// x86-64 control-register, EFER, RFLAGS and XCR0 bits (Intel SDM vol. 3A 2.2-2.6, vol. 1 13.3), and the values the host gives a guest vCPU; values only.

// CR0 (SDM vol. 3A, 2.5 "Control Registers").
export const CR0_PE_BIT = 0; export const CR0_PE = 1n << 0n;   // protection enable
export const CR0_MP_BIT = 1; export const CR0_MP = 1n << 1n;   // monitor coprocessor
export const CR0_EM_BIT = 2; export const CR0_EM = 1n << 2n;   // x87 emulation
export const CR0_TS_BIT = 3; export const CR0_TS = 1n << 3n;   // task switched
export const CR0_ET_BIT = 4; export const CR0_ET = 1n << 4n;   // extension type
export const CR0_NE_BIT = 5; export const CR0_NE = 1n << 5n;   // numeric error
export const CR0_WP_BIT = 16; export const CR0_WP = 1n << 16n; // supervisor write protect
export const CR0_AM_BIT = 18; export const CR0_AM = 1n << 18n; // alignment mask
export const CR0_PG_BIT = 31; export const CR0_PG = 1n << 31n; // paging
/** CR0 of the hand-built long-mode examples: 0x80050033 (Hyperlight's value). */
export const CR0_INIT = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
/**
 * CR0 of a sandbox vCPU: paging, protection, x87 present and native (MP, ET, NE; EM and TS
 * clear, so ring-3 x87/SSE runs without #NM), supervisor write protection, and AM as under
 * Linux: ring-3 code that sets RFLAGS.AC gets alignment checks (#AC). (kvm_pvm runs native
 * CPL3 code with the host's CR0, which has AM set; this makes VMX/SVM behave the same.)
 */
export const CR0_GUEST = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;

// CR4 (SDM vol. 3A, 2.5).
export const CR4_PSE_BIT = 4; export const CR4_PSE = 1n << 4n;             // page size extensions
export const CR4_PAE_BIT = 5; export const CR4_PAE = 1n << 5n;             // physical address ext.
export const CR4_OSFXSR_BIT = 9; export const CR4_OSFXSR = 1n << 9n;       // fxsave/fxrstor, SSE
export const CR4_OSXMMEXCPT_BIT = 10; export const CR4_OSXMMEXCPT = 1n << 10n; // SIMD exceptions (#XM)
export const CR4_UMIP_BIT = 11; export const CR4_UMIP = 1n << 11n;         // sgdt/sidt/sldt/smsw/str fault at CPL3
export const CR4_FSGSBASE_BIT = 16; export const CR4_FSGSBASE = 1n << 16n; // rd/wrfsbase, rd/wrgsbase
export const CR4_OSXSAVE_BIT = 18; export const CR4_OSXSAVE = 1n << 18n;   // xsave, xgetbv, AVX
export const CR4_SMEP_BIT = 20; export const CR4_SMEP = 1n << 20n;         // no CPL0 fetch from user pages
export const CR4_SMAP_BIT = 21; export const CR4_SMAP = 1n << 21n;         // no CPL0 data access to user pages
/** CR4 of the hand-built long-mode examples: 0x620 (Hyperlight's value). */
export const CR4_INIT = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;

// EFER (SDM vol. 3A, 2.2.1 "Extended Feature Enable Register").
export const EFER_SCE_BIT = 0; export const EFER_SCE = 1n << 0n;    // syscall enable
export const EFER_LME_BIT = 8; export const EFER_LME = 1n << 8n;    // long mode enable
export const EFER_LMA_BIT = 10; export const EFER_LMA = 1n << 10n;  // long mode active
export const EFER_NXE_BIT = 11; export const EFER_NXE = 1n << 11n;  // no-execute enable
/** EFER of the hand-built long-mode examples: 0xD01. */
export const EFER_INIT = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
/**
 * EFER of a sandbox vCPU: long mode and NX. SCE is clear: `syscall` raises #UD on VMX/SVM
 * and kvm_pvm runs LSTAR code at CPL3 regardless: LSTAR is SYSCALL_ENTRY_SENTINEL, never
 * mapped, so there it is a page fault at that address. The host serves both (system-area.ts).
 */
export const EFER_GUEST = EFER_LME | EFER_LMA | EFER_NXE;

// RFLAGS (SDM vol. 1, 3.4.3).
/** Bit 1 is reserved and always 1. */
export const RFLAGS_RESERVED_1 = 0x2n;
export const RFLAGS_TF = 1n << 8n;    // trap (single step)
export const RFLAGS_IF = 1n << 9n;    // interrupts enabled
export const RFLAGS_IOPL = 3n << 12n; // I/O privilege level
export const RFLAGS_AC = 1n << 18n;   // alignment check

// XCR0 (SDM vol. 1, 13.3 "Enabling the XSAVE Feature Set").
export const XCR0_X87 = 1n << 0n;
export const XCR0_SSE = 1n << 1n;
export const XCR0_AVX = 1n << 2n;
