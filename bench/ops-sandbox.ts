// The library's own operations, timed through the public sandbox API: cold starts, evolve,
// warm calls, host calls, snapshot/restore, RSS per sandbox, sandboxes open at once. Not
// the KVM-layer floor (js-floor.ts) nor the other Node sandboxes (ops-alternatives.ts).
import { readdirSync } from 'node:fs';
import { GuestBinary, bundledGuestPath } from '../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../src/sandbox/multi-use-sandbox.js';
import type { Snapshot } from '../src/sandbox/snapshot.js';
import type { SandboxConfig } from '../src/sandbox/config.js';
import { UninitializedSandbox } from '../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue, ReturnType } from '../src/sandbox/values.js';
import type { TraceRecorder } from '../src/sandbox/trace-recorder.js';
import { type LoopOptions, timeLoop } from './stats.js';

export type BenchGuest = 'simpleguest' | 'dummyguest';

const ECHO_ARG = [ParameterValue.String('hi')];

/** A sandbox-to-be on a bundled guest, with the host functions simpleguest's calls use. */
export function uninitialized(guest: BenchGuest, vmPool = 0, config?: SandboxConfig): UninitializedSandbox {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath(guest), { vmPool }), config);
  u.registerPrint((text) => text.length); // silent: a benchmark must not print guest output
  if (guest === 'simpleguest') {
    u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b);
  }
  return u;
}

/** The guest call a cold start and a warm call make: simpleguest Echo("hi"), dummyguest any-name Void. */
export function echo(sandbox: MultiUseSandbox, guest: BenchGuest): void {
  if (guest === 'simpleguest') {
    const r = sandbox.callGuestFunctionByName('Echo', ReturnType.String, ECHO_ARG);
    if (r !== 'hi') throw new Error(`Echo returned ${String(r)}`);
  } else {
    sandbox.callGuestFunctionByName('Echo', ReturnType.Void, ECHO_ARG);
  }
}

/**
 * Cold start: UninitializedSandbox.create (reads and validates the ELF) + evolve (VM,
 * memory, image, tables, vCPU, guest init) + one Echo + close. A new UninitializedSandbox
 * every time, so guest init always runs.
 */
export function coldStart(guest: BenchGuest, opts: LoopOptions, phases?: TraceRecorder): Float64Array {
  let i = 0;
  return timeLoop(opts, () => {
    if (phases) phases.recording = i++ >= opts.warmup;
  }, () => {
    const t0 = process.hrtime.bigint();
    const u = uninitialized(guest);
    if (phases) phases.phase('create', t0, process.hrtime.bigint());
    const sandbox = u.evolve(phases ? { trace: phases } : {});
    try {
      echo(sandbox, guest);
    } finally {
      const t1 = process.hrtime.bigint();
      sandbox.close();
      if (phases) phases.phase('close', t1, process.hrtime.bigint());
    }
  });
}

/**
 * Cold start from the init template: evolve + Echo + close on one UninitializedSandbox that
 * has evolved once already, so evolve copies guest init's result instead of running it.
 */
export function coldStartFromTemplate(guest: BenchGuest, opts: LoopOptions): Float64Array {
  const u = uninitialized(guest);
  u.evolve().close(); // makes the template
  return timeLoop(opts, () => undefined, () => {
    const sandbox = u.evolve();
    try {
      echo(sandbox, guest);
    } finally {
      sandbox.close();
    }
  });
}

/**
 * evolve + Echo + close with a VM pool of one: each evolve resets the VM the previous
 * close() kept (memory zeroed and reloaded from the init template, registers reset).
 */
export function coldStartFromPool(guest: BenchGuest, opts: LoopOptions): Float64Array {
  const u = uninitialized(guest, 1);
  u.evolve().close(); // makes the template and leaves one idle VM
  return timeLoop(opts, () => undefined, () => {
    const sandbox = u.evolve();
    try {
      echo(sandbox, guest);
    } finally {
      sandbox.close();
    }
  });
}

/** evolve() alone, running guest init (`freshInit`); create and close untimed. */
export function evolveFresh(guest: BenchGuest, opts: LoopOptions): Float64Array {
  return timeLoop(opts, () => uninitialized(guest), (u) => u.evolve({ freshInit: true }), (s) => s.close());
}

/** evolve() alone from the init template (the second and later evolve of one object). */
export function evolveFromTemplate(guest: BenchGuest, opts: LoopOptions): Float64Array {
  const u = uninitialized(guest);
  u.evolve().close();
  return timeLoop(opts, () => undefined, () => u.evolve(), (s) => s.close());
}

