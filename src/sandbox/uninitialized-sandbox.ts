// A sandbox before evolve(): the validated guest image, configuration and host functions.
import { ConfigInvalidError } from '../errors.js';
import type { ElfImage } from '../elf/index.js';
import { afterFailure, guardExitSink, guardOutputSinks, guardPhaseSink } from './callbacks.js';
import { OutputBudget, budgetSinks, printToStdout } from './output-budget.js';
import { type ResolvedConfig, type SandboxConfig, resolveConfig } from './config.js';
import type { GuestLogRecord } from './codec.js';
import { GuestProtocolError } from './errors.js';
import { GuestBinary } from './guest-binary.js';
import { type HostFunction, HostFunctionRegistry, type HostFunctionSignature } from './host-functions.js';
import { type InterruptHandle, InterruptState } from './interrupt.js';
import type { ParameterTypeName, ReturnTypeName } from './values.js';
import { MultiUseSandbox, driveToHalt } from './multi-use-sandbox.js';
import { type ExitSink, RunLoop } from './run-loop.js';
import { type Machine, type PhaseSink, closeMachine, createMachine, layoutFor, reusable } from './machine.js';
import { layoutKey } from './snapshot.js';
import { MemorySnapshot } from '../mem/snapshot.js';
import { captureGuestCpuState } from './vcpu-state.js';
import { dumpOnCrash } from './crash-dump.js';
import type { MemoryLayout } from '../mem/x86_64/index.js';
import { AsyncSandbox, type AsyncSandboxParts, pollMsOf } from '../async/async-sandbox.js';
import { ExitlessSandbox, type ExitlessOptions, exitlessModeOf } from '../exitless/exitless-sandbox.js';

/** Prints guest text; returns the number of characters printed (HostPrint's result). */
export type PrintFunction = (text: string) => number | void;
/** Receives guest log records at or above the level given to `registerLogger`. */
export type LogFunction = (record: GuestLogRecord) => void;

/** Log levels a guest may send (Hyperlight's LogLevel). */
export const LogLevel = Object.freeze({
  Trace: 0, Debug: 1, Information: 2, Warning: 3, Error: 4, Critical: 5, None: 6,
} as const);


export interface EvolveOptions {
  /** Receives the duration of each start-up phase (and of each call later). */
  trace?: PhaseSink;
  /** Receives every VM exit, from guest init on (tracing; reads RIP per exit). */
  exits?: ExitSink;
  /** Run the guest's init even when a template from an earlier evolve() exists. */
  freshInit?: boolean;
  /**
   * Exitless mode (docs/exitless.md): the vCPU runs on a thread of its own and calls cross a
   * mailbox in guest memory without exits; evolve() then returns an ExitlessSandbox.
   */
  exitless?: ExitlessOptions | boolean;
}

/**
 * A guest binary with its configuration and host functions, not yet running. Create with
 * `UninitializedSandbox.create()`, register host functions, then `evolve()`.
 */
export class UninitializedSandbox {
  readonly #binary: GuestBinary;
  readonly #image: ElfImage;
  readonly #config: ResolvedConfig;
  readonly #layout: MemoryLayout;
  readonly #hosts = new HostFunctionRegistry();
  /** The application's print function; undefined: the default (stdout, see printToStdout). */
  #print: PrintFunction | undefined;
  /** Whether the application registered its own HostPrint. */
  #ownHostPrint = false;
  #logger: LogFunction | undefined;
  #logLevel: number = LogLevel.None;
  /** The interrupt state the next evolve() runs under (made by interruptHandle() or evolve()). */
  #interrupt: InterruptState | undefined;

  private constructor(binary: GuestBinary, config: ResolvedConfig, layout: MemoryLayout) {
    this.#binary = binary;
    this.#image = binary.image();
    this.#config = config;
    this.#layout = layout;
  }

  /**
   * Validates the guest ELF and the configuration.
   * @param guest a GuestBinary, a file path, or the ELF bytes.
   * @throws ElfInvalidError (ERR_ELF_INVALID), ConfigInvalidError (ERR_CONFIG_INVALID).
   */
  static create(guest: GuestBinary | string | Uint8Array, config?: SandboxConfig): UninitializedSandbox {
    const binary = guest instanceof GuestBinary ? guest
      : typeof guest === 'string' ? GuestBinary.filePath(guest)
        : guest instanceof Uint8Array ? GuestBinary.buffer(guest)
          : undefined;
    if (!binary) throw new ConfigInvalidError('guest', 'must be a GuestBinary, a file path or a Uint8Array');
    const resolved = resolveConfig(config);
    return new UninitializedSandbox(binary, resolved, layoutFor(binary.image(), resolved));
  }

  /** The configuration with defaults filled in. */
  get config(): Readonly<ResolvedConfig> {
    return this.#config;
  }

  /** The guest memory map this sandbox will get. */
  get layout(): MemoryLayout {
    return this.#layout;
  }

  /** The validated guest image. */
  get image(): ElfImage {
    return this.#image;
  }

