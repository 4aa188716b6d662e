// MultiUseSandbox.fromSnapshot: a sandbox started from a snapshot's memory and registers, with no guest code run and no guest ELF needed.
import { ConfigInvalidError } from '../errors.js';
import { type ResolvedConfig, resolveConfig } from './config.js';
import { type HostFunctionSignature, HostFunctionRegistry } from './host-functions.js';
import { InterruptState } from './interrupt.js';
import { type Machine, closeMachine, createMachine } from './machine.js';
import { MultiUseSandbox } from './multi-use-sandbox.js';
import { RunLoop } from './run-loop.js';
import { Snapshot } from './snapshot.js';
import { checkGuestSregs } from './snapshot-file.js';
import { SnapshotIncompatibleError } from './errors.js';
import { PEB_OFF_RANDOM_SEED } from './abi.js';

/** Host functions by name, as SandboxPool takes them: `{ HostAdd: { params, returns, fn } }`. */
export type SnapshotHostFunctions = Readonly<Record<string, HostFunctionSignature & { fn: (...args: never[]) => unknown }>>;

export interface FromSnapshotOptions {
  /** Guest print output (HostPrint and DebugPrint); default: stdout. */
  print?: (text: string) => number | void;
  /**
   * Give the guest a new random seed (default true, as every new sandbox gets: its `rand()`
   * differs from the snapshot's and from other sandboxes'). `false` keeps the snapshot's
   * seed, so the guest replays the snapshot's sequence, as after `restore(snapshot)`.
   */
  reseed?: boolean;
}

/**
 * What a sandbox from `snapshot` is made of, checked: the print function (the default
 * writes to stdout), the application's host functions, and the configuration the snapshot
 * records. Shared by MultiUseSandbox.fromSnapshot and AsyncSandbox.fromSnapshot.
 */
export function snapshotSandboxParts(snapshot: Snapshot, hostFunctions: SnapshotHostFunctions, options: FromSnapshotOptions):
  { printText: (text: string) => number; hosts: HostFunctionRegistry; config: ResolvedConfig } {
  if (!(snapshot instanceof Snapshot)) throw new SnapshotIncompatibleError('fromSnapshot() needs a Snapshot');
  if (hostFunctions === null || typeof hostFunctions !== 'object') {
    throw new ConfigInvalidError('hostFunctions', 'must be an object of { params, returns, fn }');
  }
  const print = options.print ?? ((text: string) => { process.stdout.write(text); return text.length; });
  if (typeof print !== 'function') throw new ConfigInvalidError('print', 'must be a function');
  const printText = (text: string): number => {
    const r = print(text);
    return typeof r === 'number' && Number.isInteger(r) ? r : text.length;
  };
  const hosts = new HostFunctionRegistry();
  for (const [name, h] of Object.entries(hostFunctions)) {
    if (h === null || typeof h !== 'object') throw new ConfigInvalidError(`hostFunctions.${name}`, 'must be { params, returns, fn }');
    hosts.register(name, { params: h.params, returns: h.returns }, h.fn);
  }
  const src = snapshot.source;
  const config = resolveConfig({
    heapSize: src.layoutConfig.heapSize, stackSize: src.layoutConfig.stackSize,
    inputDataSize: src.layoutConfig.inputDataSize, outputDataSize: src.layoutConfig.outputDataSize,
    exceptionStackSize: src.layoutConfig.exceptionStackSize, maxExecutionTimeMs: src.maxExecutionTimeMs,
  });
  return { printText, hosts, config };
}

/** See MultiUseSandbox.fromSnapshot. */
export function sandboxFromSnapshot(snapshot: Snapshot, hostFunctions: SnapshotHostFunctions,
  options: FromSnapshotOptions): MultiUseSandbox {
  const { printText, hosts, config } = snapshotSandboxParts(snapshot, hostFunctions, options);
  // The application's own HostPrint, when it gives one, wins.
  if (!hosts.has('HostPrint')) hosts.register('HostPrint', { params: ['String'], returns: 'Int' }, (text: string) => printText(text));
  const src = snapshot.source;
  const machine: Machine = createMachine(src.layout, {
    kind: 'template', template: { memory: snapshot.memory, cpu: snapshot.cpu, cr3: src.cr3, entry: src.entry },
  });
  const interrupt = new InterruptState();
  let loop: RunLoop | undefined;
  try {
    checkGuestSregs(snapshot.cpu.sregs, machine.startSregs);
    // The machine got a fresh seed like every new one; put the snapshot's back when asked to.
    if (options.reseed === false) snapshot.memory.restoreRange(machine.memory, machine.layout.peb.gpa + PEB_OFF_RANDOM_SEED, 8);
    loop = new RunLoop(machine, interrupt, { debugPrint: (text) => { printText(text); } });
    const sandbox = MultiUseSandbox.create(machine, loop, interrupt, hosts, config, src.dispatch);
    sandbox.setSnapshotSource(src);
    sandbox.startedFrom(snapshot);
    return sandbox;
  } catch (e) {
    loop?.close();
    interrupt.close();
    closeMachine(machine);
    throw e;
  }
}
