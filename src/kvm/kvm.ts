// The /dev/kvm system fd: API version, capabilities, supported CPUID, and VM creation.
import { KVM_API_VERSION } from './constants.js';
import { KvmIoctlError, KvmUnavailableError, ResourceClosedError } from './errors.js';
import * as I from './ioctl.js';
import { kvm_msr_list } from './layouts.generated.js';
import { LIBC, SyscallError, close, ioctlWithBuffer, ioctlWithInt, open, resourceHint } from './libc.js';
import { type CpuidEntry, decodeCpuid, encodeCpuid } from './structs.js';
import { Vm, askedOnce } from './vm.js';

export type { CpuidEntry };

/** Kvm.capability's answers by capability. */
const capabilities = new Map<number, number>();

/** An open /dev/kvm. Close it when done; VMs it created stay usable after. */
export class Kvm {
  #fd: number;
  #vcpuMmapSize = 0;
  #supportedCpuid: CpuidEntry[] | undefined;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Opens the KVM device and checks its API version is 12.
   * @throws KvmUnavailableError when the device is missing, not accessible or wrong.
   */
  static open(path = '/dev/kvm'): Kvm {
    let fd: number;
    try {
      fd = open(path, LIBC.O_RDWR | LIBC.O_CLOEXEC);
    } catch (e) {
      // Out of fds or memory is not a KVM problem: say what it is (ERR_SYSTEM, with the fix).
      if (e instanceof SyscallError && resourceHint(e.errno) !== '') throw e;
      const detail = e instanceof SyscallError ? `open failed with ${e.errnoName}` : String(e);
      throw new KvmUnavailableError(path, detail, { cause: e });
    }
    const kvm = new Kvm(fd);
    let version: number;
    try {
      version = kvm.apiVersion();
    } catch (e) {
      kvm.close();
      throw new KvmUnavailableError(path, 'KVM_GET_API_VERSION failed (not a KVM device?)', { cause: e });
    }
    if (version !== KVM_API_VERSION) {
      kvm.close();
      throw new KvmUnavailableError(path, `API version ${version}, expected ${KVM_API_VERSION}`);
    }
    return kvm;
  }

  get fd(): number {
    if (this.#fd < 0) throw new ResourceClosedError('Kvm');
    return this.#fd;
  }

  private ioctl(request: number, arg: number = 0): number {
    const r = ioctlWithInt(this.fd, request, arg);
    if (r < 0) throw new KvmIoctlError(request, -r);
    return r;
  }

  /** KVM_GET_API_VERSION: always 12 on a working kernel. */
  apiVersion(): number {
    return this.ioctl(I.KVM_GET_API_VERSION);
  }

  /** KVM_CHECK_EXTENSION on the system fd: 0 when unsupported, else a cap-specific value. */
  checkExtension(cap: number): number {
    return this.ioctl(I.KVM_CHECK_EXTENSION, cap);
  }

  /** checkExtension(cap), asked once per process and remembered (what KVM offers does not change while it runs). */
  capability(cap: number): number {
    return askedOnce(capabilities, cap, (c) => this.checkExtension(c));
  }

  /** KVM_GET_VCPU_MMAP_SIZE: bytes to mmap from each vCPU fd (kvm_run and data pages). */
  getVcpuMmapSize(): number {
    if (this.#vcpuMmapSize === 0) this.#vcpuMmapSize = this.ioctl(I.KVM_GET_VCPU_MMAP_SIZE);
    return this.#vcpuMmapSize;
  }

  /** KVM_GET_SUPPORTED_CPUID: the CPUID entries KVM can expose to a guest (cached). */
  getSupportedCpuid(): CpuidEntry[] {
    if (this.#supportedCpuid) return this.#supportedCpuid.map((e) => ({ ...e }));
    let capacity = 128;
    for (;;) {
      const buf = encodeCpuid([], capacity);
      const r = ioctlWithBuffer(this.fd, I.KVM_GET_SUPPORTED_CPUID, buf);
      if (r === -7 /* E2BIG */ && capacity < 4096) {
        capacity *= 2;
        continue;
      }
      if (r < 0) throw new KvmIoctlError(I.KVM_GET_SUPPORTED_CPUID, -r);
      this.#supportedCpuid = decodeCpuid(buf);
      return this.#supportedCpuid.map((e) => ({ ...e }));
    }
  }

  /**
   * KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a vCPU (the list a VMM
   * migrates), in KVM's order.
   */
  getMsrIndexList(): number[] {
    let capacity = 256;
    for (;;) {
      const buf = new Uint8Array(kvm_msr_list.size + 4 * capacity);
      const v = new DataView(buf.buffer);
      v.setUint32(kvm_msr_list.fields.nmsrs[0], capacity, true);
      const r = ioctlWithBuffer(this.fd, I.KVM_GET_MSR_INDEX_LIST, buf);
      const n = v.getUint32(kvm_msr_list.fields.nmsrs[0], true);
      if (r === -7 /* E2BIG */ && capacity < 65536) {
        capacity = Math.max(capacity * 2, n);
        continue;
      }
      if (r < 0) throw new KvmIoctlError(I.KVM_GET_MSR_INDEX_LIST, -r);
      const at = kvm_msr_list.fields.indices[0];
      return Array.from({ length: n }, (_, i) => v.getUint32(at + 4 * i, true));
    }
  }

  /** KVM_CREATE_VM: a new VM with no memory and no vCPUs. */
  createVm(): Vm {
    const fd = this.ioctl(I.KVM_CREATE_VM, 0);
    return new Vm(fd, this.getVcpuMmapSize());
  }

  /** Closes the system fd; idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
