// AsyncSandbox on real KVM: the guest runs in a worker thread, host functions (sync and
// async) on this one; AbortSignal, timeouts covering host time, snapshots, close, crashes.
import diagnosticsChannel from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { AsyncSandbox, AsyncSnapshot } from '../../src/async/async-sandbox.js';
import { CALL_CHANNEL, type CallRecord } from '../../src/async/diagnostics.js';
import { WorkerCrashedError } from '../../src/async/errors.js';
import { ConfigInvalidError } from '../../src/errors.js';
import { ResourceClosedError } from '../../src/kvm/errors.js';
import {
  ExecutionCanceledError, GuestError, PoisonedSandboxError, ReturnTypeMismatchError, SandboxBusyError,
  SnapshotIncompatibleError,
} from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { SandboxConfig } from '../../src/sandbox/config.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue as P } from '../../src/sandbox/values.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';

const open: AsyncSandbox[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A simpleguest AsyncSandbox; `setup` registers host functions on the UninitializedSandbox. */
async function start(setup?: (u: UninitializedSandbox) => void, config?: SandboxConfig): Promise<AsyncSandbox> {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')), config);
  u.registerPrint(() => undefined);
  setup?.(u);
  const s = await u.evolveAsync();
  open.push(s);
  return s;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU time of this (the calling) thread so far, in ms (utime + stime, in USER_HZ = 100 ticks per second). */
function mainThreadCpuMs(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

describeKvm('AsyncSandbox calls', () => {
  it('returns guest results; sync and async host functions answer the guest from the main thread', async () => {
    let hostCalls = 0;
    const s = await start((u) => {
      u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, async (a: number, b: number) => {
        hostCalls++;
        await sleep(5); // the guest waits in its exit meanwhile
        return a + b;
      });
      u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (x: string) => x.length * 10);
    });
    expect(s.status()).toBe('ready');
    expect(await s.call('Echo', 'String', 'hi')).toBe('hi');
    expect(await s.call('Add', 'Int', 40, 2)).toBe(42);
    expect(hostCalls).toBe(1);
    expect(await s.callGuestFunctionByName('GuestMethod1', 'Int', [P.String('abc')])).toBe(10 * 'Hello from GuestFunction1, abc'.length);
    expect(await s.callGuestFunctionByName('EchoI64', 'Long', [P.Long(-5n)])).toBe(-5n);
    expect(s.threadId).toBeGreaterThan(0);
  });

  it('runs the calls made at once one at a time, in order', async () => {
    const s = await start();
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => s.call('AddToStatic', 'Int', n)));
    expect(results).toEqual([1, 3, 6, 10, 15]);
  });

  it('print goes to the registered print function; a failing print fails the call with its own error', async () => {
    const printed: string[] = [];
    const broken = new Error('printer on fire');
    let fail = false;
    const s = await start((u) => u.registerPrint((t) => {
      if (fail) throw broken;
      printed.push(t);
      return t.length;
    }));
    expect(await s.call('PrintOutput', 'Int', 'line one\n')).toBe(9);
    expect(printed.join('')).toBe('line one\n');
    fail = true;
    const e = await s.call('PrintOutput', 'Int', 'x\n').catch((x: unknown) => x);
    expect(e === broken || (e as Error).cause === broken).toBe(true);
  });

  it('a host function that throws, rejects or returns the wrong type fails the guest call with HostError 17 and the cause', async () => {
    const thrown = new Error('sync boom');
    const rejected = new Error('async boom');
    let mode: 'throw' | 'reject' | 'wrong' = 'throw';
    const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, () => {
      if (mode === 'throw') throw thrown;
      if (mode === 'reject') return Promise.reject(rejected);
      return Promise.resolve('not an Int' as unknown as number); // wrong on purpose: checked at run time
    }));
    const e1 = await s.call('Add', 'Int', 1, 2).catch((x: unknown) => x);
    expect(e1).toBeInstanceOf(GuestError);
    expect(e1).toMatchObject({ guestCode: 17, code: 'ERR_GUEST_ERROR' });
    expect((e1 as GuestError).guestMessage).toContain('sync boom');
    expect((e1 as Error).cause).toBe(thrown);
    mode = 'reject';
    const e2 = await s.call('Add', 'Int', 1, 2).catch((x: unknown) => x);
    expect(e2).toMatchObject({ guestCode: 17 });
    expect((e2 as Error).cause).toBe(rejected);
    mode = 'wrong';
    const e3 = await s.call('Add', 'Int', 1, 2).catch((x: unknown) => x);
    expect((e3 as Error).cause).toBeInstanceOf(ReturnTypeMismatchError);
    expect(s.status()).toBe('ready'); // a guest error does not poison
    expect(await s.call('Echo', 'String', 'still fine')).toBe('still fine');
  });

  it('a call from inside its own host function is refused with SandboxBusyError (it would wait for itself)', async () => {
    let s!: AsyncSandbox;
    s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' },
      async () => (await s.call('EchoI32', 'Int', 1)) as number));
    const e = await s.call('Add', 'Int', 1, 2).catch((x: unknown) => x);
    expect((e as Error).cause).toBeInstanceOf(SandboxBusyError);
  });

  it('typed errors cross the thread with their class and fields; bad arguments reject before anything runs', async () => {
    const s = await start();
    const e = await s.call('GuestAbortWithCode', 'Int', 7).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_GUEST_ABORTED', abortCode: 7, name: 'GuestAbortedError' });
    expect(s.status()).toBe('poisoned');
    expect(await s.call('Echo', 'String', 'x').catch((x: unknown) => x)).toBeInstanceOf(PoisonedSandboxError);
    await s.restore(s.initialSnapshot);
    await expect(s.call('Echo', 'NoSuchType' as never, 'x')).rejects.toMatchObject({ code: 'ERR_PARAMETER_TYPE_MISMATCH' });
    await expect(s.call('Echo', 'String', {} as never)).rejects.toMatchObject({ code: 'ERR_PARAMETER_TYPE_MISMATCH' });
    await expect(s.callGuestFunctionByName('Echo', 'String', ['x'], { timeoutMs: -1 })).rejects.toBeInstanceOf(ConfigInvalidError);
    expect(await s.call('Echo', 'String', 'ok')).toBe('ok');
  });
});

