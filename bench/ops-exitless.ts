// Benchmarks of exitless mode (docs/exitless.md): warm call, call + restore and host call through the mailbox against the C floor's mailbox, calls per second on one sandbox, and the CPU an idle parked sandbox uses. Self-contained like ops-async.ts; suite.ts only calls `exitlessBench`.
import os from 'node:os';
import type { ExitlessSandbox } from '../src/exitless/exitless-sandbox.js';
import { GuestBinary, bundledGuestPath } from '../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue, ReturnType } from '../src/sandbox/values.js';
import type { BenchRow } from './report.js';
import { type Sustained, WARM_MS, sustain, withPool } from './ops-async.js';
import { type LoopOptions, timeLoop, timeLoopAsync } from './stats.js';

/** Row ids, in table order (suite.ts appends them to ROW_IDS). The two C rows are filled by suite.ts. */
export const EXITLESS_ROW_IDS = [
  'c3-mailbox', 'c3-mailbox-restore', 'exitless-echo', 'exitless-call-restore', 'exitless-host-call',
  'exitless-calls-per-second', 'exitless-idle-cpu', 'exitless-async-echo', 'exitless-pool-1', 'exitless-pool-all',
] as const;

/** Progress steps exitlessBench takes. */
export const EXITLESS_STEPS = 8;

/** A row's description; the runner fills in the measured fields. */
export interface ExitlessRowSpec extends Pick<BenchRow, 'label' | 'group' | 'target' | 'note'> {
  id: typeof EXITLESS_ROW_IDS[number];
  /** A row of this file or the async rows (ops-async.ts) these are compared with. */
  baseline: typeof EXITLESS_ROW_IDS[number] | 'async-echo' | 'pool-1-worker' | 'pool-all-workers' | null;
}

/** What suite.ts lends this file (as for ops-async.ts). */
export interface ExitlessBenchContext {
  quick: boolean;
  step(label: string, spec: ExitlessRowSpec, fn: () => Promise<void> | void): Promise<void>;
  timed(spec: ExitlessRowSpec, samples: ArrayLike<number>, warmup: number): void;
  push(row: BenchRow): void;
  note(text: string): void;
  loop(iterations: number): LoopOptions;
}

/** The C floor's mailbox rows (bench/kvm-floor-cpl3.c), pushed by suite.ts with the rest of that program's rows. */
export const C_MAILBOX_SPECS = {
  call: {
    id: 'c3-mailbox', label: 'C floor: call across a shared-memory mailbox (no exit)', group: 'C floor', baseline: 'c3-mailbox',
    target: null, note: 'bench/kvm-floor-cpl3.c: a CPL3 guest polls a request word with pause and answers in a response word; ' +
      'its vCPU stays in KVM_RUN on a second thread while this one posts and spins on the answer',
  },
  restore: {
    id: 'c3-mailbox-restore', label: 'C floor: mailbox call + copy-back of 4 written pages', group: 'C floor', baseline: 'c3-mailbox',
    target: null, note: 'bench/kvm-floor-cpl3.c: the same, the guest writing 4 pages per call and the host copying them back after each answer',
  },
} satisfies Record<string, ExitlessRowSpec>;

/** A simpleguest sandbox in exitless mode; spinning long enough never to park between calls of a loop. */
function exitless(): ExitlessSandbox {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
  u.registerPrint((text) => text.length);
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b);
  return u.evolve({ exitless: { spinUs: 2000 } });
}

const ECHO_ARG = [ParameterValue.String('hi')];

