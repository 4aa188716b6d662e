// SandboxPool: sandboxes of one guest on several worker threads, a bounded queue in front
// of them, each call on a sandbox put back to its post-init state; poisoned sandboxes are
// restored and crashed workers replaced without the callers noticing beyond their own error.
import os from 'node:os';
import { ConfigInvalidError, HyperlightError } from '../errors.js';
import { type ExitlessOptions, exitlessModeOf } from '../exitless/exitless-sandbox.js';
import { ResourceClosedError } from '../kvm/errors.js';
import type { SandboxConfig } from '../sandbox/config.js';
import { ExecutionCanceledError, SandboxBusyError } from '../sandbox/errors.js';
import type { GuestBinary } from '../sandbox/guest-binary.js';
import type { HostFunction, HostFunctionSignature } from '../sandbox/host-functions.js';
import { type PrintFunction, UninitializedSandbox } from '../sandbox/uninitialized-sandbox.js';
import { type GuestFunctionSignature, argumentsFor } from '../sandbox/guest-functions.js';
import { type CallArgument, type PlainOf, type PlainValue, type ReturnTypeName, type TypedValue, parseReturnTypeName } from '../sandbox/values.js';
import { AsyncSandbox, type AsyncSandboxParts, type CallOptions, pollMsOf } from './async-sandbox.js';
import { publishWorker } from './diagnostics.js';
import { PoolBusyError } from './errors.js';
import { insideHostFunctionOf } from './host-bridge.js';
import { LatencyRing, type LatencySummary } from './latency.js';

/** A host function for a pool: its signature and implementation (it may be async). */
export interface PoolHostFunction extends HostFunctionSignature {
  /** Takes the plain values of `params` and returns one of `returns` (checked at run time). */
  fn: (...args: never[]) => unknown;
}

export interface SandboxPoolOptions {
  /** The guest: a GuestBinary, an ELF file path or the ELF bytes. */
  guest: GuestBinary | string | Uint8Array;
  config?: SandboxConfig;
  /**
   * Worker threads, one sandbox each (1..256; default `os.availableParallelism()`, with
   * `exitless` half that, at least 1).
   */
  workers?: number;
  /** `{ Name: { params, returns, fn } }`; `fn` runs on the main thread and may return a Promise. */
  hostFunctions?: Readonly<Record<string, PoolHostFunction>>;
  /** Guest print output (default: stdout). */
  print?: PrintFunction;
  /** Restore each sandbox to its post-init snapshot after every call (default true). */
  restoreAfterEachCall?: boolean;
  /** Calls that may wait for a free sandbox (default 1024); more reject with PoolBusyError. */
  maxQueue?: number;
  /**
   * Run every sandbox in exitless mode (docs/exitless.md): `true` or the options of
   * `evolve({ exitless })`. Each busy sandbox then keeps a core spinning for its vCPU (up to
   * `spinUs` after its last call) and its worker polls for answers up to `hostSpinUs`, so
   * `workers` defaults to half the CPUs. Default false.
   */
  exitless?: ExitlessOptions | boolean;
  /**
   * How long the main thread polls for each call's answer from its event loop before it
   * waits for the worker's wake-up, in microseconds (default 500; 0: never). It polls only
   * while the running calls leave a CPU free for it (docs/async.md).
   */
  pollUs?: number;
}

export interface PoolStats {
  /** Live sandboxes (worker threads). */
  workers: number;
  /** Sandboxes running a call. */
  busy: number;
  /** Calls waiting for a sandbox. */
  queued: number;
  /** Finished calls (successful or not). */
  calls: number;
  ok: number;
  /** Failed calls by error code (ERR_UNKNOWN: not a library error). */
  errors: Record<string, number>;
  /** Workers started to replace crashed or broken ones. */
  replacedWorkers: number;
  /** Wall time per call in ms, queueing included, over the most recent calls. */
  latencyMs: LatencySummary;
}

interface Slot {
  sandbox: AsyncSandbox;
  busy: boolean;
  /** The sandbox is dead (crashed) and not yet replaced. */
  dead: boolean;
}

interface Pending {
  name: string;
  returnType: ReturnTypeName | string;
  params: readonly unknown[];
  options: CallOptions;
  queuedAt: number;
  resolve: (v: PlainValue) => void;
  reject: (e: unknown) => void;
  onAbort: (() => void) | undefined;
}

