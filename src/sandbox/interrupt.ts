// Stopping a running guest: the shared state between a sandbox's vCPU thread and any
// thread holding its InterruptHandle, and the kick that gets a vCPU out of KVM_RUN.
import { getpid, gettid, tgkill, vcpuKickSignal } from '../kvm/libc.js';

// Slots of the shared Int32Array.
const RUNNING = 0;   // 1 while the vCPU thread is inside (or about to enter) KVM_RUN
const IN_CALL = 1;   // 1 while a guest call (or evolve) is in progress
const CANCEL = 2;    // CANCEL_NONE / CANCEL_KILL / CANCEL_TIMEOUT
const TID = 3;       // kernel tid of the thread running the vCPU
const PID = 4;
const CLOSED = 5;
const SLOTS = 6;

export const CANCEL_NONE = 0;
export const CANCEL_KILL = 1;
export const CANCEL_TIMEOUT = 2;

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
   * progress (nothing to stop: the request is not remembered for a later call).
   */
  kill(): boolean {
    return requestCancel(this.#state, CANCEL_KILL);
  }

  /** Whether the sandbox is closed. */
  get closed(): boolean {
    return Atomics.load(this.#state, CLOSED) === 1;
  }
}

function requestCancel(s: Int32Array, reason: number): boolean {
  if (Atomics.load(s, IN_CALL) !== 1 || Atomics.load(s, CLOSED) === 1) return false;
  Atomics.compareExchange(s, CANCEL, CANCEL_NONE, reason);
  const tid = Atomics.load(s, TID);
  if (tid === gettid()) return true; // our own thread: it is not in KVM_RUN now
  const pid = Atomics.load(s, PID);
  const signal = vcpuKickSignal();
  const deadline = Date.now() + KICK_GIVE_UP_MS;
  // A kick can land just before the vCPU enters KVM_RUN and be lost: repeat while it runs.
  while (Atomics.load(s, RUNNING) === 1 && Atomics.load(s, IN_CALL) === 1 && Date.now() < deadline) {
    if (!tgkill(pid, tid, signal)) break;
    Atomics.wait(s, RUNNING, 1, KICK_RETRY_MS);
  }
  return true;
}

/** The vCPU thread's side of the shared state. One per sandbox. */
export class InterruptState {
  readonly #state = new Int32Array(new SharedArrayBuffer(SLOTS * 4));

  constructor() {
    vcpuKickSignal(); // install the kick handler before any other thread could send it
    Atomics.store(this.#state, PID, getpid());
  }

  handle(): InterruptHandle {
    return new InterruptHandle(this.#state.buffer as SharedArrayBuffer);
  }

  /** Marks the start of a guest call on the current thread; clears any old cancel. */
  beginCall(): void {
    Atomics.store(this.#state, TID, gettid());
    Atomics.store(this.#state, CANCEL, CANCEL_NONE);
    Atomics.store(this.#state, IN_CALL, 1);
  }

  endCall(): void {
    Atomics.store(this.#state, IN_CALL, 0);
    Atomics.store(this.#state, RUNNING, 0);
    Atomics.store(this.#state, CANCEL, CANCEL_NONE);
  }

  /** Called right before KVM_RUN: returns the pending cancel reason (0: none). */
  enterRun(): number {
    Atomics.store(this.#state, RUNNING, 1);
    return Atomics.load(this.#state, CANCEL);
  }

  /** Called right after KVM_RUN returns. */
  leaveRun(): void {
    Atomics.store(this.#state, RUNNING, 0);
    Atomics.notify(this.#state, RUNNING);
  }

  cancelReason(): number {
    return Atomics.load(this.#state, CANCEL);
  }

  /** Marks a timeout (from the vCPU thread, after its POSIX timer fired). */
  timeout(): void {
    Atomics.compareExchange(this.#state, CANCEL, CANCEL_NONE, CANCEL_TIMEOUT);
  }

  close(): void {
    Atomics.store(this.#state, CLOSED, 1);
  }
}
