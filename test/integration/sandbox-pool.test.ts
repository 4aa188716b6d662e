// SandboxPool on real KVM: calls spread over worker threads, fresh state per call, the
// bounded queue, poisoned sandboxes put back, crashed workers replaced, stats, close.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PoolBusyError, WorkerCrashedError } from '../../src/async/errors.js';
import { SandboxPool, type SandboxPoolOptions } from '../../src/async/pool.js';
import { ConfigInvalidError, ElfInvalidError, HyperlightError } from '../../src/errors.js';
import { parseElf } from '../../src/elf/index.js';
import { ResourceClosedError } from '../../src/kvm/errors.js';
import { ExecutionCanceledError, GuestError } from '../../src/sandbox/errors.js';
import { bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';

const GUEST = bundledGuestPath('simpleguest');
const pools: SandboxPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ drain: false })));
});

async function pool(options: Partial<SandboxPoolOptions> = {}): Promise<SandboxPool> {
  const p = await SandboxPool.create({ guest: GUEST, workers: 2, print: () => undefined, ...options });
  pools.push(p);
  return p;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(20);
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

describeKvm('SandboxPool', () => {
  it('serves calls on all workers with async host functions, each call on a fresh sandbox', async () => {
    let hostCalls = 0;
    const p = await pool({
      hostFunctions: {
        HostAdd: { params: ['Int', 'Int'], returns: 'Int', fn: async (a: number, b: number) => { hostCalls++; await sleep(1); return a + b; } },
      },
    });
    const sums = await Promise.all(Array.from({ length: 8 }, (_, i) => p.call('Add', 'Int', i, 40)));
    expect(sums).toEqual([40, 41, 42, 43, 44, 45, 46, 47]);
    expect(hostCalls).toBe(8);
    // restoreAfterEachCall (the default): every call sees the post-init state.
    expect(await Promise.all([1, 2, 3, 4].map(() => p.call('AddToStatic', 'Int', 5)))).toEqual([5, 5, 5, 5]);
    const st = p.stats();
    expect(st).toMatchObject({ workers: 2, busy: 0, queued: 0, calls: 12, ok: 12, errors: {}, replacedWorkers: 0 });
    expect(st.latencyMs.samples).toBe(12);
    expect(st.latencyMs.p50).toBeGreaterThan(0);
    expect(st.latencyMs.p99).toBeGreaterThanOrEqual(st.latencyMs.p50);
    expect(new Set(p.sandboxes.map((s) => s.threadId)).size).toBe(2);
  });

  it('keeps state between calls with restoreAfterEachCall: false', async () => {
    const p = await pool({ workers: 1, restoreAfterEachCall: false });
    expect(await p.call('AddToStatic', 'Int', 5)).toBe(5);
    expect(await p.call('AddToStatic', 'Int', 5)).toBe(10);
  });

  it('rejects with PoolBusyError at once when the queue is full, and recovers a killed sandbox unnoticed', async () => {
    for (const restoreAfterEachCall of [true, false]) {
      const p = await pool({ workers: 1, maxQueue: 1, restoreAfterEachCall });
      const ac = new AbortController();
      const spinning = p.callGuestFunctionByName('Spin', 'Void', [], { signal: ac.signal });
      const queued = p.call('Echo', 'String', 'queued');
      const busy = await p.call('Echo', 'String', 'x').catch((e: unknown) => e);
      expect(busy).toBeInstanceOf(PoolBusyError);
      expect(busy).toMatchObject({ code: 'ERR_POOL_BUSY', maxQueue: 1 });
      expect(p.stats().queued).toBe(1);
      ac.abort();
      await expect(spinning).rejects.toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'aborted' });
      expect(await queued).toBe('queued'); // the killed sandbox was put back before it ran
      expect(await p.call('GetStatic', 'Int')).toBe(0);
      expect(p.stats().errors).toEqual({ ERR_POOL_BUSY: 1, ERR_EXECUTION_CANCELED: 1 });
    }
  });

  it('timeoutMs, an already aborted signal and failing host functions leave the pool usable', async () => {
    let mode: 'throw' | 'reject' = 'throw';
    const boom = new Error('boom');
    const p = await pool({
      hostFunctions: {
        HostAdd: { params: ['Int', 'Int'], returns: 'Int', fn: () => (mode === 'throw' ? (() => { throw boom; })() : Promise.reject(boom)) },
      },
    });
    await expect(p.callGuestFunctionByName('Spin', 'Void', [], { timeoutMs: 30 })).rejects.toMatchObject({ reason: 'timeout' });
    const reason = new Error('gone');
    const pre = await p.callGuestFunctionByName('Echo', 'String', ['x'], { signal: AbortSignal.abort(reason) }).catch((e: unknown) => e);
    expect(pre).toBeInstanceOf(ExecutionCanceledError);
    expect((pre as Error).cause).toBe(reason);
    for (const m of ['throw', 'reject'] as const) {
      mode = m;
      const e = await p.call('Add', 'Int', 1, 2).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(GuestError);
      expect((e as Error).cause).toBe(boom);
    }
    expect(await Promise.all([p.call('Echo', 'String', 'a'), p.call('Echo', 'String', 'b')])).toEqual(['a', 'b']);
  });

  it('replaces a worker killed from outside; its call fails with WorkerCrashedError, others go on', async () => {
    const p = await pool();
    const victim = p.sandboxes[0]!;
    const spinning = p.call('Spin', 'Void'); // goes to the first free sandbox: the victim
    await sleep(20);
    const terminated = victim.worker.terminate();
    victim.interruptHandle().kill(); // terminate() cannot stop native code inside KVM_RUN
    await terminated;
    await expect(spinning).rejects.toBeInstanceOf(WorkerCrashedError);
    await until(() => p.stats().replacedWorkers === 1 && p.stats().workers === 2, 'the replacement worker');
    expect(p.sandboxes).not.toContain(victim);
    expect(await Promise.all([1, 2, 3].map((n) => p.call('EchoI32', 'Int', n)))).toEqual([1, 2, 3]);
    expect(p.stats().errors).toEqual({ ERR_WORKER_CRASHED: 1 });
  });

  it('close() drains queued calls, then rejects new ones and frees every worker and VM', async () => {
    const before = await openFdCount();
    const p = await SandboxPool.create({ guest: GUEST, workers: 2, print: () => undefined });
    const calls = [1, 2, 3, 4, 5].map((n) => p.call('EchoI32', 'Int', n));
    await p.close();
    expect(await Promise.all(calls)).toEqual([1, 2, 3, 4, 5]);
    await expect(p.call('Echo', 'String', 'x')).rejects.toBeInstanceOf(ResourceClosedError);
    await p.close();
    expect(p.stats().workers).toBe(0);
    expect(await openFdCount()).toBe(before);
  });

  it('close({ drain: false }) rejects queued calls and kills running ones', async () => {
    const p = await SandboxPool.create({ guest: GUEST, workers: 1, print: () => undefined });
    const spinning = p.call('Spin', 'Void').catch((e: unknown) => e);
    const queued = p.call('Echo', 'String', 'x').catch((e: unknown) => e);
    await sleep(20);
    await p.close({ drain: false });
    expect(await spinning).toBeInstanceOf(ExecutionCanceledError);
    expect(await queued).toBeInstanceOf(ResourceClosedError);
  });
});