/** Runs `fn` with an evolved simpleguest sandbox and closes it. */
export function withSandbox<T>(fn: (sandbox: MultiUseSandbox) => T): T {
  const sandbox = uninitialized('simpleguest').evolve();
  try {
    return fn(sandbox);
  } finally {
    sandbox.close();
  }
}

/** A warm Echo("hi") on an evolved simpleguest sandbox. */
export function warmEcho(opts: LoopOptions): Float64Array {
  return withSandbox((s) => timeLoop(opts, () => undefined, () => echo(s, 'simpleguest')));
}

/** Add(2, 3): one guest call that makes one host call (HostAdd) and returns its result. */
export function hostCallRoundTrip(opts: LoopOptions): Float64Array {
  return withSandbox((s) => timeLoop(opts, () => undefined, () => {
    const r = s.callGuestFunctionByName('Add', ReturnType.Int, [ParameterValue.Int(2), ParameterValue.Int(3)]);
    if (r !== 5) throw new Error(`Add returned ${String(r)}`);
  }));
}

/** snapshot() of an evolved simpleguest sandbox (copies guest memory and registers). */
export function snapshotOp(opts: LoopOptions): Float64Array {
  return withSandbox((s) => timeLoop(opts, () => undefined, () => { s.snapshot(); }));
}

export interface RestoreResult {
  samples: Float64Array;
  /** Pages the dirty log held after one Echo (what restore copied back). */
  dirtyPagesPerCall: number;
}

function popcount(bytes: Uint8Array): number {
  let n = 0;
  for (let b of bytes) {
    while (b) { n += b & 1; b >>= 1; }
  }
  return n;
}

/** restore(snapshot) after an untimed Echo that dirtied a few pages. */
export function restoreAfterCall(opts: LoopOptions): RestoreResult {
  return withSandbox((s) => {
    const snap: Snapshot = s.snapshot();
    const samples = timeLoop(opts, () => echo(s, 'simpleguest'), () => s.restore(snap));
    // Last: count what one call dirties (reading the log consumes it; the sandbox is closed next).
    echo(s, 'simpleguest');
    const dirty = popcount(s.machine.vm.getDirtyLog(0));
    return { samples, dirtyPagesPerCall: dirty };
  });
}