const KNOWN = new Set(['guest', 'config', 'workers', 'hostFunctions', 'print', 'restoreAfterEachCall', 'maxQueue', 'exitless', 'pollUs']);
/** Attempts to start a replacement for a crashed worker before giving up on its slot. */
const REPLACE_ATTEMPTS = 3;
const REPLACE_BACKOFF_MS = 200;

let nextPoolId = 1;

/**
 * Sandboxes of one guest on `workers` threads behind one queue. Create with
 * `await SandboxPool.create(options)`; `call()` and `callGuestFunctionByName()` run on
 * whichever sandbox is free; `await close()` frees everything.
 */
export class SandboxPool {
  readonly #parts: AsyncSandboxParts;
  readonly #declared: ReadonlyMap<string, GuestFunctionSignature>;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  readonly #maxQueue: number;
  readonly #restoreAfter: boolean;
  readonly #latency = new LatencyRing();
  readonly #errors: Record<string, number> = {};
  #calls = 0;
  #ok = 0;
  #replaced = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #idleWaiters: (() => void)[] = [];
  /** Why the last replacement failed (given to queued calls when no sandbox is left). */
  #replaceError: unknown;
  readonly id = nextPoolId++;

  private constructor(parts: AsyncSandboxParts, maxQueue: number, restoreAfter: boolean) {
    this.#parts = parts;
    this.#declared = new Map(parts.functions.map((f) => [f.name, f]));
    this.#maxQueue = maxQueue;
    this.#restoreAfter = restoreAfter;
  }