describeKvm('AsyncSandbox cancellation', () => {
  it('an AbortSignal stops a spinning guest: ExecutionCanceledError with cause = reason, poisoned, restore() recovers', async () => {
    const s = await start();
    const ac = new AbortController();
    const reason = new Error('client went away');
    const spinning = s.callGuestFunctionByName('Spin', 'Void', [], { signal: ac.signal });
    await sleep(30);
    ac.abort(reason);
    const e = await spinning.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExecutionCanceledError);
    expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'aborted' });
    expect((e as Error).cause).toBe(reason);
    expect(s.status()).toBe('poisoned');
    await s.restore(s.initialSnapshot);
    expect(s.status()).toBe('ready');
    expect(await s.call('Echo', 'String', 'back')).toBe('back');
  });

  it('an already aborted signal rejects at once and nothing runs', async () => {
    let ran = 0;
    const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, () => ++ran));
    const reason = new Error('too late');
    const e = await s.callGuestFunctionByName('Add', 'Int', [1, 2], { signal: AbortSignal.abort(reason) }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'aborted' });
    expect((e as Error).cause).toBe(reason);
    expect(ran).toBe(0);
    expect(s.status()).toBe('ready');
  });

  it('a signal aborted while the call is queued drops it without running it', async () => {
    const s = await start();
    const ac = new AbortController();
    const first = s.callGuestFunctionByName('Spin', 'Void', [], { timeoutMs: 100 });
    const queued = s.callGuestFunctionByName('AddToStatic', 'Int', [5], { signal: ac.signal });
    ac.abort();
    await expect(queued).rejects.toMatchObject({ reason: 'aborted' });
    await expect(first).rejects.toMatchObject({ reason: 'timeout' });
    await s.restore(s.initialSnapshot);
    expect(await s.call('GetStatic', 'Int')).toBe(0);
  });

  it('timeoutMs stops a spinning guest (reason timeout) and covers time spent in host functions', async () => {
    const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' },
      () => new Promise(() => undefined))); // never settles
    const t0 = performance.now();
    await expect(s.callGuestFunctionByName('Spin', 'Void', [], { timeoutMs: 50 })).rejects.toMatchObject({ reason: 'timeout' });
    await s.restore(s.initialSnapshot);
    const e = await s.callGuestFunctionByName('Add', 'Int', [1, 2], { timeoutMs: 50 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExecutionCanceledError);
    expect(e).toMatchObject({ reason: 'timeout' });
    expect(s.status()).toBe('poisoned');
    expect(performance.now() - t0).toBeLessThan(20_000); // bounded, not hung
    await s.restore(s.initialSnapshot);
    expect(await s.call('Echo', 'String', 'ok')).toBe('ok');
  });

  it('a shorter timeoutMs after calls under a long limit still stops at its own deadline (one watchdog timer)', async () => {
    const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' },
      () => new Promise(() => undefined)), { maxExecutionTimeMs: 120_000 });
    expect(await s.call('Echo', 'String', 'a')).toBe('a'); // arms the watchdog for its 120 s deadline
    const t0 = performance.now();
    await expect(s.callGuestFunctionByName('Add', 'Int', [1, 2], { timeoutMs: 50 })).rejects.toMatchObject({ reason: 'timeout' });
    expect(performance.now() - t0).toBeLessThan(60_000); // not the 120 s of the first call's limit
    await s.restore(s.initialSnapshot);
    expect(await s.call('Echo', 'String', 'b')).toBe('b');
  });

  it('the main thread polls for an answer only briefly: a 300 ms guest call and a 300 ms async host function cost it little CPU', async () => {
    let release: (() => void) | undefined;
    const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' },
      (a: number, b: number) => new Promise<number>((r) => { release = () => r(a + b); })));
    expect(await s.call('Echo', 'String', 'warm')).toBe('warm'); // short calls are answered while it polls
    const before = mainThreadCpuMs();
    await expect(s.callGuestFunctionByName('Spin', 'Void', [], { timeoutMs: 300 })).rejects.toMatchObject({ reason: 'timeout' });
    await s.restore(s.initialSnapshot);
    const adding = s.call('Add', 'Int', 2, 3); // the guest waits for the host function meanwhile
    await sleep(300);
    release!();
    expect(await adding).toBe(5);
    // Polling without end would take the main thread's CPU for the whole 600 ms.
    expect(mainThreadCpuMs() - before).toBeLessThan(150);
  });

  it('pollUs: 0 turns the main thread\'s polling off (answers come by the doorbell alone); a bad pollUs rejects evolveAsync()', async () => {
    const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
    u.registerPrint(() => undefined);
    for (const pollUs of [-5, Number.POSITIVE_INFINITY, 100_001, 'fast']) {
      await expect(u.evolveAsync({ pollUs: pollUs as never })).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', field: 'pollUs' });
    }
    const s = await u.evolveAsync({ pollUs: 0 });
    open.push(s);
    const results = await Promise.all([1, 2, 3].map((n) => s.call('AddToStatic', 'Int', n)));
    expect(results).toEqual([1, 3, 6]);
    expect(await s.call('Echo', 'String', 'bell')).toBe('bell');
  });

  it('maxExecutionTimeMs of the config also covers host time', async () => {
    const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' },
      () => new Promise(() => undefined)), { maxExecutionTimeMs: 50 });
    await expect(s.call('Add', 'Int', 1, 2)).rejects.toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'timeout' });
  });

  it('an abort while the guest waits for an async host function stops the call', async () => {
    const ac = new AbortController();
    const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, () => {
      setTimeout(() => ac.abort(new Error('stop')), 10);
      return new Promise(() => undefined);
    }));
    const e = await s.callGuestFunctionByName('Add', 'Int', [1, 2], { signal: ac.signal }).catch((x: unknown) => x);
    expect(e).toMatchObject({ reason: 'aborted' });
    expect(((e as Error).cause as Error).message).toBe('stop');
  });
});

