// An evolved sandbox: typed guest calls, host calls answered, snapshots, poisoning, kill.
import { ResourceClosedError } from '../kvm/errors.js';
import { MemorySnapshot } from '../mem/snapshot.js';
import { hostView } from '../mem/guest-memory.js';
import { PEB_OFF_RANDOM_SEED, writePebRandomSeed } from './abi.js';
import { afterFailure, guardExitSink, guardPhaseSink } from './callbacks.js';
import { type CallCounters, callChannel, newSandboxId, publishSyncCall } from './diagnostics.js';
import type { ResolvedConfig } from './config.js';
import {
  GuestError, OutputLimitError, PoisonedSandboxError, ReturnTypeMismatchError, SandboxBusyError,
  SnapshotIncompatibleError, describeThrown,
  poisons,
} from './errors.js';
import { forget, releaseWhenCollected } from './forgotten.js';
import { type GuestFunctionSignature, declaredArguments, withUndeclaredHint } from './guest-functions.js';
import { HOST_ERROR_CODE, type HostFunctionRegistry } from './host-functions.js';
import type { InterruptHandle, InterruptState } from './interrupt.js';
import { OutputBudget } from './output-budget.js';
import type { ExitSink, RunLoop } from './run-loop.js';
import type { DecodedFunctionCall } from './codec.js';
import { Snapshot, type SnapshotSource, layoutKey } from './snapshot.js';
import {
  type CallArgument, type PlainOf, type PlainValue, type ReturnTypeName, type TypedValue, fromPlain, parseReturnTypeName,
} from './values.js';
import { GUEST_SLOT, type Machine, type PhaseSink, closeMachine, freshSeed } from './machine.js';
import { applyGuestCpuState, captureGuestCpuState, resetPrivileged } from './vcpu-state.js';
import { type MapRegionOptions, MappedRegions } from './mapped-regions.js';
import { dumpOnCrash } from './crash-dump.js';
import { GdbStub } from './gdb-stub.js';
import { type FromSnapshotOptions, type SnapshotHostFunctions, sandboxFromSnapshot } from './from-snapshot.js';

export type SandboxStatus = 'ready' | 'poisoned' | 'closed';

/** Options of `MultiUseSandbox.restore`. */
export interface RestoreOptions {
  /** Give the guest a new random seed after restoring (default false: the snapshot's). */
  reseed?: boolean;
  /**
   * Accept a snapshot taken from another sandbox, or loaded from a file, of the same guest
   * binary and memory layout (default false: SnapshotIncompatibleError). This sandbox then
   * continues as that one; its own host functions and configuration stay.
   */
  allowOtherSandbox?: boolean;
}

/**
 * Pages a restore may copy back before the dirty log is cleared (write-protecting every
 * page again). With KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 the log keeps every page written
 * since it was last cleared, so each restore copies the whole working set (a few pages for
 * a small call) and no page faults on the next call; a call that touched many pages would
 * make every later restore copy them all, so past this many the log starts over.
 */
const RESTORE_WORKING_SET_MAX = 256;

/**
 * Runs host function call `call` and encodes its FunctionCallResult; `failed` is what the
 * function threw (undefined: it returned). A library limit reached inside a host function
 * (HostPrint's output budget) is thrown: it ends the guest call.
 */
export function answerHostCall(codec: RunLoop['codec'], hosts: HostFunctionRegistry, call: DecodedFunctionCall):
  { reply: Uint8Array; failed: unknown } {
  const r = runHostCall(hosts, call.name, call.args);
  return { reply: hostCallReply(codec, r), failed: r.failed };
}

/** What host function `name` returned (`failed` undefined) or threw; a library limit (OutputLimitError) is thrown. */
export function runHostCall(hosts: HostFunctionRegistry, name: string, args: readonly TypedValue[]):
  { value: TypedValue | undefined; failed: unknown } {
  try {
    return { value: hosts.call(name, args), failed: undefined };
  } catch (e) {
    if (e instanceof OutputLimitError) throw e;
    return { value: undefined, failed: e };
  }
}

/** The FunctionCallResult of a host call's outcome: what a host function throws itself goes back to the guest as HostError. */
export function hostCallReply(codec: RunLoop['codec'], r: { value: TypedValue | undefined; failed: unknown }): Uint8Array {
  if (r.failed === undefined) return codec.encodeFunctionCallResult({ ok: true, value: r.value });
  return codec.encodeFunctionCallResult({ ok: false, code: HOST_ERROR_CODE, message: describeThrown(r.failed) });
}

