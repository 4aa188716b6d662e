// What a Node user would pick instead of a micro-VM, timed in the same run: isolated-vm,
// quickjs-emscripten, node:vm, worker_threads. The first two are optional devDependencies,
// imported dynamically and narrowed from `unknown`; a missing one is skipped with a note.
import { Worker } from 'node:worker_threads';
import * as nodeVm from 'node:vm';
import { type LoopOptions, timeLoop, timeLoopAsync } from './stats.js';

/** The script each alternative evaluates: the same echo of a short string as the guest's Echo. */
export const ECHO_SCRIPT = '((s) => s)("hi")';

export type AlternativeResult = { samples: Float64Array; note: string } | { skipped: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null;
}

async function importOptional(name: string): Promise<unknown> {
  try {
    // A variable specifier: tsc must not require the optional package's types to build.
    const mod: unknown = await import(name);
    return mod;
  } catch (e) {
    throw new Error(`${name} is not installed (${(e as { code?: unknown } | null)?.code ?? 'import failed'}); npm install --save-dev ${name}`);
  }
}

function methodOf(obj: unknown, name: string): (...args: unknown[]) => unknown {
  if (!isObject(obj)) throw new Error(`expected an object with ${name}()`);
  const fn = obj[name];
  if (typeof fn !== 'function') throw new Error(`expected ${name}() on the object`);
  return (...args: unknown[]) => Reflect.apply(fn, obj, args);
}

/** isolated-vm 5: new Isolate (8 MiB limit) + context + eval + dispose. */
export async function isolatedVm(opts: LoopOptions): Promise<AlternativeResult> {
  let Isolate: new (options: unknown) => unknown;
  try {
    const mod = await importOptional('isolated-vm');
    const root = isObject(mod) && isObject(mod.default) ? mod.default : mod;
    const ctor = isObject(root) ? root.Isolate : undefined;
    if (typeof ctor !== 'function') throw new Error('isolated-vm has no Isolate constructor');
    Isolate = ctor as new (options: unknown) => unknown;
  } catch (e) {
    return { skipped: (e as Error).message };
  }
  const samples = timeLoop(opts, () => undefined, () => {
    const isolate = new Isolate({ memoryLimit: 8 });
    try {
      const context = methodOf(isolate, 'createContextSync')();
      const r = methodOf(context, 'evalSync')(ECHO_SCRIPT);
      if (r !== 'hi') throw new Error(`isolated-vm returned ${String(r)}`);
    } finally {
      methodOf(isolate, 'dispose')();
    }
  });
  return { samples, note: 'new Isolate({ memoryLimit: 8 }) + createContextSync + evalSync + dispose' };
}

/** quickjs-emscripten: new context (with its own runtime) + evalCode + dispose; the WASM module loads once, untimed. */
export async function quickJs(opts: LoopOptions): Promise<AlternativeResult> {
  let quickjs: unknown;
  let loadMs: number;
  try {
    const mod = await importOptional('quickjs-emscripten');
    const t0 = performance.now();
    quickjs = await methodOf(mod, 'getQuickJS')();
    loadMs = performance.now() - t0;
  } catch (e) {
    return { skipped: (e as Error).message };
  }
  const newContext = methodOf(quickjs, 'newContext');
  const samples = timeLoop(opts, () => undefined, () => {
    const ctx = newContext();
    try {
      const result = methodOf(ctx, 'evalCode')(ECHO_SCRIPT);
      const handle = methodOf(ctx, 'unwrapResult')(result);
      const value = methodOf(ctx, 'dump')(handle);
      methodOf(handle, 'dispose')();
      if (value !== 'hi') throw new Error(`quickjs returned ${String(value)}`);
    } finally {
      methodOf(ctx, 'dispose')();
    }
  });
  return { samples, note: `newContext + evalCode + dump + dispose; WASM module load ${loadMs.toFixed(1)} ms once, untimed` };
}

/** node:vm: new context + runInContext (no dispose; the context is garbage). */
export function nodeVmContext(opts: LoopOptions): AlternativeResult {
  const samples = timeLoop(opts, () => undefined, () => {
    const ctx = nodeVm.createContext({});
    const r: unknown = nodeVm.runInContext(ECHO_SCRIPT, ctx);
    if (r !== 'hi') throw new Error(`node:vm returned ${String(r)}`);
  });
  return { samples, note: 'vm.createContext({}) + vm.runInContext; not a security boundary' };
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (s) => parentPort.postMessage(s));
`;

/** worker_threads: spawn + one message echoed back + terminate. */
export async function workerThread(opts: LoopOptions): Promise<AlternativeResult> {
  const samples = await timeLoopAsync(opts, async () => {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    try {
      const reply = await new Promise<unknown>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.postMessage('hi');
      });
      if (reply !== 'hi') throw new Error(`worker replied ${String(reply)}`);
    } finally {
      await worker.terminate();
    }
  });
  return { samples, note: 'new Worker(eval) + postMessage + reply + terminate (awaited)' };
}