  /**
   * Validates the guest and options, starts the workers and waits until every sandbox has
   * run its guest init.
   * @throws (rejects with) ConfigInvalidError, ElfInvalidError, or the typed error of a
   *   failed guest init; no worker is left running.
   */
  static async create(options: SandboxPoolOptions): Promise<SandboxPool> {
    const { uninit, workers, maxQueue, restoreAfter, exitless, pollMs } = validate(options);
    const pool = new SandboxPool({ ...uninit.asyncParts(false, exitless), pollMs }, maxQueue, restoreAfter);
    const started = await Promise.allSettled(Array.from({ length: workers }, () => pool.#start()));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(pool.#slots.map((s) => s.sandbox.close()));
      throw failed.reason;
    }
    return pool;
  }

  /** Sandboxes being started (close() waits for them too). */
  readonly #starting = new Set<Promise<unknown>>();

  #start(): Promise<Slot> {
    const started = (async (): Promise<Slot> => {
      const slot: Slot = { sandbox: undefined as unknown as AsyncSandbox, busy: false, dead: false };
      slot.sandbox = await AsyncSandbox.start(this.#parts, {
        owner: this, poolId: this.id, onCrash: () => this.#onCrash(slot),
      });
      this.#slots.push(slot);
      return slot;
    })();
    this.#starting.add(started);
    return started.finally(() => { this.#starting.delete(started); });
  }

  /** Calls guest function `name` with plain JS arguments on a free sandbox. */
  call<R extends ReturnTypeName>(name: string, returnType: R, ...args: CallArgument[]): Promise<PlainOf<R>> {
    try {
      return this.callGuestFunctionByName(name, returnType, argumentsFor(this.#declared, name, parseReturnTypeName(returnType), args));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Calls guest function `name` with ParameterValues (or plain values) on a free sandbox,
   * or queues it. Rejects at once with PoolBusyError when the queue is full, with
   * ExecutionCanceledError when `options.signal` is already aborted (nothing runs), with
   * SandboxBusyError from inside one of this pool's host functions.
   */
  callGuestFunctionByName<R extends ReturnTypeName>(name: string, returnType: R,
    params: readonly (TypedValue | CallArgument)[] = [], options: CallOptions = {}): Promise<PlainOf<R>> {
    return this.#callByName(name, returnType, params, options) as Promise<PlainOf<R>>;
  }

  #callByName(name: string, returnType: ReturnTypeName,
    params: readonly (TypedValue | CallArgument)[], options: CallOptions): Promise<PlainValue> {
    if (this.#closed) return Promise.reject(new ResourceClosedError('SandboxPool'));
    if (options?.signal?.aborted) {
      return Promise.reject(new ExecutionCanceledError('aborted', ' before the call started', { cause: options.signal.reason }));
    }
    if (insideHostFunctionOf(this)) return Promise.reject(new SandboxBusyError());
    const slot = this.#slots.find((s) => !s.busy && !s.dead);
    if (slot === undefined && this.#queue.length >= this.#maxQueue) return this.#count(Promise.reject(new PoolBusyError(this.#maxQueue)));
    return new Promise<PlainValue>((resolve, reject) => {
      const p: Pending = { name, returnType, params, options, queuedAt: performance.now(), resolve, reject, onAbort: undefined };
      if (slot !== undefined) {
        this.#run(slot, p);
        return;
      }
      const signal = options?.signal;
      if (signal) {
        p.onAbort = () => {
          const i = this.#queue.indexOf(p);
          if (i < 0) return;
          this.#queue.splice(i, 1);
          this.#finish(p, new ExecutionCanceledError('aborted', ' while queued', { cause: signal.reason }), false);
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#queue.push(p);
    });
  }

  #run(slot: Slot, p: Pending): void {
    slot.busy = true;
    if (p.onAbort) p.options.signal!.removeEventListener('abort', p.onAbort);
    const sandbox = slot.sandbox;
    const restoreAfter = this.#restoreAfter ? sandbox.initialSnapshot.id : 0;
    sandbox.runCall(p.name, p.returnType, p.params, p.options, restoreAfter, p.queuedAt).then(
      (v) => { this.#finish(p, v, true); this.#release(slot); },
      (e) => { this.#finish(p, e, false); this.#release(slot); },
    );
  }

  #finish(p: Pending, value: unknown, ok: boolean): void {
    this.#latency.add(performance.now() - p.queuedAt);
    this.#calls++;
    if (ok) {
      this.#ok++;
      p.resolve(value as PlainValue);
    } else {
      this.#countError(value);
      p.reject(value);
    }
  }

  #countError(e: unknown): void {
    const code = e instanceof HyperlightError ? e.code : 'ERR_UNKNOWN';
    this.#errors[code] = (this.#errors[code] ?? 0) + 1;
  }

  #count<T>(p: Promise<T>): Promise<T> {
    return p.catch((e: unknown) => {
      this.#countError(e);
      throw e;
    });
  }

  /** After a call: put a poisoned sandbox back (when calls do not restore anyway), then serve the queue. */
  #release(slot: Slot): void {
    if (slot.dead) return; // #onCrash replaces it
    if (!this.#restoreAfter && slot.sandbox.poisoned) {
      slot.sandbox.restore(slot.sandbox.initialSnapshot).then(() => this.#free(slot), () => {
        // Restore itself failed: the sandbox is unusable; close it and start another.
        this.#retire(slot, 'restore-failed');
      });
      return;
    }
    this.#free(slot);
  }

  #free(slot: Slot): void {
    slot.busy = false;
    const next = this.#queue.shift();
    if (next !== undefined) {
      this.#run(slot, next);
      return;
    }
    this.#notifyIdle();
  }

  /** Wakes a draining close() once nothing runs and nothing waits. */
  #notifyIdle(): void {
    if (this.#queue.length === 0 && this.#slots.every((s) => !s.busy)) for (const w of this.#idleWaiters.splice(0)) w();
  }

  #onCrash(slot: Slot): void {
    if (slot.dead) return;
    this.#retire(slot, 'crashed');
  }

  /** Drops `slot` and, unless the pool is closing, starts a replacement. */
  #retire(slot: Slot, reason: 'crashed' | 'restore-failed'): void {
    slot.dead = true;
    slot.busy = false;
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    void slot.sandbox.close();
    // Once closing, a replacement is needed only to drain a queue no other sandbox serves.
    if (this.#closed && (this.#queue.length === 0 || this.#slots.length > 0)) {
      this.#notifyIdle();
      return;
    }
    void this.#replace(reason, 1);
  }

  async #replace(reason: 'crashed' | 'restore-failed', attempt: number): Promise<void> {
    try {
      const slot = await this.#start();
      this.#replaced++;
      publishWorker({ event: 'replaced', sandboxId: slot.sandbox.id, threadId: slot.sandbox.threadId, poolId: this.id, reason });
      this.#free(slot); // serves the queue (also while close() drains it); close() closes the sandbox
    } catch (e) {
      this.#replaceError = e;
      if (attempt < REPLACE_ATTEMPTS && (!this.#closed || this.#queue.length > 0)) {
        setTimeout(() => { void this.#replace(reason, attempt + 1); }, REPLACE_BACKOFF_MS * attempt).unref();
        return;
      }
      if (this.#slots.length === 0) {
        // No sandbox left to serve the queue: fail it rather than leave it waiting forever.
        for (const p of this.#queue.splice(0)) this.#finish(p, this.#replaceError, false);
        this.#notifyIdle();
      }
    }
  }

  /** @internal the live sandboxes, for tests that stop a worker from outside. */
  get sandboxes(): readonly AsyncSandbox[] {
    return this.#slots.map((s) => s.sandbox);
  }

  /** Counts, queue length and latency percentiles. */
  stats(): PoolStats {
    return {
      workers: this.#slots.length,
      busy: this.#slots.filter((s) => s.busy).length,
      queued: this.#queue.length,
      calls: this.#calls,
      ok: this.#ok,
      errors: { ...this.#errors },
      replacedWorkers: this.#replaced,
      latencyMs: this.#latency.summary(),
    };
  }

  /**
   * Stops accepting calls and frees every worker and VM; idempotent. With `drain` (the
   * default) queued and running calls finish first; with `drain: false` queued calls
   * reject with ResourceClosedError and running ones are killed (ExecutionCanceledError).
   */
  close(options: { drain?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#close(options.drain !== false);
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(drain: boolean): Promise<void> {
    this.#closed = true;
    if (!drain) {
      const closed = new ResourceClosedError('SandboxPool');
      for (const p of this.#queue.splice(0)) this.#finish(p, closed, false);
    }
    if (drain && (this.#slots.some((s) => s.busy) || this.#queue.length > 0)) {
      await new Promise<void>((resolve) => { this.#idleWaiters.push(resolve); });
    }
    await Promise.allSettled([...this.#starting]); // a replacement on its way joins #slots first
    await Promise.all(this.#slots.splice(0).map((s) => s.sandbox.close()));
  }
}

function validate(options: SandboxPoolOptions): {
  uninit: UninitializedSandbox; workers: number; maxQueue: number; restoreAfter: boolean; exitless: Required<ExitlessOptions> | undefined;
  pollMs: number;
} {
  if (options === null || typeof options !== 'object') throw new ConfigInvalidError('options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new ConfigInvalidError(key, `unknown SandboxPool option; known: ${[...KNOWN].join(', ')}`);
  }
  const exitless = exitlessModeOf(options.exitless);
  const pollMs = pollMsOf(options.pollUs);
  // A busy exitless sandbox keeps two threads spinning (its vCPU, and its worker waiting on the
  // mailbox): by default half as many as there are CPUs (docs/exitless.md "Pool and async").
  const workers = options.workers ?? (exitless ? Math.max(1, Math.floor(os.availableParallelism() / 2)) : os.availableParallelism());
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 256) {
    throw new ConfigInvalidError('workers', `must be an integer from 1 to 256, got ${String(workers)}`);
  }
  const maxQueue = options.maxQueue ?? 1024;
  if (maxQueue !== Infinity && (!Number.isSafeInteger(maxQueue) || maxQueue < 0)) {
    throw new ConfigInvalidError('maxQueue', `must be a non-negative integer or Infinity, got ${String(maxQueue)}`);
  }
  const restoreAfter = options.restoreAfterEachCall ?? true;
  if (typeof restoreAfter !== 'boolean') throw new ConfigInvalidError('restoreAfterEachCall', 'must be a boolean');
  const uninit = UninitializedSandbox.create(options.guest, options.config);
  const hosts = options.hostFunctions ?? {};
  if (hosts === null || typeof hosts !== 'object') throw new ConfigInvalidError('hostFunctions', 'must be an object of { params, returns, fn }');
  for (const [name, h] of Object.entries(hosts)) {
    if (h === null || typeof h !== 'object') throw new ConfigInvalidError(`hostFunctions.${name}`, 'must be { params, returns, fn }');
    uninit.registerHostFunction(name, { params: h.params, returns: h.returns }, h.fn as HostFunction); // the registry checks values at run time
  }
  if (options.print !== undefined) uninit.registerPrint(options.print);
  return { uninit, workers, maxQueue, restoreAfter, exitless, pollMs };
}
