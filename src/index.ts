// hyperlight-ts public API: the only entry point of the package.
export {
  HyperlightError, ConfigInvalidError, GuestMemoryBoundsError, ElfInvalidError, ERROR_CODES, type ErrorCode,
} from './errors.js';

// Sandboxes (the main API).
export { UninitializedSandbox, LogLevel, type PrintFunction, type LogFunction, type EvolveOptions } from './sandbox/uninitialized-sandbox.js';
export { MultiUseSandbox, type SandboxStatus, type RestoreOptions } from './sandbox/multi-use-sandbox.js';
export { Snapshot, type SnapshotLoadOptions } from './sandbox/snapshot.js';
export { type SnapshotHostFunctions, type FromSnapshotOptions } from './sandbox/from-snapshot.js';
export { SNAPSHOT_FORMAT_VERSION } from './sandbox/snapshot-file.js';
export { InterruptHandle } from './sandbox/interrupt.js';
export { GuestBinary, bundledGuestPath, BUNDLED_GUESTS, type BundledGuestName } from './sandbox/guest-binary.js';
export { type SandboxConfig } from './sandbox/config.js';
export { type HostFunctionSignature, type HostFunction, type HostReturn } from './sandbox/host-functions.js';
export type { PhaseSink, StartPhase } from './sandbox/machine.js';
export type { ExitSink } from './sandbox/run-loop.js';
export type { GuestLogRecord } from './sandbox/codec.js';
export { TraceRecorder, type TracedPhase, type TracedExit, type TracedHostCall, type TracedSyscall } from './sandbox/trace-recorder.js';
export { type GuestFunctionSignature, formatSignature } from './sandbox/guest-functions.js';
export { typedGuest, type GuestFunctionMap, type TypedGuest } from './sandbox/typed-guest.js';
export {
  ParameterType, ReturnType, ParameterValue, type TypedValue, type TypedValueOf, type ParameterTypeName, type ReturnTypeName,
  type PlainValue, type PlainTypes, type PlainOf, type PlainArgs, type CallArgument,
} from './sandbox/values.js';
export {
  GuestError, GuestAbortedError, GuestExceptionError, StackOverflowError, ExecutionCanceledError,
  MemoryAccessViolationError, GuestTripleFaultError, EmulationFailureError, GuestProtocolError,
  PoisonedSandboxError, HostFunctionNotFoundError, ParameterTypeMismatchError, ReturnTypeMismatchError,
  UnexpectedExitError, SnapshotIncompatibleError, SnapshotFileError, type SnapshotFileProblem, SandboxBusyError, BufferOverflowError, poisons,
  hyperlightEquivalent, type HyperlightEquivalent, type GuestCodeLocation,
} from './sandbox/errors.js';
export { EXCEPTION_NAMES } from './x86_64/exceptions.js';

// The asynchronous API: sandboxes in worker threads, a pool, diagnostics channels.
export { AsyncSandbox, AsyncSnapshot, type CallOptions, type AsyncSandboxStatus } from './async/async-sandbox.js';
export { ExitlessSandbox, type ExitlessOptions, type ExitlessRestoreOptions } from './exitless/exitless-sandbox.js';
export { SandboxPool, type SandboxPoolOptions, type PoolHostFunction, type PoolStats } from './async/pool.js';
export { PoolBusyError, WorkerCrashedError } from './async/errors.js';
export { CALL_CHANNEL, WORKER_CHANNEL, type CallRecord, type WorkerEvent } from './async/diagnostics.js';
export type { LatencySummary } from './async/latency.js';

// JavaScript in a micro-VM: QuickJS as a guest (docs/javascript.md).
export { JsSandbox, jsGuestPath, type JsSandboxOptions, type JsRunOptions, type JsHostFunction } from './js/js-sandbox.js';
export { JsSandboxPool, type JsSandboxPoolOptions } from './js/js-pool.js';
export { JsError, JsMemoryLimitError, JsValueError } from './js/errors.js';

// Building C guests against the bundled SDK (gcc).
export { buildGuest, GuestBuildError, GUEST_CFLAGS, GUEST_LDFLAGS, type BuildGuestOptions } from './cli/build-guest.js';

// The low-level layers, for experiments.
export * from './kvm/index.js';
export { GuestMemory, PAGE_SIZE } from './mem/guest-memory.js';
export { MemorySnapshot } from './mem/snapshot.js';
export * as PageTables from './mem/x86_64/index.js';
export * as x86 from './x86_64/index.js';
export { parseElf, ElfImage } from './elf/index.js';
