// Kicks out of KVM_RUN on real KVM: one that arrives while the vCPU thread is outside
// KVM_RUN waits for the next entry (never lost, never left behind), and the time limit's
// timer is re-armed only when it must be (the main thread shares one among its sandboxes,
// and keeps its /dev/kvm fd); other system calls a signal interrupts are retried.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { Kvm } from '../../src/kvm/kvm.js';
import { ThreadTimer, consumeKicks, getpid, gettid, tgkill, vcpuKickSignal } from '../../src/kvm/libc.js';
import { ExecutionCanceledError } from '../../src/sandbox/errors.js';
import { InterruptState } from '../../src/sandbox/interrupt.js';
import { TimeLimit } from '../../src/sandbox/time-limit.js';
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

/** The POSIX timers of this process (/proc/self/timers: one `ID:` line each). */
const posixTimers = (): number => readFileSync('/proc/self/timers', 'utf8').split('\n').filter((l) => l.startsWith('ID:')).length;

describeKvm('what the main thread keeps between sandboxes', () => {
  it('sandboxes made, called and closed one after another create no timer and open no /dev/kvm after the first', () => {
    expect(isMainThread).toBe(true); // vitest's forks pool: each test file runs on a process's main thread
    const cycle = (): void => {
      const sb = sandbox(5_000);
      try {
        expect(sb.call('Echo', 'String', 'x')).toBe('x');
      } finally {
        sb.close();
      }
    };
    cycle();
    const timers = posixTimers();
    const deleted = vi.spyOn(ThreadTimer.prototype, 'close');
    const opened = vi.spyOn(Kvm, 'open');
    try {
      for (let i = 0; i < 20; i++) cycle();
      expect(posixTimers()).toBe(timers);
      expect(deleted).not.toHaveBeenCalled(); // the shared timer is never deleted and made again
      expect(opened).not.toHaveBeenCalled(); // nor /dev/kvm opened again: the main thread keeps its fd
    } finally {
      deleted.mockRestore();
      opened.mockRestore();
    }
  });
});

describe('the main thread\'s shared kick timer', () => {
  it('aimed past a call\'s deadline by another sandbox\'s call (from a host function), it is re-aimed at the next entry', () => {
    expect(isMainThread).toBe(true);
    const earlier = new TimeLimit(new InterruptState());
    const outer = new TimeLimit(new InterruptState());
    const inner = new TimeLimit(new InterruptState());
    try {
      earlier.arm(100); // a call that ended: the timer stays armed for its deadline, 100 ms out
      earlier.disarm();
      outer.arm(1000); // keeps it (it fires before the outer deadline; due() re-aims it then)
      expect(outer.due()).toBe(false); // the outer call's first entry
      sleep(150); // the timer fires: its kick ends that entry, as a stray one
      consumeKicks();
      inner.arm(60_000); // a host function calls another sandbox: the timer now fires in 60 s
      inner.disarm();
      expect(outer.due()).toBe(false); // the outer call's next entry: it must aim the timer at its own deadline again
      sleep(1000); // past the outer deadline (1 s after its arm)
      expect(consumeKicks()).toBe(1); // the kick came at the outer deadline, not 60 s later
      expect(outer.due()).toBe(true);
      outer.disarm();
    } finally {
      earlier.close();
      outer.close();
      inner.close();
      consumeKicks();
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
