// Benchmarks of the asynchronous API (AsyncSandbox, SandboxPool): async call overhead over
// the sync call, pool throughput with 1 and with all workers, event-loop delay under load.
// Self-contained so the suite can move it as one file; index.ts only calls `asyncBench`.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AsyncSandbox } from '../src/async/async-sandbox.js';
import { SandboxPool, type SandboxPoolOptions } from '../src/async/pool.js';
import { GuestBinary, bundledGuestPath } from '../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../src/sandbox/uninitialized-sandbox.js';
import type { BenchRow } from './report.js';
import { type LoopOptions, timeLoopAsync } from './stats.js';

/** A row's description; index.ts fills in the measured fields. */
export interface AsyncRowSpec extends Pick<BenchRow, 'label' | 'group' | 'target' | 'note'> {
  id: typeof ASYNC_ROW_IDS[number];
  /** A row of this file or one of the sync rows it is compared with. */
  baseline: typeof ASYNC_ROW_IDS[number] | 'warm-echo' | 'host-call' | null;
}

/** What suite.ts lends this file: its step runner, row sinks and loop sizes. */
export interface AsyncBenchContext {
  quick: boolean;
  step(label: string, spec: AsyncRowSpec, fn: () => Promise<void>): Promise<void>;
  timed(spec: AsyncRowSpec, samples: ArrayLike<number>, warmup: number): void;
  push(row: BenchRow): void;
  note(text: string): void;
  loop(iterations: number): LoopOptions;
}

/** Row ids, in table order (suite.ts appends them to ROW_IDS). */
export const ASYNC_ROW_IDS = [
  'sync-echo-paired', 'async-echo', 'sync-add-paired', 'async-host-call', 'pool-1-worker', 'pool-all-workers', 'pool-scaling',
  'pool-scaling-per-cpu', 'pool-scaling-no-poll', 'loop-delay-pool', 'loop-delay-sync',
] as const;

/** Progress steps asyncBench takes (some steps produce two rows). */
export const ASYNC_STEPS = 8;

const simpleguest = (): UninitializedSandbox => {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
  u.registerPrint(() => undefined);
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, async (a: number, b: number) => a + b);
  return u;
};

/** How long the paired sync/async rows call before they time (see `paired`). */
export const WARM_MS = 1000;

/** The histogram's values are timer intervals (resolution + delay): the delay is the excess. */
const RESOLUTION_MS = 1;
const delayNs = (intervalNs: number): number => Math.max(0, intervalNs - RESOLUTION_MS * 1e6);

export interface Sustained {
  /** Wall time per call. */
  nsPerCall: number;
  /** CPU time the whole process got per second of wall time (all threads): cores obtained. */
  cores: number;
  /** CPU time of the main thread per call (ns; NaN where /proc/thread-self is not readable). */
  mainNsPerCall: number;
}

/** CPU time (user + system) of the calling thread in ns, from /proc/thread-self/stat (10 ms ticks). */
function threadCpuNs(): number {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 1e9 / 100; // utime, stime in USER_HZ (100)
  } catch {
    return NaN;
  }
}

