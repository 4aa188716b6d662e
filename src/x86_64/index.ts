// The x86-64 corner: architectural registers, descriptors, exceptions, MSRs, CPUID bits and the host-built system area. No KVM calls here.
export * from './registers.js';
export * from './descriptors.js';
export * from './exceptions.js';
export * from './msrs.js';
export * from './cpuid.js';
export * from './system-area.js';
