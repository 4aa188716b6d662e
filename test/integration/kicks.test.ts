// Kicks out of KVM_RUN on real KVM: one that arrives while the vCPU thread is outside
// KVM_RUN waits for the next entry (never lost, never left behind), and the time limit's
// timer is re-armed only when it must be; other system calls a signal interrupts are retried.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it, vi } from 'vitest';
import { ThreadTimer, consumeKicks, getpid, gettid, tgkill, vcpuKickSignal } from '../../src/kvm/libc.js';
import { ExecutionCanceledError } from '../../src/sandbox/errors.js';
import { bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { catchError } from '../helpers/errors.js';
import { describeKvm } from '../helpers/kvm.js';

function sandbox(maxExecutionTimeMs: number) {
  return UninitializedSandbox.create(bundledGuestPath('simpleguest'), { maxExecutionTimeMs }).evolve();
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describeKvm('kicks out of KVM_RUN', () => {
  it('a kick sent while the thread is outside KVM_RUN ends only the next entry, and none is left pending', () => {
    const sb = sandbox(1000);
    try {
      expect(sb.call('Echo', 'String', 'a')).toBe('a'); // the thread now blocks the kick signal
      const kinds: string[] = [];
      const vcpu = sb.machine.vcpu;
      const run = vcpu.run.bind(vcpu);
      vcpu.run = () => { const e = run(); kinds.push(e.kind); return e; };
      tgkill(getpid(), gettid(), vcpuKickSignal());
      tgkill(getpid(), gettid(), vcpuKickSignal());
      expect(sb.call('Echo', 'String', 'b')).toBe('b');
      expect(kinds).toEqual(['interrupted', 'mmio']); // one stray exit took both kicks
      expect(consumeKicks()).toBe(0);
      kinds.length = 0;
      expect(sb.call('Echo', 'String', 'c')).toBe('c');
      expect(kinds).toEqual(['mmio']);
    } finally {
      sb.close();
    }
  });

  it('a stream of calls re-arms the timer about once per limit, not once per call', () => {
    const sb = sandbox(60_000);
    const arm = vi.spyOn(ThreadTimer.prototype, 'arm');
    const disarm = vi.spyOn(ThreadTimer.prototype, 'disarm');
    try {
      for (let i = 0; i < 200; i++) expect(sb.call('Echo', 'String', 'x')).toBe('x');
      expect(arm.mock.calls.length).toBeLessThanOrEqual(1); // 0 when the timer init armed fires later anyway
      expect(disarm).not.toHaveBeenCalled();
    } finally {
      arm.mockRestore();
      disarm.mockRestore();
      sb.close();
    }
  });

  it('a timer whose kick another sandbox took is re-aimed: the limit still stops a spinning guest', () => {
    const a = sandbox(150);
    const b = sandbox(0);
    try {
      expect(a.call('Echo', 'String', 'a')).toBe('a'); // a's timer is left armed for ~150 ms
      sleep(200); // it fires with nobody in KVM_RUN: the kick waits on this thread
      expect(b.call('Echo', 'String', 'b')).toBe('b'); // b's entry takes it
      expect(consumeKicks()).toBe(0);
      const t0 = performance.now();
      const e = catchError(() => a.call('Spin', 'Void'));
      const took = performance.now() - t0;
      expect(e).toBeInstanceOf(ExecutionCanceledError);
      expect((e as ExecutionCanceledError).reason).toBe('timeout');
      expect(took).toBeGreaterThanOrEqual(149);
      expect(b.call('Echo', 'String', 'still')).toBe('still');
    } finally {
      a.close();
      b.close();
    }
  });
});

describeKvm('system calls interrupted by signals', () => {
  it('KVM ioctls that a signal interrupts (EINTR) are made again: sandboxes work under a profiler\'s SIGPROF storm', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl-storm-'));
    try {
      const fixture = fileURLToPath(new URL('../fixtures/signal-storm.mjs', import.meta.url));
      const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-interval=25', `--cpu-prof-dir=${dir}`, fixture, '40'],
        { encoding: 'utf8', timeout: 120_000 });
      expect(r.stderr).not.toContain('EINTR');
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe('ok 40');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
