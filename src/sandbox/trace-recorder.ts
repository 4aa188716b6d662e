// The one recorder of a sandbox's timeline: start-up and call phases (PhaseSink), VM exits (ExitSink), host calls and the outcome, against one start time; it renders nothing.
import type { VcpuExit } from '../kvm/exit.js';
import { PORT_CPU_EXCEPTION } from '../x86_64/index.js';
import { DOORBELL_STRIDE, OP_ABORT, OP_CALL_FUNCTION, OP_DEBUG_PRINT, OP_HALT, OP_LOG } from './abi.js';
import type { ExitSink } from './run-loop.js';
import { ERRNO, describeSyscallResult, syscallName } from './syscalls.js';
import type { PhaseSink, StartPhase } from './machine.js';

/** A phase: one of evolve()'s start-up steps (StartPhase), `call`, or a name of the caller's own. */
export interface TracedPhase {
  readonly name: StartPhase | 'call' | (string & {});
  readonly startNs: bigint;
  readonly endNs: bigint;
}

/** One VM exit, described. */
export interface TracedExit {
  readonly timeNs: bigint;
  /** `io-out`, `io-in`, `hlt`, `mmio`, `shutdown`, ... (the decoded exit's kind, io split by direction), or
   * `syscall` for a guest system call the host served (which reaches the host as a CPU exception). */
  readonly reason: string;
  /** The doorbell op (MMIO stores to the doorbell), the I/O port (the CPL0 stubs' exception report), or the system call's number. */
  readonly port: number | undefined;
  readonly rip: bigint;
  /** What the exit meant: the doorbell op's name, a CPU exception, an MMIO address, or `name = result` of a system call. */
  readonly detail: string;
  /** The system call, when the exit was one. */
  readonly syscall?: TracedSyscall;
}

/** A guest system call the host served. */
export interface TracedSyscall {
  readonly nr: number;
  /** Its Linux name, or undefined for a number the host does not serve (answered -ENOSYS). */
  readonly name: string | undefined;
  /** RAX as returned: a negative errno as a u64 two's complement. */
  readonly result: bigint;
}

const ENOSYS = BigInt.asUintN(64, BigInt(-ERRNO.ENOSYS));

/** One host function the guest called, by name, with its span and whether it threw. */
export interface TracedHostCall {
  readonly name: string;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly failed: boolean;
}

const OP_NAMES: ReadonlyMap<number, string> = new Map([
  [OP_LOG, 'log'], [OP_CALL_FUNCTION, 'host call'], [OP_ABORT, 'abort'],
  [OP_DEBUG_PRINT, 'debug print'], [OP_HALT, 'halt'],
]);

function describeExit(exit: VcpuExit): { reason: string; port: number | undefined; detail: string } {
  switch (exit.kind) {
    case 'io': {
      const name = exit.port === PORT_CPU_EXCEPTION ? 'cpu exception' : 'unknown port';
      return { reason: `io-${exit.direction}`, port: exit.port, detail: name };
    }
    case 'mmio': {
      // Doorbell stores name their op by the offset in the (page-aligned) doorbell page.
      const op = Number(exit.address & 0xfffn) / DOORBELL_STRIDE;
      const name = exit.isWrite ? OP_NAMES.get(op) : undefined;
      return name
        ? { reason: 'mmio', port: op, detail: name }
        : { reason: 'mmio', port: undefined, detail: `${exit.isWrite ? 'write' : 'read'} 0x${exit.address.toString(16)}` };
    }
    case 'internal-error': return { reason: exit.kind, port: undefined, detail: `suberror ${exit.suberror}` };
    case 'unknown': return { reason: exit.kind, port: undefined, detail: exit.name };
    default: return { reason: exit.kind, port: undefined, detail: '' };
  }
}

/**
 * Records a timeline: pass it as `evolve({ trace: rec, exits: rec })` for phases and
 * exits; wrap host functions with `hostCall()` to see them by name; `fail()` records the
 * error a call ended with. Set `recording = false` to ignore events (benchmark warm-up).
 * Times are process.hrtime.bigint() nanoseconds.
 */