function echo(s: ExitlessSandbox): void {
  if (s.callGuestFunctionByName('Echo', ReturnType.String, ECHO_ARG) !== 'hi') throw new Error('Echo returned something else');
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs the exitless rows into `ctx`. */
export async function exitlessBench(ctx: ExitlessBenchContext): Promise<void> {
  const calls = ctx.quick ? 50 : 20_000;
  const specs = {
    echo: {
      id: 'exitless-echo', label: 'exitless: warm Echo("hi")', group: 'hyperlight-ts', baseline: 'c3-mailbox', target: '<= 2 us',
      note: 'ExitlessSandbox.callGuestFunctionByName("Echo"): the call written to the input buffer, one command word, the result copied out of the output buffer once and decoded; no exit',
    },
    restore: {
      id: 'exitless-call-restore', label: 'exitless: Echo + working-set restore', group: 'hyperlight-ts', baseline: 'c3-mailbox-restore',
      target: '<= 3 us', note: 'Echo, then restore() of the baseline while the vCPU spins: the working set (learned at the first, exact, restore) copied back with no exit (docs/security.md)',
    },
    host: {
      id: 'exitless-host-call', label: 'exitless: Add with a host function', group: 'hyperlight-ts', baseline: 'c3-mailbox', target: '<= 2 us',
      note: 'Add(2, 3): the guest posts HostAdd to the mailbox, the calling thread runs it and posts the reply; two round trips, no exit',
    },
    rate: {
      id: 'exitless-calls-per-second', label: 'exitless: Echo calls per second, one sandbox', group: 'hyperlight-ts', baseline: null,
      target: '>= 200,000/s', note: 'back-to-back Echo calls on one ExitlessSandbox for the whole loop, wall clock',
    },
    idle: {
      id: 'exitless-idle-cpu', label: 'exitless: CPU of an idle sandbox after parking', group: 'hyperlight-ts', baseline: null,
      target: '< 1% of a core', note: 'process CPU time (all threads) over 500 ms of idle wall time after the vCPU parked, in % of one core; the process is otherwise idle too',
    },
  } satisfies Record<string, ExitlessRowSpec>;
  let s: ExitlessSandbox | undefined;
  try {
    await ctx.step('exitless Echo', specs.echo, () => {
      s = exitless();
      const sb = s;
      const l = ctx.loop(calls);
      ctx.timed(specs.echo, timeLoop(l, () => undefined, () => echo(sb)), l.warmup);
    });
    await ctx.step('exitless Echo + restore', specs.restore, () => {
      const sb = s ?? exitless();
      s = sb;
      const snap = sb.snapshot();
      echo(sb);
      sb.restore(snap); // exact (parked by snapshot()): learns the working set
      const l = ctx.loop(calls);
      ctx.timed(specs.restore, timeLoop(l, () => undefined, () => { echo(sb); sb.restore(snap); }), l.warmup);
    });
    await ctx.step('exitless host call', specs.host, () => {
      const sb = s ?? exitless();
      s = sb;
      const l = ctx.loop(calls);
      ctx.timed(specs.host, timeLoop(l, () => undefined, () => {
        if (sb.callGuestFunctionByName('Add', ReturnType.Int, [ParameterValue.Int(2), ParameterValue.Int(3)]) !== 5) throw new Error('Add');
      }), l.warmup);
    });
    await ctx.step('exitless calls per second', specs.rate, () => {
      const sb = s ?? exitless();
      s = sb;
      for (let i = 0; i < 100; i++) echo(sb);
      const before = sb.stats;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) echo(sb);
      const ns = Number(process.hrtime.bigint() - t0);
      const after = sb.stats;
      ctx.push({ ...specs.rate, unit: 'calls/s', iterations: calls, warmup: 100, median: calls / (ns / 1e9), p99: null, ratio: null });
      ctx.note(`Exitless: ${calls} Echo calls made ${after.exits - before.exits} exits (time-slice ticks and parks), ` +
        `the caller slept ${after.sleeps - before.sleeps} times and the vCPU stopped ${after.stops - before.stops} times.`);
    });
    await ctx.step('exitless idle CPU', specs.idle, () => {
      const sb = s ?? exitless();
      s = sb;
      echo(sb);
      const end = Date.now() + 2000;
      while (!sb.parked && Date.now() < end) sleepMs(1);
      if (!sb.parked) throw new Error('the vCPU did not park within 2 s');
      const idleMs = ctx.quick ? 100 : 500;
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      sleepMs(idleMs);
      const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      ctx.push({ ...specs.idle, unit: '%', iterations: 1, warmup: 0, median: (100 * (cpu.user + cpu.system)) / wallUs, p99: null, ratio: null });
    });
  } finally {
    s?.close();
  }
  await asyncExitlessBench(ctx);
}

