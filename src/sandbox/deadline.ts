// The per-call time limit: a deadline on the monotonic clock, checked before every entry
// into the guest, and the POSIX timer that kicks the vCPU out of KVM_RUN when it passes.
// It runs nothing itself; the run loop asks it whether the deadline has passed.
import { ThreadTimer, gettid, vcpuKickSignal } from '../kvm/libc.js';

/** One sandbox's time limit. Arm once per guest call, on the thread that runs the vCPU. */
export class Deadline {
  #timer: ThreadTimer | undefined;
  #timerTid = 0;
  /** performance.now() value at which the call's time is up; 0 while no limit is armed. */
  #at = 0;

  /**
   * Starts a limit of `ms` milliseconds (0: none) from now. The time includes host
   * functions: a host function still running at the deadline finishes, and the guest is
   * not entered again.
   */
  arm(ms: number): void {
    if (ms <= 0) {
      this.#at = 0;
      return;
    }
    const tid = gettid();
    if (!this.#timer || this.#timerTid !== tid) {
      this.#timer?.close();
      this.#timer = undefined;
      this.#timer = new ThreadTimer(tid, vcpuKickSignal());
      this.#timerTid = tid;
    }
    this.#at = performance.now() + ms;
    // First kick at the deadline, then every millisecond until the call ends (a kick that
    // lands outside KVM_RUN is lost; the next one is not).
    this.#timer.arm(ms * 1e6, 1e6);
  }

  /** Ends the limit (idempotent). */
  disarm(): void {
    if (this.#at !== 0) {
      this.#at = 0;
      this.#timer?.disarm();
    }
  }

  /** Whether a limit is armed and its time is up. */
  passed(): boolean {
    return this.#at !== 0 && performance.now() >= this.#at;
  }

  close(): void {
    this.#timer?.close();
    this.#timer = undefined;
  }
}
