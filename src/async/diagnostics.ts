// Observability of the async API: worker events on node:diagnostics_channel (the per-call
// records, shared with sync sandboxes, are in src/sandbox/diagnostics.ts).
import diagnosticsChannel from 'node:diagnostics_channel';

export { CALL_CHANNEL, type CallRecord, callChannel } from '../sandbox/diagnostics.js';

/** Channel of `WorkerEvent`s: sandbox workers started, closed, crashed, replaced. */
export const WORKER_CHANNEL = 'hyperlight-ts:worker';

export type WorkerEvent =
  | { event: 'started'; sandboxId: number; threadId: number; poolId: number | undefined; startMs: number }
  | { event: 'closed'; sandboxId: number; threadId: number; poolId: number | undefined }
  | { event: 'crashed'; sandboxId: number; threadId: number; poolId: number | undefined; error: unknown }
  | { event: 'replaced'; sandboxId: number; threadId: number; poolId: number | undefined; reason: 'crashed' | 'restore-failed' };

export const workerChannel = diagnosticsChannel.channel(WORKER_CHANNEL);

export function publishWorker(e: WorkerEvent): void {
  if (workerChannel.hasSubscribers) workerChannel.publish(e);
}
