// Errors raised by the KVM layer: a failed ioctl, or /dev/kvm not usable.
import { HyperlightError } from '../errors.js';
import { IOCTL_NAMES } from './ioctl.js';
import { errnoName, resourceHint } from './libc.js';

/** An ioctl on a KVM fd failed. `message` reads like `KVM_SET_SREGS failed: EFAULT`. */
export class KvmIoctlError extends HyperlightError {
  /** The ioctl's kernel name, e.g. `KVM_RUN`. */
  readonly ioctl: string;
  readonly errno: number;
  readonly errnoName: string;

  constructor(request: number | string, errno: number, context = '') {
    const ioctl = typeof request === 'string'
      ? request : IOCTL_NAMES.get(request) ?? `ioctl 0x${request.toString(16)}`;
    const name = errnoName(errno);
    const hint = resourceHint(errno);
    const detail = [context, hint].filter((s) => s !== '').join('; ');
    super('ERR_KVM_IOCTL', `${ioctl} failed: ${name}${detail ? ` (${detail})` : ''}`);
    this.ioctl = ioctl;
    this.errno = errno;
    this.errnoName = name;
  }
}

/** /dev/kvm is missing, not accessible, or not a usable KVM. */
export class KvmUnavailableError extends HyperlightError {
  readonly path: string;

  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_KVM_UNAVAILABLE',
      `KVM is not available at ${path}: ${detail}. Check that the device exists (the kvm ` +
      'kernel module is loaded and virtualisation is enabled), that this user can open it ' +
      'read-write (ls -l /dev/kvm; usually: be in the `kvm` group), and that no container ' +
      'policy hides it.', options);
    this.path = path;
  }
}

/** An operation on a closed Kvm, Vm, Vcpu or GuestMemory. */
export class ResourceClosedError extends HyperlightError {
  constructor(what: string) {
    super('ERR_CLOSED', `${what} is closed`);
  }
}
