// `runBench`: the benchmark suite behind `npm run bench` (bench/main.ts; issue "Benchmarks against the
// C floor and Node's sandboxes"). Runs every operation, computes ratios to the C floor
// measured in the same run, prints Markdown or JSON. Not a test: it asserts no thresholds.
import { existsSync } from 'node:fs';
import os from 'node:os';
import {
  CFloorUnavailable, type Cpl3FloorSamples, type FloorSamples, type RunLoopSamples, runCpl3Floor, runKvmFloor, runKvmRunLoop,
  runNativeKernels,
} from './c-floor.js';
import { jsColdCycle, jsWarmRun } from './js-floor.js';
import { runGuestFloor } from './guest-floor.js';
import { ASYNC_ROW_IDS, ASYNC_STEPS, asyncBench } from './ops-async.js';
import { C_MAILBOX_SPECS, EXITLESS_ROW_IDS, EXITLESS_STEPS, exitlessBench } from './ops-exitless.js';
import { JS_ROW_IDS, JS_STEPS, jsBench } from './ops-js.js';
import { type AlternativeResult, isolatedVm, nodeVmContext, quickJs, workerThread } from './ops-alternatives.js';
import {
  callPlusRestore, coldStart, computeInGuest, computeSandbox, coldStartFromPool, coldStartFromTemplate, evolveFresh, evolveFromTemplate,
  hostCallRoundTrip, maxOpen, restoreAfterCall, rssPerSandbox, snapshotOp, splitCallTime, uninitialized, warmEcho,
  type CallSplit,
} from './ops-sandbox.js';
import {
  type BenchResult, type BenchRow, type CallTimeSplit, type MachineInfo, type PhaseStat, type RowGroup, type TimeBreakdown,
  formatNs, markdownReport,
} from './report.js';
import { TraceRecorder } from '../src/sandbox/trace-recorder.js';
import { coldStartFromSnapshot, fromSnapshotOp, inputByCopy, inputByMapping, loadedSimpleguestSnapshot } from './ops-snapshot.js';
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
  rssSandboxes: number; maxOpenCap: number; bigInput: number;
}

const FULL: Plan = {
  cCold: 300, cWarm: 5000, jsCold: 300, jsWarm: 5000, instrCost: 100,
  coldStart: 200, coldTemplate: 300, evolve: 200, warm: 2000, snapshot: 300, restore: 2000,
  isolatedVm: 200, quickjs: 300, nodeVm: 300, worker: 50,
  rssSandboxes: 200, maxOpenCap: 2000, bigInput: 10,
};

const QUICK: Plan = {
  cCold: 10, cWarm: 200, jsCold: 10, jsWarm: 200, instrCost: 5,
  coldStart: 5, coldTemplate: 5, evolve: 5, warm: 20, snapshot: 5, restore: 20,
  isolatedVm: 5, quickjs: 5, nodeVm: 5, worker: 2,
  rssSandboxes: 20, maxOpenCap: 30, bigInput: 1,
};

