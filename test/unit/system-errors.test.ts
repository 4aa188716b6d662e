// System failures without KVM: every libc and ioctl failure is a typed HyperlightError whose message names the cause and the fix for resource limits, and none poisons a guest that was not entered.
import { describe, expect, it } from 'vitest';
import { HyperlightError } from '../../src/errors.js';
import { KvmIoctlError } from '../../src/kvm/errors.js';
import { KVM_CREATE_VCPU } from '../../src/kvm/ioctl.js';
import { ERRNO } from '../../src/kvm/layouts.generated.js';
import { SyscallError } from '../../src/kvm/libc.js';
import { ExecutionCanceledError, poisons } from '../../src/sandbox/errors.js';

describe('system errors (issue 12, finding 7)', () => {
  it('SyscallError is a HyperlightError (ERR_SYSTEM) that names the limit and the fix', () => {
    const mmap = new SyscallError('mmap', ERRNO.ENOMEM);
    expect(mmap).toBeInstanceOf(HyperlightError);
    expect([mmap.code, mmap.call, mmap.errnoName]).toEqual(['ERR_SYSTEM', 'mmap', 'ENOMEM']);
    expect(mmap.message).toMatch(/^mmap failed: ENOMEM \(out of memory .*vm\.max_map_count/);
    expect(new SyscallError('open(/dev/kvm)', ERRNO.EMFILE).message)
      .toBe('open(/dev/kvm) failed: EMFILE (too many open files: close sandboxes or raise ulimit -n)');
    expect(new SyscallError('timer_create', ERRNO.EAGAIN).message).toContain('raise ulimit -i');
    expect(new SyscallError('munmap', ERRNO.EINVAL).message).toBe('munmap failed: EINVAL');
  });

  it('an ioctl that returns an fd and hits the fd limit says so', () => {
    const e = new KvmIoctlError(KVM_CREATE_VCPU, ERRNO.EMFILE);
    expect(e.message).toBe('KVM_CREATE_VCPU failed: EMFILE (too many open files: close sandboxes or raise ulimit -n)');
  });

  it('poisons() never poisons for an error raised before the guest was entered', () => {
    const timeout = new ExecutionCanceledError('timeout');
    expect(poisons(new SyscallError('timer_create', ERRNO.EAGAIN), false)).toBe(false);
    expect(poisons(timeout, false)).toBe(false);
    expect(poisons(timeout)).toBe(true);
    expect(poisons(new SyscallError('timer_settime', ERRNO.EINVAL), true)).toBe(true);
  });
});
