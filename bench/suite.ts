// `runBench`: the benchmark suite behind `npm run bench` (bench/main.ts; issue "Benchmarks against the
// C floor and Node's sandboxes"). Runs every operation, computes ratios to the C floor
// measured in the same run, prints Markdown or JSON. Not a test: it asserts no thresholds.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { CFloorUnavailable, type FloorSamples, type RunLoopSamples, runKvmFloor, runKvmRunLoop } from './c-floor.js';
import { countInstructions, type InstructionCounts } from './instructions.js';
import { type InstructionCost, guestInstructionCost, jsColdCycle, jsWarmRun, pageTouchCost } from './js-floor.js';
import { ASYNC_ROW_IDS, asyncBench } from './ops-async.js';
import { type AlternativeResult, isolatedVm, nodeVmContext, quickJs, workerThread } from './ops-alternatives.js';
import {
  callPlusRestore, coldStart, coldStartFromPool, coldStartFromTemplate, evolveFresh, evolveFromTemplate,
  hostCallRoundTrip, maxOpen, restoreAfterCall, rssPerSandbox, snapshotOp, splitCallTime, uninitialized, warmEcho,
  type CallSplit,
} from './ops-sandbox.js';
import {
  type BenchResult, type BenchRow, type CallTimeSplit, type MachineInfo, type PhaseStat, type RowGroup, type TimeBreakdown,
  formatNs, markdownReport,
} from './report.js';
import { TraceRecorder } from '../src/sandbox/trace-recorder.js';
import { type LoopOptions, Progress, summarize, warmupFor } from './stats.js';

export type { BenchResult, BenchRow, PhaseStat, MachineInfo, TimeBreakdown } from './report.js';
export { markdownReport, markdownTable, formatNs } from './report.js';

export interface BenchOptions {
  /** Print JSON instead of Markdown. */
  json?: boolean;
  /** Few iterations: checks that everything runs (CI), measures nothing. */
  quick?: boolean;
  /** Where the report goes (default stdout). */
  out?: (s: string) => void;
  /** The progress line on stderr (default true). */
  progress?: boolean;
  /** Cap of the sandboxes-open-at-once probe (default 2,000; 30 with `quick`). */
  maxOpen?: number;
}

/** Timed iterations per operation (warm-up is added: a tenth, 2..50). */
interface Plan {
  cCold: number; cWarm: number; jsCold: number; jsWarm: number; instrCost: number;
  coldStart: number; coldTemplate: number; evolve: number; warm: number; snapshot: number; restore: number;
  isolatedVm: number; quickjs: number; nodeVm: number; worker: number;
  rssSandboxes: number; maxOpenCap: number;
}

const FULL: Plan = {
  cCold: 300, cWarm: 5000, jsCold: 300, jsWarm: 5000, instrCost: 100,
  coldStart: 200, coldTemplate: 300, evolve: 200, warm: 2000, snapshot: 300, restore: 2000,
  isolatedVm: 200, quickjs: 300, nodeVm: 300, worker: 50,
  rssSandboxes: 200, maxOpenCap: 2000,
};

const QUICK: Plan = {
  cCold: 10, cWarm: 200, jsCold: 10, jsWarm: 200, instrCost: 5,
  coldStart: 5, coldTemplate: 5, evolve: 5, warm: 20, snapshot: 5, restore: 20,
  isolatedVm: 5, quickjs: 5, nodeVm: 5, worker: 2,
  rssSandboxes: 20, maxOpenCap: 30,
};

/** Every row id a run produces, in table order. */
export const ROW_IDS = [
  'c-floor-cold', 'c-floor-warm', 'c-run-loop',
  'js-cold-cycle', 'js-vcpu-run', 'guest-instruction', 'guest-page-first-touch', 'guest-page-rewrite',
  'cold-start-simpleguest', 'cold-start-dummyguest', 'cold-start-template', 'cold-start-pool', 'evolve-fresh', 'evolve-template',
  'warm-echo', 'host-call', 'snapshot', 'restore', 'call-restore',
  ...ASYNC_ROW_IDS,
  'rss-per-sandbox', 'max-open',
  'instructions-init', 'instructions-echo',
  'isolated-vm', 'quickjs', 'node-vm', 'worker-threads',
] as const;

