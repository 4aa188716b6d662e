// The per-call time limit: a POSIX timer aimed at the vCPU thread that kicks KVM_RUN out, and the deadline check that turns a kick, a pending kill or a caught SIGINT/SIGTERM into ExecutionCanceledError.
import { isMainThread } from 'node:worker_threads';
import { ThreadTimer, blockKickSignal, gettid, vcpuKickSignal } from '../kvm/libc.js';
import { ExecutionCanceledError } from './errors.js';
import { CANCEL_NONE, CANCEL_TIMEOUT, type InterruptState } from './interrupt.js';
import { ProcessSignalWatch } from './process-signals.js';

/** A POSIX timer that kicks one thread, and when it fires next. */
interface KickClock {
  timer: ThreadTimer | undefined;
  tid: number;
  /** When the armed timer fires (performance.now() time; 0: not armed). */
  expiry: number;
}

/**
 * The main thread's kick timer, shared by all its sandboxes and kept for the life of the
 * process: a sandbox made and closed per request then costs no timer_create and
 * timer_delete (and mostly no timer_settime). Sandboxes in worker threads have their own
 * (a worker can end without cleanup; its timers are reclaimed with its sandbox's VM).
 */
const mainThreadClock: KickClock | undefined = isMainThread ? { timer: undefined, tid: 0, expiry: 0 } : undefined;

/**
 * One per sandbox; arm() once per guest call, on the thread that runs the vCPU.
 *
 * The timer is one-shot and is left armed when a call ends: the next call re-arms it only
 * when it would fire after the new deadline or has fired already, so a stream of short
 * calls makes about one timer_settime per limit's length, not two per call. A kick that
 * comes early (an earlier call's deadline, of this or another sandbox on the thread) ends
 * one KVM_RUN and is re-aimed before the next entry. Kicks are never lost: the thread blocks
 * the kick signal outside KVM_RUN and the vCPU unblocks it inside (blockKickSignal,
 * Vm.createVcpu), so one that arrives between the checks and the entry ends that entry at
 * once. On the main thread all sandboxes share one timer (mainThreadClock): a call in a host
 * function of another sandbox's call may re-aim it, and each entry re-aims it for its own
 * deadline when it would fire late (due()).
 */
export class TimeLimit {
  readonly #interrupt: InterruptState;
  readonly #clock: KickClock = mainThreadClock ?? { timer: undefined, tid: 0, expiry: 0 };
  #deadline = 0;
  /** arm() has just read the clock and aimed the timer: the first due() need not read it again. */
  #justArmed = false;
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
    const clock = this.#clock;
    if (!clock.timer || clock.tid !== tid) {
      clock.timer?.close();
      clock.timer = new ThreadTimer(tid, vcpuKickSignal());
      clock.tid = tid;
      clock.expiry = 0;
    }
    const now = performance.now();
    this.#deadline = now + ms;
    this.#aim(now);
    this.#justArmed = true;
  }

  /** Ends the limit of this call. The timer stays armed (see the class). */
  disarm(): void {
    this.#deadline = 0;
    this.#justArmed = false;
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
    if (left <= 0 || !this.#clock.timer) return;
    const now = performance.now();
    this.#deadline = now + left;
    this.#aim(now);
  }

  /** Makes the timer fire at the deadline unless it fires before it anyway (then it is re-aimed as it does). */
  #aim(now: number): void {
    const clock = this.#clock;
    if (clock.expiry > now && clock.expiry <= this.#deadline) return;
    clock.timer!.arm(Math.max(1, Math.ceil((this.#deadline - now) * 1e6)), 0);
    clock.expiry = this.#deadline;
  }

  /**
   * Asked before every entry into the guest: whether check() would throw without a cancel
   * (the deadline passed or a signal was caught). Re-aims a timer that has fired (early, or
   * its kick ended another sandbox's run on this thread) or that another sandbox on the
   * thread aimed past this deadline, while the deadline is ahead.
   */
  due(): boolean {
    if (this.#justArmed) {
      // The first entry of a call, right after arm(): the deadline is a whole limit ahead
      // and the timer aimed at it. (Should the entry be late, the timer's kick ends it.)
      this.#justArmed = false;
    } else if (this.#deadline !== 0) {
      const now = performance.now();
      if (now >= this.#deadline) return true;
      this.#aim(now);
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

  /** Deletes this sandbox's timer; the main thread's shared one stays (mainThreadClock). */
  close(): void {
    const clock = this.#clock;
    if (clock === mainThreadClock) return;
    clock.timer?.close();
    clock.timer = undefined;
    clock.expiry = 0;
  }
}