/** Keeps `concurrency` Echo calls in flight on `pool` until `calls` have finished. */
export async function sustain(pool: SandboxPool, calls: number, concurrency: number): Promise<Sustained> {
  let started = 0;
  const cpu0 = process.cpuUsage();
  const main0 = threadCpuNs();
  const t0 = process.hrtime.bigint();
  const lane = async (): Promise<void> => {
    while (started < calls) {
      started++;
      await pool.call('Echo', 'String', 'hi');
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { nsPerCall: wallNs / calls, cores: ((cpu.user + cpu.system) * 1000) / wallNs, mainNsPerCall: (threadCpuNs() - main0) / calls };
}

/**
 * A simpleguest pool of `workers`, warmed up, handed to `fn`, then closed. The warm-up (JIT,
 * first touches in every worker) lasts at least `warmMs`: the steady state (see `paired`).
 */
export async function withPool<T>(workers: number, fn: (pool: SandboxPool) => Promise<T>, options: Partial<SandboxPoolOptions> = {},
  warmMs = 0): Promise<T> {
  const pool = await SandboxPool.create({ guest: bundledGuestPath('simpleguest'), workers, print: () => undefined, ...options });
  try {
    const end = performance.now() + warmMs;
    do await sustain(pool, workers * 20, workers * 2); while (performance.now() < end);
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

/** Runs the async rows into `ctx`. */
export async function asyncBench(ctx: AsyncBenchContext): Promise<void> {
  const calls = ctx.quick ? 20 : 2000;
  const poolCalls = ctx.quick ? 40 : 4000;
  const workers = os.availableParallelism();
  const warmMs = ctx.quick ? 0 : WARM_MS;

  // The async calls and the sync calls they are compared with run alternately in one loop,
  // so the load drift of a shared machine hits both alike.
  const syncEchoSpec: AsyncRowSpec = {
    id: 'sync-echo-paired', label: 'sync warm Echo("hi"), paired with the async one', group: 'async', baseline: 'warm-echo',
    target: null, note: 'MultiUseSandbox.call("Echo", "String", "hi"), timed alternately with the AsyncSandbox call below (one of each per iteration; 1 s of both untimed first)',
  };
  const echoSpec: AsyncRowSpec = {
    id: 'async-echo', label: 'AsyncSandbox: warm Echo("hi")', group: 'async', baseline: 'sync-echo-paired',
    target: '<= 1.25x the sync warm call', note: 'await asb.call("Echo", "String", "hi") one at a time: request bytes into the shared channel, the same sync call in the worker, result bytes back (found by the main thread\'s poll from the event loop, or a doorbell byte on a pipe wakes it), Promise settled; after 1 s of calls untimed',
  };
  const syncAddSpec: AsyncRowSpec = {
    id: 'sync-add-paired', label: 'sync Add with a host function, paired with the async one', group: 'async', baseline: 'host-call',
    target: null, note: 'MultiUseSandbox.call("Add", "Int", 2, 3) with a synchronous HostAdd, timed alternately with the AsyncSandbox call below',
  };
  const hostSpec: AsyncRowSpec = {
    id: 'async-host-call', label: 'AsyncSandbox: Add with an async host function', group: 'async', baseline: 'sync-add-paired',
    target: null, note: 'Add(2, 3) whose HostAdd is an async function on the main thread: the worker writes the host call into the channel and waits (Atomics.wait) for the reply',
  };
  let asb: AsyncSandbox | undefined;
  const sync = simpleguest().evolve(); // for Echo (its async HostAdd is not called)
  const syncAdd = simpleguest();
  syncAdd.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b);
  const syncAddSandbox = syncAdd.evolve();
  /**
   * Times `syncCall` and `asyncCall` alternately, after WARM_MS of them untimed; the samples
   * of each. (After an idle spell, calls that cross threads run up to 2x slower here for the
   * first ~0.6 s, polling or not: the rows report the steady state a busy server sees.)
   */
  const paired = async (l: LoopOptions, syncCall: () => void, asyncCall: () => Promise<void>): Promise<[Float64Array, Float64Array]> => {
    const s = new Float64Array(l.iterations);
    const a = new Float64Array(l.iterations);
    for (const end = performance.now() + warmMs; performance.now() < end;) {
      syncCall();
      await asyncCall();
    }
    for (let i = 0; i < l.iterations + l.warmup; i++) {
      const t0 = process.hrtime.bigint();
      syncCall();
      const t1 = process.hrtime.bigint();
      await asyncCall();
      const t2 = process.hrtime.bigint();
      if (i >= l.warmup) {
        s[i - l.warmup] = Number(t1 - t0);
        a[i - l.warmup] = Number(t2 - t1);
      }
      l.progress?.tick(i + 1, l.iterations + l.warmup);
    }
    return [s, a];
  };
  try {
    await ctx.step('AsyncSandbox Echo', echoSpec, async () => {
      asb = await simpleguest().evolveAsync();
      const s = asb;
      const l = ctx.loop(calls);
      const [syncNs, asyncNs] = await paired(l, () => { sync.call('Echo', 'String', 'hi'); }, async () => { await s.call('Echo', 'String', 'hi'); });
      ctx.timed(syncEchoSpec, syncNs, l.warmup);
      ctx.timed(echoSpec, asyncNs, l.warmup);
    });
    await ctx.step('AsyncSandbox host call', hostSpec, async () => {
      const s = asb ?? await simpleguest().evolveAsync();
      asb = s;
      const l = ctx.loop(calls);
      const [syncNs, asyncNs] = await paired(l, () => { syncAddSandbox.call('Add', 'Int', 2, 3); }, async () => { await s.call('Add', 'Int', 2, 3); });
      ctx.timed(syncAddSpec, syncNs, l.warmup);
      ctx.timed(hostSpec, asyncNs, l.warmup);
    });
    if (asb !== undefined) {
      const s = asb;
      const l = ctx.loop(calls);
      const rt = await timeLoopAsync(l, () => s.restore(s.initialSnapshot));
      const sorted = Float64Array.from(rt).sort();
      ctx.note(`AsyncSandbox round trip without guest code (restore() of an unchanged sandbox: a message each way, ~5 us of work in ` +
        `the worker): median ${(sorted[sorted.length >> 1]! / 1000).toFixed(1)} us; that is the fixed cost an async call adds.`);
    }
  } finally {
    await asb?.close();
    sync.close();
    syncAddSandbox.close();
  }

  const oneSpec: AsyncRowSpec = {
    id: 'pool-1-worker', label: 'SandboxPool, 1 worker: time per call under load', group: 'async', baseline: null, target: null,
    note: `${poolCalls} Echo calls, 2 in flight, restore after each call (the default), after 1 s of such calls untimed; wall time / calls`,
  };
  const allSpec: AsyncRowSpec = {
    id: 'pool-all-workers', label: `SandboxPool, ${workers} workers: time per call under load`, group: 'async', baseline: 'pool-1-worker',
    target: null, note: `${poolCalls} Echo calls, ${2 * workers} in flight, restore after each call, after 1 s untimed; wall time / calls (ratio < 1: faster than 1 worker)`,
  };
  const scaleSpec: AsyncRowSpec = {
    id: 'pool-scaling', label: `SandboxPool scaling, ${workers} workers vs 1`, group: 'async', baseline: null,
    target: `>= ${(0.85 * workers).toFixed(2)}x (0.85 x workers, on a machine with more idle CPUs than workers)`,
    note: `throughput with all workers / throughput with 1 worker; the main thread needs CPU too, so with ${workers} workers on ` +
      `${os.cpus().length} CPUs the pool cannot get a CPU per worker (see the per-CPU row)`,
  };
  const perCpuSpec: AsyncRowSpec = {
    id: 'pool-scaling-per-cpu', label: `SandboxPool throughput per CPU obtained, ${workers} workers vs 1`, group: 'async', baseline: null,
    target: '>= 0.85x (what 0.85 x workers needs once every worker has a CPU)',
    note: '(calls per CPU-second the process got, all threads, with all workers) / (the same with 1 worker): the scaling the CPUs this machine gave would allow',
  };
  const noPollSpec: AsyncRowSpec = {
    id: 'pool-scaling-no-poll', label: `SandboxPool scaling, ${workers} workers vs 1, pollUs: 0`, group: 'async', baseline: null,
    target: `>= ${(0.85 * workers).toFixed(2)}x (0.85 x workers)`,
    note: 'as the scaling row, both pools with pollUs: 0: the main thread never polls, so its CPU per call does not change with the worker count (with the default, one worker\'s pool also gets the CPU the main thread polls on)',
  };
  let one: Sustained | undefined;
  let all: Sustained | undefined;
  const perCall = (spec: AsyncRowSpec, ns: number): void => {
    ctx.push({ ...spec, unit: 'ns', iterations: poolCalls, warmup: 0, median: ns, p99: null, ratio: null });
  };
  await ctx.step('pool throughput, 1 worker', oneSpec, async () => {
    one = await withPool(1, (p) => sustain(p, poolCalls, 2), {}, warmMs);
    perCall(oneSpec, one.nsPerCall);
  });
  await ctx.step(`pool throughput, ${workers} workers`, allSpec, async () => {
    all = await withPool(workers, (p) => sustain(p, poolCalls, 2 * workers), {}, warmMs);
    perCall(allSpec, all.nsPerCall);
  });
  await ctx.step('pool scaling', scaleSpec, async () => {
    if (one === undefined || all === undefined) throw new Error('a pool throughput row was not measured');
    const scaling = one.nsPerCall / all.nsPerCall;
    const perCpu = scaling / (all.cores / one.cores);
    ctx.push({ ...scaleSpec, unit: 'x', iterations: 1, warmup: 0, median: scaling, p99: null, ratio: null });
    ctx.push({ ...perCpuSpec, unit: 'x', iterations: 1, warmup: 0, median: perCpu, p99: null, ratio: null });
    ctx.note(`SandboxPool throughput: ${Math.round(1e9 / one.nsPerCall).toLocaleString('en-US')} calls/s with 1 worker, ` +
      `${Math.round(1e9 / all.nsPerCall).toLocaleString('en-US')} calls/s with ${workers} (${scaling.toFixed(2)}x). ` +
      `The process got ${one.cores.toFixed(2)} and ${all.cores.toFixed(2)} CPUs' worth of time during the two runs ` +
      `(${(all.cores / one.cores).toFixed(2)}x; the main thread, which posts every call and settles every Promise, shares ` +
      `the ${os.cpus().length} CPUs with the workers and with whatever else runs): throughput per CPU obtained went ` +
      `${perCpu.toFixed(2)}x. Main-thread CPU per call: ${(one.mainNsPerCall / 1000).toFixed(1)} us with 1 worker, ` +
      `${(all.mainNsPerCall / 1000).toFixed(1)} us with ${workers}; 1 / that is the most calls per second one main thread can drive.`);
  });

  await ctx.step('pool scaling, pollUs: 0', noPollSpec, async () => {
    const opts = { pollUs: 0 };
    const oneNp = await withPool(1, (p) => sustain(p, poolCalls, 2), opts, warmMs);
    const allNp = await withPool(workers, (p) => sustain(p, poolCalls, 2 * workers), opts, warmMs);
    ctx.push({ ...noPollSpec, unit: 'x', iterations: 1, warmup: 0, median: oneNp.nsPerCall / allNp.nsPerCall, p99: null, ratio: null });
    ctx.note(`SandboxPool with pollUs: 0: ${Math.round(1e9 / oneNp.nsPerCall).toLocaleString('en-US')} calls/s with 1 worker ` +
      `(${oneNp.cores.toFixed(2)} CPUs busy), ${Math.round(1e9 / allNp.nsPerCall).toLocaleString('en-US')} with ${workers} (${allNp.cores.toFixed(2)} CPUs busy).`);
  });

  const delaySpec: AsyncRowSpec = {
    id: 'loop-delay-pool', label: `event-loop delay while a ${workers}-worker pool is under full load`, group: 'async', baseline: null,
    target: '<= 5 ms p99', note: `perf_hooks.monitorEventLoopDelay (resolution 1 ms; the 1 ms timer interval is subtracted from its values) over ${poolCalls} Echo calls with ${2 * workers} in flight; median column = p50, p99 column = p99`,
  };
  await ctx.step('event-loop delay, pool', delaySpec, async () => {
    await withPool(workers, async (p) => {
      const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      h.enable();
      await sustain(p, poolCalls, 2 * workers);
      h.disable();
      ctx.push({ ...delaySpec, unit: 'ns', iterations: h.count, warmup: 0, median: delayNs(h.percentile(50)), p99: delayNs(h.percentile(99)), ratio: null });
      ctx.note(`Event-loop delay under pool load: max ${(delayNs(h.max) / 1e6).toFixed(1)} ms over ${h.count} samples.`);
    });
  });
  const syncSpec: AsyncRowSpec = {
    id: 'loop-delay-sync', label: 'event-loop delay with sync calls on the main thread (for contrast)', group: 'async', baseline: null,
    target: null, note: `the same histogram while ${calls} sync Echo calls run in batches of 20 between setImmediate yields (what a server calling MultiUseSandbox directly sees)`,
  };
  await ctx.step('event-loop delay, sync', syncSpec, async () => {
    const s = simpleguest().evolve();
    try {
      const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      h.enable();
      for (let i = 0; i < calls; i += 20) {
        for (let j = 0; j < 20; j++) s.call('Echo', 'String', 'hi');
        await new Promise<void>((r) => setImmediate(r));
      }
      h.disable();
      ctx.push({ ...syncSpec, unit: 'ns', iterations: h.count, warmup: 0, median: delayNs(h.percentile(50)), p99: delayNs(h.percentile(99)), ratio: null });
    } finally {
      s.close();
    }
  });
}