describeKvm('SandboxPool.create with bad input', () => {
  it('rejects with typed errors for an invalid guest, bad options, and a guest whose init fails in the worker', async () => {
    await expect(SandboxPool.create({ guest: new Uint8Array([1, 2, 3]), workers: 1 })).rejects.toBeInstanceOf(ElfInvalidError);
    await expect(SandboxPool.create({ guest: '/nonexistent/guest.elf', workers: 1 })).rejects.toBeInstanceOf(ConfigInvalidError);
    await expect(SandboxPool.create({ guest: GUEST, workers: 0 })).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', field: 'workers' });
    await expect(SandboxPool.create({ guest: GUEST, maxQueue: -1 })).rejects.toMatchObject({ field: 'maxQueue' });
    await expect(SandboxPool.create({ guest: GUEST, worker: 2 } as never)).rejects.toMatchObject({ field: 'worker' });
    for (const pollUs of [-1, Number.NaN, 1e6, '500']) {
      await expect(SandboxPool.create({ guest: GUEST, workers: 1, pollUs: pollUs as never })).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', field: 'pollUs' });
    }
    await expect(SandboxPool.create({
      guest: GUEST, hostFunctions: { HostAdd: { params: ['Nope' as never], returns: 'Int', fn: () => 1 } }, // a bad type on purpose
    })).rejects.toBeInstanceOf(ConfigInvalidError);
    // A valid ELF whose first instruction is ud2: it passes validation here and fails in the worker.
    const bytes = new Uint8Array(readFileSync(GUEST));
    const image = parseElf(bytes);
    const seg = image.segments.find((s) => s.executable && image.entryOffset >= s.offsetInImage && image.entryOffset < s.offsetInImage + s.fileSize)!;
    const at = seg.fileOffset + (image.entryOffset - seg.offsetInImage);
    bytes.set([0x0f, 0x0b], at);
    const before = await openFdCount();
    const e = await SandboxPool.create({ guest: bytes, workers: 2 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HyperlightError);
    expect((e as HyperlightError).code).toMatch(/^ERR_(GUEST_EXCEPTION|GUEST_TRIPLE_FAULT|GUEST_ABORTED|EMULATION_FAILURE|GUEST_PROTOCOL)$/);
    expect(await openFdCount()).toBe(before);
  });
});

describe('SandboxPool API shape', () => {
  it('is created only through SandboxPool.create', () => {
    expect(typeof SandboxPool.create).toBe('function');
  });
});