describeKvm('AsyncSandbox snapshots, close and crashes', () => {
  it('snapshot() and restore() bring state back; a snapshot of another sandbox is refused', async () => {
    const s = await start();
    await s.call('AddToStatic', 'Int', 5);
    const snap = await s.snapshot();
    expect(snap).toBeInstanceOf(AsyncSnapshot);
    expect(await s.call('AddToStatic', 'Int', 10)).toBe(15);
    await s.restore(snap);
    expect(await s.call('GetStatic', 'Int')).toBe(5);
    await s.restore(s.initialSnapshot);
    expect(await s.call('GetStatic', 'Int')).toBe(0);
    const other = await start();
    await expect(other.restore(snap)).rejects.toBeInstanceOf(SnapshotIncompatibleError);
  });

  it('close() kills a running call, rejects queued ones and later calls, and releases the worker and VM', async () => {
    const before = await openFdCount();
    const s = await start();
    const spinning = s.call('Spin', 'Void').catch((e: unknown) => e);
    const queued = s.call('Echo', 'String', 'never').catch((e: unknown) => e);
    await sleep(20);
    await s.close();
    expect(await spinning).toBeInstanceOf(ExecutionCanceledError);
    expect(await queued).toBeInstanceOf(ResourceClosedError);
    await expect(s.call('Echo', 'String', 'x')).rejects.toBeInstanceOf(ResourceClosedError);
    await expect(s.snapshot()).rejects.toBeInstanceOf(ResourceClosedError);
    expect(s.status()).toBe('closed');
    await s.close(); // idempotent
    expect(await openFdCount()).toBe(before);
  });

  it('a worker terminated from outside fails its call with WorkerCrashedError, closes the sandbox and frees its VM and timer', async () => {
    const before = await openFdCount();
    const timers = (): string[] => readFileSync('/proc/self/timers', 'utf8').split('\n').filter((l) => l.startsWith('ID:')).sort();
    const timersBefore = timers();
    const s = await start();
    const spinning = s.call('Spin', 'Void').catch((e: unknown) => e);
    const queued = s.call('Echo', 'String', 'x').catch((e: unknown) => e);
    await sleep(20);
    const terminated = s.worker.terminate();
    // terminate() cannot stop native code inside KVM_RUN: kick the guest so the thread can end.
    s.interruptHandle().kill();
    await terminated;
    expect(await spinning).toBeInstanceOf(WorkerCrashedError);
    expect(await queued).toBeInstanceOf(WorkerCrashedError);
    expect(s.status()).toBe('closed');
    await expect(s.call('Echo', 'String', 'x')).rejects.toBeInstanceOf(ResourceClosedError);
    expect((await spinning as WorkerCrashedError).releaseFailures).toBeUndefined();
    expect(await openFdCount()).toBe(before); // the dead thread's vCPU and VM fds were closed here
    expect(timers()).toEqual(timersBefore); // and the POSIX timer of its time limit deleted
  });

  it('publishes a record per call on the hyperlight-ts:call diagnostics channel', async () => {
    const records: CallRecord[] = [];
    const onRecord = (r: unknown): void => { records.push(r as CallRecord); };
    diagnosticsChannel.subscribe(CALL_CHANNEL, onRecord);
    try {
      const s = await start((u) => u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b));
      await s.call('Add', 'Int', 1, 2);
      await s.call('GuestAbortWithCode', 'Int', 3).catch(() => undefined);
      expect(records).toHaveLength(2);
      const [ok, failed] = records as [CallRecord, CallRecord];
      expect(ok).toMatchObject({ function: 'Add', outcome: 'ok', errorCode: undefined, hostCalls: 1, sandboxId: s.id, threadId: s.threadId });
      expect(ok.exits).toBeGreaterThanOrEqual(2); // the host call and the halt
      expect(ok.guestMs).toBeGreaterThan(0);
      expect(ok.wallMs).toBeGreaterThanOrEqual(ok.guestMs);
      expect(failed).toMatchObject({ function: 'GuestAbortWithCode', outcome: 'error', errorCode: 'ERR_GUEST_ABORTED' });
    } finally {
      diagnosticsChannel.unsubscribe(CALL_CHANNEL, onRecord);
    }
  });
});

describe('AsyncSandbox without KVM-dependent setup', () => {
  it('is exported only through evolveAsync (no public constructor)', () => {
    expect(typeof AsyncSandbox.start).toBe('function');
  });
});
