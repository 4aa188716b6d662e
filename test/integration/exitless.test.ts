// Exitless mode on real KVM: calls, host calls, prints and logs through the mailbox; errors, poisoning, restores (working set and exact), time limits, kill, parking, and hostile guests racing the host over the mailbox.
import { afterEach, expect, it, vi } from 'vitest';
import { HyperlightError } from '../../src/errors.js';
import type { ExitlessSandbox } from '../../src/exitless/exitless-sandbox.js';
import {
  ExecutionCanceledError, GuestError, GuestExceptionError, GuestProtocolError, PoisonedSandboxError,
} from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { SandboxConfig } from '../../src/sandbox/config.js';
import { ParameterValue, type ParameterTypeName, type ReturnTypeName } from '../../src/sandbox/values.js';
import { InlineRecords } from '../../src/exitless/inline.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { getpid, tgkill, vcpuKickSignal } from '../../src/kvm/libc.js';
import { describeKvm } from '../helpers/kvm.js';
import { catchError } from '../helpers/errors.js';

const SIMPLE = GuestBinary.filePath(bundledGuestPath('simpleguest')).bytes();
const HOSTILE = GuestBinary.filePath(bundledGuestPath('hostileguest')).bytes();

const open: ExitlessSandbox[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

interface Setup {
  config?: SandboxConfig;
  prints?: string[];
  hostAdd?: (a: number, b: number) => number;
  spinUs?: number;
  sliceMs?: number;
  guest?: Uint8Array;
  logs?: string[];
  /** More host functions: name -> [parameter types, return type, implementation]. */
  hosts?: Record<string, [ParameterTypeName[], ReturnTypeName, (...args: never[]) => unknown]>;
}

function exitless(s: Setup = {}): ExitlessSandbox {
  const u = UninitializedSandbox.create(GuestBinary.buffer(s.guest ?? SIMPLE), s.config);
  const prints = s.prints;
  u.registerPrint((text) => { prints?.push(text); return text.length; });
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, s.hostAdd ?? ((a: number, b: number) => a + b));
  for (const [name, [params, returns, fn]] of Object.entries(s.hosts ?? {})) u.registerHostFunction(name, { params, returns }, fn as never); // each test gives its own signature
  if (s.logs) {
    const logs = s.logs;
    u.registerLogger((r) => { logs.push(r.message); }, 2);
  }
  const sandbox = u.evolve({ exitless: { spinUs: s.spinUs ?? 500, ...(s.sliceMs ? { sliceMs: s.sliceMs } : {}) } });
  open.push(sandbox);
  return sandbox;
}

/**
 * Runs hostile race `fn` (seed, rounds) for 40 seeds of 20 rounds: the rounds the host
 * answered, the calls that failed (each followed by a restore) and their error codes. After
 * each, the sandbox must answer a Ping.
 */
