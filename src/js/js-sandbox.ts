// JsSandbox: untrusted JavaScript in a micro-VM (docs/javascript.md). QuickJS runs as the guest of an AsyncSandbox; this module
// turns run/call/load into guest calls, host functions into one dispatcher, replies into values or typed errors, and keeps each
// call's starting state (restores to the last load's snapshot). It does not run the VM (src/async does).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigInvalidError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { GuestBinary } from '../sandbox/guest-binary.js';
import { UninitializedSandbox } from '../sandbox/uninitialized-sandbox.js';
import type { AsyncSandbox, AsyncSnapshot, CallOptions } from '../async/async-sandbox.js';
import { GuestProtocolError } from '../sandbox/errors.js';
import type { CallArgument } from '../sandbox/values.js';
import { ResourceClosedError } from '../kvm/errors.js';
import { KIND, decodeValue, encodeValue } from './envelope.js';
import { JsError, JsMemoryLimitError } from './errors.js';

/** A function guest code calls as `host.name(...args)`: JSON-able arguments in, a value or a Promise of one out. */
export type JsHostFunction = (...args: never[]) => unknown;

/** Options of JsSandbox.create (all optional). */
export interface JsSandboxOptions {
  /** Functions guest code can call as `host.name(...)`; each call is synchronous for the guest (it waits in a VM exit). */
  hostFunctions?: Readonly<Record<string, JsHostFunction>>;
  /** The engine's memory limit in MiB (as isolated-vm's `memoryLimit`), 1..768 (the guest heap is at most 1 GiB); default 64. Past it: JsMemoryLimitError. */
  memoryLimit?: number;
  /** Default time limit of each run/call/load in milliseconds, host-function time included; default 1000. */
  timeoutMs?: number;
  /** Receives console.log/info/warn/error/debug output of the guest (lines end in "\n"); default: process.stdout. */
  print?: (text: string) => void;
  /** Bytes each way per call (code, arguments and results as JSON), 64 KiB..64 MiB; default 1 MiB. */
  maxMessageBytes?: number;
  /** The guest's stack in KiB, 256..65536; default 1024 (JavaScript recursion deeper than it: a RangeError-like JsError). */
  stackSizeKiB?: number;
}

/** Options of one run/call/load. */
export interface JsRunOptions {
  /** Start from, and keep, the current state instead of the last load()'s. Default false. */
  keepState?: boolean;
  /** This call's time limit in milliseconds, replacing the sandbox's `timeoutMs` (which is the default). */
  timeoutMs?: number;
  /** Aborts the call (ExecutionCanceledError, reason 'aborted'). */
  signal?: AbortSignal;
}

const MIB = 1024 * 1024;

/** The path of the bundled JavaScript guest ELF (QuickJS). Throws ConfigInvalidError, saying how to build it, when it is missing. */
export function jsGuestPath(): string {
  const path = join(packageRoot(), 'guests', 'bin', 'jsguest.elf');
  if (!existsSync(path)) {
    throw new ConfigInvalidError('guest', `the JavaScript guest ${path} is missing: build it with \`npm run guests\` ` +
      '(needs gcc, musl-dev and the qjsc devDependency), or install the published package, which ships it');
  }
  return path;
}

function check(field: string, v: number | undefined, fallback: number, lo: number, hi: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new ConfigInvalidError(field, `must be an integer from ${lo} to ${hi}, got ${String(v)}`);
  }
  return v;
}

/** What JsSandbox needs to be built: the async sandbox and its settings (JsSandbox.create and JsSandboxPool make it). */
interface Parts {
  sandbox: AsyncSandbox;
  base: AsyncSnapshot;
  memoryLimit: number;
  timeoutMs: number;
}

/**
 * A JavaScript sandbox: a QuickJS engine inside its own micro-VM. Calls run one at a time in the order they are made; each
 * starts from the state of the last `load()` (a snapshot) unless `keepState` is set. Close it with `close()` or `await using`.
 */
export class JsSandbox {
  readonly #sandbox: AsyncSandbox;
  readonly #memoryLimit: number;
  readonly #timeoutMs: number;
  /** The state runs start from: after setup, then after each load(). */
  #base: AsyncSnapshot;
  /** The state at hand differs from #base (a keepState call, or a call whose restore is still to come). */
  #dirty = false;
  /** The chain that runs this sandbox's operations in order (each waits for the one before, restores included). */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(parts: Parts) {
    this.#sandbox = parts.sandbox;
    this.#base = parts.base;
    this.#memoryLimit = parts.memoryLimit;
    this.#timeoutMs = parts.timeoutMs;
  }

