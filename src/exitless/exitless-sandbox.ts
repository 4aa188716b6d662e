// ExitlessSandbox: a sandbox whose vCPU stays in KVM_RUN on its own thread while guest calls, host calls, prints and logs cross a mailbox in guest memory; the caller thread waits on the mailbox. Parking, stopping and restores live here; the vCPU thread only runs KVM_RUN.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigInvalidError } from '../errors.js';
import { KvmIoctlError, ResourceClosedError } from '../kvm/errors.js';
import { KVM_RUN } from '../kvm/ioctl.js';
import { getpid, tgkill, vcpuKickSignal } from '../kvm/libc.js';
import { PAGE_SIZE } from '../mem/guest-memory.js';
import { libraryDir } from '../package-root.js';
import {
  MB_CMD_CALL, MB_CMD_CALL_INLINE, MB_CMD_PARK, MB_CMD_REPLY, MB_CMD_REPLY_INLINE, OP_CALL_FUNCTION, OP_CALL_INLINE,
  OP_DEBUG_PRINT, OP_HALT, OP_HALT_INLINE, OP_LOG, OP_PARK, OP_WAKE,
  DEBUG_PRINT_MAX, DOORBELL_STRIDE, PEB_OFF_INPUT_SIZE, PEB_OFF_MAILBOX_PTR, PEB_OFF_MAILBOX_SIZE,
} from '../sandbox/abi.js';
import { MAX_WIRE_PARAMETERS, decodeGuestLogData } from '../sandbox/codec.js';
import {
  ExecutionCanceledError, GuestProtocolError, PoisonedSandboxError, ReturnTypeMismatchError, SandboxBusyError, poisons,
} from '../sandbox/errors.js';
import { declaredArguments, withUndeclaredHint } from '../sandbox/guest-functions.js';
import { CANCEL_KILL, CANCEL_NONE, type InterruptHandle } from '../sandbox/interrupt.js';
import { IoBuffers } from '../sandbox/iobuf.js';
import { GUEST_SLOT, type Machine } from '../sandbox/machine.js';
import { type MultiUseSandbox, answerHostCall, callResult, hostCallReply, runHostCall } from '../sandbox/multi-use-sandbox.js';
import type { Snapshot } from '../sandbox/snapshot.js';
import { checkFunctionCall } from '../sandbox/wire-writer.js';
import {
  type CallArgument, type PlainOf, type ReturnTypeName, type TypedValue, fromPlain, parseReturnTypeName, toPlain,
} from '../sandbox/values.js';
import {
  CTL_CALLS, CTL_EVENTS, CTL_EXITS, CTL_GO, CTL_IN_CALL, CTL_RESULT, CTL_SLICE_MS, CTL_SLOTS, CTL_STOP, CTL_STOP_REQUEST, CTL_TID, CTL_TIMER,
  GO_QUIT, GO_RUN, STOP_ERROR, STOP_EXIT, STOP_FORCED_PARK, STOP_INTERRUPTED, STOP_NONE, STOP_PARKED,
  type VcpuThreadInit,
} from './control.js';
import { InlineRecords } from './inline.js';
import { HostMailbox, OutputCopier } from './mailbox.js';

/** `exitless` option of `evolve()`. */
export interface ExitlessOptions {
  /**
   * Microseconds the guest polls its mailbox without work before it parks (one exit; the
   * next call re-enters it). Default 200. Also how long the caller polls for an answer
   * before it sleeps (`hostSpinUs` overrides that).
   */
  spinUs?: number;
  /** Microseconds the calling thread polls before it sleeps in Atomics.wait. Default: spinUs. */
  hostSpinUs?: number;
  /**
   * Milliseconds between the vCPU thread's looks at a guest that neither works nor parks: one
   * that stays idle for a whole slice is parked by the host. Default 10.
   */
  sliceMs?: number;
}

/** Options of `ExitlessSandbox.restore`. */
export interface ExitlessRestoreOptions {
  /**
   * Park the vCPU and do the full restore (memory from the dirty log, registers, FPU), as a
   * MultiUseSandbox does. Default false: while the vCPU spins, only the working set is copied
   * back (docs/security.md "Exitless mode").
   */
  exact?: boolean;
}

