// Exitless mode behind the async API on real KVM: evolveAsync({ exitless }) and
// SandboxPool.create({ exitless }) run an ExitlessSandbox in each worker (its vCPU on a thread
// of its own). Calls, async host functions, prints, time limits, aborts, restores, the
// per-call restore of a pool, a worker killed from outside, bad options.
import dc from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterEach, expect, it } from 'vitest';
import type { AsyncSandbox } from '../../src/async/async-sandbox.js';
import { WorkerCrashedError } from '../../src/async/errors.js';
import { SandboxPool } from '../../src/async/pool.js';
import { ConfigInvalidError } from '../../src/errors.js';
import { CALL_CHANNEL, type CallRecord } from '../../src/sandbox/diagnostics.js';
import { ExecutionCanceledError, GuestError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';

const GUEST = bundledGuestPath('simpleguest');
const SIMPLE = GuestBinary.filePath(GUEST).bytes();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The ids of this process's POSIX timers. */
const posixTimers = (): string[] => readFileSync('/proc/self/timers', 'utf8').split('\n').filter((l) => l.startsWith('ID:')).sort();

const open: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

interface Setup {
  prints?: string[];
  hostAdd?: (a: number, b: number) => unknown;
  exitless?: { spinUs?: number; sliceMs?: number };
}

async function start(s: Setup = {}): Promise<AsyncSandbox> {
  const u = UninitializedSandbox.create(GuestBinary.buffer(SIMPLE));
  u.registerPrint((text) => { s.prints?.push(text); return text.length; });
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (s.hostAdd ?? ((a: number, b: number) => a + b)) as never);
  const sandbox = await u.evolveAsync({ exitless: s.exitless ?? { spinUs: 300 } });
  open.push(sandbox);
  return sandbox;
}

describeKvm('AsyncSandbox in exitless mode', () => {
  it('answers calls of every type through the mailbox, with async host functions and prints, almost without exits', async () => {
    const prints: string[] = [];
    // Polls long enough not to park between these calls, and a long time slice: on a loaded machine
    // (tests in parallel) neither parks nor ticks should blur the count of exits.
    const s = await start({ prints, hostAdd: async (a: number, b: number) => { await sleep(1); return a + b; }, exitless: { spinUs: 200_000, sliceMs: 2000 } });
    const records: CallRecord[] = [];
    const onRecord = (r: unknown): void => { records.push(r as CallRecord); };
    dc.subscribe(CALL_CHANNEL, onRecord);
    try {
      expect(await s.call('Echo', 'String', 'hello')).toBe('hello');
      expect(await s.call('EchoDouble', 'Double', -2.5)).toBe(-2.5);
      expect(await s.call('EchoU64', 'ULong', 2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
      expect(await s.call('Add', 'Int', 40, 2)).toBe(42);
      expect(await s.call('PrintOutput', 'Int', 'via the mailbox\n')).toBe(16);
      for (let i = 0; i < 50; i++) expect(await s.call('EchoI32', 'Int', i)).toBe(i);
    } finally {
      dc.unsubscribe(CALL_CHANNEL, onRecord);
    }
    expect(prints.join('')).toBe('via the mailbox\n');
    expect(records).toHaveLength(55);
    expect(records.every((r) => r.outcome === 'ok')).toBe(true);
    expect(records[3]).toMatchObject({ function: 'Add', hostCalls: 1 });
    // A MultiUseSandbox makes at least one exit per call; here only parks and time-slice ticks exit.
    const exits = records.reduce((n, r) => n + r.exits, 0);
    expect(exits).toBeLessThan(records.length / 5);
  });

  it('a time limit or an abort stops a spinning guest, poisons the sandbox, and restore() recovers it', async () => {
    const s = await start();
    expect(await s.call('AddToStatic', 'Int', 7)).toBe(7);
    const snap = await s.snapshot();
    const timedOut = await s.callGuestFunctionByName('Spin', 'Void', [], { timeoutMs: 40 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(ExecutionCanceledError);
    expect(timedOut).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'timeout' });
    expect(s.status()).toBe('poisoned');
    await s.restore(snap);
    expect(await s.call('GetStatic', 'Int')).toBe(7);
    const ac = new AbortController();
    const spinning = s.callGuestFunctionByName('Spin', 'Void', [], { signal: ac.signal }).catch((e: unknown) => e);
    await sleep(20);
    const why = new Error('client went away');
    ac.abort(why);
    const aborted = await spinning;
    expect(aborted).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'aborted' });
    expect((aborted as Error).cause).toBe(why);
    await s.restore(s.initialSnapshot);
    expect(await s.call('GetStatic', 'Int')).toBe(0);
    expect(await s.call('Echo', 'String', 'still here')).toBe('still here');
  });

  it('a host function that rejects gives GuestError 17 with the rejection as cause; mapRegion is refused, typed', async () => {
    const boom = new Error('boom');
    const s = await start({ hostAdd: () => Promise.reject(boom) });
    const e = await s.call('Add', 'Int', 1, 2).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GuestError);
    expect(e).toMatchObject({ guestCode: 17 });
    expect((e as Error).cause).toBe(boom);
    const mapped = await s.mapRegion(new Uint8Array(4096), 0x1_0000_0000).catch((x: unknown) => x);
    expect(mapped).toBeInstanceOf(ConfigInvalidError);
    expect((mapped as Error).message).toMatch(/not exitless/);
    expect(s.status()).toBe('ready');
    expect(await s.call('Echo', 'String', 'ok')).toBe('ok');
  });

  it('a worker terminated from outside takes its vCPU thread with it and frees the VM and the thread\'s timer', async () => {
    const before = await openFdCount();
    const timersBefore = posixTimers();
    const u = UninitializedSandbox.create(GuestBinary.buffer(SIMPLE));
    const s = await u.evolveAsync({ exitless: true });
    const spinning = s.call('Spin', 'Void').catch((e: unknown) => e);
    await sleep(20);
    const terminated = s.worker.terminate();
    s.interruptHandle().kill(); // the vCPU thread is in KVM_RUN: kick it so that its thread can end
    await terminated;
    expect(await spinning).toBeInstanceOf(WorkerCrashedError);
    expect(s.status()).toBe('closed');
    expect(await openFdCount()).toBe(before);
    expect(posixTimers()).toEqual(timersBefore); // a periodic timer aimed at the dead thread would be left firing
  });

  it('bad exitless options reject evolveAsync() and SandboxPool.create() with ConfigInvalidError before any worker starts', async () => {
    const u = UninitializedSandbox.create(GuestBinary.buffer(SIMPLE));
    for (const bad of [{ spinUs: -1 }, { sliceMs: 'x' }, { spin: 5 }, 7]) {
      await expect(u.evolveAsync({ exitless: bad as never })).rejects.toBeInstanceOf(ConfigInvalidError);
      await expect(SandboxPool.create({ guest: GUEST, workers: 1, exitless: bad as never })).rejects.toBeInstanceOf(ConfigInvalidError);
    }
    // false is the ordinary mode, as for a pool.
    const ordinary = await u.evolveAsync({ exitless: false });
    open.push(ordinary);
    expect(await ordinary.mapRegion(new Uint8Array(4096), 0x1_0000_0000)).toBeGreaterThan(0);
    // Too small an input buffer for the mailbox: the worker's evolve fails, typed.
    const small = UninitializedSandbox.create(GuestBinary.buffer(SIMPLE), { inputDataSize: 0x2000 });
    await expect(small.evolveAsync({ exitless: true })).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', field: 'inputDataSize' });
  });
});