/** Echo + restore: the fresh-state-per-request pattern; per-pair ns. */
export function callPlusRestore(opts: LoopOptions): Float64Array {
  return withSandbox((s) => {
    const snap = s.snapshot();
    return timeLoop(opts, () => undefined, () => {
      echo(s, 'simpleguest');
      s.restore(snap);
    });
  });
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function settleHeap(): void {
  const gc: unknown = Reflect.get(globalThis, 'gc');
  if (typeof gc === 'function') gc();
}

export interface RssResult {
  sandboxes: number;
  rssBefore: number;
  rssAfter: number;
  bytesPerSandbox: number;
  fdsPerSandbox: number;
  /** Whether global.gc was available to settle the heap before each reading. */
  gcSettled: boolean;
}

/**
 * Resident memory per idle evolved sandbox: RSS (process.memoryUsage.rss, i.e. /proc) after
 * evolving `n` simpleguest sandboxes from one UninitializedSandbox, minus before, over n.
 * The object's first evolve (which runs init and keeps the template) is made before the
 * first reading, so the template is not counted.
 */
export function rssPerSandbox(n: number, onProgress?: (done: number) => void): RssResult {
  const u = uninitialized('simpleguest');
  u.evolve().close();
  settleHeap();
  const rssBefore = process.memoryUsage.rss();
  const fdsBefore = openFds();
  const open: MultiUseSandbox[] = [];
  try {
    for (let i = 0; i < n; i++) {
      open.push(u.evolve());
      onProgress?.(i + 1);
    }
    settleHeap();
    const rssAfter = process.memoryUsage.rss();
    const fds = openFds() - fdsBefore;
    return {
      sandboxes: n, rssBefore, rssAfter, bytesPerSandbox: (rssAfter - rssBefore) / n, fdsPerSandbox: fds / n,
      gcSettled: typeof Reflect.get(globalThis, 'gc') === 'function',
    };
  } finally {
    for (const s of open) s.close();
  }
}

export interface MaxOpenResult {
  reached: number;
  cap: number;
  /** Why it stopped: the cap, or the error that ended it. */
  stoppedBy: string;
  /** RSS growth over all of them (bytes). */
  rssGrowth: number;
  /** Wall time to open them all (ms). */
  openMs: number;
  /** Whether every open sandbox still answered Echo at the end (checked on a sample). */
  allAnswer: boolean;
}

/** Opens evolved simpleguest sandboxes until `cap` or the first failure, then closes them all. */
export function maxOpen(cap: number, onProgress?: (done: number) => void): MaxOpenResult {
  const u = uninitialized('simpleguest');
  u.evolve().close();
  const rss0 = process.memoryUsage.rss();
  const open: MultiUseSandbox[] = [];
  let stoppedBy = `the cap of ${cap} (no failure)`;
  const t0 = process.hrtime.bigint();
  try {
    while (open.length < cap) {
      try {
        open.push(u.evolve());
      } catch (e) {
        const code = (e as { code?: unknown } | null)?.code;
        stoppedBy = `${e instanceof Error ? e.name : 'error'}${typeof code === 'string' ? ` ${code}` : ''}: ${e instanceof Error ? e.message : String(e)}`;
        break;
      }
      if (open.length % 10 === 0) onProgress?.(open.length);
    }
    const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const rssGrowth = process.memoryUsage.rss() - rss0;
    let allAnswer = true;
    const step = Math.max(1, Math.floor(open.length / 50));
    for (let i = 0; i < open.length; i += step) {
      try {
        echo(open[i]!, 'simpleguest');
      } catch {
        allAnswer = false;
      }
    }
    return { reached: open.length, cap, stoppedBy, rssGrowth, openMs, allAnswer };
  } finally {
    for (const s of open) s.close();
  }
}

export interface CallSplit {
  /** Median ns of the whole call. */
  totalNs: number;
  /** Median ns per call spent inside vcpu.run() (KVM_RUN: guest code and exits). */
  inKvmNs: number;
  /** Median ns per call outside it (host JS: encode, buffers, run loop, decode). */
  hostNs: number;
  /** KVM_RUN calls per guest call. */
  runsPerCall: number;
}

function medianOf(values: number[]): number {
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Splits a warm call's time into inside KVM_RUN and outside it, by wrapping this sandbox's
 * `vcpu.run` with a clock for the measured calls (an own property shadowing the method,
 * removed afterwards). `which`: Echo("hi") or Add(2, 3) (one host call).
 */
export function splitCallTime(which: 'echo' | 'add', opts: LoopOptions): CallSplit {
  return withSandbox((s) => {
    const call = which === 'echo'
      ? () => echo(s, 'simpleguest')
      : () => { s.callGuestFunctionByName('Add', ReturnType.Int, [ParameterValue.Int(2), ParameterValue.Int(3)]); };
    const vcpu = s.machine.vcpu;
    const original = vcpu.run;
    let inKvm = 0;
    let runs = 0;
    vcpu.run = function timedRun(this: typeof vcpu) {
      const t = process.hrtime.bigint();
      try {
        return original.call(this);
      } finally {
        inKvm += Number(process.hrtime.bigint() - t);
        runs++;
      }
    };
    const totals: number[] = [];
    const kvm: number[] = [];
    const host: number[] = [];
    try {
      for (let i = 0; i < opts.warmup; i++) call();
      runs = 0;
      for (let i = 0; i < opts.iterations; i++) {
        inKvm = 0;
        const t = process.hrtime.bigint();
        call();
        const total = Number(process.hrtime.bigint() - t);
        totals.push(total);
        kvm.push(inKvm);
        host.push(total - inKvm);
        opts.progress?.tick(i + 1, opts.iterations);
      }
    } finally {
      Reflect.deleteProperty(vcpu, 'run');
    }
    return { totalNs: medianOf(totals), inKvmNs: medianOf(kvm), hostNs: medianOf(host), runsPerCall: runs / Math.max(1, opts.iterations) };
  });
}

/** The benchmark guest (compute kernels of guests/benchguest/kernels.h), with a long time limit. */
export function computeSandbox(): MultiUseSandbox {
  return UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('benchguest')), { maxExecutionTimeMs: 60_000 }).evolve();
}

/** A compute kernel as a guest call on `sandbox` (one kept across rounds, so no new vCPU is warming up): per-call ns and the result. */
export function computeInGuest(sandbox: MultiUseSandbox, fn: 'Crc32' | 'Integrate' | 'LibcKernel', opts: LoopOptions): { samples: Float64Array; result: number | bigint } {
  const args = fn === 'Crc32' ? [ParameterValue.Int(1 << 20), ParameterValue.UInt(1)]
    : fn === 'LibcKernel' ? [ParameterValue.Int(10_000), ParameterValue.Int(100_000)] : [ParameterValue.Int(1_000_000)];
  const ret = fn === 'Crc32' ? ReturnType.UInt : fn === 'LibcKernel' ? ReturnType.ULong : ReturnType.Double;
  let result: number | bigint = Number.NaN;
  const samples = timeLoop(opts, () => undefined, () => { result = sandbox.callGuestFunctionByName(fn, ret, args) as number | bigint; });
  return { samples, result };
}