  /**
   * Starts a JavaScript sandbox: a worker thread with its VM, QuickJS initialised, host functions defined. Throws
   * ConfigInvalidError for bad options (a host function name must be a non-empty identifier-like string without newlines).
   */
  static async create(options: JsSandboxOptions = {}): Promise<JsSandbox> {
    return new JsSandbox(await JsSandbox.start(options));
  }

  /** @internal builds the parts of a sandbox (also used by JsSandboxPool). */
  static async start(options: JsSandboxOptions): Promise<Parts> {
    if (options === null || typeof options !== 'object') throw new ConfigInvalidError('options', 'must be an object');
    const memoryLimit = check('memoryLimit', options.memoryLimit, 64, 1, 768) * MIB;
    const timeoutMs = check('timeoutMs', options.timeoutMs, 1000, 1, 86_400_000);
    const message = check('maxMessageBytes', options.maxMessageBytes, MIB, 64 * 1024, 64 * MIB);
    const stack = check('stackSizeKiB', options.stackSizeKiB, 1024, 256, 65536) * 1024;
    const fns = new Map<string, JsHostFunction>();
    for (const [name, fn] of Object.entries(options.hostFunctions ?? {})) {
      if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new ConfigInvalidError('hostFunctions', `${JSON.stringify(name)} is not an identifier`);
      if (typeof fn !== 'function') throw new ConfigInvalidError('hostFunctions', `${name} must be a function`);
      fns.set(name, fn);
    }
    const print = options.print ?? ((text: string) => { process.stdout.write(text); });
    if (typeof print !== 'function') throw new ConfigInvalidError('print', 'must be a function');
    // The heap holds the engine's arena (memoryLimit plus its headers) and an eighth more for the guest's own results.
    const heapSize = Math.ceil((memoryLimit * 8) / 7 / 4096) * 4096 + 2 * message + 2 * MIB;
    const uninit = UninitializedSandbox.create(GuestBinary.filePath(jsGuestPath()), {
      heapSize, stackSize: stack, inputDataSize: message, outputDataSize: message,
      // Every guest call gets its own timeoutMs (so a call's may exceed the default), enforced by AsyncSandbox.
      maxExecutionTimeMs: 0, maxInitializationTimeMs: Math.max(5000, timeoutMs),
    });
    uninit.registerHostFunction('JsHost', { params: ['String', 'VecBytes'], returns: 'VecBytes' },
      (name: string, args: Uint8Array) => dispatchHostCall(fns, name, args));
    uninit.registerPrint((text) => { print(text); });
    const sandbox = await uninit.evolveAsync();
    try {
      await sandbox.callGuestFunctionByName('JsSetup', 'Int', [[...fns.keys()].join('\n'), BigInt(memoryLimit), BigInt(stack - 192 * 1024)],
        { timeoutMs: Math.max(5000, timeoutMs) });
      const base = await sandbox.snapshot();
      return { sandbox, base, memoryLimit, timeoutMs };
    } catch (e) {
      await sandbox.close();
      throw e;
    }
  }

  /** @internal wraps parts made by start() (JsSandboxPool). */
  static fromParts(parts: Parts): JsSandbox {
    return new JsSandbox(parts);
  }

  /**
   * Evaluates `code` as a script in the global scope and resolves with its completion value (as JSON plus Uint8Array; a
   * Promise is awaited inside the guest). Rejects with JsError (a throw or a syntax error), JsMemoryLimitError,
   * ExecutionCanceledError (the time limit, an abort) and the sandbox's typed errors; the sandbox serves the next call after all.
   */
  run(code: string, options: JsRunOptions = {}): Promise<unknown> {
    if (typeof code !== 'string') return Promise.reject(new ConfigInvalidError('code', 'must be a string'));
    return this.#op(options.keepState === true, options, 'JsEval', [code]);
  }

  /** Calls the global function `name` with `args` (JSON plus Uint8Array); as run() otherwise. */
  call(name: string, ...args: unknown[]): Promise<unknown> {
    return this.apply(name, args);
  }