export class TraceRecorder implements PhaseSink, ExitSink {
  readonly startNs: bigint;
  readonly phases: TracedPhase[] = [];
  readonly exits: TracedExit[] = [];
  readonly hostCalls: TracedHostCall[] = [];
  /** The error the traced work ended with, if any (`fail()`). */
  failure: { readonly code: string; readonly message: string; readonly timeNs: bigint } | undefined;
  /** When false, phase(), exit() and hostCall() record nothing (host calls still run). */
  recording = true;

  constructor(startNs: bigint = process.hrtime.bigint()) {
    this.startNs = startNs;
  }

  phase(name: TracedPhase['name'], startNs: bigint, endNs: bigint): void {
    if (this.recording) this.phases.push({ name, startNs, endNs });
  }

  exit(exit: VcpuExit, rip: bigint, timeNs: bigint): void {
    if (this.recording) this.exits.push({ timeNs, rip, ...describeExit(exit) });
  }

  /** The exit recorded last was system call `nr`, served with `result`: it is recorded as that call. */
  syscall(nr: bigint, result: bigint): void {
    const last = this.exits[this.exits.length - 1];
    if (!this.recording || last === undefined || last.port !== PORT_CPU_EXCEPTION || last.reason !== 'io-out') return;
    const n = nr > 0xffffn ? -1 : Number(nr);
    const name = syscallName(n);
    this.exits[this.exits.length - 1] = {
      timeNs: last.timeNs, rip: last.rip, reason: 'syscall', port: n,
      detail: `${name ?? `syscall ${n}`} = ${describeSyscallResult(result)}`, syscall: { nr: n, name, result },
    };
  }

  /** The system calls recorded: how many, how many were answered -ENOSYS, and the count by name (or number). */
  syscallSummary(): { total: number; enosys: number; byName: Map<string, number> } {
    const byName = new Map<string, number>();
    let total = 0;
    let enosys = 0;
    for (const x of this.exits) {
      if (!x.syscall) continue;
      total++;
      if (x.syscall.result === ENOSYS) enosys++;
      const key = x.syscall.name ?? String(x.syscall.nr);
      byName.set(key, (byName.get(key) ?? 0) + 1);
    }
    return { total, enosys, byName };
  }

  /** `fn` wrapped so each call is recorded as host call `name` (and still returns or throws as `fn` does). */
  hostCall<A extends unknown[], R>(name: string, fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const t0 = process.hrtime.bigint();
      let failed = true;
      try {
        const r = fn(...args);
        failed = false;
        return r;
      } finally {
        if (this.recording) this.hostCalls.push({ name, startNs: t0, endNs: process.hrtime.bigint(), failed });
      }
    };
  }

  /** Records that the traced work failed with `error` (a HyperlightError's code, or the error's name). */
  fail(error: unknown): void {
    const code = typeof (error as { code?: unknown } | null)?.code === 'string' ? (error as { code: string }).code
      : error instanceof Error ? error.name : 'unknown';
    this.failure = { code, message: error instanceof Error ? error.message : String(error), timeNs: process.hrtime.bigint() };
  }

  /** Phases by start time. */
  sortedPhases(): TracedPhase[] {
    return [...this.phases].sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  }

  /** Nanoseconds from the start to the last event (phase end, exit, host call or failure). */
  spanNs(): bigint {
    let end = this.startNs;
    for (const p of this.phases) if (p.endNs > end) end = p.endNs;
    for (const x of this.exits) if (x.timeNs > end) end = x.timeNs;
    for (const h of this.hostCalls) if (h.endNs > end) end = h.endNs;
    if (this.failure && this.failure.timeNs > end) end = this.failure.timeNs;
    return end - this.startNs;
  }

  /** Each phase name's durations in nanoseconds, in recording order (for medians per phase). */
  durationsByPhase(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const p of this.phases) {
      let list = out.get(p.name);
      if (!list) out.set(p.name, (list = []));
      list.push(Number(p.endNs - p.startNs));
    }
    return out;
  }
}