/** The async API in exitless mode: AsyncSandbox's warm call, and pool throughput with 1 and with all workers. */
async function asyncExitlessBench(ctx: ExitlessBenchContext): Promise<void> {
  const calls = ctx.quick ? 20 : 2000;
  const poolCalls = ctx.quick ? 40 : 4000;
  const workers = os.availableParallelism();
  const exitlessOption = { spinUs: 2000 };
  const specs = {
    async: {
      id: 'exitless-async-echo', label: 'AsyncSandbox in exitless mode: warm Echo("hi")', group: 'async', baseline: 'async-echo', target: null,
      note: 'await call("Echo") on evolveAsync({ exitless: { spinUs: 2000 } }): the shared channel to the worker and back as for any AsyncSandbox, ' +
        'the mailbox instead of a VM exit inside it; ratio to the ordinary AsyncSandbox row',
    },
    one: {
      id: 'exitless-pool-1', label: 'SandboxPool in exitless mode, 1 worker: time per call under load', group: 'async', baseline: 'pool-1-worker', target: null,
      note: `${poolCalls} Echo calls, 2 in flight, the working-set restore after each call; ratio to the ordinary pool's 1-worker row`,
    },
    all: {
      id: 'exitless-pool-all', label: `SandboxPool in exitless mode, ${workers} workers: time per call under load`, group: 'async', baseline: 'pool-all-workers', target: null,
      note: `${poolCalls} Echo calls, ${2 * workers} in flight; each busy sandbox keeps its vCPU and its worker spinning, so with ${workers} of ` +
        `them (more than the default of half the CPUs) and the main thread on ${os.cpus().length} CPUs this shows what oversubscribing costs; ` +
        `ratio to the ordinary pool's ${workers}-worker row`,
    },
  } satisfies Record<string, ExitlessRowSpec>;
  await ctx.step('AsyncSandbox exitless Echo', specs.async, async () => {
    const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
    u.registerPrint((text) => text.length);
    const asb = await u.evolveAsync({ exitless: exitlessOption });
    try {
      const l = ctx.loop(calls);
      ctx.timed(specs.async, await timeLoopAsync(l, async () => {
        if (await asb.call('Echo', 'String', 'hi') !== 'hi') throw new Error('Echo returned something else');
      }), l.warmup);
    } finally {
      await asb.close();
    }
  });
  const perCall = (spec: ExitlessRowSpec, r: Sustained): void => {
    ctx.push({ ...spec, unit: 'ns', iterations: poolCalls, warmup: 0, median: r.nsPerCall, p99: null, ratio: null });
  };
  let one: Sustained | undefined;
  await ctx.step('exitless pool, 1 worker', specs.one, async () => {
    one = await withPool(1, (p) => sustain(p, poolCalls, 2), { exitless: exitlessOption }, ctx.quick ? 0 : WARM_MS);
    perCall(specs.one, one);
  });
  await ctx.step(`exitless pool, ${workers} workers`, specs.all, async () => {
    const all = await withPool(workers, (p) => sustain(p, poolCalls, 2 * workers), { exitless: exitlessOption }, ctx.quick ? 0 : WARM_MS);
    perCall(specs.all, all);
    if (one) {
      ctx.note(`SandboxPool in exitless mode: ${Math.round(1e9 / one.nsPerCall).toLocaleString('en-US')} calls/s with 1 worker ` +
        `(${one.cores.toFixed(2)} CPUs busy), ${Math.round(1e9 / all.nsPerCall).toLocaleString('en-US')} calls/s with ${workers} ` +
        `(${all.cores.toFixed(2)} CPUs busy).`);
    }
  });
}
