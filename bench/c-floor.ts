// Builds and runs the C floor programs (bench/kvm-floor.c, bench/kvm-run-loop.c) with gcc at
// benchmark time into a cache directory, and parses their JSON. Not the JS measurements.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where bench/*.c lives: the package root found from this module (src/ or dist/src/). */
export function benchSourceDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bench', 'kvm-floor.c')) && existsSync(join(dir, 'package.json'))) return join(dir, 'bench');
    dir = dirname(dir);
  }
  return undefined;
}

export class CFloorUnavailable extends Error {}

/**
 * Compiles `bench/<name>.c` with `gcc -O2` into `$TMPDIR/hyperlight-ts-bench/`, named by a
 * hash of the source and the shared headers so an edit rebuilds it; returns the executable's path.
 */
export function buildCProgram(name: string, extraArgs: readonly string[] = []): string {
  const src = benchSourceDir();
  if (!src) throw new CFloorUnavailable(`bench/${name}.c not found (the C floor sources ship in the repository, not the npm package)`);
  const file = join(src, `${name}.c`);
  const source = readFileSync(file);
  // The shared headers too: an edited header rebuilds every program.
  const headers = readdirSync(src).filter((f) => f.endsWith('.h')).sort().map((f) => readFileSync(join(src, f)));
  const hash = createHash('sha256').update(source).update(Buffer.concat(headers)).update(extraArgs.join('\0'))
    .digest('hex').slice(0, 16);
  const cache = join(tmpdir(), 'hyperlight-ts-bench');
  mkdirSync(cache, { recursive: true });
  const exe = join(cache, `${name}-${hash}`);
  if (existsSync(exe)) return exe;
  const partial = `${exe}.${process.pid}.tmp`;
  try {
    execFileSync('gcc', ['-O2', '-Wall', ...extraArgs, '-o', partial, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = e instanceof Error && 'stderr' in e ? String((e as { stderr: unknown }).stderr) : '';
    throw new CFloorUnavailable(`gcc failed on ${file}: ${e instanceof Error ? e.message : String(e)} ${stderr}`.trim());
  }
  renameSync(partial, exe);
  return exe;
}

/** Runs a C floor program and parses the JSON object it prints. */
export function runJsonProgram(exe: string, args: readonly string[]): Record<string, unknown> {
  const text = execFileSync(exe, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${exe} printed no JSON object`);
  return parsed as Record<string, unknown>;
}

/** `obj[key]` as an array of finite numbers (a C floor's samples). */
export function numberArray(obj: Record<string, unknown>, key: string): number[] {
  const v = obj[key];
  if (!Array.isArray(v) || !v.every((x): x is number => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`C floor output: ${key} is not an array of numbers`);
  }
  return v;
}

export interface FloorSamples {
  /** Per-iteration ns of create VM + map + create vCPU + set registers + run to first exit + tear down. */
  coldNs: number[];
  /** Per-iteration ns of one KVM_RUN -> OUT -> back on a warm vCPU. */
  warmNs: number[];
  /** The cold cycle's phases by name (create-vm, map-memory, create-vcpu, set-regs, first-run, teardown). */
  coldPhaseNs: Map<string, number[]>;
}

/** Runs kvm-floor with guest memory of `memBytes`. */
export function runKvmFloor(memBytes: number, coldIters: number, warmIters: number): FloorSamples {
  const exe = buildCProgram('kvm-floor');
  const out = runJsonProgram(exe, [`0x${memBytes.toString(16)}`, String(coldIters), String(warmIters)]);
  const phases = new Map<string, number[]>();
  const raw = out.cold_phase_ns;
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const obj = raw as Record<string, unknown>;
    for (const key of Object.keys(obj)) phases.set(key, numberArray(obj, key));
  }
  return { coldNs: numberArray(out, 'cold_ns'), warmNs: numberArray(out, 'warm_ns'), coldPhaseNs: phases };
}

export interface RunLoopSamples {
  /** Per-iteration ns of KVM_RUN plus the exit decode Vcpu.run() does. */
  runNs: number[];
  /** Mean ns per run over an untimed-per-iteration batch. */
  batchNsPerRun: number;
}

/** Runs kvm-run-loop (the C loop matched to Vcpu.run()). */
export function runKvmRunLoop(memBytes: number, iters: number): RunLoopSamples {
  const exe = buildCProgram('kvm-run-loop');
  const out = runJsonProgram(exe, [`0x${memBytes.toString(16)}`, String(iters)]);
  const batch = out.batch_ns_per_run;
  if (typeof batch !== 'number' || !Number.isFinite(batch)) throw new Error('C run loop output: batch_ns_per_run is not a number');
  return { runNs: numberArray(out, 'run_ns'), batchNsPerRun: batch };
}

export interface Cpl3FloorSamples {
  /** Per-iteration ns of a warm exit round trip by an MMIO store from CPL3 (the doorbell). */
  mmioNs: number[];
  /** The same round trip through a CPL0 handler: `int3` at CPL3, then `out` and `iretq` at CPL0. */
  trapNs: number[];
  /** KVM_RUN of a CPL3 dec/jnz loop of `loopN` iterations, and of 1 iteration. */
  loopNs: number[];
  loop1Ns: number[];
  loopN: number;
  /** The cold cycle making exactly the syscalls of evolve() from an init template. */
  evolveNs: number[];
  /** The same cycles without the kernel anchor (run first, before it exists). */
  evolveBareNs: number[];
  /** A call across a shared-memory mailbox with the vCPU in KVM_RUN on another thread (no exit), and the same with 4 pages copied back per call. */
  mailboxNs: number[];
  mailboxRestoreNs: number[];
}

/** Runs kvm-floor-cpl3 (the ring-3 C floor). */
export function runCpl3Floor(memBytes: number, coldIters: number, warmIters: number): Cpl3FloorSamples {
  const exe = buildCProgram('kvm-floor-cpl3', ['-pthread']);
  const out = runJsonProgram(exe, [`0x${memBytes.toString(16)}`, String(coldIters), String(warmIters)]);
  const n = out.loop_n;
  if (typeof n !== 'number') throw new Error('C floor output: loop_n is not a number');
  return {
    mmioNs: numberArray(out, 'mmio_ns'), trapNs: numberArray(out, 'trap_ns'), loopNs: numberArray(out, 'loop_ns'),
    loop1Ns: numberArray(out, 'loop1_ns'), loopN: n, evolveNs: numberArray(out, 'evolve_ns'), evolveBareNs: numberArray(out, 'evolve_bare_ns'),
    mailboxNs: numberArray(out, 'mailbox_ns'), mailboxRestoreNs: numberArray(out, 'mailbox_restore_ns'),
  };
}

export interface NativeKernelSamples {
  /** Per-iteration ns of filling and CRC-32ing `crcBytes` bytes. */
  crc32Ns: number[];
  /** Per-iteration ns of the integration with `steps` steps. */
  integrateNs: number[];
  /** Per-iteration ns of kernel_libc (10^4 snprintf("%.6f") + qsort of 10^5 ints), linked against musl. */
  libcNs: number[];
  /** kernel_libc's checksum (a u64, as a decimal string in the JSON). */
  libc: bigint;
  crc32: number;
  integrate: number;
  crcBytes: number;
  steps: number;
}

/** Runs kernels-native: the benchmark guest's compute kernels compiled into a host program. */
/** Runs the native kernels `iters` times each (kernel_libc `libcIters` times; 0: not at all). */
export function runNativeKernels(iters: number, libcIters = 0): NativeKernelSamples {
  // Statically against musl, the guests' C library, so kernel_libc runs the same libc code.
  const exe = buildCProgram('kernels-native', ['-specs=/usr/lib/x86_64-linux-musl/musl-gcc.specs', '-static']);
  const out = runJsonProgram(exe, [String(iters), String(libcIters)]);
  const num = (k: string): number => {
    const v = out[k];
    if (typeof v !== 'number') throw new Error(`kernels-native output: ${k} is not a number`);
    return v;
  };
  return {
    crc32Ns: numberArray(out, 'crc32_ns'), integrateNs: numberArray(out, 'integrate_ns'), libcNs: numberArray(out, 'libc_ns'),
    libc: BigInt(String(out.libc)), crc32: num('crc32'),
    integrate: num('integrate'), crcBytes: num('crc_bytes'), steps: num('steps'),
  };
}
