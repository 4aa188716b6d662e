// The per-call time limit: a POSIX timer aimed at the vCPU thread that kicks KVM_RUN out, and the deadline check that turns a kick, a pending kill or a caught SIGINT/SIGTERM into ExecutionCanceledError.
import { ThreadTimer, gettid, vcpuKickSignal } from '../kvm/libc.js';
import { ExecutionCanceledError } from './errors.js';
import { CANCEL_NONE, CANCEL_TIMEOUT, type InterruptState } from './interrupt.js';
import { ProcessSignalWatch } from './process-signals.js';

/** One per sandbox; arm() once per guest call, on the thread that runs the vCPU. */
export class TimeLimit {
  readonly #interrupt: InterruptState;
  #timer: ThreadTimer | undefined;
  #timerTid = 0;
  #deadline = 0;
  /** Armed and disarmed with the limit: a SIGINT/SIGTERM the application listens for ends the call. */
  readonly #signals = new ProcessSignalWatch();

  constructor(interrupt: InterruptState) {
    this.#interrupt = interrupt;
  }

  /**
   * Arms the limit (0: none) and the signal watch. The time includes host functions: the
   * run loop asks due() before every entry into the guest.
   */
  arm(ms: number): void {
    this.#signals.begin();
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
      this.#deadline = 0;
      this.#timer?.disarm();
    }
    this.#signals.end();
  }

  /**
   * Stops the clock while a debugger holds the guest (docs/debugging.md): disarms the
   * timer and returns the milliseconds left (0: no limit), for resume().
   */
  pause(): number {
    if (this.#deadline === 0) return 0;
    const left = Math.max(1, this.#deadline - performance.now());
    this.#deadline = 0;
    this.#timer?.disarm();
    return left;
  }

  /** Starts the clock again with `left` milliseconds (from pause()). */
  resume(left: number): void {
    if (left <= 0 || !this.#timer) return;
    this.#deadline = performance.now() + left;
    this.#timer.arm(Math.ceil(left * 1e6), 1e6);
  }

  /** Whether check() would throw without a cancel: the deadline passed or a signal was caught. */
  due(): boolean {
    return (this.#deadline !== 0 && performance.now() >= this.#deadline) || this.#signals.caught() !== undefined;
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
    const signal = this.#signals.caught();
    if (signal !== undefined) {
      throw new ExecutionCanceledError('signal', ` (${signal}; the application's listener runs when the call has returned)`);
    }
  }

  close(): void {
    this.#timer?.close();
    this.#timer = undefined;
  }
}