/**
 * The plain result of guest call `name` from its FunctionCallResult bytes (no objects made
 * for a scalar), or GuestError (with the last host function failure as its cause), or
 * ReturnTypeMismatchError.
 */
export function callResultPlain(codec: RunLoop['codec'], bytes: Uint8Array, name: string, returnType: ReturnTypeName,
  hostError: unknown): PlainValue {
  const outcome = codec.decodeResultSlot(bytes);
  if (!outcome.ok) {
    throw new GuestError(outcome.code, outcome.message, hostError === undefined ? undefined : { cause: hostError });
  }
  if (outcome.type !== returnType) {
    throw new ReturnTypeMismatchError(`guest function ${name} returned ${outcome.type}, the caller expected ${returnType}`);
  }
  return outcome.value;
}

/** As callResultPlain, as a TypedValue (undefined for Void). */
export function callResult(codec: RunLoop['codec'], bytes: Uint8Array, name: string, returnType: ReturnTypeName,
  hostError: unknown): TypedValue | undefined {
  const value = callResultPlain(codec, bytes, name, returnType, hostError);
  return returnType === 'Void' ? undefined : { type: returnType, value } as TypedValue;
}

const DRIVEN: { hostError: unknown; halt: bigint } = { hostError: undefined, halt: 0n };

/** Runs the guest until its call halts, answering host calls synchronously. `halt`: the halt's doorbell argument. */
export function driveToHalt(loop: RunLoop, hosts: HostFunctionRegistry, counters?: CallCounters): { hostError: unknown; halt: bigint } {
  let hostError: unknown;
  for (;;) {
    const action = loop.step();
    if (action.kind === 'halt') {
      // One object for every return (read it at once): a host function's nested calls into
      // other sandboxes all return before this one does.
      DRIVEN.hostError = hostError;
      DRIVEN.halt = action.value;
      return DRIVEN;
    }
    const t0 = counters ? performance.now() : 0;
    const { reply, failed } = answerHostCall(loop.codec, hosts, action.call);
    if (counters) {
      counters.hostCalls++;
      counters.hostNs += (performance.now() - t0) * 1e6;
    }
    if (failed !== undefined) hostError = failed;
    loop.io.pushInput(reply);
  }
}

/** What a MultiUseSandbox is made of (MultiUseSandbox.create). */
type SandboxParts = [machine: Machine, loop: RunLoop, interrupt: InterruptState, hosts: HostFunctionRegistry,
  config: ResolvedConfig, dispatchAddress: bigint, trace?: PhaseSink, release?: (m: Machine) => boolean,
  budget?: OutputBudget];

/**
 * A guest that has run its initialisation and is ready for calls. State persists between
 * calls. A failure that leaves the guest in an unknown state poisons the sandbox: it then
 * refuses calls until `restore(snapshot)`.
 */
export class MultiUseSandbox {
  readonly #m: Machine;
  readonly #loop: RunLoop;
  readonly #interrupt: InterruptState;
  readonly #hosts: HostFunctionRegistry;
  readonly #config: ResolvedConfig;
  readonly #layoutKey: string;
  readonly #trace: PhaseSink | undefined;
  readonly #budget: OutputBudget;
  #poison: unknown;
  /** Identifies this sandbox in diagnostics records (`hyperlight-ts:call`). */
  readonly id = newSandboxId();
  #declared: (name: string) => GuestFunctionSignature | undefined = () => undefined;
  #closed = false;
  #busy = false;
  /** The snapshot guest memory equals, apart from pages in the dirty log. */
  #baseline: Snapshot | undefined;
  /** What this sandbox's snapshots record as their origin: restore() accepts others only when allowed. */
  readonly #identity: object = Object.freeze({});
  /** The snapshot fromSnapshot() made this sandbox from: its own starting state, restorable without opt-in. */
  #startedFrom: Snapshot | undefined;
  /** Guest address of the dispatch function the guest reported at init. */
  readonly dispatchAddress: bigint;
  /** What snapshots of this sandbox record about it (binary, layout inputs, segments). */
  #source: SnapshotSource | undefined;
  /** Host memory mapped into the guest (mapRegion), made on first use. */
  #regions: MappedRegions | undefined;

  /** The gdb stub (config.debug.gdbPort), listening from construction. */
  readonly #gdb: GdbStub | undefined;

