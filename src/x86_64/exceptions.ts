// x86 exception vectors 0-31: names and which push an error code (Intel SDM vol. 3A, 6.3.1 and 6.15); values only.

/** Names of the exception vectors 0..31. */
export const EXCEPTION_NAMES: readonly string[] = [
  'DivideError', 'Debug', 'NMI', 'Breakpoint', 'Overflow', 'BoundRangeExceeded',
  'InvalidOpcode', 'DeviceNotAvailable', 'DoubleFault', 'CoprocessorSegmentOverrun',
  'InvalidTSS', 'SegmentNotPresent', 'StackSegmentFault', 'GeneralProtectionFault',
  'PageFault', 'Reserved15', 'X87FloatingPoint', 'AlignmentCheck', 'MachineCheck',
  'SIMDFloatingPoint', 'Virtualization', 'ControlProtection', 'Reserved22', 'Reserved23',
  'Reserved24', 'Reserved25', 'Reserved26', 'Reserved27', 'HypervisorInjection',
  'VMMCommunication', 'Security', 'Reserved31',
];

export const VECTOR_DE = 0;
export const VECTOR_DB = 1;
export const VECTOR_BP = 3;
export const VECTOR_OF = 4;
export const VECTOR_UD = 6;
export const VECTOR_DF = 8;
export const VECTOR_GP = 13;
export const VECTOR_PF = 14;

/** Vectors for which the CPU pushes an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX. */
export const VECTORS_WITH_ERROR_CODE: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

/** The name of `vector` (`Vector<n>` beyond 31). */
export function exceptionName(vector: number): string {
  return EXCEPTION_NAMES[vector] ?? `Vector${vector}`;
}

// #PF error code bits (SDM vol. 3A, 4.7).
export const PF_PRESENT = 1n << 0n;
export const PF_WRITE = 1n << 1n;
export const PF_USER = 1n << 2n;
export const PF_FETCH = 1n << 4n;
