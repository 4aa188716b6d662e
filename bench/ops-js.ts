// Benchmarks of JsSandbox (QuickJS in a micro-VM) against isolated-vm 5 and quickjs-emscripten doing the same four things:
// a cold start, run('1+1'), a call with a 10 KiB JSON argument, fib(25); fib(25) also in Node's own JIT for scale.
// Self-contained like ops-async.ts: suite.ts only calls `jsBench`.
import { JsSandboxPool } from '../src/js/js-pool.js';
import type { JsSandbox } from '../src/js/js-sandbox.js';
import type { BenchRow } from './report.js';
import { type LoopOptions, summarize, timeLoop, timeLoopAsync } from './stats.js';

/** Row ids, in table order (suite.ts appends them to ROW_IDS). */
export const JS_ROW_IDS = [
  'js-cold-pool', 'js-run', 'js-call-json', 'js-fib25',
  'qjs-cold', 'qjs-run', 'qjs-call-json', 'qjs-fib25',
  'ivm-cold', 'ivm-run', 'ivm-call-json', 'ivm-fib25',
  'node-fib25',
] as const;
type JsRowId = typeof JS_ROW_IDS[number];

/** Progress steps jsBench takes: one per engine. */
export const JS_STEPS = 4;

export interface JsRowSpec extends Pick<BenchRow, 'label' | 'group' | 'target' | 'note'> {
  id: JsRowId;
  baseline: JsRowId | null;
}

/** What suite.ts lends this file (as for ops-async.ts). */
export interface JsBenchContext {
  quick: boolean;
  step(label: string, spec: JsRowSpec, fn: () => Promise<void>): Promise<void>;
  timed(spec: JsRowSpec, samples: ArrayLike<number>, warmup: number): void;
  note(text: string): void;
  loop(iterations: number): LoopOptions;
}

const FIB = 'function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }';
const SIZE = 'function size(o) { return o.items.length }';
/** The 10 KiB JSON argument: 100 records. */
export function jsonArgument(): { items: { id: number; name: string; tags: string[]; score: number }[] } {
  const items = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `item-${i}-${'x'.repeat(40)}`, tags: ['a', 'bb'], score: i / 7 }));
  return { items };
}
const FIB25 = 75025;

// The two alternatives' APIs, as far as this file uses them (both are devDependencies, loaded dynamically).
interface QjsHandle { dispose(): void }
interface QjsContext {
  evalCode(code: string): unknown;
  unwrapResult(r: unknown): QjsHandle;
  dump(h: QjsHandle): unknown;
  newString(s: string): QjsHandle;
  getProp(h: QjsHandle, key: string): QjsHandle;
  callFunction(fn: QjsHandle, thisArg: QjsHandle, ...args: QjsHandle[]): unknown;
  readonly global: QjsHandle;
  readonly undefined: QjsHandle;
  dispose(): void;
}
interface QjsModule { newContext(): QjsContext }
interface IvmReference { applySync(thisArg: unknown, args: unknown[], options?: unknown): unknown }
interface IvmContext { evalSync(code: string, options?: unknown): unknown; global: { getSync(name: string, options?: unknown): IvmReference } }
interface IvmIsolate { createContextSync(): IvmContext; dispose(): void }
interface IvmModule { Isolate: new (options: { memoryLimit: number }) => IvmIsolate }

function expectValue(what: string, got: unknown, want: unknown): void {
  if (got !== want) throw new Error(`${what} returned ${String(got)}, expected ${String(want)}`);
}

