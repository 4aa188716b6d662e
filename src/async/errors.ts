// Errors of the asynchronous API (AsyncSandbox, SandboxPool). The sandbox's own errors
// (src/sandbox/errors.ts) cross from the worker thread unchanged in class and fields.
import { HyperlightError } from '../errors.js';

/** A SandboxPool call found every sandbox busy and the queue full (`maxQueue`): nothing ran. */
export class PoolBusyError extends HyperlightError {
  /** The queue's capacity. */
  readonly maxQueue: number;

  constructor(maxQueue: number) {
    super('ERR_POOL_BUSY', `sandbox pool is busy: all sandboxes are running and the queue is full (maxQueue ${maxQueue})`);
    this.maxQueue = maxQueue;
  }
}

/**
 * The worker thread that owned a sandbox's VM stopped unexpectedly (terminated from
 * outside, out of memory, an internal failure). The call in progress fails with this
 * error; the AsyncSandbox is closed; a SandboxPool starts a replacement.
 */
export class WorkerCrashedError extends HyperlightError {
  /** The worker's threadId. */
  readonly threadId: number;
  /** The worker's exit code (undefined while it had not exited yet). */
  readonly exitCode: number | undefined;
  /** Errors from releasing the dead thread's VM (close/munmap), if any step failed. */
  releaseFailures: unknown[] | undefined;

  constructor(threadId: number, exitCode: number | undefined, options?: { cause?: unknown }) {
    super('ERR_WORKER_CRASHED',
      `sandbox worker thread ${threadId} stopped unexpectedly${exitCode === undefined ? '' : ` (exit code ${exitCode})`}`, options);
    this.threadId = threadId;
    this.exitCode = exitCode;
    this.releaseFailures = undefined;
  }
}
