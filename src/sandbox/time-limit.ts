// The per-call time limit: a POSIX timer aimed at the vCPU thread that kicks KVM_RUN out, and the deadline check that turns a kick or a pending kill into ExecutionCanceledError.
import { ThreadTimer, gettid, vcpuKickSignal } from '../kvm/libc.js';
import { ExecutionCanceledError } from './errors.js';
import { CANCEL_NONE, CANCEL_TIMEOUT, type InterruptState } from './interrupt.js';

/** One per sandbox; arm() once per guest call, on the thread that runs the vCPU. */
export class TimeLimit {
  readonly #interrupt: InterruptState;
  #timer: ThreadTimer | undefined;
  #timerTid = 0;
  #deadline = 0;

  constructor(interrupt: InterruptState) {
    this.#interrupt = interrupt;
  }

  /** Arms the limit (0: none). */
  arm(ms: number): void {
    if (ms <= 0) {
      this.#deadline = 0;
      return;
    }
    const tid = gettid();
    if (!this.#timer || this.#timerTid !== tid) {
      this.#timer?.close();
      this.#timer = new ThreadTimer(tid, vcpuKickSignal());
      this.#timerTid = tid;
    }
    this.#deadline = performance.now() + ms;
    // First kick at the deadline, then every millisecond until the call ends (a kick that
    // lands outside KVM_RUN is lost; the next one is not).
    this.#timer.arm(ms * 1e6, 1e6);
  }

  disarm(): void {
    if (this.#deadline !== 0) {
      this.#timer?.disarm();
      this.#deadline = 0;
    }
  }

  /**
   * Throws ExecutionCanceledError when `reason` is a cancel (kill or timeout) or the
   * deadline has passed; returns otherwise.
   */
  check(reason: number): void {
    if (reason === CANCEL_NONE && this.#deadline !== 0 && performance.now() >= this.#deadline) {
      this.#interrupt.timeout();
      reason = CANCEL_TIMEOUT;
    }
    if (reason !== CANCEL_NONE) {
      throw new ExecutionCanceledError(reason === CANCEL_TIMEOUT ? 'timeout' : 'killed');
    }
  }

  close(): void {
    this.#timer?.close();
    this.#timer = undefined;
  }
}