export async function jsBench(ctx: JsBenchContext): Promise<void> {
  const n = ctx.quick ? { cold: 3, run: 5, json: 5, fib: 2 } : { cold: 200, run: 1000, json: 300, fib: 12 };
  const arg = jsonArgument();
  const argBytes = JSON.stringify(arg).length;
  const medians = new Map<JsRowId, number>();
  const timed = (sp: JsRowSpec, samples: ArrayLike<number>, warmup: number): void => {
    medians.set(sp.id, summarize(samples).median);
    ctx.timed(sp, samples, warmup);
  };
  const spec = (id: JsRowId, label: string, baseline: JsRowId | null, target: string | null, note: string): JsRowSpec =>
    ({ id, label, group: 'javascript', baseline, target, note });

  // ---- JsSandbox ----
  const S = {
    cold: spec('js-cold-pool', 'JsSandbox: cold start from a pool', 'qjs-cold', '<= 2x quickjs-emscripten\'s new context',
      'JsSandboxPool (size 2): acquire() + run("1+1") + release() (a restore to the loaded template; the VMs started untimed)'),
    run: spec('js-run', 'JsSandbox: run("1+1")', 'qjs-run', null, 'warm: one guest call (JSON reply) + the restore to the loaded state that follows it'),
    json: spec('js-call-json', `JsSandbox: call with a ${(argBytes / 1024).toFixed(1)} KiB JSON argument`, 'qjs-call-json', null,
      'call("size", obj): JSON.stringify on the host, JSON.parse in the guest, one number back, restore'),
    fib: spec('js-fib25', 'JsSandbox: fib(25)', 'qjs-fib25', 'faster than quickjs-emscripten', 'call("fib", 25): QuickJS compiled natively, run at CPL3'),
  };
  await ctx.step('JsSandbox', S.cold, async () => {
    const pool = await JsSandboxPool.create({ size: 2, code: `${FIB}\n${SIZE}`, print: () => undefined, timeoutMs: 60_000 });
    try {
      let l = ctx.loop(n.cold);
      timed(S.cold, await timeLoopAsync(l, async () => {
        const js = await pool.acquire();
        expectValue('JsSandbox run', await js.run('1+1'), 2);
        await pool.release(js);
      }), l.warmup);
      const js: JsSandbox = await pool.acquire();
      l = ctx.loop(n.run);
      timed(S.run, await timeLoopAsync(l, async () => { expectValue('JsSandbox run', await js.run('1+1'), 2); }), l.warmup);
      l = ctx.loop(n.json);
      timed(S.json, await timeLoopAsync(l, async () => { expectValue('JsSandbox call', await js.call('size', arg), 100); }), l.warmup);
      l = ctx.loop(n.fib);
      timed(S.fib, await timeLoopAsync(l, async () => { expectValue('JsSandbox fib', await js.call('fib', 25), FIB25); }), l.warmup);
    } finally {
      await pool.close();
    }
  });

  // ---- quickjs-emscripten ----
  const Q = {
    cold: spec('qjs-cold', 'quickjs-emscripten: new context + eval("1+1")', null, null,
      'newContext() (a runtime and context) + evalCode + dump + dispose; the WASM module loaded once, untimed'),
    run: spec('qjs-run', 'quickjs-emscripten: eval("1+1")', null, null, 'evalCode + dump on a kept context (state is kept: no reset)'),
    json: spec('qjs-call-json', `quickjs-emscripten: call with a ${(argBytes / 1024).toFixed(1)} KiB JSON argument`, null, null,
      'JSON.stringify on the host, newString, callFunction of (s) => size(JSON.parse(s)), dump'),
    fib: spec('qjs-fib25', 'quickjs-emscripten: fib(25)', 'node-fib25', null, 'evalCode("fib(25)"): QuickJS compiled to WebAssembly; ratio to Node\'s JIT'),
  };
  await ctx.step('quickjs-emscripten', Q.cold, async () => {
    const mod = await import('quickjs-emscripten') as unknown as { getQuickJS(): Promise<QjsModule> };
    const qjs = await mod.getQuickJS();
    const evalDump = (c: QjsContext, code: string): unknown => {
      const h = c.unwrapResult(c.evalCode(code));
      try { return c.dump(h); } finally { h.dispose(); }
    };
    let l = ctx.loop(n.cold);
    timed(Q.cold, timeLoop(l, () => undefined, () => {
      const c = qjs.newContext();
      try { expectValue('quickjs', evalDump(c, '1+1'), 2); } finally { c.dispose(); }
    }), l.warmup);
    const c = qjs.newContext();
    try {
      evalDump(c, `${FIB}\n${SIZE}\nglobalThis.sizeOf = (s) => size(JSON.parse(s)); 0`);
      l = ctx.loop(n.run);
      timed(Q.run, timeLoop(l, () => undefined, () => { expectValue('quickjs', evalDump(c, '1+1'), 2); }), l.warmup);
      const fn = c.getProp(c.global, 'sizeOf');
      l = ctx.loop(n.json);
      timed(Q.json, timeLoop(l, () => undefined, () => {
        const s = c.newString(JSON.stringify(arg));
        try {
          const h = c.unwrapResult(c.callFunction(fn, c.undefined, s));
          try { expectValue('quickjs', c.dump(h), 100); } finally { h.dispose(); }
        } finally { s.dispose(); }
      }), l.warmup);
      fn.dispose();
      l = ctx.loop(n.fib);
      timed(Q.fib, timeLoop(l, () => undefined, () => { expectValue('quickjs', evalDump(c, 'fib(25)'), FIB25); }), l.warmup);
    } finally {
      c.dispose();
    }
  });

  // ---- isolated-vm ----
  const I = {
    cold: spec('ivm-cold', 'isolated-vm: new isolate + context + eval("1+1")', 'qjs-cold', null,
      'new Isolate({ memoryLimit: 64 }) + createContextSync + evalSync + dispose'),
    run: spec('ivm-run', 'isolated-vm: eval("1+1")', 'qjs-run', null, 'context.evalSync on a kept context'),
    json: spec('ivm-call-json', `isolated-vm: call with a ${(argBytes / 1024).toFixed(1)} KiB JSON argument`, 'qjs-call-json', null,
      'reference.applySync(undefined, [obj], { arguments: { copy: true } }) (structured clone)'),
    fib: spec('ivm-fib25', 'isolated-vm: fib(25)', 'qjs-fib25', null, 'evalSync("fib(25)"): V8 with its JIT, in its own isolate'),
  };
  await ctx.step('isolated-vm', I.cold, async () => {
    const imported = await import('isolated-vm') as unknown as { default?: IvmModule } & IvmModule;
    const ivm = imported.default ?? imported;
    let l = ctx.loop(n.cold);
    timed(I.cold, timeLoop(l, () => undefined, () => {
      const iso = new ivm.Isolate({ memoryLimit: 64 });
      try { expectValue('isolated-vm', iso.createContextSync().evalSync('1+1'), 2); } finally { iso.dispose(); }
    }), l.warmup);
    const iso = new ivm.Isolate({ memoryLimit: 64 });
    try {
      const c = iso.createContextSync();
      c.evalSync(`${FIB}\n${SIZE}\nglobalThis.size = size`);
      l = ctx.loop(n.run);
      timed(I.run, timeLoop(l, () => undefined, () => { expectValue('isolated-vm', c.evalSync('1+1'), 2); }), l.warmup);
      const size = c.global.getSync('size', { reference: true });
      l = ctx.loop(n.json);
      timed(I.json, timeLoop(l, () => undefined, () => {
        expectValue('isolated-vm', size.applySync(undefined, [arg], { arguments: { copy: true } }), 100);
      }), l.warmup);
      l = ctx.loop(n.fib);
      timed(I.fib, timeLoop(l, () => undefined, () => { expectValue('isolated-vm', c.evalSync('fib(25)'), FIB25); }), l.warmup);
    } finally {
      iso.dispose();
    }
  });

  // ---- Node's own JIT, for scale ----
  const nodeFib = spec('node-fib25', 'Node (V8 JIT, this isolate): fib(25)', null, null, 'the same function compiled by Node itself');
  await ctx.step('Node fib(25)', nodeFib, () => {
    const fib = (k: number): number => (k < 2 ? k : fib(k - 1) + fib(k - 2));
    const l = ctx.loop(n.fib * 4);
    timed(nodeFib, timeLoop(l, () => undefined, () => { expectValue('node', fib(25), FIB25); }), l.warmup);
    return Promise.resolve();
  });
  const ratio = (a: JsRowId, b: JsRowId): string => {
    const x = medians.get(a);
    const y = medians.get(b);
    return x !== undefined && y !== undefined && y > 0 ? `${(x / y).toFixed(2)}x` : 'n/a';
  };
  ctx.note(`JsSandbox against quickjs-emscripten (same run): cold start from a pool ${ratio('js-cold-pool', 'qjs-cold')}, run("1+1") ` +
    `${ratio('js-run', 'qjs-run')}, JSON call ${ratio('js-call-json', 'qjs-call-json')}, fib(25) ${ratio('js-fib25', 'qjs-fib25')}; against ` +
    `isolated-vm: ${ratio('js-cold-pool', 'ivm-cold')}, ${ratio('js-run', 'ivm-run')}, ${ratio('js-call-json', 'ivm-call-json')}, ` +
    `${ratio('js-fib25', 'ivm-fib25')}; fib(25) against Node's JIT: JsSandbox ${ratio('js-fib25', 'node-fib25')}, quickjs-emscripten ` +
    `${ratio('qjs-fib25', 'node-fib25')}.`);
  ctx.note(`JavaScript rows: the JSON argument is ${argBytes} bytes (100 records). JsSandbox runs and calls restore the loaded state after ` +
    'each one (the alternatives keep state); isolated-vm and quickjs-emscripten run in this process, JsSandbox in a worker thread that owns a VM.');
}
