// The main thread's kernel anchor (src/sandbox/kernel-anchor.ts): one idle VM with one
// vCPU, made at the first machine, kept while machines live and for ANCHOR_LINGER_MS after
// the last one closed, never made by a worker thread.
import { readlinkSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker, isMainThread } from 'node:worker_threads';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { Kvm } from '../../src/kvm/kvm.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { ANCHOR_LINGER_MS, closeKernelAnchor, kernelAnchorFds } from '../../src/sandbox/kernel-anchor.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { describeKvm } from '../helpers/kvm.js';

const link = (fd: number): string | undefined => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
};

describeKvm('the kernel anchor', () => {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest'), { vmPool: 0 }));
  const open = (): MultiUseSandbox => u.evolve();
  const cycle = (): void => {
    const sb = open();
    try {
      expect(sb.call('Echo', 'String', 'x')).toBe('x');
    } finally {
      sb.close();
    }
  };

  beforeEach(() => {
    expect(isMainThread).toBe(true);
    closeKernelAnchor();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
    closeKernelAnchor();
  });

  it('is one idle VM with one vCPU, made at the first machine and kept by the cycles after it', () => {
    expect(kernelAnchorFds()).toEqual([]);
    cycle();
    const fds = kernelAnchorFds();
    expect(fds).toHaveLength(2);
    expect(fds.map(link)).toEqual(['anon_inode:kvm-vm', 'anon_inode:kvm-vcpu:0']);
    const created = vi.spyOn(Kvm.prototype, 'createVm');
    try {
      for (let i = 0; i < 10; i++) cycle();
      expect(created).toHaveBeenCalledTimes(10); // the sandboxes' VMs, no anchor made again
    } finally {
      created.mockRestore();
    }
    expect(kernelAnchorFds()).toEqual(fds);
  });

  it('closes ANCHOR_LINGER_MS after the last machine closed, and not while one is open', () => {
    const held = open();
    const fds = kernelAnchorFds();
    expect(fds).toHaveLength(2);
    cycle(); // a machine closing while another is open starts no linger time
    vi.advanceTimersByTime(2 * ANCHOR_LINGER_MS);
    expect(kernelAnchorFds()).toEqual(fds);
    held.close();
    vi.advanceTimersByTime(ANCHOR_LINGER_MS / 2);
    cycle(); // used again within the linger time: it counts from this close
    vi.advanceTimersByTime(ANCHOR_LINGER_MS * 0.75);
    expect(kernelAnchorFds()).toEqual(fds);
    vi.advanceTimersByTime(ANCHOR_LINGER_MS * 0.5);
    expect(kernelAnchorFds()).toEqual([]);
    // Its fds are closed (or reused by something else since, never by a KVM VM of ours).
    for (const fd of fds) expect(link(fd) ?? 'closed').not.toMatch(/^anon_inode:kvm-/);
    cycle();
    expect(kernelAnchorFds()).toHaveLength(2); // made again by the next machine
  });

  it('is released by a sandbox collected without close(), once the collection closed its machine', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    (() => { open(); })(); // dropped without close()
    expect(kernelAnchorFds()).toHaveLength(2);
    for (let i = 0; i < 50 && kernelAnchorFds().length > 0; i++) {
      gc();
      await new Promise((r) => setImmediate(r)); // the finalizer runs on a later task
      vi.advanceTimersByTime(ANCHOR_LINGER_MS);
    }
    expect(kernelAnchorFds()).toEqual([]);
  });

  it('is never made by a worker thread, whose machines may end without cleanup', async () => {
    vi.useRealTimers();
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(new URL('../../dist/src/index.js', import.meta.url).href)}).then(async (m) => {
        const anchor = await import(${JSON.stringify(new URL('../../dist/src/sandbox/kernel-anchor.js', import.meta.url).href)});
        const u = m.UninitializedSandbox.create(m.GuestBinary.filePath(m.bundledGuestPath('simpleguest')));
        const sb = u.evolve();
        const echo = sb.call('Echo', 'String', 'w');
        const whileOpen = anchor.kernelAnchorFds().length;
        sb.close();
        parentPort.postMessage({ echo, whileOpen, afterClose: anchor.kernelAnchorFds().length });
      });`;
    const w = new Worker(code, { eval: true });
    const answer = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await w.terminate();
    expect(answer).toEqual({ echo: 'w', whileOpen: 0, afterClose: 0 });
    expect(kernelAnchorFds()).toEqual([]); // nor by the main thread for it
  });
});
