// AsyncSandbox: a sandbox whose vCPU runs in a worker thread that owns the VM, driven with
// Promises from the main thread (over the shared channel of channel.ts), where its host
// functions run. Cancellation by AbortSignal, per-call time limits covering host time,
// crash handling.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { ConfigInvalidError, HyperlightError } from '../errors.js';
import { ResourceClosedError } from '../kvm/errors.js';
import { schedYield } from '../kvm/libc.js';
import { libraryDir } from '../package-root.js';
import { type ResolvedConfig, configOf } from '../sandbox/config.js';
import {
  ExecutionCanceledError, GuestError, SandboxBusyError, SnapshotIncompatibleError,
} from '../sandbox/errors.js';
import { HOST_ERROR_CODE } from '../sandbox/host-functions.js';
import { type FromSnapshotOptions, type SnapshotHostFunctions, snapshotSandboxParts } from '../sandbox/from-snapshot.js';
import type { ExitlessOptions } from '../exitless/exitless-sandbox.js';
import type { MapRegionOptions } from '../sandbox/mapped-regions.js';
import type { Snapshot } from '../sandbox/snapshot.js';
import { encodeSnapshotFile } from '../sandbox/snapshot-file.js';
import { InterruptHandle } from '../sandbox/interrupt.js';
import { type GuestFunctionSignature, argumentsFor } from '../sandbox/guest-functions.js';
import {
  type CallArgument, type PlainOf, type PlainValue, type ReturnTypeName, type TypedValue, fromPlain, parseReturnTypeName,
} from '../sandbox/values.js';
import { errorCodeOf, newSandboxId } from '../sandbox/diagnostics.js';
import { type CallRecord, callChannel, publishWorker } from './diagnostics.js';
import { WorkerCrashedError } from './errors.js';
import { HostBridge, type HostSide, insideHostFunctionOf } from './host-bridge.js';
import { type VmResources, releaseOrphaned } from './reclaim.js';
import { CTL_CANCEL, CTL_CLOSING, Doorbell, MainEnd, type Up, channelBytes } from './channel.js';
import {
  type FromWorker, type HostReply, type HostSignature, type ToWorker, type WorkerInit, fromWire, setCause,
} from './wire.js';

/** Options of one asynchronous call. */
export interface CallOptions {
  /** Aborting it stops the call: ExecutionCanceledError (reason 'aborted', `cause` = `signal.reason`). */
  signal?: AbortSignal;
  /**
   * Wall-clock limit in milliseconds from the moment the call starts running (queueing not
   * included), host-function time included: ExecutionCanceledError (reason 'timeout').
   * The sandbox's `maxExecutionTimeMs` applies the same way; the smaller one wins.
   */
  timeoutMs?: number;
}

export type AsyncSandboxStatus = 'ready' | 'poisoned' | 'closed';

/** @internal what `UninitializedSandbox.evolveAsync()` hands over. */
export interface AsyncSandboxParts extends HostSide {
  guest: Uint8Array;
  /** The guest's declared functions (its ELF notes): call() converts plain arguments to their types. */
  functions: readonly GuestFunctionSignature[];
  config: ResolvedConfig;
  logLevel: number;
  freshInit: boolean;
  /** A snapshot file's bytes to start from instead of `guest` (fromSnapshot). */
  snapshot?: Uint8Array;
  /** Exitless mode for the worker's sandbox (checked options). */
  exitless?: Required<ExitlessOptions>;
  /** How long the main thread polls for the worker's answers (ms, from pollMsOf; default POLL_MS). */
  pollMs?: number;
}

/** @internal how a SandboxPool drives its sandboxes. */
export interface AsyncSandboxHooks {
  /** The owner that host functions run under (reentrancy check): the pool. */
  owner?: object;
  poolId?: number;
  /** Called once when the worker stops without close(). */
  onCrash?: (error: WorkerCrashedError) => void;
}