describeKvm('SandboxPool in exitless mode', () => {
  it('serves concurrent calls, each on a sandbox restored to its post-init state, and recovers poisoned ones', async () => {
    const pool = await SandboxPool.create({
      guest: GUEST, workers: 2, exitless: { spinUs: 300 }, print: () => undefined,
      hostFunctions: { HostAdd: { params: ['Int', 'Int'], returns: 'Int', fn: async (a: number, b: number) => a + b } },
    });
    open.push(pool);
    const echoes = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.call('Echo', 'String', `m${i}`)));
    expect(echoes).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
    // The working-set restore after each call puts statics back.
    expect(await Promise.all([1, 2, 3, 4, 5, 6].map(() => pool.call('AddToStatic', 'Int', 5)))).toEqual([5, 5, 5, 5, 5, 5]);
    expect(await pool.call('Add', 'Int', 2, 3)).toBe(5);
    await expect(pool.callGuestFunctionByName('Spin', 'Void', [], { timeoutMs: 30 })).rejects.toMatchObject({ reason: 'timeout' });
    expect(await Promise.all([1, 2, 3, 4].map(() => pool.call('GetStatic', 'Int')))).toEqual([0, 0, 0, 0]);
    const st = pool.stats();
    expect(st).toMatchObject({ workers: 2, calls: 212, ok: 211, errors: { ERR_EXECUTION_CANCELED: 1 }, replacedWorkers: 0 });
  });

  it('defaults to half as many workers as there are CPUs (each busy sandbox keeps two threads spinning)', async () => {
    const pool = await SandboxPool.create({ guest: GUEST, exitless: true, print: () => undefined });
    open.push(pool);
    expect(pool.stats().workers).toBe(Math.max(1, Math.floor(availableParallelism() / 2)));
    expect(await pool.call('Echo', 'String', 'one')).toBe('one');
  });
});
