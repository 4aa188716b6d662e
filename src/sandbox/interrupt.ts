// Stopping a running guest: the shared state between a sandbox's vCPU thread and any
// thread holding its InterruptHandle, and the kick that gets a vCPU out of KVM_RUN.
import { blockKickSignal, getpid, gettid, tgkill, vcpuKickSignal } from '../kvm/libc.js';

// Slots of the shared Int32Array.
const RUNNING = 0;   // 1 while the vCPU thread is inside (or about to enter) KVM_RUN
const CALL = 1;      // id of the guest call (or evolve) in progress; 0 when none
const CANCEL = 2;    // (call id << 2) | reason: a cancel applies only to the call it names
const TID = 3;       // kernel tid of the thread running the vCPU
// Slot 4 is unused (it held the pid; kick() uses this process's own pid).
const CLOSED = 5;
const SLOTS = 6;

export const CANCEL_NONE = 0;
export const CANCEL_KILL = 1;
export const CANCEL_TIMEOUT = 2;

/** Call ids run 1 .. 2^29 - 1, so `(id << 2) | reason` stays a positive int32. */
const MAX_CALL_ID = (1 << 29) - 1;

/** How long kill() keeps kicking a vCPU that has not left KVM_RUN yet. */
const KICK_RETRY_MS = 1;
const KICK_GIVE_UP_MS = 5000;

/**
 * A handle that stops the guest call running in one sandbox, from any thread. Send
 * `handle.shared` to a worker (postMessage) and rebuild it there with
 * `InterruptHandle.fromShared(shared)`.
 */
export class InterruptHandle {
  readonly #state: Int32Array;

  constructor(shared: SharedArrayBuffer) {
    if (!(shared instanceof SharedArrayBuffer) || shared.byteLength < SLOTS * 4) {
      throw new TypeError('InterruptHandle needs the SharedArrayBuffer of a sandbox');
    }
    this.#state = new Int32Array(shared, 0, SLOTS);
  }

  /** The shared state; structured-clone it to another thread. */
  get shared(): SharedArrayBuffer {
    return this.#state.buffer as SharedArrayBuffer;
  }

  static fromShared(shared: SharedArrayBuffer): InterruptHandle {
    return new InterruptHandle(shared);
  }