function machineInfo(): MachineInfo {
  const kvm = existsSync('/sys/module/kvm_pvm') ? 'kvm_pvm (paravirtualised, nested)'
    : existsSync('/sys/module/kvm_intel') ? 'kvm_intel' : existsSync('/sys/module/kvm_amd') ? 'kvm_amd' : 'unknown';
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.versions.node, kvm,
    loadAverageStart: os.loadavg(), loadAverageEnd: [],
  };
}

function phaseStats(byPhase: ReadonlyMap<string, readonly number[]>): PhaseStat[] {
  return [...byPhase].map(([phase, samples]) => {
    const s = summarize(samples);
    return { phase, median: s.median, p99: s.p99, n: s.n };
  });
}

interface RowSpec {
  id: typeof ROW_IDS[number];
  label: string;
  group: RowGroup;
  baseline: typeof ROW_IDS[number] | null;
  target: string | null;
  note: string;
}

const C_COLD = 'c-floor-cold';
const C_WARM = 'c-floor-warm';

/** Runs the suite and prints its report. Resolves with the result (also on `json`). */
/** Steps of a run whose C floor builds (see runBench). */
export const BENCH_STEPS = 26 + ASYNC_ROW_IDS.length;

export async function runBench(opts: BenchOptions = {}): Promise<BenchResult> {
  const quick = opts.quick ?? false;
  const out = opts.out ?? ((s: string) => { process.stdout.write(s); });
  const plan: Plan = { ...(quick ? QUICK : FULL) };
  if (opts.maxOpen !== undefined && Number.isSafeInteger(opts.maxOpen) && opts.maxOpen > 0) plan.maxOpenCap = opts.maxOpen;
  const started = Date.now();
  const machine = machineInfo();
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  // 6 floor and KVM-layer steps, 11 sandbox rows, RSS, open at once, 7 async rows, warm
  // calls, instruction counts, 4 alternatives and the C floor again (when it ran first).
  const progress = new Progress(BENCH_STEPS, opts.progress ?? true);
  const loop = (iterations: number): LoopOptions => ({ iterations, warmup: warmupFor(iterations), progress });
  const memBytes = uninitialized('simpleguest').layout.totalSize;

  const timed = (spec: RowSpec, samples: ArrayLike<number>, warmup: number): void => {
    const s = summarize(samples);
    rows.push({ ...spec, unit: 'ns', iterations: s.n, warmup, median: s.median, p99: s.p99, ratio: null });
  };
  const skipped = (spec: RowSpec, e: unknown, unit: BenchRow['unit'] = 'ns'): void => {
    const why = e instanceof Error ? e.message : String(e);
    rows.push({ ...spec, unit, iterations: 0, warmup: 0, median: null, p99: null, ratio: null, skipped: why });
  };
  /** Runs one step; a failure becomes a skipped row, not a failed run. */
  const step = async (label: string, spec: RowSpec, fn: () => Promise<void> | void): Promise<void> => {
    progress.step(label);
    try {
      await fn();
    } catch (e) {
      skipped(spec, e);
    }
  };

  // ---- the C floor ---------------------------------------------------------------------
  const cColdSpec: RowSpec = {
    id: C_COLD, label: 'C floor: cold cycle', group: 'C floor', baseline: C_COLD, target: null,
    note: 'bench/kvm-floor.c: KVM_CREATE_VM, mmap + KVM_SET_USER_MEMORY_REGION of the sandbox\'s memory size, KVM_CREATE_VCPU + mmap kvm_run, ' +
      'set sregs/regs (long mode), KVM_RUN to the first OUT, munmap/close everything; /dev/kvm opened once',
  };
  const cWarmSpec: RowSpec = {
    id: C_WARM, label: 'C floor: warm exit round trip', group: 'C floor', baseline: C_WARM, target: null,
    note: 'bench/kvm-floor.c: one KVM_RUN -> OUT -> back on a warm vCPU (guest: out; jmp back)',
  };
  const cLoopSpec: RowSpec = {
    id: 'c-run-loop', label: 'C run loop matched to Vcpu.run()', group: 'C floor', baseline: C_WARM, target: null,
    note: 'bench/kvm-run-loop.c: KVM_RUN + return check + the exit decode Vcpu.run() does, timed per iteration as the JS side is',
  };
  // The floor runs twice, first and last; each baseline row keeps the run with the lower
  // median (the less disturbed one on a shared machine: ratios err against the library).
  let floor: FloorSamples | undefined;
  const wCold = warmupFor(plan.cCold);
  const wWarm = warmupFor(plan.cWarm);
  const trimmed = (f: FloorSamples): FloorSamples => ({
    coldNs: f.coldNs.slice(wCold), warmNs: f.warmNs.slice(wWarm),
    coldPhaseNs: new Map([...f.coldPhaseNs].map(([k, v]) => [k, v.slice(wCold)])),
  });
  let runLoop: RunLoopSamples | undefined;
  await step('C floor (gcc + run)', cColdSpec, () => {
    try {
      floor = trimmed(runKvmFloor(memBytes, plan.cCold + wCold, plan.cWarm + wWarm));
    } catch (e) {
      skipped(cColdSpec, e);
      skipped(cWarmSpec, e);
      progress.total--; // no 'C floor again' step
      if (e instanceof CFloorUnavailable) notes.push(`C floor not measured: ${e.message}; ratios are missing`);
    }
  });
  await step('C run loop', cLoopSpec, () => {
    runLoop = runKvmRunLoop(memBytes, plan.cWarm);
    timed(cLoopSpec, runLoop.runNs, 100);
    notes.push(`C run loop batch mean (no per-iteration clock): ${(runLoop.batchNsPerRun / 1000).toFixed(2)} us per run.`);
  });

  // ---- the KVM layer from JS -----------------------------------------------------------
  const jsPhases = new TraceRecorder();
  const jsColdSpec: RowSpec = {
    id: 'js-cold-cycle', label: 'KVM layer from JS: cold cycle', group: 'KVM layer from JS', baseline: C_COLD, target: null,
    note: 'the C floor\'s cycle through Kvm/Vm/GuestMemory/Vcpu (GuestMemory adds guard pages; vm.close() closes the vCPU)',
  };
  await step('JS cold cycle', jsColdSpec, () => {
    const l = loop(plan.jsCold);
    timed(jsColdSpec, jsColdCycle(memBytes, l, jsPhases), l.warmup);
  });
  const jsRunSpec: RowSpec = {
    id: 'js-vcpu-run', label: 'KVM layer from JS: vcpu.run() round trip', group: 'KVM layer from JS', baseline: 'c-run-loop',
    target: '<= 1.3x the C run loop', note: 'vcpu.run() (koffi ioctl + exit decode) on a warm vCPU, same tiny guest, 100 runs of warm-up as in C',
  };
  await step('JS vcpu.run()', jsRunSpec, () => {
    const l = loop(plan.jsWarm);
    timed(jsRunSpec, jsWarmRun(memBytes, l), l.warmup);
  });
  const instrSpec: RowSpec = {
    id: 'guest-instruction', label: 'one guest instruction', group: 'guest', baseline: null, target: null,
    note: 'median KVM_RUN of a 2n-instruction dec/jnz loop (n = 2000) minus one of n = 1, over 2(n - 1)',
  };
  let instrCost: InstructionCost | undefined;
  await step('guest instruction cost', instrSpec, () => {
    const l = loop(plan.instrCost);
    instrCost = guestInstructionCost(memBytes, l);
    rows.push({
      ...instrSpec, unit: 'ns', iterations: plan.instrCost, warmup: l.warmup, median: instrCost.nsPerInstruction, p99: null, ratio: null,
    });
  });

  const firstTouchSpec: RowSpec = {
    id: 'guest-page-first-touch', label: 'guest writes a page the first time', group: 'guest', baseline: null, target: null,
    note: 'first KVM_RUN of a fresh VM writing one byte to each of 64 pages, minus one writing 1 page, per page (includes the loop\'s 4 instructions)',
  };
  const rewriteSpec: RowSpec = {
    id: 'guest-page-rewrite', label: 'guest writes an already-touched page', group: 'guest', baseline: null, target: null,
    note: 'the same probe on later runs of the same vCPU, per page (includes the loop\'s 4 instructions)',
  };
  await step('guest page-touch cost', firstTouchSpec, () => {
    const l = loop(plan.instrCost);
    let p: ReturnType<typeof pageTouchCost>;
    try {
      p = pageTouchCost(memBytes, l);
    } catch (e) {
      skipped(firstTouchSpec, e);
      skipped(rewriteSpec, e);
      return;
    }
    rows.push({ ...firstTouchSpec, unit: 'ns', iterations: plan.instrCost, warmup: l.warmup, median: p.firstTouchNsPerPage, p99: null, ratio: null });
    rows.push({ ...rewriteSpec, unit: 'ns', iterations: plan.instrCost, warmup: l.warmup, median: p.warmTouchNsPerPage, p99: null, ratio: null });
  });

  // ---- hyperlight-ts --------------------------------------------------------------------
  const coldPhases = new TraceRecorder();
  const sandboxRows: [string, RowSpec, () => void][] = [];
  const add = (label: string, spec: RowSpec, iterations: number, run: (l: LoopOptions) => Float64Array): void => {
    sandboxRows.push([label, spec, () => {
      const l = loop(iterations);
      timed(spec, run(l), l.warmup);
    }]);
  };
  add('cold start simpleguest', {
    id: 'cold-start-simpleguest', label: 'cold start, simpleguest', group: 'hyperlight-ts', baseline: C_COLD, target: '<= 1.5x C cold',
    note: 'UninitializedSandbox.create (read + validate the ELF) + evolve (VM, memory, image, page tables, vCPU, guest init) + Echo("hi") + close',
  }, plan.coldStart, (l) => coldStart('simpleguest', l, coldPhases));
  add('cold start dummyguest', {
    id: 'cold-start-dummyguest', label: 'cold start, dummyguest', group: 'hyperlight-ts', baseline: C_COLD, target: '<= 1.5x C cold',
    note: 'as above on dummyguest (no SDK; any call returns Void)',
  }, plan.coldStart, (l) => coldStart('dummyguest', l));
  add('cold start from init template', {
    id: 'cold-start-template', label: 'cold start from init template, simpleguest', group: 'hyperlight-ts', baseline: C_COLD,
    target: '<= 1.5x C cold', note: 'evolve + Echo + close on an UninitializedSandbox that evolved once (evolve copies init\'s result; no init runs)',
  }, plan.coldTemplate, (l) => coldStartFromTemplate('simpleguest', l));
  add('cold start from VM pool', {
    id: 'cold-start-pool', label: 'cold start from a VM pool, simpleguest', group: 'hyperlight-ts', baseline: C_COLD,
    target: '<= 1.5x C cold', note: 'evolve + Echo + close with GuestBinary vmPool: 1: evolve resets the VM the last close() kept (all memory zeroed and reloaded from the init template, registers, FPU and debug registers reset); no VM is created or destroyed, unlike the C floor',
  }, plan.coldTemplate, (l) => coldStartFromPool('simpleguest', l));
  add('evolve (fresh init)', {
    id: 'evolve-fresh', label: 'evolve() running guest init', group: 'hyperlight-ts', baseline: C_COLD, target: null,
    note: 'evolve({ freshInit: true }) alone; create and close untimed',
  }, plan.evolve, (l) => evolveFresh('simpleguest', l));
  add('evolve (template)', {
    id: 'evolve-template', label: 'evolve() from init template', group: 'hyperlight-ts', baseline: C_COLD, target: null,
    note: 'evolve() alone on an UninitializedSandbox that evolved once; close untimed',
  }, plan.coldTemplate, (l) => evolveFromTemplate('simpleguest', l));
  add('warm Echo', {
    id: 'warm-echo', label: 'warm call: Echo("hi")', group: 'hyperlight-ts', baseline: C_WARM, target: '<= 2x C warm exit',
    note: 'callGuestFunctionByName("Echo", String, ["hi"]) on an evolved simpleguest sandbox: encode, push, KVM_RUN to halt, pop, decode',
  }, plan.warm, warmEcho);
  add('host call', {
    id: 'host-call', label: 'guest call making one host call: Add', group: 'hyperlight-ts', baseline: C_WARM, target: null,
    note: 'Add(2, 3): the guest calls host HostAdd(2, 3) and returns its result; two exits, both directions encoded',
  }, plan.warm, hostCallRoundTrip);
  add('snapshot', {
    id: 'snapshot', label: 'snapshot()', group: 'hyperlight-ts', baseline: C_WARM, target: null,
    note: 'copies all guest memory and the registers; resets the dirty log',
  }, plan.snapshot, snapshotOp);
  let dirtyPages = Number.NaN;
  add('restore', {
    id: 'restore', label: 'restore() after a call', group: 'hyperlight-ts', baseline: C_WARM, target: '<= 30 us',
    note: 'restore(snapshot) after an untimed Echo; copies back the pages KVM\'s dirty log reports (count in the notes) and the registers',
  }, plan.restore, (l) => {
    const r = restoreAfterCall(l);
    dirtyPages = r.dirtyPagesPerCall;
    return r.samples;
  });
  add('call + restore', {
    id: 'call-restore', label: 'call + restore (fresh state per request)', group: 'hyperlight-ts', baseline: C_WARM,
    target: '>= 30,000/s (<= 33.3 us)', note: 'Echo("hi") + restore(snapshot) per iteration; throughput in the notes',
  }, plan.restore, callPlusRestore);
  for (const [label, spec, run] of sandboxRows) await step(label, spec, run);
  if (Number.isFinite(dirtyPages)) notes.push(`One Echo call dirtied ${dirtyPages} pages (4 KiB) of guest memory, as KVM's dirty log reports them.`);
  const cr = rows.find((r) => r.id === 'call-restore');
  if (cr?.median) notes.push(`Call + restore throughput: ${Math.round(1e9 / cr.median).toLocaleString('en-US')} per second at the median, one core.`);

  await asyncBench({ quick, loop, timed, step, push: (row) => { rows.push(row); }, note: (text) => { notes.push(text); } });

  const rssSpec: RowSpec = {
    id: 'rss-per-sandbox', label: 'resident memory per idle sandbox', group: 'capacity', baseline: null, target: '<= 256 KiB',
    note: `(RSS after evolving ${plan.rssSandboxes} simpleguest sandboxes - RSS before) / ${plan.rssSandboxes}; process.memoryUsage.rss(), from one UninitializedSandbox (template made before the first reading)`,
  };
  await step('RSS per sandbox', rssSpec, () => {
    const r = rssPerSandbox(plan.rssSandboxes, (d) => progress.tick(d, plan.rssSandboxes));
    rows.push({ ...rssSpec, unit: 'KiB', iterations: r.sandboxes, warmup: 1, median: r.bytesPerSandbox / 1024, p99: null, ratio: null });
    notes.push(`Each sandbox holds ${r.fdsPerSandbox.toFixed(1)} file descriptors; RSS ${(r.rssBefore / 2 ** 20).toFixed(0)} -> ${(r.rssAfter / 2 ** 20).toFixed(0)} MiB` +
      `${r.gcSettled ? ' (gc() before each reading)' : ' (no --expose-gc: heap not settled)'}.`);
  });
  const maxSpec: RowSpec = {
    id: 'max-open', label: 'sandboxes open at once', group: 'capacity', baseline: null, target: '>= 1,000',
    note: `evolve simpleguest sandboxes from one UninitializedSandbox until a failure or the cap of ${plan.maxOpenCap}; each sampled sandbox must still answer Echo`,
  };
  await step('sandboxes open at once', maxSpec, () => {
    const r = maxOpen(plan.maxOpenCap, (d) => progress.tick(d, plan.maxOpenCap));
    rows.push({ ...maxSpec, unit: 'sandboxes', iterations: 1, warmup: 0, median: r.reached, p99: null, ratio: null });
    notes.push(`Sandboxes open at once: ${r.reached}, stopped by ${r.stoppedBy}; opening took ${(r.openMs / 1000).toFixed(1)} s, ` +
      `RSS grew ${(r.rssGrowth / 2 ** 20).toFixed(0)} MiB; ${r.allAnswer ? 'sampled sandboxes all answered Echo' : 'SOME SAMPLED SANDBOXES FAILED Echo'}.`);
  });

  let echoSplit: CallSplit | undefined;
  let addSplit: CallSplit | undefined;
  progress.step('warm calls: inside and outside KVM_RUN');
  try {
    echoSplit = splitCallTime('echo', loop(plan.warm));
    addSplit = splitCallTime('add', loop(plan.warm));
  } catch (e) {
    notes.push(`The split of warm calls into KVM_RUN and host time failed: ${e instanceof Error ? e.message : String(e)}`);
  }

  const initSpec: RowSpec = {
    id: 'instructions-init', label: 'guest instructions: simpleguest init', group: 'guest', baseline: null, target: null,
    note: 'KVM_GUESTDBG_SINGLESTEP from the entry point to init\'s halt, one debug exit per instruction',
  };
  const echoSpec: RowSpec = {
    id: 'instructions-echo', label: 'guest instructions: Echo("hi")', group: 'guest', baseline: null, target: null,
    note: 'single-stepped from resuming the vCPU with the call pushed to the call\'s halt',
  };
  let counts: InstructionCounts | undefined;
  await step('instruction counts (single-step)', initSpec, () => {
    try {
      counts = countInstructions();
    } catch (e) {
      skipped(initSpec, e, 'instructions');
      skipped(echoSpec, e, 'instructions');
      return;
    }
    rows.push({ ...initSpec, unit: 'instructions', iterations: 1, warmup: 0, median: counts.init, p99: null, ratio: null });
    rows.push({ ...echoSpec, unit: 'instructions', iterations: 1, warmup: 0, median: counts.echo, p99: null, ratio: null });
    notes.push(`Single-stepping cost ${(counts.nsPerStep / 1000).toFixed(1)} us per instruction (one debug exit each).`);
  });

  // ---- the alternatives ----------------------------------------------------------------
  const alt = async (label: string, spec: RowSpec, iterations: number, run: (l: LoopOptions) => Promise<AlternativeResult> | AlternativeResult): Promise<void> => {
    await step(label, spec, async () => {
      const l = loop(iterations);
      const r = await run(l);
      if ('skipped' in r) {
        skipped(spec, r.skipped);
        return;
      }
      timed({ ...spec, note: `${spec.note}: ${r.note}` }, r.samples, l.warmup);
    });
  };
  const altSpec = (id: RowSpec['id'], label: string, note: string): RowSpec =>
    ({ id, label, group: 'alternatives', baseline: C_COLD, target: null, note });
  await alt('isolated-vm', altSpec('isolated-vm', 'isolated-vm 5: isolate + eval', 'a V8 isolate, evaluating ((s) => s)("hi")'), plan.isolatedVm, isolatedVm);
  await alt('quickjs-emscripten', altSpec('quickjs', 'quickjs-emscripten: context + eval', 'QuickJS compiled to WASM, evaluating ((s) => s)("hi")'), plan.quickjs, quickJs);
  await alt('node:vm', altSpec('node-vm', 'node:vm: context + run', 'a V8 context in this isolate, evaluating ((s) => s)("hi")'), plan.nodeVm, nodeVmContext);
  await alt('worker_threads', altSpec('worker-threads', 'worker_threads: spawn + message + terminate', 'a thread with its own isolate'), plan.worker, workerThread);
  if (floor) {
    progress.step('C floor again');
    let second: FloorSamples | undefined;
    try {
      second = trimmed(runKvmFloor(memBytes, plan.cCold + wCold, plan.cWarm + wWarm));
    } catch (e) {
      notes.push(`The second C floor run failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const first = floor;
    const pick = (get: (f: FloorSamples) => number[]): [FloorSamples, string] => {
      if (!second) return [first, 'one run'];
      const a = summarize(get(first)).median;
      const b = summarize(get(second)).median;
      return [a <= b ? first : second, `medians ${formatNs(a)} (first) and ${formatNs(b)} (last); kept the ${a <= b ? 'first' : 'last'}`];
    };
    const [cold, coldWhy] = pick((f) => f.coldNs);
    const [warm, warmWhy] = pick((f) => f.warmNs);
    timed(cColdSpec, cold.coldNs, wCold);
    timed(cWarmSpec, warm.warmNs, wWarm);
    floor = cold;
    notes.push(`The C floor ran first and last: cold cycle ${coldWhy}; warm exit ${warmWhy}.`);
  }
  progress.done();
  if (progress.stepsTaken !== progress.total) notes.push(`Progress counted ${progress.stepsTaken} steps of ${progress.total}: BENCH_STEPS is stale.`);
  const cpus = machine.cpus;
  const load = Math.max(machine.loadAverageStart[0] ?? 0, os.loadavg()[0] ?? 0);
  if (load > cpus / 2) {
    notes.push(`The machine was busy (1-minute load average up to ${load.toFixed(2)} on ${cpus} CPUs): medians are disturbed, p99s more so.`);
  }

  // ---- ratios, breakdown, report -------------------------------------------------------
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const r of rows) {
    if (r.baseline === null || r.median === null) continue;
    const base = byId.get(r.baseline)?.median ?? null;
    r.ratio = base !== null && base > 0 ? r.median / base : null;
  }
  rows.sort((a, b) => ROW_IDS.indexOf(a.id as typeof ROW_IDS[number]) - ROW_IDS.indexOf(b.id as typeof ROW_IDS[number]));

  const ns = instrCost?.nsPerInstruction ?? null;
  const initPhase = phaseStats(coldPhases.durationsByPhase()).find((p) => p.phase === 'guest-init')?.median ?? null;
  const withEstimate = (c: CallSplit | undefined, instructions: number | null): CallTimeSplit | null =>
    c ? { ...c, guestEstimateNs: ns !== null && instructions !== null ? instructions * ns : null } : null;
  const breakdown: TimeBreakdown = {
    nsPerInstruction: ns,
    echoInstructions: counts?.echo ?? null,
    initInstructions: counts?.init ?? null,
    warmEcho: withEstimate(echoSplit, counts?.echo ?? null),
    hostCall: withEstimate(addSplit, null),
    guestInit: ns !== null && initPhase !== null && counts ? { phaseNs: initPhase, guestNs: counts.init * ns } : null,
  };
  machine.loadAverageEnd = os.loadavg();
  const result: BenchResult = {
    version: 1, quick, startedAt: new Date(started).toISOString(), durationMs: Date.now() - started, machine, memBytes, rows,
    phases: {
      cFloor: floor ? phaseStats(floor.coldPhaseNs) : [],
      jsKvmLayer: phaseStats(jsPhases.durationsByPhase()),
      coldStart: phaseStats(coldPhases.durationsByPhase()),
    },
    breakdown, notes,
  };
  out(opts.json ? `${JSON.stringify(result, null, 2)}\n` : markdownReport(result));
  return result;
}
