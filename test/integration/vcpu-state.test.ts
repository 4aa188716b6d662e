// One vCPU state model: after a guest changed every piece of CPU state it can reach (and tried the rest), restore() gives back exactly the snapshot's state and VM reuse exactly a new VM's: registers, segments, XSAVE, XCR0, debug registers, events and every MSR of KVM_GET_MSR_INDEX_LIST.
import { afterAll, expect, it } from 'vitest';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { captureVcpuState, diffVcpuStates, stateMsrIndices } from '../../src/sandbox/vcpu-state.js';
import { ParameterValue as P } from '../../src/sandbox/values.js';
import { describeKvm } from '../helpers/kvm.js';
import { catchError } from '../helpers/errors.js';

const HOSTILE = GuestBinary.filePath(bundledGuestPath('hostileguest')).bytes();
const open: MultiUseSandbox[] = [];
afterAll(() => { for (const s of open) s.close(); });

function sandbox(binary: GuestBinary): MultiUseSandbox {
  const s = UninitializedSandbox.create(binary).evolve();
  open.push(s);
  return s;
}

/** Everything ring 3 can change without faulting, then every privileged write it might try (each faults). */
function abuse(s: MultiUseSandbox, restoreTo: ReturnType<MultiUseSandbox['snapshot']>): void {
  s.callGuestFunctionByName('DirtyCpuState', 'Int', [P.ULong(0x1234n), P.Int(1)]);
  // wrfsbase: #UD where the host left CR4.FSGSBASE clear (VMX/SVM), runs on kvm_pvm (CR4 not enforced natively).
  try {
    s.callGuestFunctionByName('SetFsGsBase', 'Int', [P.ULong(0x7000_1000n), P.ULong(0x7000_2000n)]);
  } catch (e) {
    expect(e).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', vector: 6 });
  }
  if (s.poisoned) s.restore(restoreTo);
  s.callGuestFunctionByName('DirtyCpuState', 'Int', [P.ULong(0x5678n), P.Int(1)]);
  for (const which of [0, 9, 10, 11, 16, 17, 18]) { // wrmsr, swapgs, mov dr7, xsetbv, steal time, mov dr0, KERNEL_GS_BASE
    expect(catchError(() => s.callGuestFunctionByName('Privileged', 'Int', [P.Int(which), P.ULong(0xdead_b000n)])))
      .toMatchObject({ code: 'ERR_GUEST_EXCEPTION' });
    s.restore(restoreTo);
    s.callGuestFunctionByName('DirtyCpuState', 'Int', [P.ULong(BigInt(which)), P.Int(1)]);
  }
}

describeKvm('the vCPU state model', () => {
  it('restore() puts back exactly the snapshot\'s CPU state, all of it compared', () => {
    const s = sandbox(GuestBinary.buffer(HOSTILE));
    const snap = s.snapshot();
    const before = captureVcpuState(s.machine.vcpu);
    expect(before.msrs.length).toBeGreaterThan(10);
    expect(before.msrs.length).toBe(stateMsrIndices(s.machine.vcpu).length);
    abuse(s, snap);
    const dirty = captureVcpuState(s.machine.vcpu);
    expect(diffVcpuStates(before, dirty)).toContain('xsave'); // the abuse did change something
    s.restore(snap);
    expect(diffVcpuStates(before, captureVcpuState(s.machine.vcpu))).toEqual([]);
    expect(s.call('Ping', 'Int', 1)).toBe(2);
  });

  it('a reused VM starts in exactly the state of a new VM', () => {
    const binary = GuestBinary.buffer(HOSTILE, { vmPool: 1 });
    const first = sandbox(binary);
    abuse(first, first.snapshot()); // ends clean, after faults, restores and dirty FPU state
    first.close(); // cleanly: the VM goes to the pool
    open.splice(open.indexOf(first), 1);
    expect(binary.idleVms).toBe(1);
    const reused = sandbox(binary);
    expect(binary.idleVms).toBe(0);
    const fresh = sandbox(binary); // the pool is empty: a new VM, same template
    const a = captureVcpuState(reused.machine.vcpu);
    const b = captureVcpuState(fresh.machine.vcpu);
    expect(diffVcpuStates(a, b)).toEqual([]);
    expect(reused.call('Ping', 'Int', 41)).toBe(42);
    expect(fresh.call('Ping', 'Int', 41)).toBe(42);
  });
});
