// The benchmark's --quick --json run: every operation present, ratios computed, no NaN. It
// checks the report's shape only; no timing threshold belongs in a test.
import { expect, it } from 'vitest';
import { Progress } from '../../bench/stats.js';
import { BENCH_STEPS, ROW_IDS, runBench, type BenchResult } from '../../bench/suite.js';
import { describeKvm } from '../helpers/kvm.js';

/** Every number reachable from `v` (paths for the message). */
function numbersIn(v: unknown, path = '$', found: [string, number][] = []): [string, number][] {
  if (typeof v === 'number') found.push([path, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => numbersIn(x, `${path}[${i}]`, found));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) numbersIn(x, `${path}.${k}`, found);
  return found;
}

describeKvm('benchmark suite (--quick --json)', () => {
  it('reports every operation with medians, p99s and ratios to the C floor', async () => {
    let printed = '';
    const result: BenchResult = await runBench({ quick: true, json: true, progress: false, out: (s) => { printed += s; } });

    // The printed JSON is the returned result.
    const parsed: unknown = JSON.parse(printed);
    expect(parsed).toEqual(JSON.parse(JSON.stringify(result)));
    expect(result.version).toBe(1);
    expect(result.quick).toBe(true);

    expect(result.rows.map((r) => r.id)).toEqual([...ROW_IDS]);
    const byId = new Map(result.rows.map((r) => [r.id, r]));
    for (const r of result.rows) {
      const context = `${r.id}: ${r.skipped ?? ''}`;
      if (r.group === 'alternatives' && r.skipped) continue; // optional packages may be absent
      expect(r.skipped, context).toBeUndefined();
      expect(typeof r.median, context).toBe('number');
      // The guest rows are differences of two medians: noise in a quick run can make them negative.
      if (r.group !== 'guest') expect(r.median! >= 0, context).toBe(true);
      if (r.unit === 'ns' && r.iterations > 1 && r.p99 !== null) {
        expect(r.p99! >= r.median!, context).toBe(true);
      }
      if (r.baseline !== null) {
        expect(byId.has(r.baseline), context).toBe(true);
        expect(typeof r.ratio, context).toBe('number');
        expect(r.ratio! > 0, context).toBe(true);
      }
    }
    expect(byId.get('c-floor-cold')!.ratio).toBe(1);
    expect(byId.get('warm-echo')!.baseline).toBe('c3-exit-mmio');
    expect(byId.get('call-restore')!.baseline).toBe('c3-exit-mmio');
    expect(byId.get('cold-start-template')!.baseline).toBe('c3-evolve');
    expect(byId.get('compute-crc32-guest')!.baseline).toBe('compute-crc32-native');
    expect(byId.get('compute-integrate-guest')!.baseline).toBe('compute-integrate-native');
    expect(byId.get('compute-libc-guest')!.baseline).toBe('compute-libc-native');
    // Both exit mechanisms a ring-3 guest has were measured side by side.
    expect(byId.get('c3-exit-trap')!.median).toBeGreaterThan(0);
    expect(byId.get('cold-start-simpleguest')!.baseline).toBe('c-floor-cold');
    expect(byId.get('js-vcpu-run')!.baseline).toBe('c-run-loop');
    expect(byId.get('max-open')!.median).toBeGreaterThan(0);
    // The async rows: overhead against the sync call, scaling as a ratio, loop delay as p50/p99.
    expect(byId.get('async-echo')!.baseline).toBe('sync-echo-paired');
    expect(byId.get('async-host-call')!.baseline).toBe('sync-add-paired');
    expect(byId.get('pool-all-workers')!.baseline).toBe('pool-1-worker');
    expect(byId.get('pool-scaling')!.unit).toBe('x');
    expect(byId.get('pool-scaling')!.median).toBeGreaterThan(0);
    expect(byId.get('pool-scaling-per-cpu')!.unit).toBe('x');
    expect(byId.get('pool-scaling-per-cpu')!.median).toBeGreaterThan(0);
    expect(byId.get('pool-scaling-no-poll')!.unit).toBe('x');
    expect(byId.get('pool-scaling-no-poll')!.median).toBeGreaterThan(0);
    // The exitless rows against the C floor's mailbox, measured in the same run.
    expect(byId.get('exitless-echo')!.baseline).toBe('c3-mailbox');
    expect(byId.get('exitless-call-restore')!.baseline).toBe('c3-mailbox-restore');
    expect(byId.get('exitless-calls-per-second')!.median).toBeGreaterThan(0);
    expect(byId.get('exitless-idle-cpu')!.unit).toBe('%');
    // Exitless mode behind the async API, against the same async rows in ordinary mode.
    expect(byId.get('exitless-async-echo')!.baseline).toBe('async-echo');
    expect(byId.get('exitless-pool-1')!.baseline).toBe('pool-1-worker');
    expect(byId.get('exitless-pool-all')!.baseline).toBe('pool-all-workers');
    expect(result.notes.some((t) => t.startsWith('SandboxPool in exitless mode:'))).toBe(true);
    // The JavaScript rows: JsSandbox against quickjs-emscripten, which is against Node's JIT for fib(25).
    expect(byId.get('js-fib25')!.baseline).toBe('qjs-fib25');
    expect(byId.get('js-cold-pool')!.baseline).toBe('qjs-cold');
    expect(byId.get('qjs-fib25')!.baseline).toBe('node-fib25');
    expect(result.notes.some((t) => t.startsWith('JsSandbox against quickjs-emscripten'))).toBe(true);
    expect(byId.get('loop-delay-pool')!.p99).toBeGreaterThanOrEqual(byId.get('loop-delay-pool')!.median!);

    expect(result.phases.cFloor.map((p) => p.phase)).toEqual(
      ['create-vm', 'map-memory', 'create-vcpu', 'set-regs', 'first-run', 'teardown']);
    expect(result.phases.coldStart.map((p) => p.phase)).toEqual(expect.arrayContaining(
      ['create', 'open', 'create-vm', 'map-memory', 'load-elf', 'page-tables', 'create-vcpu', 'guest-init', 'call', 'close']));
    expect(result.breakdown.warmEcho).not.toBeNull();
    expect(result.breakdown.echoInstructions).toBeNull(); // guest code runs natively at CPL3: no single-step counts

    // The progress count was right: the suite notes a stale BENCH_STEPS.
    expect(result.notes.filter((n) => n.includes('BENCH_STEPS'))).toEqual([]);
    expect(BENCH_STEPS).toBe(51);

    // JSON.stringify would print NaN and Infinity as null: none anywhere.
    for (const [path, n] of numbersIn(result)) expect(Number.isFinite(n), path).toBe(true);
  }, 180_000);
});

it('progress outside a terminal is one line per step, no carriage returns and no ticks', () => {
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => { written.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    const p = new Progress(2, true, false);
    p.step('first');
    p.tick(5, 10);
    p.step('second');
    p.done();
    expect(p.stepsTaken).toBe(p.total);
  } finally {
    process.stderr.write = write;
  }
  expect(written).toEqual(['[1/2] first\n', '[2/2] second\n']);
});