function race(s: ExitlessSandbox, fn: string): { answered: number; failed: number; codes: Set<string> } {
  let answered = 0;
  let failed = 0;
  const codes = new Set<string>();
  for (let seed = 1; seed <= 40; seed++) {
    try {
      const n = s.call(fn, 'Int', seed * 7919, 20);
      expect(n).toBeGreaterThanOrEqual(0);
      answered += n;
    } catch (e) {
      expect(e).toBeInstanceOf(HyperlightError);
      codes.add((e as HyperlightError).code);
      failed++;
      s.restore();
    }
    expect(s.call('Ping', 'Int', seed)).toBe(seed + 1);
  }
  return { answered, failed, codes };
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describeKvm('exitless mode: calls through the mailbox', () => {
  it('returns every type the way a MultiUseSandbox does', () => {
    const s = exitless();
    expect(s.call('Echo', 'String', 'hello exitless')).toBe('hello exitless');
    expect(s.call('EchoI32', 'Int', -42)).toBe(-42);
    expect(s.call('EchoU64', 'ULong', 2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
    expect(s.call('EchoDouble', 'Double', 1.25)).toBe(1.25);
    expect(s.call('EchoBool', 'Bool', true)).toBe(true);
    expect(s.callGuestFunctionByName('SetByteArrayToZero', 'VecBytes', [ParameterValue.VecBytes(new Uint8Array([1, 2, 3, 250]))]))
      .toEqual(new Uint8Array(4));
    expect(s.status()).toBe('ready');
  });

  it('keeps state between calls and makes (almost) no exits while calls flow', () => {
    const s = exitless({ spinUs: 1_000_000, sliceMs: 1000 });
    expect(s.call('SetStatic', 'Int')).toBe(5);
    const before = s.stats.exits;
    for (let i = 1; i <= 300; i++) expect(s.call('AddToStatic', 'Int', 1)).toBe(5 + i);
    // Only time-slice ticks (one per second here) may exit.
    expect(s.stats.exits - before).toBeLessThan(10);
  });

  it('answers host calls, prints and logs through the mailbox', () => {
    const prints: string[] = [];
    const logs: string[] = [];
    const s = exitless({ prints, logs, hostAdd: (a, b) => a * 100 + b });
    expect(s.call('Add', 'Int', 3, 4)).toBe(304);
    expect(s.call('PrintOutput', 'Int', 'through the mailbox\n')).toBe(20);
    expect(prints.join('')).toContain('through the mailbox\n');
    expect(s.call('LogMessage', 'Int', 'a log record', 3n)).toBe(12);
    expect(logs).toContain('a log record');
  });

  it('a host function that throws fails the call with GuestError (cause kept), not poisoning', () => {
    const oops = new Error('host says no');
    const s = exitless({ hostAdd: () => { throw oops; } });
    const e = catchError(() => s.call('Add', 'Int', 1, 2));
    expect(e).toBeInstanceOf(GuestError);
    expect((e as GuestError).cause).toBe(oops);
    expect(s.status()).toBe('ready');
    expect(s.call('EchoI32', 'Int', 5)).toBe(5);
  });

  it('a guest error does not poison; a guest fault poisons until restore()', () => {
    const s = exitless();
    expect(catchError(() => s.call('NoSuchFunction', 'Int'))).toBeInstanceOf(GuestError);
    expect(s.call('EchoI32', 'Int', 1)).toBe(1);
    expect(catchError(() => s.call('TriggerException', 'Void'))).toBeInstanceOf(GuestExceptionError);
    expect(s.status()).toBe('poisoned');
    expect(catchError(() => s.call('EchoI32', 'Int', 1))).toBeInstanceOf(PoisonedSandboxError);
    s.restore();
    expect(s.status()).toBe('ready');
    expect(s.call('Echo', 'String', 'back')).toBe('back');
  });
});

describeKvm('exitless mode: restores', () => {
  it('a working-set restore while the vCPU spins puts memory back; an exact one after parking too', () => {
    const s = exitless({ spinUs: 1_000_000 });
    const snap = s.snapshot();
    expect(s.call('SetStatic', 'Int')).toBe(5);
    expect(s.call('GetStatic', 'Int')).toBe(5);
    s.restore(snap); // parked by snapshot(): exact, and it learns the working set
    expect(s.call('GetStatic', 'Int')).toBe(0);
    s.call('AddToStatic', 'Int', 9);
    const exits = s.stats.exits;
    s.restore(snap); // the vCPU spins: working set, no exit
    expect(s.stats.exits - exits).toBeLessThan(5);
    expect(s.call('GetStatic', 'Int')).toBe(0);
    for (let i = 0; i < 20; i++) {
      s.call('AddToStatic', 'Int', 5);
      s.restore(snap);
    }
    expect(s.call('AddToStatic', 'Int', 1)).toBe(1);
    s.restore(snap, { exact: true });
    expect(s.parked).toBe(true);
    expect(s.call('GetStatic', 'Int')).toBe(0);
  });

  it('a working-set restore also puts back statics the calls it learned from never wrote', () => {
    const s = exitless({ spinUs: 1_000_000 });
    const snap = s.snapshot();
    expect(s.call('Echo', 'String', 'x')).toBe('x');
    s.restore(snap); // exact: learns from a call that wrote no static
    for (let i = 0; i < 5; i++) {
      expect(s.call('AddToStatic', 'Int', 5)).toBe(5); // written for the first time after learning
      s.restore(snap); // working-set restore (the vCPU spins)
      expect(s.parked).toBe(false);
    }
    expect(s.call('GetStatic', 'Int')).toBe(0);
  });

  it('rejects a snapshot of another sandbox', () => {
    const a = exitless();
    const b = exitless({ config: { heapSize: 256 * 1024 } });
    expect(catchError(() => a.restore(b.initialSnapshot))).toBeInstanceOf(HyperlightError);
    expect(a.call('EchoI32', 'Int', 3)).toBe(3);
  });
});

describeKvm('exitless mode: time limits, kill and parking', () => {
  it('a guest that stops answering is stopped by the time limit; restore brings it back', () => {
    const s = exitless({ config: { maxExecutionTimeMs: 50 } });
    const t0 = performance.now();
    const e = catchError(() => s.call('Spin', 'Void'));
    expect(e).toBeInstanceOf(ExecutionCanceledError);
    expect((e as ExecutionCanceledError).reason).toBe('timeout');
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(s.status()).toBe('poisoned');
    s.restore();
    expect(s.call('EchoI32', 'Int', 8)).toBe(8);
  });

  it('kill() stops the call (here from a host function; it signals the vCPU thread as from any thread)', () => {
    const k = exitless({ hostAdd: () => { k.interruptHandle().kill(); return 0; } });
    const e = catchError(() => k.call('Add', 'Int', 1, 2));
    expect(e).toBeInstanceOf(ExecutionCanceledError);
    expect((e as ExecutionCanceledError).reason).toBe('killed');
    k.restore();
    expect(k.call('EchoI32', 'Int', 2)).toBe(2);
  });

  it('an idle guest parks after spinUs and the next call wakes it', () => {
    const s = exitless({ spinUs: 100 });
    expect(s.call('EchoI32', 'Int', 1)).toBe(1);
    const end = Date.now() + 3000;
    while (!s.parked && Date.now() < end) sleep(2);
    expect(s.parked).toBe(true);
    expect(s.call('EchoI32', 'Int', 2)).toBe(2);
  });

  it('a guest that never parks is parked by the host after its time slice', () => {
    const s = exitless({ guest: HOSTILE, spinUs: 100, sliceMs: 5 });
    expect(s.call('MailboxNeverPark', 'Int')).toBe(0);
    const end = Date.now() + 3000;
    while (!s.parked && Date.now() < end) sleep(2);
    expect(s.parked).toBe(true);
    expect(s.call('Ping', 'Int', 41)).toBe(42);
  });

  it('other signals (a profiler\'s SIGPROF, stray kicks) do not park a guest before its time slice has passed', () => {
    const s = exitless({ guest: HOSTILE, spinUs: 100, sliceMs: 1000 });
    expect(s.call('MailboxNeverPark', 'Int')).toBe(0);
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) { // each ends KVM_RUN with EINTR, as the slice timer's tick does
      expect(tgkill(getpid(), s.vcpuThreadId, vcpuKickSignal())).toBe(true);
      sleep(1);
    }
    if (Date.now() - t0 < 900) expect(s.parked).toBe(false);
    const end = Date.now() + 5000;
    while (!s.parked && Date.now() < end) sleep(2);
    expect(s.parked).toBe(true); // the slice itself still parks it
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(s.call('Ping', 'Int', 41)).toBe(42);
  });
});

describeKvm('exitless mode: hostile guests racing the host', () => {
  it('an op no guest may post poisons with GuestProtocolError', () => {
    const s = exitless({ guest: HOSTILE });
    const e = catchError(() => s.call('MailboxBadOp', 'Int', 77));
    expect(e).toBeInstanceOf(GuestProtocolError);
    expect(s.status()).toBe('poisoned');
    s.restore();
    expect(s.call('Ping', 'Int', 1)).toBe(2);
  });

  it('a guest flipping bytes of its host call while the host reads them gets answers or a typed error, never more', () => {
    const added: number[] = [];
    const s = exitless({ guest: HOSTILE, hostAdd: (a, b) => { added.push(a + b); return a + b; } });
    const { answered, failed, codes } = race(s, 'MailboxFlip');
    // The host answered host calls mid-race, and every failure was a typed protocol-level error.
    expect(added.length + answered).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
    for (const c of codes) expect(['ERR_GUEST_PROTOCOL', 'ERR_GUEST_ERROR', 'ERR_GUEST_ABORTED', 'ERR_BUFFER_OVERFLOW']).toContain(c);
    // Whatever the guest flipped, a host function only ever saw Int arguments.
    for (const v of added) expect(Number.isInteger(v)).toBe(true);
  });
});

describeKvm('exitless mode: inline messages', () => {
  const SCALARS = [
    ['Int', [-(2 ** 31), 2 ** 31 - 1, 0]],
    ['UInt', [0, 2 ** 32 - 1]],
    ['Long', [-(2n ** 63n), 2n ** 63n - 1n]],
    ['ULong', [0n, 2n ** 64n - 1n]],
    ['Float', [1.5, -0, Infinity, 3.4028234663852886e38]],
    ['Double', [Number.MIN_VALUE, -0, Number.NaN, -1e308]],
    ['Bool', [true, false]],
  ] as const;
  const echoHosts = Object.fromEntries(SCALARS.map(([t]) =>
    [`HostEcho${t}`, [[t], t, (v: unknown) => v]])) as Setup['hosts'];

  it('scalar calls, host calls and results cross in the mailbox records, every type at its limits', () => {
    const s = exitless({ hosts: echoHosts });
    const wrote = vi.spyOn(InlineRecords.prototype, 'writeCall');
    const hostCalls = vi.spyOn(InlineRecords.prototype, 'readHostCall');
    const values = vi.spyOn(InlineRecords.prototype, 'readValue');
    try {
      const echoName = { Int: 'EchoI32', UInt: 'EchoU32', Long: 'EchoI64', ULong: 'EchoU64', Float: 'EchoFloat', Double: 'EchoDouble', Bool: 'EchoBool' };
      let n = 0;
      for (const [type, samples] of SCALARS) {
        for (const v of samples) {
          expect(s.call(echoName[type], type, v)).toStrictEqual(v);
          expect(s.call(`RoundTripHost${type}`, type, v)).toStrictEqual(v); // guest -> HostEcho -> guest -> host
          n += 2;
        }
      }
      expect(s.call('Add', 'Int', 2, 3)).toBe(5);
      expect(wrote).toHaveBeenCalledTimes(n + 1);
      expect(wrote.mock.results.every((r) => r.value === true)).toBe(true);
      // Echo<T>'s and Add's results came back inline (HYPERLIGHT_WRAP_FUNCTION's pending value);
      // RoundTripHost<T> builds a FunctionCallResult itself (hl_flatbuffer_result_from_*).
      expect(values).toHaveBeenCalledTimes(n / 2 + 1);
      expect(hostCalls).toHaveBeenCalledTimes(n / 2 + 1);
    } finally {
      wrote.mockRestore();
      hostCalls.mockRestore();
      values.mockRestore();
    }
  });

  it('short strings cross inline (name and strings share 120 bytes); longer ones, byte vectors and errors take FunctionCallResults', () => {
    const thrown = new Error('no echo today');
    const s = exitless({
      hosts: {
        HostEchoString: [['String'], 'String', (v: string) => v],
        HostEchoVecBytes: [['VecBytes'], 'VecBytes', (v: Uint8Array) => v],
        HostEchoInt: [['Int'], 'Int', () => { throw thrown; }],
      },
    });
    const values = vi.spyOn(InlineRecords.prototype, 'readValue');
    const hostCalls = vi.spyOn(InlineRecords.prototype, 'readHostCall');
    try {
      const fits = 'ü'.repeat(58); // 116 bytes: with "Echo" (4) exactly the line's 120
      for (const text of ['', 'hi', 'ünï', '\u{1F600}', fits]) expect(s.call('Echo', 'String', text)).toBe(text);
      expect(values).toHaveBeenCalledTimes(5);
      for (const text of [fits + 'x', 'y'.repeat(1000)]) expect(s.call('Echo', 'String', text)).toBe(text);
      expect(values).toHaveBeenCalledTimes(5); // 121 bytes and more: a FunctionCall and a FunctionCallResult
      // The host call's String goes inline both ways; RoundTripHostString's own result is a
      // FunctionCallResult it built itself.
      expect(s.call('RoundTripHostString', 'String', 'ünï')).toBe('ünï');
      expect(s.call('RoundTripHostString', 'String', 'z'.repeat(300))).toBe('z'.repeat(300));
      expect(hostCalls).toHaveBeenCalledTimes(1);
      expect(s.call('RoundTripHostVecBytes', 'VecBytes', new Uint8Array([1, 2, 3]))).toStrictEqual(new Uint8Array([1, 2, 3]));
      expect(hostCalls).toHaveBeenCalledTimes(1);
      // The host function's throw reaches the guest as a HostError and fails the call, as in ordinary mode.
      const e = catchError(() => s.call('RoundTripHostInt', 'Int', 7));
      expect(e).toBeInstanceOf(HyperlightError);
      expect((e as HyperlightError).code).toBe('ERR_GUEST_ERROR');
      expect((e as Error).message).toContain('no echo today');
      expect((e as Error).cause).toBe(thrown);
      expect(s.call('NoOp', 'Void')).toBeUndefined();
      expect(s.call('EchoI32', 'Int', 9)).toBe(9); // inline again after the FunctionCallResults
      expect(s.call('Echo', 'String', 'and back')).toBe('and back');
    } finally {
      values.mockRestore();
      hostCalls.mockRestore();
    }
  });

  it('after either restore, an inline call whose host function throws still gets its FunctionCallResult', () => {
    // The baseline snapshot's I/O stacks were never used (stack pointers 0): a restore brings
    // that back, and the host must empty the stacks before the next reply goes on one.
    const s = exitless({ hosts: { HostEchoInt: [['Int'], 'Int', () => { throw new Error('refused'); }] } });
    const snap = s.snapshot();
    for (const exact of [true, false, false]) {
      expect(s.call('EchoI32', 'Int', 1)).toBe(1);
      s.restore(snap, exact ? { exact: true } : undefined);
      const e = catchError(() => s.call('RoundTripHostInt', 'Int', 7));
      expect((e as HyperlightError).code).toBe('ERR_GUEST_ERROR');
      expect((e as Error).message).toContain('refused');
      expect(s.call('EchoI32', 'Int', 2)).toBe(2);
      s.restore(snap);
    }
  });

  it('a scalar result the caller did not ask for is ReturnTypeMismatchError, as in ordinary mode', () => {
    const s = exitless();
    const e = catchError(() => s.callGuestFunctionByName('EchoI32', 'Long', [ParameterValue.Int(1)]));
    expect((e as HyperlightError).code).toBe('ERR_RETURN_TYPE_MISMATCH');
    expect(s.call('EchoI32', 'Int', 3)).toBe(3);
  });

  it.each([
    [0, 'name'], [1, 'name'], [2, 'parameters'], [3, 'name line'], [4, 'UTF-8'], [5, 'at most 120'], [6, 'not a scalar, String or Void'],
  ] as const)('a malformed inline message (kind %i) poisons with GuestProtocolError naming the %s', (kind, what) => {
    const added: number[] = [];
    const s = exitless({ guest: HOSTILE, hostAdd: (a, b) => { added.push(a + b); return a + b; } });
    const e = catchError(() => s.call('MailboxBadInline', 'Int', kind));
    expect(e).toBeInstanceOf(GuestProtocolError);
    expect((e as Error).message).toContain(what);
    expect(s.status()).toBe('poisoned');
    expect(added).toEqual([]);
    s.restore();
    expect(s.call('Ping', 'Int', 1)).toBe(2);
  });

  it('a guest flipping bits of its inline host call while the host reads it gets answers or a typed error, never more', () => {
    const seen: unknown[][] = [];
    const s = exitless({ guest: HOSTILE, hostAdd: (a, b) => { seen.push([a, b]); return a + b; } });
    const { answered, failed, codes } = race(s, 'MailboxFlipInline');
    expect(seen.length + answered).toBeGreaterThan(0);
    for (const c of codes) expect(['ERR_GUEST_PROTOCOL', 'ERR_GUEST_ERROR', 'ERR_GUEST_ABORTED']).toContain(c);
    // Whatever the guest flipped, HostAdd only ever ran with two Int (i32) arguments.
    for (const [a, b] of seen) {
      expect(Number.isInteger(a) && Number.isInteger(b)).toBe(true);
      expect(Math.abs(a as number) <= 2 ** 31 && Math.abs(b as number) <= 2 ** 31).toBe(true);
    }
    expect(answered + failed).toBeGreaterThan(0);
  });
});