  /** Prints through the application's print function or the default one. */
  #printText(text: string, budget: OutputBudget): number {
    const r = this.#print === undefined ? printToStdout(text, budget) : this.#print(text);
    return typeof r === 'number' && Number.isInteger(r) ? r : text.length;
  }

  /**
   * Registers a host function the guest can call by name. The guest's arguments are
   * checked against `params`; the return value is checked against `returns`. A function
   * that throws fails the guest's host call with GuestError code 17 (HostError).
   */
  registerHostFunction<const P extends readonly ParameterTypeName[], const R extends ReturnTypeName>(
    name: string, signature: HostFunctionSignature<P, R>, fn: HostFunction<P, R>,
  ): void {
    this.#hosts.register(name, signature, fn);
    if (name === 'HostPrint') this.#ownHostPrint = true;
  }

  /**
   * A handle whose `kill()` stops the next (or the running) `evolve()` of this object with
   * ExecutionCanceledError (reason `killed`); send `handle.shared` to another thread to
   * stop a guest init spinning there. Once that evolve() has returned, the handle belongs
   * to the sandbox it made (the same as its `interruptHandle()`); a later evolve() needs a
   * new handle.
   */
  interruptHandle(): InterruptHandle {
    this.#interrupt ??= new InterruptState();
    return this.#interrupt.handle();
  }

  /** Replaces the print function (default: write to stdout). Used by HostPrint and DebugPrint. */
  registerPrint(fn: PrintFunction): void {
    if (typeof fn !== 'function') throw new ConfigInvalidError('print', 'must be a function');
    this.#print = fn;
  }

  /** Receives guest log records of `level` and above (default Information). */
  registerLogger(fn: LogFunction, level: number = LogLevel.Information): void {
    if (typeof fn !== 'function') throw new ConfigInvalidError('logger', 'must be a function');
    if (!Number.isInteger(level) || level < 0 || level > 6) throw new ConfigInvalidError('logLevel', 'must be 0 (Trace) .. 6 (None)');
    this.#logger = fn;
    this.#logLevel = level;
  }

  /**
   * Creates a VM and returns a ready sandbox. The first evolve() runs the guest's
   * initialisation (its `hyperlight_main`). If that init made no host call, print or log,
   * its result (memory and registers) is kept on the GuestBinary (per memory layout and
   * log level), and later evolve() calls, on this object or on other
   * UninitializedSandboxes made from the same GuestBinary object, start new sandboxes
   * from it instead of running init again: no guest code runs, and every sandbox is
   * independent. Pass `{ freshInit: true }` to run init (the template shares the guest's
   * post-init state, including its PRNG seed).
   */
  evolve(options: EvolveOptions & { exitless: ExitlessOptions | true }): ExitlessSandbox;
  evolve(options?: EvolveOptions & { exitless?: false }): MultiUseSandbox;
  evolve(options: EvolveOptions = {}): MultiUseSandbox | ExitlessSandbox {
    const exitless = exitlessModeOf(options.exitless);
    if (exitless === undefined) return this.#evolve(options);
    const sandbox = this.#evolve(options);
    try {
      return new ExitlessSandbox(sandbox, exitless);
    } catch (e) {
      sandbox.close();
      throw e;
    }
  }

  #evolve(options: EvolveOptions): MultiUseSandbox {
    const trace = options.trace;
    const phases = guardPhaseSink(trace);
    const logLevel = this.#logger ? this.#logLevel : LogLevel.None;
    const vmKey = layoutKey(this.#layout); // cached per layout (snapshot.ts)
    const templateKey = `${vmKey}|log${logLevel}`;
    const template = options.freshInit ? undefined : this.#binary.template(templateKey);
    const idle = this.#binary.takeIdleVm(vmKey);
    let machine: Machine;
    try {
      machine = createMachine(this.#layout,
        template ? { kind: 'template', template: template.init } : { kind: 'elf', image: this.#image, logLevel }, phases, idle);
    } catch (e) {
      if (idle) closeMachine(idle);
      throw e;
    }
    const binary = this.#binary;
    const release = (m: Machine): boolean => reusable(m) && binary.offerIdleVm(vmKey, m);
    const interrupt = this.#interrupt ?? new InterruptState();
    this.#interrupt = undefined; // it belongs to this evolve's sandbox now
    const logger = this.#logger;
    const budget = new OutputBudget(this.#config.maxOutputBytesPerCall);
    const loop = new RunLoop(machine, interrupt, budgetSinks(guardOutputSinks({
      debugPrint: (text) => { this.#printText(text, budget); },
      ...(logger ? { log: (r: GuestLogRecord) => { if (r.level >= this.#logLevel) logger(r); } } : {}),
    }), budget), this.#image);
    loop.exitSink = guardExitSink(options.exits);
    const hosts = this.#hosts.clone();
    if (!this.#ownHostPrint) {
      hosts.register('HostPrint', { params: ['String'], returns: 'Int' }, (text: string) => {
        budget.spend(text);
        return this.#printText(text, budget);
      });
    }
    try {
      if (template) return this.#declared(MultiUseSandbox.create(machine, loop, interrupt, hosts, this.#config, template.dispatch, trace, release, budget));
      const t0 = phases ? process.hrtime.bigint() : 0n;
      budget.begin();
      const dispatch = this.#runInit(loop, interrupt, hosts);
      this.#checkDispatch(dispatch);
      if (phases) phases.phase('guest-init', t0, process.hrtime.bigint());
      if (!options.freshInit && loop.guestOutputs === 0) {
        this.#binary.setTemplate(templateKey, {
          dispatch,
          init: {
            memory: MemorySnapshot.capture(machine.memory), cpu: captureGuestCpuState(machine.vcpu),
            cr3: machine.cr3, entry: machine.entry,
          },
        });
      }
      return this.#declared(MultiUseSandbox.create(machine, loop, interrupt, hosts, this.#config, dispatch, trace, release, budget));
    } catch (e) {
      dumpOnCrash(e, machine, this.#config.crashDumpDir, 'guest');
      loop.close();
      interrupt.close();
      closeMachine(machine);
      throw e;
    }
  }

  /**
   * Like evolve(), but the sandbox runs in a worker thread that owns its VM, driven with
   * Promises (an AsyncSandbox, src/async/). Host functions, print and logger stay on this
   * thread and may return Promises; the guest waits in its exit until they settle.
   * With `exitless` the worker's sandbox is an ExitlessSandbox (docs/exitless.md): its vCPU
   * spins on a thread of its own and the worker waits on the mailbox. `pollUs` (default
   * 500, 0 = never): how long this thread polls for each answer from its event loop before
   * it waits for the worker's wake-up, when a CPU is free for it (docs/async.md).
   * @throws (rejects with) what evolve() throws, with its class and fields.
   */
  evolveAsync(options: { freshInit?: boolean; exitless?: ExitlessOptions | boolean; pollUs?: number } = {}): Promise<AsyncSandbox> {
    try {
      return AsyncSandbox.start({
        ...this.asyncParts(options.freshInit === true, exitlessModeOf(options.exitless)), pollMs: pollMsOf(options.pollUs),
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal what a worker thread needs to build this sandbox, and the host side it calls. */
  asyncParts(freshInit: boolean, exitless?: Required<ExitlessOptions>): AsyncSandboxParts {
    const logger = this.#logger;
    const level = this.#logLevel;
    // The worker's sandbox counts output against the budget; here only the default
    // printer's dropped bytes are counted.
    const printed = new OutputBudget(0);
    return {
      guest: this.#binary.bytes(), config: this.#config, hosts: this.#hosts.clone(), freshInit,
      ...(exitless ? { exitless } : {}),
      functions: this.#binary.functions(),
      print: (text) => this.#printText(text, printed),
      log: logger ? (r) => { if (r.level >= level) logger(r); } : undefined,
      logLevel: logger ? level : LogLevel.None,
    };
  }

  /** Hands the guest's declared functions (its ELF notes) and what its snapshots record to a new sandbox. */
  #declared(sandbox: MultiUseSandbox): MultiUseSandbox {
    const binary = this.#binary;
    sandbox.declareGuestFunctions((name) => binary.declaredFunction(name));
    const c = this.#config;
    const img = this.#image;
    sandbox.setSnapshotSource({
      layoutConfig: {
        heapSize: c.heapSize, stackSize: c.stackSize, inputDataSize: c.inputDataSize, outputDataSize: c.outputDataSize,
        exceptionStackSize: c.exceptionStackSize, initDataSize: 0,
        image: img.fixedBase === undefined ? { span: img.span } : { span: img.span, fixedBase: img.fixedBase },
      },
      layout: this.#layout, segments: img.segments, binaryHash: () => binary.contentHash(),
      dispatch: sandbox.dispatchAddress, cr3: sandbox.machine.cr3, entry: sandbox.machine.entry,
      maxExecutionTimeMs: c.maxExecutionTimeMs,
    });
    return sandbox;
  }

  /** Runs the guest's initialisation to its Halt under its time limit; returns the dispatch address. */
  #runInit(loop: RunLoop, interrupt: InterruptState, hosts: HostFunctionRegistry): bigint {
    interrupt.beginCall();
    try {
      loop.timeLimit.arm(this.#config.maxInitializationTimeMs);
      return driveToHalt(loop, hosts).halt;
    } finally {
      interrupt.endCall();
      loop.timeLimit.disarm();
    }
  }

  #checkDispatch(address: bigint): void {
    const img = this.#layout.image;
    const off = Number(address - BigInt(img.gpa));
    const inSegment = this.#image.segments.some((s) => s.executable && off >= s.offsetInImage && off < s.offsetInImage + s.memSize);
    if (address < BigInt(img.gpa) || !inSegment) {
      throw new GuestProtocolError(`guest init halted with dispatch address 0x${address.toString(16)}, which is not in its code`);
    }
  }
}