  /** call() with options. */
  apply(name: string, args: readonly unknown[], options: JsRunOptions = {}): Promise<unknown> {
    if (typeof name !== 'string' || name.length === 0) return Promise.reject(new ConfigInvalidError('name', 'must be a non-empty string'));
    if (!Array.isArray(args)) return Promise.reject(new ConfigInvalidError('args', 'must be an array'));
    let env: Uint8Array;
    try {
      env = encodeValue(args, KIND.value, `the arguments of ${name}()`);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#op(options.keepState === true, options, 'JsCall', [name, env]);
  }

  /**
   * Evaluates `code` on the current state and makes the result the state every later run/call starts from (a snapshot).
   * A load that fails leaves the state as it was. Resolves with the completion value.
   */
  load(code: string, options: Omit<JsRunOptions, 'keepState'> = {}): Promise<unknown> {
    if (typeof code !== 'string') return Promise.reject(new ConfigInvalidError('code', 'must be a string'));
    return this.#op(true, options, 'JsEval', [code], true);
  }

  /** Closes the VM and its thread; queued calls reject with ResourceClosedError. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#sandbox.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Whether close() was called (or the sandbox's worker is gone). */
  get closed(): boolean {
    return this.#closed || this.#sandbox.status() === 'closed';
  }

  /** @internal puts the sandbox back to `snapshot` for a pool (after the chain drains). */
  reset(snapshot: AsyncSnapshot): Promise<void> {
    return this.#chain(async () => {
      if (this.#base === snapshot && !this.#dirty && !this.#sandbox.poisoned) return; // already there
      this.#base = snapshot;
      await this.#sandbox.restore(snapshot);
      this.#dirty = false;
    });
  }

  /** @internal the snapshot runs start from. */
  get base(): AsyncSnapshot {
    return this.#base;
  }

  #chain<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ResourceClosedError('JsSandbox'));
    const p = this.#tail.then(fn);
    this.#tail = p.then(() => undefined, () => undefined);
    return p;
  }

  #op(keepState: boolean, options: JsRunOptions, fn: 'JsEval' | 'JsCall', params: unknown[], load = false): Promise<unknown> {
    const callOptions: CallOptions = { timeoutMs: options.timeoutMs ?? this.#timeoutMs };
    if (options.signal !== undefined) callOptions.signal = options.signal;
    let answered!: (v: Promise<unknown>) => void;
    const result = new Promise<unknown>((resolve) => { answered = resolve; });
    // The chain's element ends after the restore that follows a call, while the caller has its answer before it (a load
    // answers once its snapshot is taken).
    void this.#chain(async () => {
      if (this.#dirty && !keepState) await this.#restoreBase();
      const outcome = this.#exchange(fn, params, callOptions);
      if (!load) answered(outcome);
      const ok = await outcome.then(() => true, () => false);
      if (load && ok) {
        await this.#sandbox.callGuestFunctionByName('JsGc', 'Long', [], { timeoutMs: callOptions.timeoutMs ?? this.#timeoutMs });
        this.#base = await this.#sandbox.snapshot();
        this.#dirty = false;
        answered(outcome);
      } else if (this.#dirty && (!keepState || load || this.#sandbox.poisoned)) {
        await this.#restoreBase();
      }
      answered(outcome);
    }).catch((e: unknown) => answered(Promise.reject(e)));
    return result;
  }

  async #restoreBase(): Promise<void> {
    await this.#sandbox.restore(this.#base);
    this.#dirty = false;
  }

  /** One guest call and its reply as a value or a typed error. */
  async #exchange(fn: string, params: unknown[], options: CallOptions): Promise<unknown> {
    this.#dirty = true;
    const bytes = await this.#sandbox.callGuestFunctionByName(fn, 'VecBytes', params as CallArgument[], options);
    const reply = decodeValue(bytes);
    if (reply.kind === KIND.value) return reply.value;
    const d = (reply.value ?? {}) as { name?: unknown; message?: unknown; stack?: unknown };
    const name = typeof d.name === 'string' && d.name !== '' ? d.name : 'Error';
    const message = typeof d.message === 'string' ? d.message : '';
    if (reply.kind === KIND.outOfMemory) {
      await this.#restoreBase(); // the engine's state after an allocation failure is not worth keeping
      throw new JsMemoryLimitError(this.#memoryLimit, `${name}: ${message}`);
    }
    if (reply.kind === KIND.exception) throw new JsError(name, message, typeof d.stack === 'string' ? d.stack : '');
    throw new GuestProtocolError(`JS guest reply of kind ${reply.kind}`);
  }
}

/** Serves one `host.name(...)` call of the guest: never throws; a failure becomes an error the guest's code can catch. */
async function dispatchHostCall(fns: ReadonlyMap<string, JsHostFunction>, name: string, args: Uint8Array): Promise<Uint8Array> {
  try {
    const fn = fns.get(name);
    if (fn === undefined) throw new ReferenceError(`host.${name} is not a host function`);
    const decoded = decodeValue(args);
    if (!Array.isArray(decoded.value)) throw new TypeError('host call arguments are not an array');
    return encodeValue(await (fn as (...a: unknown[]) => unknown)(...(decoded.value as unknown[])), KIND.value, `the result of host.${name}()`);
  } catch (e) {
    const err = e instanceof Error ? e : undefined;
    return encodeValue({ name: err?.name ?? 'Error', message: err?.message ?? String(e) }, KIND.exception, 'an error');
  }
}