/** The mailbox takes the input buffer's last page. */
const MAILBOX_SIZE = PAGE_SIZE;
/** The smallest input buffer exitless mode accepts: the mailbox plus the 8 KiB minimum. */
const MIN_INPUT_SIZE = 0x2000 + MAILBOX_SIZE;
/** The top of the guest's stack the mailbox loop runs on: a working-set restore leaves it alone. */
const LOOP_FRAMES = 512;
/** How long the calling thread waits for the vCPU thread to start, stop or end. */
const THREAD_WAIT_MS = 10_000;
/** How long a park request is given before the vCPU is kicked out with a signal. */
const PARK_GRACE_MS = 2;
/** Polls of the mailbox between two looks at the clock. */
const CLOCK_EVERY = 64;

const utf8 = new TextDecoder();

function positive(name: string, v: unknown, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    throw new ConfigInvalidError(`exitless.${name}`, `must be a number from 0 to ${max}, got ${String(v)}`);
  }
  return v;
}

/** `exitless` as given to evolve(), evolveAsync() or SandboxPool.create(), checked; throws ConfigInvalidError. */
export function exitlessOptionsOf(v: unknown): Required<ExitlessOptions> {
  if (v === true) v = {};
  if (v === null || typeof v !== 'object') throw new ConfigInvalidError('exitless', `must be true or an object { spinUs?, hostSpinUs?, sliceMs? }, got ${String(v)}`);
  const o = v as ExitlessOptions;
  for (const k of Object.keys(o)) {
    if (k !== 'spinUs' && k !== 'hostSpinUs' && k !== 'sliceMs') throw new ConfigInvalidError(`exitless.${k}`, 'is not an option (spinUs, hostSpinUs, sliceMs)');
  }
  const spinUs = positive('spinUs', o.spinUs, 200, 1e7);
  return {
    spinUs, hostSpinUs: positive('hostSpinUs', o.hostSpinUs, spinUs, 1e7),
    sliceMs: Math.ceil(positive('sliceMs', o.sliceMs, 10, 60_000)) || 1,
  };
}

/** The `exitless` option as the options of evolve(), evolveAsync() and pools take it: undefined or false is off. */
export function exitlessModeOf(v: unknown): Required<ExitlessOptions> | undefined {
  return v === undefined || v === false ? undefined : exitlessOptionsOf(v);
}

function vcpuThreadUrl(): URL {
  return pathToFileURL(join(libraryDir(), 'exitless', 'vcpu-thread.js'));
}

/**
 * A sandbox in exitless mode (`uninit.evolve({ exitless: {...} })`): its vCPU runs on a
 * thread of its own and stays in the guest while calls flow; `call()` blocks the calling
 * thread on the mailbox. One core per busy sandbox: the vCPU spins while it waits for work
 * (up to `spinUs`), the caller spins while it waits for an answer (up to `hostSpinUs`).
 */
export class ExitlessSandbox {
  readonly #inner: MultiUseSandbox;
  readonly #m: Machine;
  readonly #parts: ReturnType<MultiUseSandbox['exitlessParts']>;
  readonly #ctl = new Int32Array(new SharedArrayBuffer(CTL_SLOTS * 4));
  readonly #worker: Worker;
  readonly #mb: HostMailbox;
  readonly #io: IoBuffers;
  readonly #out: OutputCopier;
  readonly #inl: InlineRecords;
  /** The guest takes inline messages (it said so when it entered the mailbox loop). */
  #inline = false;
  /**
   * The I/O stacks may not be empty (a flatbuffer went across, or a restore put back a
   * snapshot's, whose stack pointers may be 0): an inline call empties them first.
   */
  #stacksTouched = true;
  readonly #hostSpinMs: number;
  readonly #tid: number;
  #running = false;
  #stops = 0;
  #sleeps = 0;
  #busy = false;
  #closed = false;
  #poison: unknown;
  #baseline: Snapshot | undefined;
  /** Pages the guest wrote since the baseline, learned from the dirty log at exact restores. */
  #workingSet: number[] | undefined;
  /**
   * Pages the guest wrote before its baselines were taken (guest init's statics, heap, stack),
   * read from the dirty log before snapshot() clears it: every working set includes them, so
   * a call that writes one of them first after the working set was learned still gets it put
   * back (restoreChanged only compares the ones that did not change).
   */
  #writtenBeforeBaseline: number[] | undefined;

