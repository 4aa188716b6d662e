// The per-call records of node:diagnostics_channel, published by MultiUseSandbox (sync
// calls) and by AsyncSandbox / SandboxPool (src/async/): APM tools and OpenTelemetry
// subscribe without this library depending on them. Nothing is measured unless someone
// subscribes.
import diagnosticsChannel from 'node:diagnostics_channel';
import { threadId } from 'node:worker_threads';
import { HyperlightError } from '../errors.js';

/** Channel of one `CallRecord` per finished guest call (sync, AsyncSandbox or SandboxPool). */
export const CALL_CHANNEL = 'hyperlight-ts:call';

/** What a subscriber of `hyperlight-ts:call` receives. Times in milliseconds. */
export interface CallRecord {
  /** Guest function name. */
  function: string;
  outcome: 'ok' | 'error';
  /** The error's `code` (ERR_...) when `outcome` is 'error'; 'ERR_UNKNOWN' for a non-library error. */
  errorCode: string | undefined;
  /** From the call being made to its result (queueing included). */
  wallMs: number;
  /** Time spent waiting for a free sandbox or for earlier calls on the same sandbox (0 for a sync call). */
  queueMs: number;
  /** Time inside the guest call, host-function time excluded. */
  guestMs: number;
  /** Time the guest waited for host functions (for async sandboxes also prints and logs). */
  hostMs: number;
  /** VM exits during the call (counted only while someone subscribes). */
  exits: number;
  /** Host function calls (for async sandboxes also prints and logs) the guest made. */
  hostCalls: number;
  /** Identifies the sandbox within the process (MultiUseSandbox.id, AsyncSandbox.id). */
  sandboxId: number;
  /** The thread that ran the guest: the worker's threadId, or the caller's for a sync call (0: main). */
  threadId: number;
  /** The pool's id when the call went through a SandboxPool. */
  poolId: number | undefined;
}

export const callChannel = diagnosticsChannel.channel(CALL_CHANNEL);

let nextSandboxId = 1;

/** A new id for a sandbox's records (one sequence for sync and async sandboxes of this thread). */
export function newSandboxId(): number {
  return nextSandboxId++;
}

/** The `errorCode` of a record. */
export function errorCodeOf(error: unknown): string | undefined {
  return error === undefined ? undefined : error instanceof HyperlightError ? error.code : 'ERR_UNKNOWN';
}

/** What a sync call counts while it is observed. */
export interface CallCounters {
  hostNs: number;
  hostCalls: number;
  exits: number;
}

/** Publishes the record of a sync call that started at `t0` (performance.now()). */
export function publishSyncCall(name: string, error: unknown, t0: number, c: CallCounters, sandboxId: number): void {
  const wallMs = performance.now() - t0;
  const hostMs = c.hostNs / 1e6;
  const record: CallRecord = {
    function: name, outcome: error === undefined ? 'ok' : 'error', errorCode: errorCodeOf(error),
    wallMs, queueMs: 0, guestMs: Math.max(0, wallMs - hostMs), hostMs, exits: c.exits, hostCalls: c.hostCalls,
    sandboxId, threadId, poolId: undefined,
  };
  callChannel.publish(record);
}
