// The control words between an exitless sandbox's caller thread and its vCPU thread (an Int32Array over a SharedArrayBuffer); no logic.

/** Caller -> vCPU thread: 1 = run the vCPU, 2 = end the thread (the thread resets it to 0 when it takes it). */
export const CTL_GO = 0;
/** Bumped by the vCPU thread after every stop and every OP_WAKE (a futex word the caller waits on). */
export const CTL_EVENTS = 1;
/** Why the vCPU last stopped (STOP_*); STOP_NONE while it runs. */
export const CTL_STOP = 2;
/** What the last KVM_RUN returned (0, or -errno). */
export const CTL_RESULT = 3;
/** The vCPU thread's kernel tid (0 until it is up; -1 once it has ended). */
export const CTL_TID = 4;
/** 1 while a guest call is in progress (the vCPU thread then never parks the guest itself). */
export const CTL_IN_CALL = 5;
/** Calls started so far (wrapping): the vCPU thread parks a guest idle for a whole time slice. */
export const CTL_CALLS = 6;
/** The caller wants the vCPU out of KVM_RUN now (park, restore, close). */
export const CTL_STOP_REQUEST = 7;
/** The time slice in milliseconds: how often the vCPU thread looks at an idle guest that does not park. */
export const CTL_SLICE_MS = 8;
/** KVM_RUN returns so far (every exit, wake-ups included), counted by the vCPU thread. */
export const CTL_EXITS = 9;
/** The id of the vCPU thread's time-slice timer (set before CTL_TID): what to delete if the thread is terminated. */
export const CTL_TIMER = 10;
export const CTL_SLOTS = 11;

export const GO_RUN = 1;
export const GO_QUIT = 2;

export const STOP_NONE = 0;
/** The guest rang OP_PARK. */
export const STOP_PARKED = 1;
/** Another exit: the caller decodes kvm_run. */
export const STOP_EXIT = 2;
/** A signal (kill, timeout, stop request) took the vCPU out of KVM_RUN. */
export const STOP_INTERRUPTED = 3;
/** KVM_RUN failed; CTL_RESULT holds -errno. */
export const STOP_ERROR = 4;
/** The guest spun for a whole time slice without a call and without parking: the vCPU thread parked it. */
export const STOP_FORCED_PARK = 5;

/** `workerData` of the vCPU thread. */
export interface VcpuThreadInit {
  control: SharedArrayBuffer;
  /** The sandbox's interrupt state (src/sandbox/interrupt.ts). */
  interrupt: SharedArrayBuffer;
  vcpuFd: number;
  runAddress: bigint;
  runLength: number;
  /** Guest addresses of the OP_PARK and OP_WAKE doorbell slots. */
  parkAddress: number;
  wakeAddress: number;
}
