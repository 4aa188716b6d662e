// The per-call time limit: a POSIX timer aimed at the vCPU thread that kicks KVM_RUN out, and the deadline check that turns a kick, a pending kill or a caught SIGINT/SIGTERM into ExecutionCanceledError.
import { ThreadTimer, blockKickSignal, gettid, vcpuKickSignal } from '../kvm/libc.js';
import { ExecutionCanceledError } from './errors.js';
import { CANCEL_NONE, CANCEL_TIMEOUT, type InterruptState } from './interrupt.js';
import { ProcessSignalWatch } from './process-signals.js';

/**
 * One per sandbox; arm() once per guest call, on the thread that runs the vCPU.
 *
 * The timer is one-shot and is left armed when a call ends: the next call re-arms it only
 * when it would fire after the new deadline or has fired already, so a stream of short
 * calls makes about one timer_settime per limit's length, not two per call. A kick that
 * comes early (an earlier call's deadline) ends one KVM_RUN and is re-aimed before the next
 * entry. Kicks are never lost: the thread blocks the kick signal outside KVM_RUN and the
 * vCPU unblocks it inside (blockKickSignal, Vm.createVcpu), so one that arrives between
 * the checks and the entry ends that entry at once.
 */
export class TimeLimit {
  readonly #interrupt: InterruptState;
  #timer: ThreadTimer | undefined;
  #timerTid = 0;
  #deadline = 0;
  /** When the armed timer fires (performance.now() time; 0: not armed). */
  #expiry = 0;
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
    blockKickSignal();
    const tid = gettid();
    if (!this.#timer || this.#timerTid !== tid) {
      this.#timer?.close();
      this.#timer = new ThreadTimer(tid, vcpuKickSignal());
      this.#timerTid = tid;
      this.#expiry = 0;
    }
    const now = performance.now();
    this.#deadline = now + ms;
    this.#aim(now);
  }

  /** Ends the limit of this call. The timer stays armed (see the class). */
  disarm(): void {
    this.#deadline = 0;
    this.#signals.end();
  }

  /**
   * Stops the clock while a debugger holds the guest (docs/debugging.md): returns the
   * milliseconds left (0: no limit), for resume(). A kick the armed timer still sends lands
   * in the next KVM_RUN and is re-aimed there (due()).
   */
  pause(): number {
    if (this.#deadline === 0) return 0;
    const left = Math.max(1, this.#deadline - performance.now());
    this.#deadline = 0;
    return left;
  }

  /** Starts the clock again with `left` milliseconds (from pause()). */
  resume(left: number): void {
    if (left <= 0 || !this.#timer) return;
    const now = performance.now();
    this.#deadline = now + left;
    this.#aim(now);
  }

  /** Makes the timer fire at the deadline unless it fires before it anyway (then it is re-aimed as it does). */
  #aim(now: number): void {
    if (this.#expiry > now && this.#expiry <= this.#deadline) return;
    this.#timer!.arm(Math.max(1, Math.ceil((this.#deadline - now) * 1e6)), 0);
    this.#expiry = this.#deadline;
  }

  /**
   * Asked before every entry into the guest: whether check() would throw without a cancel
   * (the deadline passed or a signal was caught). Re-aims a timer that has fired (early, or
   * its kick ended another sandbox's run on this thread) while the deadline is ahead.
   */
  due(): boolean {
    if (this.#deadline !== 0) {
      const now = performance.now();
      if (now >= this.#deadline) return true;
      if (this.#expiry <= now) this.#aim(now);
    }
    return this.#signals.caught() !== undefined;
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
    this.#expiry = 0;
  }
}
