// Observability: per-call records and worker events on node:diagnostics_channel, so APM
// tools and OpenTelemetry can subscribe without this library depending on them.
import diagnosticsChannel from 'node:diagnostics_channel';

/** Channel of one `CallRecord` per finished AsyncSandbox / SandboxPool call. */
export const CALL_CHANNEL = 'hyperlight-ts:call';
/** Channel of `WorkerEvent`s: sandbox workers started, closed, crashed, replaced. */
export const WORKER_CHANNEL = 'hyperlight-ts:worker';

/** What a subscriber of `hyperlight-ts:call` receives. Times in milliseconds. */
export interface CallRecord {
  /** Guest function name. */
  function: string;
  outcome: 'ok' | 'error';
  /** The error's `code` (ERR_...) when `outcome` is 'error'; 'ERR_UNKNOWN' for a non-library error. */
  errorCode: string | undefined;
  /** From the call being made to its result (queueing included). */
  wallMs: number;
  /** Time spent waiting for a free sandbox or for earlier calls on the same sandbox. */
  queueMs: number;
  /** Time inside the worker's guest call, host-function time excluded. */
  guestMs: number;
  /** Time the guest waited for host functions (and prints, logs) on the main thread. */
  hostMs: number;
  /** VM exits during the call (counted only while someone subscribes). */
  exits: number;
  /** Host function calls, prints and logs the guest made. */
  hostCalls: number;
  /** Identifies the sandbox within the process. */
  sandboxId: number;
  /** The worker's threadId. */
  threadId: number;
  /** The pool's id when the call went through a SandboxPool. */
  poolId: number | undefined;
}

export type WorkerEvent =
  | { event: 'started'; sandboxId: number; threadId: number; poolId: number | undefined; startMs: number }
  | { event: 'closed'; sandboxId: number; threadId: number; poolId: number | undefined }
  | { event: 'crashed'; sandboxId: number; threadId: number; poolId: number | undefined; error: unknown }
  | { event: 'replaced'; sandboxId: number; threadId: number; poolId: number | undefined; reason: 'crashed' | 'restore-failed' };

export const callChannel = diagnosticsChannel.channel(CALL_CHANNEL);
export const workerChannel = diagnosticsChannel.channel(WORKER_CHANNEL);

export function publishWorker(e: WorkerEvent): void {
  if (workerChannel.hasSubscribers) workerChannel.publish(e);
}