/** Every row id a run produces, in table order. */
export const ROW_IDS = [
  'c-floor-cold', 'c-floor-warm', 'c-run-loop', 'c3-exit-mmio', 'c3-exit-trap', 'c3-evolve', 'c3-evolve-bare', 'c-guest-cold', 'c-guest-warm',
  'js-cold-cycle', 'js-vcpu-run', 'guest-instruction',
  'compute-crc32-native', 'compute-crc32-guest', 'compute-integrate-native', 'compute-integrate-guest',
  'compute-libc-native', 'compute-libc-guest',
  'cold-start-simpleguest', 'cold-start-dummyguest', 'cold-start-template', 'cold-start-template-vs-c', 'cold-start-pool', 'evolve-fresh', 'evolve-template',
  'from-snapshot', 'cold-start-snapshot', 'input-64m-copy', 'input-64m-map',
  'warm-echo', 'warm-echo-vs-c', 'host-call', 'snapshot', 'restore', 'call-restore',
  ...ASYNC_ROW_IDS,
  ...EXITLESS_ROW_IDS,
  'rss-per-sandbox', 'max-open',
  ...JS_ROW_IDS,

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
/** The ring-3 floor: an exit round trip by the doorbell's mechanism, and evolve()'s cold cycle. */
const C3_EXIT = 'c3-exit-mmio';
const C3_EVOLVE = 'c3-evolve';
/** The C floor running the library's own guest: the same guest work, no JavaScript. */
const CG_COLD = 'c-guest-cold';
const CG_WARM = 'c-guest-warm';

/** Runs the suite and prints its report. Resolves with the result (also on `json`). */
/** Steps of a run whose C floor builds (see runBench). */
export const BENCH_STEPS = 31 + ASYNC_STEPS + JS_STEPS + EXITLESS_STEPS;

export async function runBench(opts: BenchOptions = {}): Promise<BenchResult> {
  const quick = opts.quick ?? false;
  const out = opts.out ?? ((s: string) => { process.stdout.write(s); });
  const plan: Plan = { ...(quick ? QUICK : FULL) };
  if (opts.maxOpen !== undefined && Number.isSafeInteger(opts.maxOpen) && opts.maxOpen > 0) plan.maxOpenCap = opts.maxOpen;
  const started = Date.now();
  const machine = machineInfo();
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  // 6 floor and KVM-layer steps (with the libc kernel: 7), 11 sandbox rows, RSS, open at once, 7 async rows, warm
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
    id: C_COLD, label: 'C floor: cold cycle (CPL0 guest)', group: 'C floor', baseline: C_COLD, target: null,
    note: 'bench/kvm-floor.c: KVM_CREATE_VM, mmap + KVM_SET_USER_MEMORY_REGION of the sandbox\'s memory size, KVM_CREATE_VCPU + mmap kvm_run, ' +
      'set sregs/regs (long mode), KVM_RUN to the first OUT, munmap/close everything; /dev/kvm opened once, an idle VM held (the kernel anchor)',
  };
  const cWarmSpec: RowSpec = {
    id: C_WARM, label: 'C floor: warm exit round trip, emulated CPL0 OUT', group: 'C floor', baseline: C_WARM, target: null,
    note: 'bench/kvm-floor.c: one KVM_RUN -> OUT -> back on a warm vCPU (guest at CPL0: out; jmp back); round 1\'s mechanism',
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

  const c3ExitSpec: RowSpec = {
    id: C3_EXIT, label: 'C floor: warm exit round trip from CPL3 (MMIO store)', group: 'C floor', baseline: C3_EXIT, target: null,
    note: 'bench/kvm-floor-cpl3.c: KVM_RUN -> a CPL3 `mov %rax,(doorbell)` to a mapped page with no memslot -> KVM_EXIT_MMIO -> back (the library\'s doorbell)',
  };
  const c3TrapSpec: RowSpec = {
    id: 'c3-exit-trap', label: 'C floor: warm exit round trip from CPL3 (int3 -> CPL0 handler -> OUT)', group: 'C floor',
    baseline: C3_EXIT, target: null,
    note: 'bench/kvm-floor-cpl3.c: the other exit a ring-3 guest has: int3 through a DPL-3 gate into a CPL0 handler doing out + iretq',
  };
  const c3EvolveSpec: RowSpec = {
    id: C3_EVOLVE, label: 'C floor: cold cycle making evolve()\'s syscalls', group: 'C floor', baseline: C3_EVOLVE, target: null,
    note: 'bench/kvm-floor-cpl3.c: exactly the syscalls strace shows for evolve() from an init template + one call + close on the main thread: ' +
      'CREATE_VM, manual dirty log, mmap with guard pages, dirty-logged slot, the template copied in, CREATE_VCPU, SET_SIGNAL_MASK, ' +
      'kvm_run, CPUID, ENFORCE_PV_FEATURE_CPUID, LSTAR, SET_XSAVE, MSR filter, sync registers, KVM_RUN to the doorbell, teardown (/dev/kvm kept open, ' +
      'capabilities asked once, an idle VM with one vCPU held throughout: the kernel anchor, as the library does)',
  };
  const c3EvolveBareSpec: RowSpec = {
    id: 'c3-evolve-bare', label: 'C floor: the same cold cycle without the kernel anchor', group: 'C floor', baseline: C3_EVOLVE, target: null,
    note: 'bench/kvm-floor-cpl3.c: the cycle above run first, before the idle VM exists: each VM\'s creation and teardown then switch ' +
      'KVM\'s static keys (kernel text patched, IPIs to every CPU); the ratio is what the anchor saves (src/sandbox/kernel-anchor.ts)',
  };
  const instrSpec: RowSpec = {
    id: 'guest-instruction', label: 'one guest instruction (CPL3)', group: 'guest', baseline: null, target: null,
    note: 'bench/kvm-floor-cpl3.c: median KVM_RUN of a 2n-instruction CPL3 dec/jnz loop (n = 10^6) minus one of n = 1, over 2(n - 1)',
  };
  let c3: Cpl3FloorSamples | undefined;
  await step('C floor at CPL3', c3ExitSpec, () => {
    try {
      c3 = runCpl3Floor(memBytes, plan.cCold + wCold, plan.cWarm + wWarm);
    } catch (e) {
      for (const spec of [c3ExitSpec, c3TrapSpec, c3EvolveSpec, c3EvolveBareSpec, instrSpec, C_MAILBOX_SPECS.call, C_MAILBOX_SPECS.restore]) skipped(spec, e);
      return;
    }
    timed(C_MAILBOX_SPECS.call, c3.mailboxNs, 200);
    timed(C_MAILBOX_SPECS.restore, c3.mailboxRestoreNs, 200);
    timed(c3ExitSpec, c3.mmioNs.slice(wWarm), wWarm);
    timed(c3TrapSpec, c3.trapNs.slice(wWarm), wWarm);
    timed(c3EvolveSpec, c3.evolveNs.slice(wCold), wCold);
    timed(c3EvolveBareSpec, c3.evolveBareNs.slice(wCold), wCold);
    const perInstr = (summarize(c3.loopNs).median - summarize(c3.loop1Ns).median) / (2 * (c3.loopN - 1));
    rows.push({ ...instrSpec, unit: 'ns', iterations: c3.loopNs.length, warmup: 0, median: perInstr, p99: null, ratio: null });
  });

  const cgColdSpec: RowSpec = {
    id: CG_COLD, label: 'C floor: cold cycle from the init template + the first Echo, the library\'s guest', group: 'C floor',
    baseline: CG_COLD, target: null,
    note: 'bench/kvm-floor-guest.c: evolve()\'s syscalls (as the row above, plus XCR0) with the memory, registers, ' +
      'XSAVE and CPUID a simpleguest sandbox has when its first Echo("hi") enters KVM_RUN (bench/guest-floor.ts captures them), that KVM_RUN ' +
      'to the Halt doorbell, teardown: the guest runs exactly the code and touches exactly the pages of the JS cold start',
  };
  const cgWarmSpec: RowSpec = {
    id: CG_WARM, label: 'C floor: warm Echo("hi") of the library\'s guest, no JavaScript', group: 'C floor', baseline: CG_WARM, target: null,
    note: 'bench/kvm-floor-guest.c: on one machine from that image, the call\'s bytes put back in the input buffer and the output emptied ' +
      '(memcpy), KVM_RUN to the Halt doorbell: the same guest code as a JS warm Echo, without encode, decode and the run loop',
  };
  await step('C floor with the library\'s guest', cgWarmSpec, () => {
    try {
      const g = runGuestFloor(plan.cCold + wCold, plan.cWarm);
      timed(cgColdSpec, g.coldNs.slice(wCold), wCold);
      timed(cgWarmSpec, g.warmNs, 100);
    } catch (e) {
      skipped(cgColdSpec, e);
      skipped(cgWarmSpec, e);
    }
  });

  // ---- guest compute against the same C run natively ---------------------------------
  const computeSpecs = {
    crcNative: { id: 'compute-crc32-native', label: 'CRC-32 of 1 MiB, native', group: 'compute', baseline: 'compute-crc32-native', target: null,
      note: 'bench/kernels-native.c: kernel_fill + kernel_crc32 (guests/benchguest/kernels.h) over 1 MiB, gcc -O2, in a host process' },
    crcGuest: { id: 'compute-crc32-guest', label: 'CRC-32 of 1 MiB, guest function', group: 'compute', baseline: 'compute-crc32-native',
      target: '<= 1.5x native', note: 'benchguest Crc32(1 MiB): the same C in the guest at CPL3, one guest call (one exit) each' },
    intNative: { id: 'compute-integrate-native', label: 'integration, 10^6 steps (double), native', group: 'compute',
      baseline: 'compute-integrate-native', target: null, note: 'bench/kernels-native.c: kernel_integrate(10^6), SSE2 doubles' },
    intGuest: { id: 'compute-integrate-guest', label: 'integration, 10^6 steps (double), guest function', group: 'compute',
      baseline: 'compute-integrate-native', target: '<= 1.5x native', note: 'benchguest Integrate(10^6): the same C in the guest' },
    libcNative: { id: 'compute-libc-native', label: 'libc: 10^4 snprintf("%.6f") + qsort of 10^5 ints, native', group: 'compute',
      baseline: 'compute-libc-native', target: null,
      note: 'bench/kernels-native.c: kernel_libc (guests/benchguest/kernels.h), gcc -O2, linked statically against musl' },
    libcGuest: { id: 'compute-libc-guest', label: 'libc: 10^4 snprintf("%.6f") + qsort of 10^5 ints, guest function', group: 'compute',
      baseline: 'compute-libc-native', target: '<= 1.5x native', note: 'benchguest LibcKernel(10^4, 10^5): the same C and the same musl in the guest, one call each' },
  } satisfies Record<string, RowSpec>;
  await step('compute kernels', computeSpecs.crcGuest, () => {
    // Native and guest runs alternate in rounds of 5, so a change in the machine's load
    // falls on both sides alike.
    const rounds = quick ? 1 : 8;
    const nativeCrc: number[] = [];
    const nativeInt: number[] = [];
    const guestCrc: number[] = [];
    const guestInt: number[] = [];
    const sandbox = computeSandbox();
    try {
      for (let r = 0; r < rounds; r++) {
        const native = runNativeKernels(5);
        nativeCrc.push(...native.crc32Ns);
        nativeInt.push(...native.integrateNs);
        const crc = computeInGuest(sandbox, 'Crc32', loop(5));
        const int = computeInGuest(sandbox, 'Integrate', loop(5));
        if (crc.result !== native.crc32 || int.result !== native.integrate) {
          throw new Error(`guest and native kernels disagree: crc ${crc.result} vs ${native.crc32}, integral ${int.result} vs ${native.integrate}`);
        }
        guestCrc.push(...crc.samples);
        guestInt.push(...int.samples);
      }
    } finally {
      sandbox.close();
    }
    timed(computeSpecs.crcNative, nativeCrc, 1);
    timed(computeSpecs.intNative, nativeInt, 1);
    timed(computeSpecs.crcGuest, guestCrc, warmupFor(5));
    timed(computeSpecs.intGuest, guestInt, warmupFor(5));
  });
  await step('libc kernel', computeSpecs.libcGuest, () => {
    const iters = quick ? 2 : 10;
    const native = runNativeKernels(1, iters);
    timed(computeSpecs.libcNative, native.libcNs, 1);
    const sandbox = computeSandbox();
    let libc: ReturnType<typeof computeInGuest>;
    try {
      libc = computeInGuest(sandbox, 'LibcKernel', loop(iters));
    } finally {
      sandbox.close();
    }
    if (libc.result !== native.libc) throw new Error(`guest and native libc kernels disagree: ${String(libc.result)} vs ${native.libc}`);
    timed(computeSpecs.libcGuest, libc.samples, warmupFor(iters));
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
  // ---- hyperlight-ts --------------------------------------------------------------------
  const coldPhases = new TraceRecorder();
  const sandboxRows: [string, RowSpec, () => void][] = [];
  /** A sandbox row; `alsoAs`: a second row of the same samples against another baseline. */
  const add = (label: string, spec: RowSpec, iterations: number, run: (l: LoopOptions) => Float64Array, alsoAs?: RowSpec): void => {
    sandboxRows.push([label, spec, () => {
      const l = loop(iterations);
      const samples = run(l);
      timed(spec, samples, l.warmup);
      if (alsoAs) timed(alsoAs, samples, l.warmup);
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
    id: 'cold-start-template', label: 'cold start from init template, simpleguest', group: 'hyperlight-ts', baseline: C3_EVOLVE,
    target: '<= 1.3x the C floor making evolve()\'s syscalls', note: 'evolve + Echo + close on an UninitializedSandbox that evolved once (evolve copies init\'s result; no init runs)',
  }, plan.coldTemplate, (l) => coldStartFromTemplate('simpleguest', l), {
    id: 'cold-start-template-vs-c', label: 'cold start from init template, against the same guest from C', group: 'hyperlight-ts',
    baseline: CG_COLD, target: null, note: 'the row above\'s samples against the C floor running the same guest\'s first Echo',
  });
  add('cold start from VM pool', {
    id: 'cold-start-pool', label: 'cold start from a VM pool, simpleguest', group: 'hyperlight-ts', baseline: C_COLD,
    target: '<= 1.2x C cold', note: 'evolve + Echo + close with GuestBinary vmPool: 1: evolve resets the VM the last close() kept (all memory zeroed and reloaded from the init template, every piece of vCPU state reset); no VM is created or destroyed, unlike the C floor',
  }, plan.coldTemplate, (l) => coldStartFromPool('simpleguest', l));
  add('evolve (fresh init)', {
    id: 'evolve-fresh', label: 'evolve() running guest init', group: 'hyperlight-ts', baseline: C_COLD, target: null,
    note: 'evolve({ freshInit: true }) alone; create and close untimed',
  }, plan.evolve, (l) => evolveFresh('simpleguest', l));
  add('evolve (template)', {
    id: 'evolve-template', label: 'evolve() from init template', group: 'hyperlight-ts', baseline: C_COLD, target: null,
    note: 'evolve() alone on an UninitializedSandbox that evolved once; close untimed',
  }, plan.coldTemplate, (l) => evolveFromTemplate('simpleguest', l));
  const snapshotFile = await loadedSimpleguestSnapshot();
  add('fromSnapshot (file)', {
    id: 'from-snapshot', label: 'MultiUseSandbox.fromSnapshot() of a loaded snapshot file', group: 'hyperlight-ts', baseline: 'evolve-fresh',
    target: '< evolve()', note: 'fromSnapshot(await Snapshot.load(file), hostFunctions) alone (VM, memory mapped copy-on-write from the snapshot\'s memfd, vCPU; no guest code runs); close untimed; ratio to evolve() running init',
  }, plan.coldTemplate, (l) => fromSnapshotOp(snapshotFile, l));
  add('cold start from snapshot file', {
    id: 'cold-start-snapshot', label: 'cold start from a snapshot file, simpleguest', group: 'hyperlight-ts', baseline: 'cold-start-simpleguest',
    target: null, note: 'fromSnapshot + Echo("hi") + close of a loaded snapshot file; ratio to the cold start that runs init',
  }, plan.coldTemplate, (l) => coldStartFromSnapshot(snapshotFile, l));
  add('64 MiB input by copy', {
    id: 'input-64m-copy', label: '64 MiB read-only input passed by copy', group: 'hyperlight-ts', baseline: null, target: null,
    note: 'SumBytes(VecBytes of 64 MiB): encode, copy into the input buffer (inputDataSize 64 MiB + 64 KiB), the guest sums it in place',
  }, plan.bigInput, inputByCopy);
  add('64 MiB input by mapping', {
    id: 'input-64m-map', label: '64 MiB read-only input passed by mapRegion', group: 'hyperlight-ts', baseline: 'input-64m-copy', target: null,
    note: 'mapRegion(64 MiB file, read-only: MAP_PRIVATE, no copy) + SumMappedBuffer over all of it + restore (unmaps it); includes the guest\'s first touch of every page of a new slot',
  }, plan.bigInput, inputByMapping);
  add('warm Echo', {
    id: 'warm-echo', label: 'warm call: Echo("hi")', group: 'hyperlight-ts', baseline: C3_EXIT, target: '<= 1.2x the CPL3 exit',
    note: 'callGuestFunctionByName("Echo", String, ["hi"]) on an evolved simpleguest sandbox: encode, push, KVM_RUN to halt, pop, decode',
  }, plan.warm, warmEcho, {
    id: 'warm-echo-vs-c', label: 'warm call: Echo("hi"), against the same guest call from C', group: 'hyperlight-ts', baseline: CG_WARM,
    target: null, note: 'the warm Echo row\'s samples; the ratio is what the library adds to the guest\'s own work and the exit',
  });
  add('host call', {
    id: 'host-call', label: 'guest call making one host call: Add', group: 'hyperlight-ts', baseline: C3_EXIT, target: null,
    note: 'Add(2, 3): the guest calls host HostAdd(2, 3) and returns its result; two exits, both directions encoded',
  }, plan.warm, hostCallRoundTrip);
  add('snapshot', {
    id: 'snapshot', label: 'snapshot()', group: 'hyperlight-ts', baseline: C3_EXIT, target: null,
    note: 'copies all non-zero guest memory, the registers and the XSAVE area (one KVM_GET_XSAVE)',
  }, plan.snapshot, snapshotOp);
  let dirtyPages = Number.NaN;
  add('restore', {
    id: 'restore', label: 'restore() after a call', group: 'hyperlight-ts', baseline: C3_EXIT, target: '<= 30 us',
    note: 'restore(snapshot) after an untimed Echo; copies back the working set KVM\'s dirty log reports (count in the notes; pages are not write-protected again), the registers and the XSAVE area',
  }, plan.restore, (l) => {
    const r = restoreAfterCall(l);
    dirtyPages = r.dirtyPagesPerCall;
    return r.samples;
  });
  add('call + restore', {
    id: 'call-restore', label: 'call + restore (fresh state per request)', group: 'hyperlight-ts', baseline: C3_EXIT,
    target: '<= 1.5x the CPL3 exit', note: 'Echo("hi") + restore(snapshot) per iteration; throughput in the notes',
  }, plan.restore, callPlusRestore);
  for (const [label, spec, run] of sandboxRows) await step(label, spec, run);
  if (Number.isFinite(dirtyPages)) notes.push(`One Echo call dirtied ${dirtyPages} pages (4 KiB) of guest memory, as KVM's dirty log reports them.`);
  const cr = rows.find((r) => r.id === 'call-restore');
  if (cr?.median) notes.push(`Call + restore throughput: ${Math.round(1e9 / cr.median).toLocaleString('en-US')} per second at the median, one core.`);

  await asyncBench({ quick, loop, timed, step, push: (row) => { rows.push(row); }, note: (text) => { notes.push(text); } });
  await exitlessBench({ quick, loop, timed, step, push: (row) => { rows.push(row); }, note: (text) => { notes.push(text); } });

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

  await jsBench({ quick, loop, timed, step, note: (text) => { notes.push(text); } });

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

  const ns = byId.get('guest-instruction')?.median ?? null;
  const withEstimate = (c: CallSplit | undefined, instructions: number | null): CallTimeSplit | null =>
    c ? { ...c, guestEstimateNs: ns !== null && instructions !== null ? instructions * ns : null } : null;
  const breakdown: TimeBreakdown = {
    nsPerInstruction: ns,
    echoInstructions: null,
    initInstructions: null,
    warmEcho: withEstimate(echoSplit, null),
    hostCall: withEstimate(addSplit, null),
    guestInit: null,
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
