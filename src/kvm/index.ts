// The KVM layer's public surface: Kvm/Vm/Vcpu, decoded exits, constants, layouts, errors.
export { Kvm } from './kvm.js';
export { Vm, type UserMemoryRegion } from './vm.js';
export { Vcpu, type Fpu, type MsrEntry, type Translation, type GuestDebug, type DebugRegs } from './vcpu.js';
export { ExitDecoder, type VcpuExit, type IoExit, type MmioExit } from './exit.js';
export {
  type Regs, type Sregs, type Segment, type DTable, type CpuidEntry, emptyRegs, flatSegment,
  REG_NAMES, SEGMENT_NAMES,
} from './structs.js';
export { KvmIoctlError, KvmUnavailableError, ResourceClosedError } from './errors.js';
export * as ioctls from './ioctl.js';
export * as kvmConstants from './constants.js';
export * as layouts from './layouts.generated.js';