  /** Offered the machine at close(); true when it kept it for reuse (a VM pool). */
  readonly #release: ((m: Machine) => boolean) | undefined;

  /** @internal the library's only way to make one (the constructor is private): `UninitializedSandbox.evolve()` and `fromSnapshot()` call it. */
  static create(...parts: SandboxParts): MultiUseSandbox {
    return new MultiUseSandbox(...parts);
  }

  // Private, so `new MultiUseSandbox()` does not type-check for users: sandboxes come from evolve() or fromSnapshot().
  private constructor(...[machine, loop, interrupt, hosts, config, dispatchAddress, trace, release, budget]: SandboxParts) {
    this.#release = release;
    this.#budget = budget ?? new OutputBudget(config.maxOutputBytesPerCall);
    this.#m = machine;
    this.#loop = loop;
    this.#interrupt = interrupt;
    this.#hosts = hosts;
    this.#config = config;
    this.#layoutKey = layoutKey(machine.layout);
    this.dispatchAddress = dispatchAddress;
    this.#trace = guardPhaseSink(trace);
    if (config.gdbPort !== undefined) {
      this.#gdb = new GdbStub(config.gdbPort, {
        machine, loadOffset: loop.loadOffset, hostWrittenPages: loop.syscalls.hostWrittenPages,
        completePendingExit: () => loop.completePendingExit(),
        pauseClock: () => loop.timeLimit.pause(), resumeClock: (left) => loop.timeLimit.resume(left),
      });
      loop.debugger = this.#gdb;
    }
    releaseWhenCollected(this, { machine, loop, interrupt });
  }

  /**
   * A sandbox from a snapshot (from `snapshot()` or `Snapshot.load()`) without running any
   * guest code: a new VM whose memory maps the snapshot's pages copy-on-write when it was
   * loaded from a file (copies them otherwise), with its registers. `hostFunctions` are
   * registered as with `registerHostFunction` (HostPrint prints to stdout unless `print` is
   * given). The guest's declared functions are not known (call() converts plain values by
   * their JS type). The guest gets a fresh random seed, as every new sandbox does
   * (`{ reseed: false }` keeps the snapshot's); `restore(snapshot)` needs no opt-in here.
   * @throws SnapshotIncompatibleError when the snapshot's special registers are not what
   *   this host gives a ring-3 guest (another CPU's features); ConfigInvalidError for a bad
   *   host function; KVM errors.
   */
  static fromSnapshot(snapshot: Snapshot, hostFunctions: SnapshotHostFunctions = {},
    options: FromSnapshotOptions = {}): MultiUseSandbox {
    return sandboxFromSnapshot(snapshot, hostFunctions, options);
  }

  /** @internal what this sandbox's snapshots record (set by evolve() and fromSnapshot()). */
  setSnapshotSource(source: SnapshotSource): void {
    this.#source = source;
  }

  /** @internal guest memory and registers equal `snapshot` (fromSnapshot): a restore to it copies only dirty pages. */
  startedFrom(snapshot: Snapshot): void {
    this.#baseline = snapshot;
    this.#startedFrom = snapshot;
  }

  /**
   * Maps host memory into the guest at `guestAddress` (identity-mapped, page-aligned, above
   * the sandbox's own memory and below 512 GiB), as an extra KVM memory slot with user
   * page-table entries, NX always. A file path is mapped MAP_PRIVATE without copying (with
   * `writable`, copy-on-write: the guest's writes never reach the file); a buffer is copied
   * once into page-aligned memory of the region's own. Read-only regions are read-only
   * twice: in the page tables (a guest write is a page fault, GuestExceptionError vector
   * 14) and in KVM (KVM_MEM_READONLY). The guest finds the regions in its PEB
   * (`hl_mapped_region` in the SDK). Regions stay across calls and snapshots taken after
   * them; `restore()` to a snapshot taken before a region was mapped unmaps it, and
   * `close()` unmaps all. At most 16. Returns the mapped size (a multiple of 4 KiB).
   * @throws ConfigInvalidError for a bad address, an overlap, an unreadable file.
   */
  mapRegion(source: Uint8Array | string, guestAddress: bigint | number, options: MapRegionOptions = {}): number {
    this.#usable();
    if (this.#poison !== undefined) throw new PoisonedSandboxError({ cause: this.#poison });
    this.#regions ??= new MappedRegions(this.#m);
    return this.#regions.map(source, guestAddress, options);
  }

  /** `ready`, `poisoned` (only restore() is accepted) or `closed`. */
  status(): SandboxStatus {
    return this.#closed ? 'closed' : this.#poison !== undefined ? 'poisoned' : 'ready';
  }

  get poisoned(): boolean {
    return this.#poison !== undefined;
  }

  /**
   * Bytes of guest output the default print function dropped because stdout was backed up
   * by more than 16 MiB (a pipe nobody reads); 0 with a print function of your own.
   */
  get droppedOutputBytes(): number {
    return this.#budget.dropped;
  }

  /** The memory layout (for tools). */
  get layout(): Machine['layout'] {
    return this.#m.layout;
  }

  /** @internal what exitless mode (src/exitless/) drives this sandbox's guest with. */
  exitlessParts(): { loop: RunLoop; interrupt: InterruptState; hosts: HostFunctionRegistry; config: ResolvedConfig;
    budget: OutputBudget; declared: (name: string) => GuestFunctionSignature | undefined; } {
    return { loop: this.#loop, interrupt: this.#interrupt, hosts: this.#hosts, config: this.#config, budget: this.#budget,
      declared: this.#declared };
  }

  /** @internal exitless mode found the guest in an unknown state: restore() then does its full reset. */
  markPoisoned(error: unknown): void {
    this.#poison ??= error;
  }

  /** @internal the machine, for tools and tests that look inside. */
  get machine(): Machine {
    return this.#m;
  }

  #usable(): void {
    if (this.#closed) throw new ResourceClosedError('MultiUseSandbox');
    if (this.#busy) throw new SandboxBusyError();
  }

  /**
   * Calls guest function `name` with explicit typed parameters and returns its result as a
   * plain value (`number`, `bigint`, `string`, `boolean`, `Uint8Array`, or `undefined` for
   * Void).
   * @throws GuestError when the guest function fails (does not poison); the typed errors
   *   of docs/errors.md otherwise; PoisonedSandboxError while poisoned.
   */
  callGuestFunctionByName<R extends ReturnTypeName>(name: string, returnType: R, params: readonly TypedValue[] = []): PlainOf<R> {
    return this.#invoke(name, parseReturnTypeName(returnType), params) as PlainOf<R>;
  }

  /**
   * Calls guest function `name` with plain JS arguments. When the guest's ELF declares the
   * function (GuestBinary.functions()), each argument is converted to its declared type
   * (a number to Long, Float, ...) and `returnType` must be the declared one. Otherwise:
   * string -> String, boolean -> Bool, bigint -> Long (ULong above i64), Uint8Array ->
   * VecBytes, number -> Int when it is a 32-bit integer, otherwise Double; use
   * ParameterValue for other types.
   */
  call<R extends ReturnTypeName>(name: string, returnType: R, ...args: CallArgument[]): PlainOf<R> {
    const ret = parseReturnTypeName(returnType);
    const declared = this.#declared(name);
    const params = declared ? declaredArguments(declared, ret, args) : args.map(fromPlain);
    try {
      return this.#invoke(name, ret, params) as PlainOf<R>;
    } catch (e) {
      throw declared ? e : withUndeclaredHint(e, name, params);
    }
  }

  /**
   * @internal how to look up the guest's declared functions (GuestBinary.declaredFunction):
   * call() converts plain arguments to their declared types and checks the return type.
   */
  declareGuestFunctions(lookup: (name: string) => GuestFunctionSignature | undefined): void {
    this.#declared = lookup;
  }

  #invoke(name: string, returnType: ReturnTypeName, params: readonly TypedValue[]): PlainValue {
    if (!callChannel.hasSubscribers) return this.#invokeNow(name, returnType, params, undefined);
    // Observed: count exits (beside any sink of traceExits) and host time, then publish a record.
    const counters: CallCounters = { hostNs: 0, hostCalls: 0, exits: 0 };
    const loop = this.#loop;
    const sink = loop.exitSink;
    loop.exitSink = { exit: (exit, rip, timeNs) => { counters.exits++; sink?.exit(exit, rip, timeNs); } };
    const t0 = performance.now();
    let result: PlainValue;
    try {
      result = this.#invokeNow(name, returnType, params, counters);
    } catch (e) {
      loop.exitSink = sink;
      publishSyncCall(name, e, t0, counters, this.id);
      throw e;
    }
    loop.exitSink = sink;
    publishSyncCall(name, undefined, t0, counters, this.id);
    return result;
  }

  #invokeNow(name: string, returnType: ReturnTypeName, params: readonly TypedValue[], counters: CallCounters | undefined): PlainValue {
    this.#usable();
    if (this.#poison !== undefined) throw new PoisonedSandboxError({ cause: this.#poison });
    const loop = this.#loop;
    // Nothing below can poison until the guest runs: a bad argument leaves it untouched.
    const length = loop.codec.writeFunctionCall(name, params, 'guest', returnType);
    loop.io.startCall(loop.codec.writer.bytes, length);
    loop.guestEntered = false;
    this.#budget.begin();
    const trace = this.#trace;
    const t0 = trace ? process.hrtime.bigint() : 0n;
    let result: PlainValue;
    this.#busy = true;
    this.#interrupt.beginCall();
    try {
      loop.timeLimit.arm(this.#config.maxExecutionTimeMs);
      this.#gdb?.beforeCall();
      result = this.#runCall(name, returnType, counters);
    } catch (e) {
      dumpOnCrash(e, this.#m, this.#config.crashDumpDir, 'guest');
      if (poisons(e, loop.guestEntered)) this.#poison = e;
      // A phase sink that throws now is recorded on the call's error, never replaces it.
      if (trace) afterFailure(e, () => trace.phase('call', t0, process.hrtime.bigint()));
      throw e;
    } finally {
      // First what keeps the sandbox usable: a failure below must not leave it busy.
      this.#busy = false;
      this.#interrupt.endCall();
      loop.timeLimit.disarm();
    }
    if (trace) trace.phase('call', t0, process.hrtime.bigint());
    return result;
  }

  /** Drives the guest call to its Halt and checks its result. */
  #runCall(name: string, returnType: ReturnTypeName, counters: CallCounters | undefined): PlainValue {
    const loop = this.#loop;
    const { hostError } = driveToHalt(loop, this.#hosts, counters);
    return callResultPlain(loop.codec, loop.io.popOutput(), name, returnType, hostError);
  }

  /** Starts (or with `undefined`, stops) sending every VM exit to `sink`. */
  traceExits(sink: ExitSink | undefined): void {
    this.#loop.exitSink = guardExitSink(sink);
  }

  /** A handle that stops the running call from any thread (`kill()`). */
  interruptHandle(): InterruptHandle {
    return this.#interrupt.handle();
  }

  /**
   * Captures guest memory and the vCPU state a guest can change (registers, segments,
   * XSAVE). Not allowed while poisoned (the state is unknown): restore first.
   */
  snapshot(): Snapshot {
    this.#usable();
    if (this.#poison !== undefined) throw new PoisonedSandboxError({ cause: this.#poison });
    const { vm, vcpu, memory, manualDirtyLog } = this.#m;
    // Empty the log, so from here on it holds exactly the pages written since this snapshot
    // (what a restore to it copies). Auto-protect mode: reading it does that. Manual mode:
    // clearing re-protects the pages once; each one the guest writes again then faults once
    // on its next write and stays writable, so the restores after it copy only what the
    // calls write, not also every page guest init wrote.
    if (manualDirtyLog) vm.clearDirtyLog(GUEST_SLOT);
    else vm.getDirtyLog(GUEST_SLOT);
    if (!this.#source) throw new SnapshotIncompatibleError('this sandbox was built without what a snapshot records');
    this.#gdb?.unpatch(); // a snapshot holds the guest's code, not gdb's breakpoints
    const snap = Snapshot.of(this.#layoutKey, MemorySnapshot.capture(memory), captureGuestCpuState(vcpu), this.#source,
      this.#regions?.lastId ?? 0, this.#identity);
    this.#baseline = snap;
    this.#loop.io.clearHostWrites();
    this.#loop.syscalls.hostWrittenPages.clear();
    this.#gdb?.repatch();
    return snap;
  }

  /**
   * Brings memory and vCPU state back to `snapshot`, also from a poisoned state. When the
   * sandbox's memory last equalled this same snapshot, only the pages KVM's dirty log
   * reports (plus the bytes the host wrote: I/O buffers, the PEB's seed) are copied;
   * otherwise all of memory. Registers, segments and the XSAVE area come back exactly; after
   * a fault (poisoned), the debug registers and pending events are also reset to a new
   * vCPU's. With `reseed`, the guest also gets a new random seed (its `rand()` then differs
   * from the snapshot's sequence). A snapshot taken from another sandbox, or loaded from a
   * file, is refused unless `allowOtherSandbox` is set (this sandbox would then answer as
   * that one); the one fromSnapshot() made this sandbox from counts as its own.
   * @throws SnapshotIncompatibleError for a snapshot of another guest binary or memory
   *   layout, or of another sandbox without `allowOtherSandbox`.
   */
  restore(snapshot: Snapshot, options: RestoreOptions = {}): void {
    this.#usable();
    if (!(snapshot instanceof Snapshot)) throw new SnapshotIncompatibleError('restore() needs a Snapshot from snapshot()');
    if (snapshot.layoutKey !== this.#layoutKey) {
      throw new SnapshotIncompatibleError('snapshot was taken from a sandbox with a different memory layout');
    }
    if (this.#source && snapshot.source.binaryHash !== this.#source.binaryHash &&
      snapshot.source.binaryHash() !== this.#source.binaryHash()) {
      throw new SnapshotIncompatibleError('snapshot was taken from a sandbox of another guest binary');
    }
    if (snapshot.origin !== this.#identity && snapshot !== this.#startedFrom && options.allowOtherSandbox !== true) {
      throw new SnapshotIncompatibleError(`snapshot was ${snapshot.origin === undefined ? 'loaded from a file' : 'taken from another sandbox'}` +
        ' (same binary and layout): pass { allowOtherSandbox: true } to restore() to continue as that sandbox, or use MultiUseSandbox.fromSnapshot()');
    }
    const upTo = snapshot.mappedRegionsUpTo;
    if (upTo !== 0 && !this.#regions?.has(upTo)) {
      // Regions are unmapped newest first, so the snapshot's newest one tells whether all of them remain.
      throw new SnapshotIncompatibleError('snapshot was taken while a host region was mapped that has been unmapped since');
    }
    const { vm, vcpu, memory, layout, manualDirtyLog } = this.#m;
    const loop = this.#loop;
    const io = loop.io;
    this.#gdb?.unpatch(); // back below with the snapshot's code under them
    if (this.#poison !== undefined) {
      // A call that failed may have stopped on an exit KVM still has to complete (the
      // stubs' OUT, an MMIO read): finish it now, or it would overwrite the registers set
      // below on the next run. Then put back what only a fault could have changed.
      loop.completePendingExit();
      resetPrivileged(vcpu, this.#m.reference, { msrs: false });
    }
    const dirty = vm.getDirtyLog(GUEST_SLOT);
    if (this.#baseline === snapshot) {
      const pages = snapshot.memory.restoreDirty(memory, dirty);
      snapshot.memory.restoreRange(memory, layout.inputData.gpa, io.hostWriteEndInput);
      snapshot.memory.restoreRange(memory, layout.outputData.gpa, io.hostWriteEndOutput);
      snapshot.memory.restoreRange(memory, layout.peb.gpa + PEB_OFF_RANDOM_SEED, 8); // host-written
      for (const p of loop.syscalls.hostWrittenPages) snapshot.memory.restoreRange(memory, p * 4096, 4096);
      if (manualDirtyLog && pages > RESTORE_WORKING_SET_MAX) vm.clearDirtyLog(GUEST_SLOT);
    } else {
      snapshot.memory.restoreFull(memory);
    }
    if (options.reseed === true) writePebRandomSeed(hostView(memory), layout.peb.gpa, freshSeed());
    this.#regions?.unmapNewerThan(snapshot.mappedRegionsUpTo);
    applyGuestCpuState(vcpu, snapshot.cpu);
    this.#baseline = snapshot;
    io.clearHostWrites();
    loop.syscalls.hostWrittenPages.clear();
    this.#gdb?.repatch();
    this.#poison = undefined;
  }

  /**
   * Releases the vCPU, VM and guest memory (or, with a GuestBinary `vmPool`, keeps them
   * for reuse when the sandbox is not poisoned); idempotent. Not allowed from inside a
   * call (a host function): SandboxBusyError.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#busy) throw new SandboxBusyError();
    this.#closed = true;
    forget(this);
    this.#interrupt.close();
    this.#gdb?.close();
    this.#loop.close();
    this.#regions?.closeAll();
    // A sandbox that ended cleanly may hand its VM to its binary's pool (vmPool); the
    // next evolve() resets it completely. A poisoned one is always destroyed.
    if (this.#poison === undefined && this.#release?.(this.#m)) return;
    closeMachine(this.#m);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
