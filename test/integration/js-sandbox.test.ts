// JsSandbox on real KVM: QuickJS in a micro-VM. Values both ways (JSON and bytes), host functions (sync, async, throwing),
// console output, load/keepState semantics, time and memory limits, JS exceptions, and the pool.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsSandbox } from '../../src/js/js-sandbox.js';
import { JsSandboxPool } from '../../src/js/js-pool.js';
import { JsError, JsMemoryLimitError, JsValueError } from '../../src/js/errors.js';
import { ExecutionCanceledError } from '../../src/sandbox/errors.js';
import { ConfigInvalidError } from '../../src/errors.js';
import { ResourceClosedError } from '../../src/kvm/errors.js';
import { describeKvm } from '../helpers/kvm.js';

/** Resolves with the rejection of `p` (fails when it fulfils). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then((v) => { throw new Error(`expected a rejection, got ${JSON.stringify(v)}`); }, (e: unknown) => e);
}

describeKvm('JsSandbox', () => {
  let js: JsSandbox;
  const printed: string[] = [];
  const hostCalls: unknown[][] = [];

  beforeAll(async () => {
    js = await JsSandbox.create({
      timeoutMs: 2000,
      memoryLimit: 8,
      print: (t) => { printed.push(t); },
      hostFunctions: {
        double: (x: number) => { hostCalls.push([x]); return x * 2; },
        later: async (v: unknown) => { await new Promise((r) => setTimeout(r, 5)); return { got: v }; },
        fail: () => { throw new RangeError('no such record'); },
        hang: () => new Promise(() => undefined),
      },
    });
  }, 120_000);
  afterAll(async () => { await js?.close(); });

  it('run() returns the completion value as JSON values', async () => {
    expect(await js.run('1 + 1')).toBe(2);
    expect(await js.run('({ a: [1, "two", null, true], b: { c: 1.5 } })')).toEqual({ a: [1, 'two', null, true], b: { c: 1.5 } });
    expect(await js.run('undefined')).toBeUndefined();
    expect(await js.run('"\\u00e9\\u{1F600}"')).toBe('\u00e9\u{1F600}');
    expect(await js.run('typeof globalThis.process')).toBe('undefined');
  });

  it('Uint8Array crosses as bytes both ways, also inside objects', async () => {
    await js.load('function swap(o) { return { bytes: o.bytes.reverse(), n: o.bytes.length, isU8: o.bytes instanceof Uint8Array } }');
    const r = await js.call('swap', { bytes: new Uint8Array([1, 2, 3, 250]) }) as { bytes: Uint8Array; n: number; isU8: boolean };
    expect(r.bytes).toBeInstanceOf(Uint8Array);
    expect([...r.bytes]).toEqual([250, 3, 2, 1]);
    expect(r.n).toBe(4);
    expect(r.isU8).toBe(true);
    expect([...await js.run('new Uint8Array([7, 8]).subarray(1)') as Uint8Array]).toEqual([8]);
  });

  it('host functions are synchronous for the guest; async ones are awaited; their throws are catchable errors', async () => {
    hostCalls.length = 0;
    expect(await js.run('host.double(21) + 1')).toBe(43);
    expect(hostCalls).toEqual([[21]]);
    expect(await js.run('host.later(new Uint8Array([9]))')).toEqual({ got: new Uint8Array([9]) });
    expect(await js.run('try { host.fail(); "no" } catch (e) { [e.name, e.message] }')).toEqual(['RangeError', 'no such record']);
    expect(await js.run('Object.keys(host).sort()')).toEqual(['double', 'fail', 'hang', 'later']);
    // A value JSON cannot carry fails inside the guest as a TypeError, catchable there.
    expect(await js.run('try { host.double(10n) } catch (e) { e.name }')).toBe('TypeError');
  });

  it('console.log reaches the print hook', async () => {
    printed.length = 0;
    await js.run('console.log("hello", 42, { a: 1 }, [2]); console.error("err")');
    expect(printed.join('')).toBe('hello 42 {"a":1} [2]\nerr\n');
  });

  it('each run starts from the last load(); keepState keeps state', async () => {
    await js.load('var n = 0; function bump() { return ++n }');
    expect(await js.call('bump')).toBe(1);
    expect(await js.call('bump')).toBe(1);
    expect(await js.run('bump()', { keepState: true })).toBe(1);
    expect(await js.run('bump()', { keepState: true })).toBe(2);
    expect(await js.run('n')).toBe(0); // back to the loaded state
    expect(await js.apply('bump', [], { keepState: true })).toBe(1);
    await js.load('n += 100'); // on top of the kept state
    expect(await js.call('bump')).toBe(102);
    // Concurrent calls run in order, each from the loaded state.
    expect(await Promise.all([js.call('bump'), js.call('bump'), js.run('n')])).toEqual([102, 102, 101]);
  });

  it('a failed load leaves the state as it was', async () => {
    await js.load('var kept = 1');
    const e = await rejection(js.load('kept = 2; undefinedFunction()'));
    expect(e).toBeInstanceOf(JsError);
    expect(await js.run('kept')).toBe(1);
  });

  it('a thrown error rejects with JsError carrying the guest name, message and stack', async () => {
    const e = await rejection(js.run('function inner() { throw new TypeError("bad input") }\ninner()')) as JsError;
    expect(e).toBeInstanceOf(JsError);
    expect(e.code).toBe('ERR_JS_EXCEPTION');
    expect(e.jsName).toBe('TypeError');
    expect(e.jsMessage).toBe('bad input');
    expect(e.message).toBe('TypeError: bad input');
    expect(e.jsStack).toContain('at inner (<sandbox>');
    expect(e.jsStack).toContain('at <eval> (<sandbox>:2)');
    const custom = await rejection(js.run('class MyErr extends Error { constructor() { super("m"); this.name = "MyErr" } }; throw new MyErr()')) as JsError;
    expect([custom.jsName, custom.jsMessage]).toEqual(['MyErr', 'm']);
    const plain = await rejection(js.run('throw 42')) as JsError;
    expect([plain.jsName, plain.jsMessage]).toEqual(['Error', '42']);
    // An uncaught host-function error names the host's error.
    const host = await rejection(js.run('host.fail()')) as JsError;
    expect([host.jsName, host.jsMessage]).toEqual(['RangeError', 'no such record']);
    expect(await js.run('2 + 2')).toBe(4);
  });

  it('syntax errors and missing functions reject with JsError', async () => {
    const e = await rejection(js.run('let x = {')) as JsError;
    expect(e).toBeInstanceOf(JsError);
    expect(e.jsName).toBe('SyntaxError');
    const missing = await rejection(js.call('noSuchFunction', 1)) as JsError;
    expect(missing.jsName).toBe('TypeError');
    expect(missing.jsMessage).toContain('noSuchFunction is not a function');
  });

  it('Promises returned by guest code are settled inside the guest', async () => {
    expect(await js.run('(async () => { await null; return host.double(4) })()')).toBe(8);
    const e = await rejection(js.run('Promise.reject(new SyntaxError("later"))')) as JsError;
    expect([e.jsName, e.jsMessage]).toEqual(['SyntaxError', 'later']);
    const pending = await rejection(js.run('new Promise(() => {})')) as JsError;
    expect(pending.jsMessage).toContain('did not settle');
  });

  it('an infinite loop is stopped by the time limit and the sandbox serves the next call', async () => {
    const e = await rejection(js.run('for (;;) {}', { timeoutMs: 100 })) as ExecutionCanceledError;
    expect(e).toBeInstanceOf(ExecutionCanceledError);
    expect(e.reason).toBe('timeout');
    expect(await js.run('1 + 2')).toBe(3);
    // Also under keepState: the state goes back to the last load.
    await js.load('var counter = 5');
    await js.run('counter++', { keepState: true });
    await rejection(js.run('while (true) counter++', { keepState: true, timeoutMs: 100 }));
    expect(await js.run('counter', { keepState: true })).toBe(5);
    // A host function that never settles is stopped by the same limit.
    const hung = await rejection(js.run('host.hang()', { timeoutMs: 100 }));
    expect(hung).toBeInstanceOf(ExecutionCanceledError);
    expect(await js.run('"alive"')).toBe('alive');
  });

  it('a call\'s timeoutMs may exceed the sandbox\'s default', async () => {
    // 2.5 s of work against the sandbox's 2 s default: the call's own 20 s limit applies.
    expect(await js.run('const t = Date.now(); while (Date.now() - t < 2500) {} "done"', { timeoutMs: 20_000 })).toBe('done');
  });

  it('Math.random is seeded per call from the host (not repeated after each restore); Atomics.wait cannot block', async () => {
    const a = await js.run('[Math.random(), Math.random()]') as number[];
    const b = await js.run('[Math.random(), Math.random()]') as number[];
    expect(a[0]).not.toBe(b[0]);
    for (const x of [...a, ...b]) expect(x >= 0 && x < 1).toBe(true);
    const e = await rejection(js.run('Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)')) as JsError;
    expect(e).toBeInstanceOf(JsError);
  });

  it('an AbortSignal cancels a call', async () => {
    const ac = new AbortController();
    const p = js.run('for (;;) {}', { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user')), 50);
    const e = await rejection(p) as ExecutionCanceledError;
    expect(e.reason).toBe('aborted');
    expect(await js.run('7')).toBe(7);
  });

  it('memory exhaustion is a typed error, not a poisoned host', async () => {
    const e = await rejection(js.run('const a = []; for (;;) a.push(new Array(1000).fill(a.length))', { timeoutMs: 20_000 })) as JsMemoryLimitError;
    expect(e).toBeInstanceOf(JsMemoryLimitError);
    expect(e.code).toBe('ERR_JS_OUT_OF_MEMORY');
    expect(e.memoryLimit).toBe(8 * 1024 * 1024);
    expect(await js.run('[1, 2].length')).toBe(2);
    // Deep recursion is the engine's own stack check (a JsError), not a crash.
    const deep = await rejection(js.run('function r() { return r() + 1 } r()')) as JsError;
    expect(deep).toBeInstanceOf(JsError);
    expect(deep.jsMessage).toBe('stack overflow');
    expect(await js.run('"ok"')).toBe('ok');
  });

  it('values that cannot cross are JsValueError; bad options are ConfigInvalidError', async () => {
    await js.load('function id(x) { return x }');
    expect(await rejection(js.call('id', 1n))).toBeInstanceOf(JsValueError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(await rejection(js.call('id', cyclic))).toBeInstanceOf(JsValueError);
    expect(await js.call('id', { big: 'x'.repeat(100_000) })).toEqual({ big: 'x'.repeat(100_000) });
    await expect(JsSandbox.create({ memoryLimit: 0 })).rejects.toBeInstanceOf(ConfigInvalidError);
    await expect(JsSandbox.create({ hostFunctions: { 'a b': () => 1 } })).rejects.toBeInstanceOf(ConfigInvalidError);
    // A guest result BigInt cannot be JSON either: a TypeError from the guest's JSON.stringify.
    expect((await rejection(js.run('10n')) as JsError).jsName).toBe('TypeError');
  });
});

describeKvm('JsSandboxPool', () => {
  it('hands out loaded sandboxes and takes them back in the template state', async () => {
    const pool = await JsSandboxPool.create({ size: 2, code: 'var hits = 0; function hit() { return ++hits }', print: () => undefined });
    try {
      const a = await pool.acquire();
      const b = await pool.acquire();
      expect(a).not.toBe(b);
      expect(await a.call('hit')).toBe(1);
      await a.run('hit()', { keepState: true });
      expect(await a.run('hits', { keepState: true })).toBe(1);
      await pool.release(a);
      const waited = pool.acquire(); // the pool is empty: waits for a release
      await pool.release(b);
      const c = await waited;
      expect(await c.run('hits', { keepState: true })).toBe(0);
      await pool.release(c);
      expect(pool.idle).toBe(2);
      // A sandbox closed by its user is replaced.
      const d = await pool.acquire();
      await d.close();
      await pool.release(d);
      const e = await pool.acquire();
      const f = await pool.acquire();
      expect(await e.call('hit')).toBe(1);
      expect(await f.call('hit')).toBe(1);
      await expect(pool.release(await JsSandbox.create({ print: () => undefined }).then(async (x) => { await x.close(); return x; })))
        .rejects.toBeInstanceOf(ConfigInvalidError);
    } finally {
      await pool.close();
    }
    await expect(pool.acquire()).rejects.toBeInstanceOf(ResourceClosedError);
  }, 120_000);
});

describeKvm('README', () => {
  it('the "JavaScript in a micro-VM" block runs and prints what its comments say', () => {
    const root = resolve(import.meta.dirname, '../..');
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /```js\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## JavaScript in a micro-VM')))?.[1];
    expect(block).toContain('JsSandbox.create');
    const dir = join(root, 'test', '.generated');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'readme-js.mjs'), block!);
    const r = spawnSync(process.execPath, [join(dir, 'readme-js.mjs')], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('2\n41\nERR_EXECUTION_CANCELED\nTypeError\n');
  });
});

describe('JsSandbox options (no KVM needed)', () => {
  it('refuses bad options before starting anything', async () => {
    await expect(JsSandbox.create({ timeoutMs: -1 })).rejects.toBeInstanceOf(ConfigInvalidError);
    await expect(JsSandbox.create({ maxMessageBytes: 1 })).rejects.toBeInstanceOf(ConfigInvalidError);
    await expect(JsSandboxPool.create({ size: 0 })).rejects.toBeInstanceOf(ConfigInvalidError);
  });
});