  /** @internal use `uninit.evolve({ exitless })`. */
  constructor(inner: MultiUseSandbox, options: ExitlessOptions | true = {}) {
    const { spinUs, hostSpinUs, sliceMs } = exitlessOptionsOf(options);
    this.#hostSpinMs = hostSpinUs / 1000;
    const m = inner.machine;
    const { inputData, outputData, peb, doorbell } = m.layout;
    if (inputData.size < MIN_INPUT_SIZE) {
      throw new ConfigInvalidError('inputDataSize', `exitless mode keeps its mailbox in the input buffer's last 4 KiB: ` +
        `give at least 0x${MIN_INPUT_SIZE.toString(16)} bytes (got 0x${inputData.size.toString(16)})`);
    }
    this.#inner = inner;
    this.#m = m;
    this.#parts = inner.exitlessParts();
    const { bytes, view } = m.memory;
    const mbGpa = inputData.gpa + inputData.size - MAILBOX_SIZE;
    this.#mb = new HostMailbox(bytes, mbGpa);
    this.#mb.reset(Math.round(spinUs * m.vcpu.getTscKhz() / 1000));
    this.#inl = new InlineRecords(bytes, mbGpa);
    this.#inl.announce();
    this.#io = new IoBuffers(bytes, view, { gpa: inputData.gpa, size: inputData.size - MAILBOX_SIZE }, outputData);
    this.#out = new OutputCopier(bytes, view, outputData.gpa, outputData.size);
    view.setBigUint64(peb.gpa + PEB_OFF_MAILBOX_SIZE, BigInt(MAILBOX_SIZE), true);
    view.setBigUint64(peb.gpa + PEB_OFF_MAILBOX_PTR, BigInt(mbGpa), true);
    view.setBigUint64(peb.gpa + PEB_OFF_INPUT_SIZE, BigInt(inputData.size - MAILBOX_SIZE), true);
    // The guest stopped at its init Halt; resumed with RCX = 1 it switches to the mailbox.
    this.#parts.loop.completePendingExit();
    const regs = m.vcpu.getRegs();
    regs.rcx = 1n;
    m.vcpu.setRegs(regs);
    Atomics.store(this.#ctl, CTL_SLICE_MS, sliceMs);
    const { address, length } = m.vcpu.runMapping;
    const init: VcpuThreadInit = {
      control: this.#ctl.buffer as SharedArrayBuffer, interrupt: inner.interruptHandle().shared, vcpuFd: m.vcpu.fd,
      runAddress: address, runLength: length,
      parkAddress: doorbell.gpa + DOORBELL_STRIDE * OP_PARK, wakeAddress: doorbell.gpa + DOORBELL_STRIDE * OP_WAKE,
    };
    vcpuKickSignal();
    this.#worker = new Worker(vcpuThreadUrl(), { workerData: init });
    this.#worker.unref();
    this.#tid = this.#awaitThread((tid) => tid !== 0, 'start');
    if (this.#tid < 0) throw new GuestProtocolError('the exitless vCPU thread ended at start-up');
    // Into the mailbox loop, then parked there: the state every restore comes back to.
    this.#mb.post(MB_CMD_PARK);
    this.#run();
    const reason = this.#awaitStop(THREAD_WAIT_MS);
    if (reason !== STOP_PARKED) {
      this.#close();
      throw new GuestProtocolError(`the guest did not enter exitless mode (vCPU stop ${reason}; built with an older SDK?)`);
    }
    this.#inline = this.#inl.guestTakesInline(); // read once: the guest cannot change it later
    this.#noteWrittenBeforeBaseline();
    this.#baseline = inner.snapshot();
  }

  /** Adds the pages the dirty log holds now (before snapshot() clears it) to #writtenBeforeBaseline. */
  #noteWrittenBeforeBaseline(): void {
    if (this.#m.manualDirtyLog) this.#writtenBeforeBaseline = this.#learn(this.#m.vm.getDirtyLog(GUEST_SLOT), this.#writtenBeforeBaseline);
  }

  /** `ready`, `poisoned` or `closed`. */
  status(): 'ready' | 'poisoned' | 'closed' {
    return this.#closed ? 'closed' : this.#poison !== undefined ? 'poisoned' : 'ready';
  }

  get poisoned(): boolean {
    return this.#poison !== undefined;
  }

  /** Whether the vCPU is parked (not in KVM_RUN): after spinUs idle, a restore, or a stop. */
  get parked(): boolean {
    return !this.#running || Atomics.load(this.#ctl, CTL_STOP) !== STOP_NONE;
  }

  /**
   * Counters since creation: `exits` (every return from KVM_RUN, parks and wake-ups
   * included), `stops` (times the vCPU stopped during calls), `sleeps` (times the calling
   * thread slept in Atomics.wait).
   */
  get stats(): { exits: number; stops: number; sleeps: number } {
    return { exits: Atomics.load(this.#ctl, CTL_EXITS), stops: this.#stops, sleeps: this.#sleeps };
  }

  /**
   * @internal the id of the vCPU thread's timer: released by the async API's reclaim when the
   * worker that owns this sandbox is terminated (its vCPU thread then runs no cleanup).
   */
  get vcpuTimerId(): number {
    return Atomics.load(this.#ctl, CTL_TIMER);
  }

  /** @internal the vCPU thread's kernel tid (0 before it is up, -1 after it ended), for tests. */
  get vcpuThreadId(): number {
    return Atomics.load(this.#ctl, CTL_TID);
  }

  /** @internal the machine, for tests. */
  get machine(): Machine {
    return this.#m;
  }

  /** A handle that stops the running call from any thread (`kill()`). */
  interruptHandle(): InterruptHandle {
    return this.#inner.interruptHandle();
  }

  /** The snapshot taken when the sandbox entered exitless mode (what restore() goes back to by default). */
  get initialSnapshot(): Snapshot {
    if (!this.#baseline) throw new ResourceClosedError('ExitlessSandbox');
    return this.#baseline;
  }

  /** As MultiUseSandbox.callGuestFunctionByName, through the mailbox. */
  callGuestFunctionByName<R extends ReturnTypeName>(name: string, returnType: R, params: readonly TypedValue[] = []): PlainOf<R> {
    return toPlain(this.#invoke(name, parseReturnTypeName(returnType), params)) as PlainOf<R>;
  }

  /** As MultiUseSandbox.call, through the mailbox. */
  call<R extends ReturnTypeName>(name: string, returnType: R, ...args: CallArgument[]): PlainOf<R> {
    const ret = parseReturnTypeName(returnType);
    const declared = this.#parts.declared(name);
    const params = declared ? declaredArguments(declared, ret, args) : args.map(fromPlain);
    try {
      return toPlain(this.#invoke(name, ret, params)) as PlainOf<R>;
    } catch (e) {
      throw declared ? e : withUndeclaredHint(e, name, params);
    }
  }

  #usable(): void {
    if (this.#closed) throw new ResourceClosedError('ExitlessSandbox');
    if (this.#busy) throw new SandboxBusyError();
  }

  #invoke(name: string, returnType: ReturnTypeName, params: readonly TypedValue[]): TypedValue | undefined {
    this.#usable();
    if (this.#poison !== undefined) throw new PoisonedSandboxError({ cause: this.#poison });
    const { codec } = this.#parts.loop;
    let command = MB_CMD_CALL;
    if (this.#inline) checkFunctionCall(name, params, 'guest', returnType, MAX_WIRE_PARAMETERS);
    if (this.#inline && this.#inl.writeCall(name, params, returnType)) {
      command = MB_CMD_CALL_INLINE;
      if (this.#stacksTouched) this.#io.emptyStacks();
      this.#stacksTouched = false;
    } else {
      this.#io.startCall(codec.encodeFunctionCall(name, params, 'guest', returnType));
      this.#stacksTouched = true;
    }
    this.#parts.budget.begin();
    const ctl = this.#ctl;
    const limit = this.#parts.config.maxExecutionTimeMs;
    const deadline = limit > 0 ? performance.now() + limit : Infinity;
    this.#busy = true;
    this.#parts.interrupt.beginCall(this.#tid);
    Atomics.store(ctl, CTL_IN_CALL, 1);
    Atomics.add(ctl, CTL_CALLS, 1);
    try {
      const callWord = this.#mb.post(command);
      if (!this.#running) this.#run();
      return this.#serve(name, returnType, deadline, callWord);
    } catch (e) {
      if (poisons(e, true)) this.#poisonWith(e);
      throw e;
    } finally {
      this.#busy = false;
      Atomics.store(ctl, CTL_IN_CALL, 0);
      this.#parts.interrupt.endCall();
    }
  }

  /** Answers the guest's messages until its Halt; returns the call's result. */
  #serve(name: string, returnType: ReturnTypeName, deadline: number, callWord: number): TypedValue | undefined {
    const { loop, hosts } = this.#parts;
    let hostError: unknown;
    for (;;) {
      const word = this.#awaitGuest(deadline);
      if (word < 0) {
        this.#stops++;
        this.#onStop(-word);
        continue;
      }
      const op = word & 0xff;
      if (op === OP_HALT || op === OP_HALT_INLINE) {
        // The guest's Halt names the call command it answers (read once).
        const answers = this.#mb.argLow();
        if (answers !== callWord) {
          throw new GuestProtocolError(`the guest's Halt answers command 0x${answers.toString(16)}, not this call's 0x${callWord.toString(16)}`);
        }
        if (op === OP_HALT) {
          this.#stacksTouched = true;
          return callResult(loop.codec, this.#out.pop(), name, returnType, hostError);
        }
        if (!this.#inline) throw new GuestProtocolError('an inline result from a guest that did not say it sends them');
        const { type, value } = this.#inl.readValue();
        if (type !== returnType) {
          throw new ReturnTypeMismatchError(`guest function ${name} returned ${type}, the caller expected ${returnType}`);
        }
        return type === 'Void' ? undefined : { type, value } as TypedValue;
      }
      let reply = MB_CMD_REPLY;
      switch (op) {
        case OP_CALL_FUNCTION: {
          loop.guestOutputs++;
          const call = loop.codec.decodeFunctionCall(this.#out.pop());
          const { reply: bytes, failed } = answerHostCall(loop.codec, hosts, call);
          if (failed !== undefined) hostError = failed;
          this.#io.pushInput(bytes);
          this.#stacksTouched = true;
          break;
        }
        case OP_CALL_INLINE: {
          if (!this.#inline) throw new GuestProtocolError('an inline host call from a guest that did not say it sends them');
          loop.guestOutputs++;
          const call = this.#inl.readHostCall();
          const outcome = runHostCall(hosts, call.name, call.args);
          if (outcome.failed === undefined && this.#inl.writeValue(outcome.value)) {
            reply = MB_CMD_REPLY_INLINE;
          } else { // an error, or a String or VecBytes value: a FunctionCallResult on the input stack
            if (outcome.failed !== undefined) hostError = outcome.failed;
            this.#io.pushInput(hostCallReply(loop.codec, outcome));
            this.#stacksTouched = true;
          }
          break;
        }
        case OP_DEBUG_PRINT:
          loop.guestOutputs++;
          loop.outputSinks.debugPrint(utf8.decode(this.#guestBytes(this.#mb.argLow(), this.#mb.argHigh())));
          break;
        case OP_LOG: {
          loop.guestOutputs++;
          const record = decodeGuestLogData(this.#out.pop());
          loop.outputSinks.log?.(record);
          break;
        }
        default:
          throw new GuestProtocolError(`mailbox op ${op} is not one the guest may post (docs/exitless.md)`);
      }
      if (performance.now() >= deadline) this.#timeout();
      this.#mb.post(reply);
    }
  }

  /** A copy of the DebugPrint text the guest names (address, length), checked against its memory. */
  #guestBytes(addr: number, len: number): Uint8Array {
    const lo = this.#m.layout.peb.gpa;
    const end = this.#m.memory.bytes.length;
    if (len > DEBUG_PRINT_MAX) throw new GuestProtocolError(`DebugPrint of ${len} bytes exceeds the ${DEBUG_PRINT_MAX}-byte limit`);
    if (addr < lo || addr + len > end) {
      throw new GuestProtocolError(`DebugPrint at 0x${addr.toString(16)} (${len} bytes) lies outside the guest's memory`);
    }
    return this.#m.memory.bytes.slice(addr, addr + len);
  }

  #timeout(): never {
    this.#parts.interrupt.timeout();
    throw new ExecutionCanceledError('timeout');
  }

  /**
   * Waits for the guest's next message (returns its word) or a vCPU stop (returns -reason):
   * polls for hostSpinUs, then sleeps with the `waiting` flag up, so that the guest rings
   * OP_WAKE after it posts. Passing `deadline` kicks the vCPU out (timeout).
   */
  #awaitGuest(deadline: number): number {
    const mb = this.#mb;
    const ctl = this.#ctl;
    const spinEnd = performance.now() + this.#hostSpinMs;
    for (let i = 1; ; i++) {
      const w = mb.poll();
      if (w !== 0) return w;
      const stop = Atomics.load(ctl, CTL_STOP);
      if (stop !== STOP_NONE && this.#running) {
        this.#running = false;
        return -stop;
      }
      if (i % CLOCK_EVERY !== 0) continue;
      const now = performance.now();
      if (now >= deadline) {
        this.#parts.interrupt.timeout(); // kicks the vCPU thread: it stops with STOP_INTERRUPTED
        deadline = Infinity;
      }
      if (now < spinEnd) continue;
      const events = Atomics.load(ctl, CTL_EVENTS);
      mb.setWaiting(true);
      const again = mb.poll();
      if (again !== 0) {
        mb.setWaiting(false);
        return again;
      }
      if (Atomics.load(ctl, CTL_STOP) === STOP_NONE) {
        this.#sleeps++;
        Atomics.wait(ctl, CTL_EVENTS, events, deadline === Infinity ? undefined : Math.max(0, deadline - now));
      }
      mb.setWaiting(false);
    }
  }

  /** What to do when the vCPU stopped during a call. */
  #onStop(reason: number): void {
    const { loop } = this.#parts;
    switch (reason) {
      case STOP_PARKED:
      case STOP_FORCED_PARK:
        break; // it parked before it saw the call, or while a host function ran: re-enter
      case STOP_INTERRUPTED: {
        const cancel = this.#parts.interrupt.cancelReason();
        if (cancel !== CANCEL_NONE) throw new ExecutionCanceledError(cancel === CANCEL_KILL ? 'killed' : 'timeout');
        break;
      }
      case STOP_EXIT: {
        const exit = this.#m.vcpu.decodeExit(Atomics.load(this.#ctl, CTL_RESULT));
        // System calls are served and resumed; faults, aborts and bad doorbell stores throw.
        const action = loop.handleExit(exit);
        if (action) throw new GuestProtocolError(`the guest rang ${action.kind} on the doorbell in exitless mode; it posts it to the mailbox`);
        break;
      }
      case STOP_ERROR:
        throw new KvmIoctlError(KVM_RUN, -Atomics.load(this.#ctl, CTL_RESULT));
      default:
        throw new GuestProtocolError(`unknown vCPU stop ${reason}`);
    }
    this.#run();
  }

  /** Lets the vCPU thread enter KVM_RUN. */
  #run(): void {
    const ctl = this.#ctl;
    this.#m.vcpu.prepareRun();
    Atomics.store(ctl, CTL_STOP, STOP_NONE);
    Atomics.store(ctl, CTL_GO, GO_RUN);
    Atomics.notify(ctl, CTL_GO);
    this.#running = true;
  }

  /** Waits until the vCPU has stopped; returns the reason (0 if it did not within `ms`). */
  #awaitStop(ms: number): number {
    const ctl = this.#ctl;
    const end = performance.now() + ms;
    for (;;) {
      const events = Atomics.load(ctl, CTL_EVENTS);
      const stop = Atomics.load(ctl, CTL_STOP);
      if (stop !== STOP_NONE) {
        this.#running = false;
        return stop;
      }
      const left = end - performance.now();
      if (left <= 0) return STOP_NONE;
      Atomics.wait(ctl, CTL_EVENTS, events, left);
    }
  }

  #awaitThread(ok: (tid: number) => boolean, what: string): number {
    const end = performance.now() + THREAD_WAIT_MS;
    for (;;) {
      const tid = Atomics.load(this.#ctl, CTL_TID);
      if (ok(tid)) return tid;
      const left = end - performance.now();
      if (left <= 0) throw new GuestProtocolError(`the exitless vCPU thread did not ${what} within ${THREAD_WAIT_MS} ms`);
      Atomics.wait(this.#ctl, CTL_TID, tid, left);
    }
  }

  /**
   * Takes the vCPU out of KVM_RUN: asks the guest to park, and after PARK_GRACE_MS kicks it
   * out with a signal (a guest that stopped answering its mailbox). Returns the stop reason
   * (0 when it was not running).
   */
  #stopVcpu(): number {
    if (!this.#running) return STOP_NONE;
    const ctl = this.#ctl;
    const already = Atomics.load(ctl, CTL_STOP);
    if (already !== STOP_NONE) {
      this.#running = false;
      return already;
    }
    this.#mb.post(MB_CMD_PARK);
    let reason = this.#awaitStop(PARK_GRACE_MS);
    if (reason === STOP_NONE) {
      Atomics.store(ctl, CTL_STOP_REQUEST, 1);
      const end = performance.now() + THREAD_WAIT_MS;
      while ((reason = this.#awaitStop(1)) === STOP_NONE && performance.now() < end) {
        tgkill(getpid(), this.#tid, vcpuKickSignal());
      }
      Atomics.store(ctl, CTL_STOP_REQUEST, 0);
    }
    if (reason === STOP_EXIT || reason === STOP_ERROR) {
      // An exit outside a call (a system call or fault while idle): the guest's state is unknown.
      this.#poisonWith(new GuestProtocolError('the guest left its mailbox loop between calls'));
    }
    return reason;
  }

  #poisonWith(e: unknown): void {
    this.#poison ??= e;
    this.#inner.markPoisoned(e);
    try {
      this.#stopVcpu(); // a poisoned guest burns no CPU
    } catch {
      // stopping is best effort here; restore() and close() stop it again
    }
  }

  /**
   * Parks the vCPU and captures memory and vCPU state (as MultiUseSandbox.snapshot). Not
   * allowed while poisoned.
   */
  snapshot(): Snapshot {
    this.#usable();
    if (this.#poison !== undefined) throw new PoisonedSandboxError({ cause: this.#poison });
    this.#stopVcpu();
    if (this.#poison !== undefined) throw new PoisonedSandboxError({ cause: this.#poison });
    this.#noteWrittenBeforeBaseline();
    const snap = this.#inner.snapshot();
    this.#baseline = snap;
    this.#workingSet = undefined;
    return snap;
  }

  /**
   * Brings the sandbox back to `snapshot` (default: the state it entered exitless mode in).
   * While the vCPU spins and the working set is known, only that is copied back, with the
   * guest waiting in its mailbox loop (no exit, registers not restored); otherwise, with
   * `exact`, or after any failure, the vCPU is parked and the full restore of
   * MultiUseSandbox.restore runs (docs/security.md says what each one restores).
   * @throws SnapshotIncompatibleError for a snapshot of another sandbox.
   */
  restore(snapshot: Snapshot = this.initialSnapshot, options: ExitlessRestoreOptions = {}): void {
    this.#usable();
    if (snapshot === this.#baseline && this.#poison === undefined && options.exact !== true && this.#workingSet && this.#running &&
        Atomics.load(this.#ctl, CTL_STOP) === STOP_NONE) {
      return this.#workingSetRestore(snapshot, this.#workingSet);
    }
    this.#exactRestore(snapshot);
  }

  #exactRestore(snapshot: Snapshot): void {
    this.#stopVcpu();
    const { vm, manualDirtyLog, memory, layout } = this.#m;
    const learn = manualDirtyLog && snapshot === this.#baseline;
    const dirty = learn ? vm.getDirtyLog(GUEST_SLOT) : undefined;
    this.#inner.restore(snapshot);
    const snapMem = snapshot.memory;
    // What the host wrote itself (not in KVM's dirty log): the mailbox, the I/O buffers.
    snapMem.restoreRange(memory, layout.inputData.gpa, layout.inputData.size);
    snapMem.restoreRange(memory, layout.outputData.gpa, layout.outputData.size);
    this.#mb.resync();
    this.#inl.forgetName(); // the page came back from the snapshot
    this.#stacksTouched = true; // and so did the I/O stacks, perhaps never used (stack pointers 0)
    this.#out.high = 0;
    this.#io.clearHostWrites();
    if (this.#baseline !== snapshot) {
      this.#baseline = snapshot;
      this.#workingSet = undefined;
    } else if (dirty) {
      this.#workingSet = this.#learn(dirty, this.#workingSet ?? this.#writtenBeforeBaseline);
    }
    this.#poison = undefined;
  }

  /**
   * The pages set in `dirty` that the guest itself can write (image to stack end, minus the
   * I/O buffers and the mailbox; never the host's system area or page tables, whose A/D bits
   * make them dirty), merged into `known`.
   */
  #learn(dirty: Uint8Array, known: number[] | undefined): number[] {
    const { inputData, outputData, image, stack } = this.#m.layout;
    const skip = (p: number): boolean => {
      const a = p * PAGE_SIZE;
      return a < image.gpa || a >= stack.gpa + stack.size ||
        (a >= inputData.gpa && a < inputData.gpa + inputData.size) ||
        (a >= outputData.gpa && a < outputData.gpa + outputData.size);
    };
    const set = new Set(known);
    for (let i = 0; i < dirty.length; i++) {
      const byte = dirty[i]!;
      if (byte === 0) continue;
      for (let b = 0; b < 8; b++) if (byte & (1 << b) && !skip(i * 8 + b)) set.add(i * 8 + b);
    }
    return [...set].sort((a, b) => a - b);
  }

  /** Copies the working set back while the guest waits in its mailbox loop (its frames at the stack top stay). */
  #workingSetRestore(snapshot: Snapshot, pages: readonly number[]): void {
    const { memory, layout } = this.#m;
    const snapMem = snapshot.memory;
    const keepFrom = layout.stack.gpa + layout.stack.size - LOOP_FRAMES;
    // Only what differs from the snapshot is written (restoreChanged): a page a call wrote
    // back to the same bytes is only read, and keeps its cache lines on the guest's CPU.
    for (const p of pages) {
      const a = p * PAGE_SIZE;
      if (a + PAGE_SIZE <= keepFrom || a >= layout.stack.gpa + layout.stack.size) {
        snapMem.restoreChanged(memory, a, PAGE_SIZE);
      } else if (a < keepFrom) {
        snapMem.restoreChanged(memory, a, keepFrom - a); // byte-exact: the loop's frames stay
      }
    }
    snapMem.restoreChanged(memory, layout.inputData.gpa, Math.max(8, this.#io.hostWriteEndInput));
    snapMem.restoreChanged(memory, layout.outputData.gpa, Math.max(8, this.#out.high));
    this.#stacksTouched = true; // the stacks are the snapshot's again, perhaps never used (stack pointers 0)
    this.#io.clearHostWrites();
    this.#out.high = 0;
  }

  /** Stops the vCPU thread and releases the sandbox (vCPU, VM, memory); idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#busy) throw new SandboxBusyError();
    this.#close();
  }

  #close(): void {
    this.#closed = true;
    try {
      this.#stopVcpu();
    } finally {
      Atomics.store(this.#ctl, CTL_GO, GO_QUIT);
      Atomics.notify(this.#ctl, CTL_GO);
      try {
        this.#awaitThread((tid) => tid < 0, 'end');
      } finally {
        if (this.#poison !== undefined) this.#inner.markPoisoned(this.#poison);
        this.#inner.close();
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