/** How long a cancelled call may take to stop before its worker is terminated. */
const CANCEL_GRACE_MS = 5000;
/** How long close() waits for the worker to exit on its own. */
const EXIT_GRACE_MS = 5000;

/**
 * How long, by default, the main thread polls a running operation's channel from the event
 * loop (setImmediate) after it sent the operation or a host reply, before it leaves the
 * answer to the doorbell alone (ms; the `pollUs` option). A worker's answer then needs no wake-up of a sleeping main
 * thread, which costs ~30-40 us on a VM whose idle CPUs halt (several us on bare metal); an
 * operation longer than this pays that wake-up, under 10% of its time. The event loop keeps
 * turning (timers, I/O and other callbacks run between polls), and each poll yields the CPU.
 */
const POLL_MS = 0.5;
/** CPUs this process may use: the main thread polls only while one is left for it. */
const CPUS = availableParallelism();
/**
 * Threads the running operations of this thread's AsyncSandboxes (pools' included) keep
 * busy: one per operation, two in exitless mode (its vCPU thread spins too). The main thread
 * polls only while this is below CPUS, so that polling never takes a CPU from a worker.
 */
let busyThreads = 0;

/** The `pollUs` option of evolveAsync() and SandboxPool.create(), checked; in ms. @throws ConfigInvalidError */
export function pollMsOf(pollUs: unknown): number {
  if (pollUs === undefined) return POLL_MS;
  if (typeof pollUs !== 'number' || !Number.isFinite(pollUs) || pollUs < 0 || pollUs > 100_000) {
    throw new ConfigInvalidError('pollUs', `must be a number of microseconds from 0 (no polling) to 100000, got ${String(pollUs)}`);
  }
  return pollUs / 1000;
}

/** A snapshot held by an AsyncSandbox's worker; restore it into the same AsyncSandbox. */
export class AsyncSnapshot {
  /** @internal the library's way to make one (the constructor is private, so users cannot forge one). */
  static of(owner: AsyncSandbox, id: number): AsyncSnapshot {
    return new AsyncSnapshot(owner, id);
  }

  private constructor(/** @internal */ readonly owner: AsyncSandbox, /** @internal */ readonly id: number) {
    Object.freeze(this);
  }
}

interface Op {
  readonly id: number;
  readonly msg: ToWorker;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  readonly name: string;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly queuedAt: number;
  startedAt: number;
  onAbort: (() => void) | undefined;
  /** When the time limit stops it (performance.now() ms; 0: no limit). */
  deadline: number;
  /** Set when the host stopped the call (timeout, abort, close): the error it gets. */
  canceled: ExecutionCanceledError | undefined;
  /** The last failure of a host function during this call (the GuestError's cause). */
  hostError: unknown;
  /** The host request the worker waits on for this operation (0: none). */
  hostSeq: number;
}

/**
 * A sandbox whose guest runs in its own worker thread: `call`, `snapshot`, `restore` and
 * `close` return Promises and the event loop stays free while the guest runs. Calls on
 * one AsyncSandbox run one at a time, in order. Create with
 * `await uninit.evolveAsync()`. Host functions (sync or async) run on the main thread.
 */