  /**
   * Stops the guest call in progress: it ends with ExecutionCanceledError and the sandbox
   * is poisoned. From a host function (or anywhere on the vCPU's own thread) it takes
   * effect when the guest is re-entered; from another thread the vCPU is kicked out of
   * KVM_RUN with a signal, repeatedly until it has left. Returns false when no call was in
   * progress (nothing to stop: the request is not remembered for a later call). A kill
   * applies to the call in progress when it was issued, or to none: one that arrives as
   * that call ends never cancels the next. Only threads of this process are signalled,
   * whatever the shared memory says.
   */
  kill(): boolean {
    return requestCancel(this.#state, CANCEL_KILL);
  }

  /** @internal the id of the call in progress (0: none), for tests of late kills. */
  currentCall(): number {
    return Atomics.load(this.#state, CALL);
  }

  /** @internal the shared slots, for tests. */
  get slots(): Int32Array {
    return this.#state;
  }

  /** Whether the sandbox is closed. */
  get closed(): boolean {
    return Atomics.load(this.#state, CLOSED) === 1;
  }
}

function requestCancel(s: Int32Array, reason: number): boolean {
  if (Atomics.load(s, CLOSED) === 1) return false;
  const call = Atomics.load(s, CALL);
  if (call === 0) return false;
  return cancelCall(s, call, reason);
}

/**
 * @internal Cancels call `call` with `reason` if it is still the one in progress; false
 * when it is over (a late kill then affects no call, in particular not the next one).
 */
export function cancelCall(s: Int32Array, call: number, reason: number): boolean {
  const want = (call << 2) | reason;
  for (;;) {
    const old = Atomics.load(s, CANCEL);
    if (Atomics.load(s, CALL) !== call) return false;
    if (old >>> 2 === call && (old & 3) !== CANCEL_NONE) break; // already cancelled
    // Should the call end between the check above and this exchange, the value written
    // names a call that is over: the vCPU thread ignores it (InterruptState.cancelReason).
    if (Atomics.compareExchange(s, CANCEL, old, want) === old) break;
  }
  kick(s, call);
  return true;
}

/**
 * Signals the vCPU thread out of KVM_RUN, repeatedly while call `call` is still inside it.
 * Only threads of this process are ever signalled: tgkill() gets this process's own pid,
 * whatever the shared memory holds, so a forged tid naming another process fails (ESRCH).
 */
function kick(s: Int32Array, call: number): void {
  const tid = Atomics.load(s, TID);
  if (tid === gettid()) return; // our own thread: it is not in KVM_RUN now
  const pid = getpid();
  const signal = vcpuKickSignal();
  const deadline = Date.now() + KICK_GIVE_UP_MS;
  // A kick that lands just before the vCPU enters KVM_RUN stays pending and ends that
  // entry (the vCPU thread blocks the signal outside KVM_RUN); the repeat covers a thread
  // that does not block it, and costs nothing once the vCPU has left.
  while (Atomics.load(s, RUNNING) === 1 && Atomics.load(s, CALL) === call && Date.now() < deadline) {
    if (!tgkill(pid, tid, signal)) break;
    Atomics.wait(s, RUNNING, 1, KICK_RETRY_MS);
  }
}

/** The vCPU thread's side of the shared state. One per sandbox. */
export class InterruptState {
  readonly #state = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  /** The id of the call in progress (0: none); the last id used stays in #lastCall. */
  #call = 0;
  #lastCall = 0;

  constructor() {
    vcpuKickSignal(); // install the kick handler before any other thread could send it
  }

  handle(): InterruptHandle {
    return new InterruptHandle(this.#state.buffer as SharedArrayBuffer);
  }

  /**
   * Marks the start of a guest call under a new call id; `tid` is the thread that runs the
   * vCPU (default: the current one; exitless mode's vCPU thread is another).
   */
  beginCall(tid = gettid()): void {
    blockKickSignal(); // a kick outside KVM_RUN then waits for the next entry (see TimeLimit)
    const s = this.#state;
    this.#lastCall = this.#lastCall >= MAX_CALL_ID ? 1 : this.#lastCall + 1;
    this.#call = this.#lastCall;
    Atomics.store(s, TID, tid);
    Atomics.store(s, CANCEL, CANCEL_NONE);
    Atomics.store(s, CALL, this.#call);
  }

  endCall(): void {
    const s = this.#state;
    this.#call = 0;
    Atomics.store(s, CALL, 0);
    Atomics.store(s, RUNNING, 0);
    Atomics.store(s, CANCEL, CANCEL_NONE);
  }

  /** Called right before KVM_RUN: returns the pending cancel reason (0: none). */
  enterRun(): number {
    Atomics.store(this.#state, RUNNING, 1);
    return this.cancelReason();
  }

  /** Called right after KVM_RUN returns. */
  leaveRun(): void {
    Atomics.store(this.#state, RUNNING, 0);
    Atomics.notify(this.#state, RUNNING);
  }

  /** The cancel reason for the call in progress; a cancel naming another call is ignored. */
  cancelReason(): number {
    const c = Atomics.load(this.#state, CANCEL);
    return this.#call !== 0 && c >>> 2 === this.#call ? c & 3 : CANCEL_NONE;
  }

  /** Marks a timeout (from the vCPU thread, after its deadline passed). */
  timeout(): void {
    if (this.#call !== 0) cancelCall(this.#state, this.#call, CANCEL_TIMEOUT);
  }

  close(): void {
    Atomics.store(this.#state, CLOSED, 1);
  }
}