export class AsyncSandbox {
  readonly #worker: Worker;
  readonly #channel: MainEnd;
  readonly #control: Int32Array;
  readonly #bridge: HostBridge<Op>;
  readonly #hooks: AsyncSandboxHooks;
  readonly #config: ResolvedConfig;
  readonly #declared: ReadonlyMap<string, GuestFunctionSignature>;
  readonly #queue: Op[] = [];
  readonly #snapshots = new FinalizationRegistry<number>((id) => {
    this.#enqueue({ op: 'drop', id: 0, snapshot: id }, 'drop', 0, undefined).catch(() => undefined);
  });
  /** Rung by the worker after each message it writes. */
  readonly #bell: Doorbell;
  /** The time-limit timer (#watch) and when it fires. */
  #watchdog: NodeJS.Timeout | undefined;
  #watchAt = 0;
  #interrupt: InterruptHandle | undefined;
  #current: Op | undefined;
  #nextOp = 1;
  #poisoned = false;
  #closed = false;
  /** The worker has exited (closed or crashed). */
  #stopped = false;
  #closing: Promise<void> | undefined;
  #exited: Promise<void>;
  #lastWorkerError: unknown;
  /** The worker's VM, released here if the thread dies without closing it. */
  #resources: VmResources | undefined;
  /** The sandbox's state right after its guest init. */
  #initial: AsyncSnapshot | undefined;
  /** Identifies this sandbox in diagnostics records. */
  readonly id = newSandboxId();
  /** Threads a running operation of this sandbox keeps busy (see busyThreads). */
  readonly #threadsPerOp: number;
  /** How long the main thread polls per operation (ms; 0: never). */
  readonly #pollMs: number;
  /** The operation the main thread polls for (#poll), and until when (performance.now() ms). */
  #pollOp: Op | undefined;
  #pollUntil = 0;
  #pollScheduled = false;

  private constructor(parts: AsyncSandboxParts, hooks: AsyncSandboxHooks) {
    this.#hooks = hooks;
    this.#config = parts.config;
    this.#threadsPerOp = parts.exitless ? 2 : 1;
    this.#pollMs = parts.pollMs ?? POLL_MS;
    this.#declared = new Map(parts.functions.map((f) => [f.name, f]));
    this.#bell = new Doorbell(); // first: it may fail (EMFILE), and nothing else is made yet
    const shared = new SharedArrayBuffer(channelBytes(parts.config.inputDataSize, parts.config.outputDataSize));
    const { port1, port2 } = new MessageChannel();
    this.#channel = new MainEnd(shared, port1);
    this.#control = this.#channel.control;
    const hosts: HostSignature[] = parts.hosts.list().map((h) => ({ name: h.name, params: [...h.params], returns: h.returns }));
    const init: WorkerInit = {
      guest: parts.guest, config: configOf(parts.config), hosts, logLevel: parts.logLevel, channel: shared, overflow: port2,
      doorbell: this.#bell.writeFd, freshInit: parts.freshInit, ...(parts.snapshot ? { snapshot: parts.snapshot } : {}),
      ...(parts.exitless ? { exitless: parts.exitless } : {}),
    };
    try {
      this.#worker = new Worker(workerUrl(), { workerData: init, transferList: [port2] });
    } catch (e) {
      this.#bell.close(); // no thread: nothing can ring
      throw e;
    }
    this.#bell.listen(this.#onWake, this.#onBellError);
    this.#bridge = new HostBridge<Op>(parts, hooks.owner ?? this, (op, r) => this.#answerHost(op, r));
    port1.unref();
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        port1.close();
        this.#onExit(code);
        resolve();
      });
    });
    this.#worker.on('error', (e) => { this.#lastWorkerError = e; });
  }

  /**
   * @internal use `UninitializedSandbox.evolveAsync()` or `SandboxPool.create()`.
   * Starts the worker and waits for the guest's init there.
   */
  static async start(parts: AsyncSandboxParts, hooks: AsyncSandboxHooks = {}): Promise<AsyncSandbox> {
    const sandbox = new AsyncSandbox(parts, hooks);
    await sandbox.#ready();
    return sandbox;
  }

  #ready(): Promise<void> {
    const t0 = performance.now();
    return new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromWorker): void => {
        if (m.kind === 'ready') {
          this.#interrupt = InterruptHandle.fromShared(m.interrupt);
          this.#resources = m.resources;
          this.#initial = this.#track(m.initSnapshot);
          this.#worker.off('exit', onEarlyExit);
          this.#worker.unref();
          publishWorker({ event: 'started', sandboxId: this.id, threadId: this.#worker.threadId, poolId: this.#hooks.poolId, startMs: performance.now() - t0 });
          resolve();
        } else if (m.kind === 'failed') {
          // Settle once the thread is gone, so that nothing of it is left when create() fails.
          this.#closed = true;
          this.#worker.off('exit', onEarlyExit);
          void this.#exited.then(() => reject(fromWire(m.error)));
        }
      };
      const onEarlyExit = (code: number): void => {
        this.#closed = true;
        reject(new WorkerCrashedError(this.#worker.threadId, code, { cause: this.#lastWorkerError }));
      };
      this.#worker.once('message', onMessage);
      this.#worker.once('exit', onEarlyExit);
    });
  }

  /** `ready`, `poisoned` (only restore() is accepted) or `closed` (also after a worker crash). */
  status(): AsyncSandboxStatus {
    return this.#closed ? 'closed' : this.#poisoned ? 'poisoned' : 'ready';
  }

  get poisoned(): boolean {
    return this.#poisoned;
  }

  /** The worker's threadId. */
  get threadId(): number {
    return this.#worker.threadId;
  }

  /** Calls queued behind the running one. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Whether a call (or snapshot, restore) is running or queued. */
  get busy(): boolean {
    return this.#current !== undefined || this.#queue.length > 0;
  }

  /** The sandbox's state right after guest init (restore it to start over). */
  get initialSnapshot(): AsyncSnapshot {
    return this.#initial!;
  }

  /** The handle that stops the running call from any thread (`kill()`); see also CallOptions. */
  interruptHandle(): InterruptHandle {
    return this.#interrupt!;
  }

  /** @internal the worker, for tests that stop it from outside. */
  get worker(): Worker {
    return this.#worker;
  }

  /**
   * Calls guest function `name` with plain JS arguments (mapped as by MultiUseSandbox.call).
   * Resolves with the plain result; rejects with the typed errors of docs/errors.md.
   */
  call<R extends ReturnTypeName>(name: string, returnType: R, ...args: CallArgument[]): Promise<PlainOf<R>> {
    try {
      return this.callGuestFunctionByName(name, returnType, argumentsFor(this.#declared, name, parseReturnTypeName(returnType), args));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Calls guest function `name` with ParameterValues (or plain values), with options.
   * An already-aborted signal rejects at once and nothing runs.
   */
  callGuestFunctionByName<R extends ReturnTypeName>(name: string, returnType: R,
    params: readonly (TypedValue | CallArgument)[] = [], options: CallOptions = {}): Promise<PlainOf<R>> {
    return this.runCall(name, returnType, params, options, 0) as Promise<PlainOf<R>>;
  }

  /** @internal a call that restores snapshot `restoreAfter` (an id, 0: none) once it has answered. */
  runCall(name: string, returnType: ReturnTypeName | string, params: readonly unknown[], options: CallOptions,
    restoreAfter: number, queuedAt = performance.now()): Promise<PlainValue> {
    let msg: ToWorker;
    let timeoutMs: number;
    try {
      if (typeof name !== 'string') throw new ConfigInvalidError('name', 'guest function name must be a string');
      if (!Array.isArray(params)) throw new ConfigInvalidError('params', 'must be an array');
      const returns = parseReturnTypeName(returnType);
      timeoutMs = callTimeout(options, this.#config.maxExecutionTimeMs);
      const signal = options.signal;
      if (signal?.aborted) throw new ExecutionCanceledError('aborted', ' before the call started', { cause: signal.reason });
      if (insideHostFunctionOf(this.#hooks.owner ?? this)) throw new SandboxBusyError();
      msg = { op: 'call', id: 0, name, returns, params: params.map(fromPlain), observe: callChannel.hasSubscribers, restoreAfter };
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#enqueue(msg, name, timeoutMs, options.signal, queuedAt) as Promise<PlainValue>;
  }

  /**
   * A sandbox in a worker thread from a snapshot (from a MultiUseSandbox's `snapshot()` or
   * `Snapshot.load()`), without running guest code: MultiUseSandbox.fromSnapshot there.
   * The snapshot travels in its file form (docs/snapshot-format.md), so it cannot hold
   * mapped regions; host functions and `print` run on this thread and may return Promises.
   * `pollUs` as for evolveAsync().
   * @throws (rejects with) what MultiUseSandbox.fromSnapshot throws, SnapshotIncompatibleError
   *   for a snapshot taken while regions were mapped.
   */
  static async fromSnapshot(snapshot: Snapshot, hostFunctions: SnapshotHostFunctions = {},
    options: FromSnapshotOptions & { pollUs?: number } = {}): Promise<AsyncSandbox> {
    const { printText, hosts, config } = snapshotSandboxParts(snapshot, hostFunctions, options);
    const pollMs = pollMsOf(options.pollUs);
    if (snapshot.mappedRegionsUpTo !== 0) {
      throw new SnapshotIncompatibleError('a snapshot taken while host regions were mapped (mapRegion) cannot start an AsyncSandbox');
    }
    return AsyncSandbox.start({
      guest: new Uint8Array(0), snapshot: encodeSnapshotFile(snapshot), functions: [], config, hosts,
      print: printText, log: undefined, logLevel: 6, freshInit: false, pollMs,
    });
  }

  /**
   * MultiUseSandbox.mapRegion in the worker: maps a host buffer (copied to the worker) or a
   * file into the guest at `guestAddress`. Resolves with the mapped size.
   */
  mapRegion(source: Uint8Array | string, guestAddress: bigint | number, options: MapRegionOptions = {}): Promise<number> {
    if (!(source instanceof Uint8Array) && typeof source !== 'string') {
      return Promise.reject(new ConfigInvalidError('source', 'must be a Uint8Array or a file path'));
    }
    if (typeof guestAddress !== 'bigint' && typeof guestAddress !== 'number') {
      return Promise.reject(new ConfigInvalidError('guestAddress', 'must be a bigint or a number'));
    }
    if (options === null || typeof options !== 'object') return Promise.reject(new ConfigInvalidError('options', 'must be an object'));
    // MultiUseSandbox.mapRegion maps writable only for `writable: true`: that is all that travels.
    const writable = options.writable === true;
    return this.#enqueue({ op: 'map', id: 0, source, guestAddress, writable }, 'mapRegion()', 0, undefined) as Promise<number>;
  }

  /** Captures guest memory and registers in the worker. Rejects while poisoned. */
  async snapshot(): Promise<AsyncSnapshot> {
    const id = await this.#enqueue({ op: 'snapshot', id: 0 }, 'snapshot()', 0, undefined) as number;
    return this.#track(id);
  }

  /** Brings the sandbox back to `snapshot` (one of this AsyncSandbox's), also when poisoned. */
  async restore(snapshot: AsyncSnapshot): Promise<void> {
    if (!(snapshot instanceof AsyncSnapshot) || snapshot.owner !== this) {
      throw new SnapshotIncompatibleError('restore() needs an AsyncSnapshot taken from this AsyncSandbox');
    }
    await this.#enqueue({ op: 'restore', id: 0, snapshot: snapshot.id }, 'restore()', 0, undefined);
  }

  /**
   * Stops the worker and frees the VM; idempotent. Queued calls reject with
   * ResourceClosedError; a running call is killed (ExecutionCanceledError).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    const closed = new ResourceClosedError('AsyncSandbox');
    this.#closed = true;
    for (const op of this.#queue.splice(0)) this.#settle(op, closed, false);
    if (!this.#stopped) {
      if (this.#current) this.#cancel(this.#current, new ExecutionCanceledError('killed', ': the sandbox was closed', { cause: closed }));
      const done = this.#push({ op: 'close', id: 0 }, 'close()', 0, undefined).catch(() => undefined);
      this.#worker.ref();
      const timer = setTimeout(() => { void this.#worker.terminate(); }, EXIT_GRACE_MS + CANCEL_GRACE_MS);
      await done;
      await this.#exited;
      clearTimeout(timer);
    }
  }

  #track(id: number): AsyncSnapshot {
    const s = AsyncSnapshot.of(this, id);
    this.#snapshots.register(s, id);
    return s;
  }

  #enqueue(msg: ToWorker, name: string, timeoutMs: number, signal: AbortSignal | undefined, queuedAt?: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ResourceClosedError('AsyncSandbox'));
    return this.#push(msg, name, timeoutMs, signal, queuedAt);
  }

  #push(msg: ToWorker, name: string, timeoutMs: number, signal: AbortSignal | undefined, queuedAt = performance.now()): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.#nextOp++;
      (msg as { id: number }).id = id;
      const op: Op = {
        id, msg, resolve, reject, name, timeoutMs, signal, queuedAt, startedAt: 0,
        onAbort: undefined, deadline: 0, canceled: undefined, hostError: undefined, hostSeq: 0,
      };
      if (signal) {
        op.onAbort = () => this.#cancel(op, new ExecutionCanceledError('aborted', '', { cause: signal.reason }));
        signal.addEventListener('abort', op.onAbort, { once: true });
      }
      this.#queue.push(op);
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#current !== undefined || this.#stopped) return;
    const op = this.#queue.shift();
    if (op === undefined) {
      this.#worker.unref();
      return;
    }
    this.#worker.ref();
    this.#current = op;
    busyThreads += this.#threadsPerOp;
    op.startedAt = performance.now();
    if (op.timeoutMs > 0) {
      op.deadline = op.startedAt + op.timeoutMs;
      this.#watch(op.deadline);
    }
    this.#channel.send(op.msg); // the worker waits for it: it has answered everything before
    this.#pollFor(op, op.startedAt);
  }

  /** Ends the running operation (it finished, or the worker is gone); returns it. */
  #endCurrent(): Op | undefined {
    const op = this.#current;
    if (op !== undefined) busyThreads -= this.#threadsPerOp;
    this.#current = undefined;
    return op;
  }

  /** Polls for `op`'s next message for #pollMs from `now`, when a CPU is free for it. */
  #pollFor(op: Op, now: number): void {
    if (this.#pollMs === 0 || busyThreads >= CPUS) return;
    this.#pollOp = op;
    this.#pollUntil = now + this.#pollMs;
    if (this.#pollScheduled) return; // the scheduled poll serves `op` now, and runs longer
    this.#pollScheduled = true;
    setImmediate(this.#poll);
  }

  /** One poll (#pollFor): reads what the worker wrote, as a ring would, and polls again while it may. */
  readonly #poll = (): void => {
    this.#pollScheduled = false;
    const op = this.#pollOp;
    if (op === undefined || this.#current !== op || this.#stopped) {
      this.#pollOp = undefined;
      return;
    }
    // Yield first: a kernel thread or another process that wants this CPU gets it now, not
    // when the scheduler preempts the poll (that cost the p99 ~0.4 ms here).
    schedYield();
    this.#onWake(); // may end `op` and start the next operation, which then polls for itself
    if (this.#pollScheduled || this.#pollOp !== op) return;
    if (this.#current === op && !this.#stopped && busyThreads < CPUS && performance.now() < this.#pollUntil) {
      this.#pollScheduled = true;
      setImmediate(this.#poll);
    } else {
      this.#pollOp = undefined;
    }
  };

  /**
   * Makes sure the watchdog fires by `deadline`. One timer serves every call: it is armed
   * for the earliest deadline and, when it fires, stops the running call if its deadline
   * has passed or re-arms for it. Short calls in a row then cost no timer operation each.
   */
  #watch(deadline: number): void {
    if (this.#watchdog !== undefined) {
      if (this.#watchAt <= deadline) return; // fires early enough; it re-arms for this call then
      clearTimeout(this.#watchdog);
    }
    this.#watchAt = deadline;
    this.#watchdog = setTimeout(this.#onWatchdog, Math.max(0, deadline - performance.now()));
    this.#watchdog.unref(); // a running call keeps the process alive through the worker's ref
  }

  readonly #onWatchdog = (): void => {
    this.#watchdog = undefined;
    const op = this.#current;
    if (op === undefined || op.deadline === 0 || op.canceled !== undefined) return;
    if (performance.now() >= op.deadline) this.#cancel(op, new ExecutionCanceledError('timeout', ` after ${op.timeoutMs} ms`));
    else this.#watch(op.deadline);
  };

  /** The doorbell rang: handles every message the worker has written. */
  readonly #onWake = (): void => {
    for (let m = this.#channel.receive(); m !== undefined && !this.#stopped; m = this.#channel.receive()) this.#onMessage(m);
  };

  /** The doorbell's pipe failed (nothing should make it): the worker cannot be heard any more, so it is stopped. */
  readonly #onBellError = (e: Error): void => {
    this.#lastWorkerError = e;
    void this.#worker.terminate();
  };

  /** Sends the answer of a host request, unless its operation has ended, been cancelled or moved on. */
  #answerHost(op: Op, r: HostReply): void {
    if (this.#current !== op || op.canceled !== undefined || op.hostSeq !== r.seq || this.#stopped) return;
    op.hostSeq = 0;
    this.#channel.send({ op: 'reply', ...r });
    this.#pollFor(op, performance.now());
  }

  /** Stops `op`: a queued one is dropped (nothing ran); a running one is killed. */
  #cancel(op: Op, error: ExecutionCanceledError): void {
    if (op !== this.#current) {
      const i = this.#queue.indexOf(op);
      if (i >= 0) {
        this.#queue.splice(i, 1);
        this.#settle(op, error, false);
      }
      return;
    }
    if (op.canceled !== undefined) return;
    op.canceled = error;
    const c = this.#control;
    Atomics.store(c, CTL_CANCEL, op.id);
    // kill() before waking a worker that waits for a host function: the guest must find
    // the cancel set when it is entered again, or it could run on to its end.
    const kick = (): void => {
      if (this.#current !== op) return;
      if (!this.#interrupt!.kill()) setTimeout(kick, 1); // not in the guest yet (or just left): again
    };
    kick();
    this.#channel.wake();
    setTimeout(() => {
      if (this.#current === op) void this.#worker.terminate(); // it did not stop: give up on the worker
    }, CANCEL_GRACE_MS).unref();
  }

  #onMessage(m: Up): void {
    const op = this.#current;
    if (op === undefined) return;
    if (m.kind === 'done') {
      if (m.id !== op.id) return;
      this.#endCurrent();
      // A call with restoreAfter is followed by that restore in the worker before anything else.
      this.#poisoned = m.poisoned && !(op.msg.op === 'call' && op.msg.restoreAfter !== 0);
      if (m.ok) {
        this.#record(op, undefined, m.measure);
        this.#settle(op, m.value, true);
      } else {
        const error = this.#callError(op, fromWire(m.error));
        this.#record(op, error, m.measure);
        this.#settle(op, error, false);
      }
      this.#pump();
    } else if (op.canceled === undefined) {
      // A host request of a cancelled operation is left unanswered: the cancel wakes the worker.
      op.hostSeq = m.seq;
      this.#bridge.handle(m, op);
    }
  }

  /** The error a failed operation rejects with, given what the worker reported. */
  #callError(op: Op, error: unknown): unknown {
    if (op.canceled !== undefined && error instanceof HyperlightError && error.code === 'ERR_EXECUTION_CANCELED') {
      return op.canceled;
    }
    if (op.hostError !== undefined && error instanceof Error) {
      // A print or logger that failed: the sync sandbox lets that error through as is.
      if (error.name === 'HostCallFailed') return op.hostError;
      // A print reached through the guest's write system call: the run loop wrapped it.
      const cause = (error as { cause?: unknown }).cause;
      if (cause instanceof Error && cause.name === 'HostCallFailed') setCause(error, op.hostError);
      if (error instanceof GuestError && error.guestCode === HOST_ERROR_CODE) setCause(error, op.hostError);
    }
    return error;
  }

  #settle(op: Op, value: unknown, ok: boolean): void {
    if (op.onAbort) op.signal!.removeEventListener('abort', op.onAbort);
    if (ok) op.resolve(value);
    else op.reject(value);
  }

  #record(op: Op, error: unknown, measure: { guestNs: number; hostNs: number; exits: number; hostCalls: number } | undefined): void {
    if (op.msg.op !== 'call' || !callChannel.hasSubscribers) return;
    const now = performance.now();
    const record: CallRecord = {
      function: op.name,
      outcome: error === undefined ? 'ok' : 'error',
      errorCode: errorCodeOf(error),
      wallMs: now - op.queuedAt,
      queueMs: op.startedAt - op.queuedAt,
      guestMs: (measure?.guestNs ?? 0) / 1e6,
      hostMs: (measure?.hostNs ?? 0) / 1e6,
      exits: measure?.exits ?? 0,
      hostCalls: measure?.hostCalls ?? 0,
      sandboxId: this.id,
      threadId: this.#worker.threadId,
      poolId: this.#hooks.poolId,
    };
    callChannel.publish(record);
  }

  #onExit(code: number): void {
    this.#stopped = true;
    this.#bell.close(); // the thread is gone: nothing rings any more
    if (this.#interrupt === undefined) return; // never became ready: start() reports it
    // A thread that died before it began closing its sandbox ran no cleanup: its VM is
    // still open, and only this object knows its numbers.
    const leftovers = this.#resources && Atomics.load(this.#control, CTL_CLOSING) === 0 ? releaseOrphaned(this.#resources) : [];
    this.#resources = undefined;
    const current = this.#endCurrent();
    if (this.#closing !== undefined) {
      if (current) this.#settle(current, current.canceled ?? new ResourceClosedError('AsyncSandbox'), current.msg.op === 'close');
      if (leftovers.length > 0) {
        const error = new AggregateError(leftovers, 'releasing the VM of a terminated sandbox worker failed');
        publishWorker({ event: 'crashed', sandboxId: this.id, threadId: this.#worker.threadId, poolId: this.#hooks.poolId, error });
      }
      publishWorker({ event: 'closed', sandboxId: this.id, threadId: this.#worker.threadId, poolId: this.#hooks.poolId });
      return;
    }
    this.#closed = true;
    const crash = new WorkerCrashedError(this.#worker.threadId, code, { cause: this.#lastWorkerError });
    if (leftovers.length > 0) crash.releaseFailures = leftovers;
    if (current) this.#settle(current, current.canceled ?? crash, false);
    for (const op of this.#queue.splice(0)) this.#settle(op, crash, false);
    publishWorker({ event: 'crashed', sandboxId: this.id, threadId: this.#worker.threadId, poolId: this.#hooks.poolId, error: crash });
    this.#hooks.onCrash?.(crash);
  }
}

/** Validates the call's options; the effective limit in ms (0: none). */
function callTimeout(options: CallOptions, configured: number): number {
  if (options === null || typeof options !== 'object') throw new ConfigInvalidError('options', 'must be an object');
  const { signal, timeoutMs } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ConfigInvalidError('signal', 'must be an AbortSignal');
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 ||
    timeoutMs > 24 * 3600 * 1000)) {
    throw new ConfigInvalidError('timeoutMs', `must be a positive number of milliseconds up to one day, got ${String(timeoutMs)}`);
  }
  if (timeoutMs === undefined) return configured;
  return configured > 0 ? Math.min(configured, timeoutMs) : timeoutMs;
}

/** The worker script, in the build (ESM or CommonJS) this module runs from; dist/src when vitest runs the sources. */
function workerUrl(): URL {
  return pathToFileURL(join(libraryDir(), 'async', 'worker.js'));
}
