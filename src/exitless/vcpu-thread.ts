// The vCPU thread of an exitless sandbox: a worker that keeps the vCPU in KVM_RUN while the guest polls its mailbox, and reports every stop through the control words. It decides nothing about calls: the caller thread handles every exit.
import { workerData } from 'node:worker_threads';
import { KVM_EXIT_MMIO } from '../kvm/constants.js';
import { KVM_RUN } from '../kvm/ioctl.js';
import { ThreadTimer, blockKickSignal, consumeKicks, gettid, ioctlOnce, vcpuKickSignal, viewAtAddress } from '../kvm/libc.js';
import { kvm_run } from '../kvm/layouts.generated.js';
import {
  CTL_CALLS, CTL_EVENTS, CTL_EXITS, CTL_GO, CTL_IN_CALL, CTL_RESULT, CTL_SLICE_MS, CTL_STOP, CTL_STOP_REQUEST, CTL_TID, CTL_TIMER, GO_QUIT,
  STOP_ERROR, STOP_EXIT, STOP_FORCED_PARK, STOP_INTERRUPTED, STOP_NONE, STOP_PARKED, type VcpuThreadInit,
} from './control.js';

// The interrupt state's slots (src/sandbox/interrupt.ts): RUNNING, CALL, CANCEL.
const IRQ_RUNNING = 0;
const IRQ_CALL = 1;
const IRQ_CANCEL = 2;
const EINTR = 4;

const init = workerData as VcpuThreadInit;
const ctl = new Int32Array(init.control);
const irq = new Int32Array(init.interrupt);
// FFI: the vCPU's kvm_run mapping, made by the caller thread; it unmaps it only after this
// thread has ended (ExitlessSandbox.close waits for CTL_TID = -1).
const run = new DataView(viewAtAddress(init.runAddress, init.runLength).buffer);
const F = kvm_run.fields;
// As on every vCPU thread: the kick is blocked outside KVM_RUN (the vCPU's KVM_SET_SIGNAL_MASK
// unblocks it inside), so a kick that lands between two entries ends the next one.
blockKickSignal();
const timer = new ThreadTimer(gettid(), vcpuKickSignal());

function stop(reason: number, result: number): void {
  Atomics.store(ctl, CTL_RESULT, result);
  Atomics.store(ctl, CTL_STOP, reason);
  Atomics.add(ctl, CTL_EVENTS, 1);
  Atomics.notify(ctl, CTL_EVENTS);
}

/** A kill or timeout of the call in progress, or a stop request. */
function stopWanted(): boolean {
  if (Atomics.load(ctl, CTL_STOP_REQUEST) !== 0) return true;
  const call = Atomics.load(irq, IRQ_CALL);
  const c = Atomics.load(irq, IRQ_CANCEL);
  return call !== 0 && c >>> 2 === call && (c & 3) !== 0;
}

/**
 * Runs the vCPU until it must stop; returns the STOP_* reason. `sliceMs`: the time slice a
 * guest may stay idle without parking.
 */
function runUntilStop(sliceMs: number): void {
  const fd = init.vcpuFd;
  let idleCalls = -1;
  let idleSince = 0;
  for (;;) {
    Atomics.store(irq, IRQ_RUNNING, 1);
    if (stopWanted()) {
      Atomics.store(irq, IRQ_RUNNING, 0);
      Atomics.notify(irq, IRQ_RUNNING);
      return stop(STOP_INTERRUPTED, -EINTR);
    }
    const r = ioctlOnce(fd, KVM_RUN, 0);
    Atomics.add(ctl, CTL_EXITS, 1);
    Atomics.store(irq, IRQ_RUNNING, 0);
    Atomics.notify(irq, IRQ_RUNNING);
    if (r === 0 && run.getUint32(F.exit_reason[0], true) === KVM_EXIT_MMIO && run.getUint8(F['mmio.is_write'][0]) !== 0 &&
        run.getUint32(F['mmio.phys_addr'][0] + 4, true) === 0) {
      const address = run.getUint32(F['mmio.phys_addr'][0], true);
      if (address === init.wakeAddress) {
        Atomics.add(ctl, CTL_EVENTS, 1);
        Atomics.notify(ctl, CTL_EVENTS);
        continue;
      }
      if (address === init.parkAddress) return stop(STOP_PARKED, 0);
    }
    if (r === -EINTR) {
      consumeKicks(); // the kick that ended KVM_RUN stays pending outside it: take it off
      if (stopWanted()) return stop(STOP_INTERRUPTED, r);
      // A time-slice tick, or another signal (a profiler's SIGPROF, a stray kick): a guest
      // seen idle, with no call started, for at least a whole slice is parked here. The time
      // is checked, not the ticks counted: any signal ends KVM_RUN.
      if (Atomics.load(ctl, CTL_IN_CALL) === 0) {
        const calls = Atomics.load(ctl, CTL_CALLS);
        const now = performance.now();
        if (calls !== idleCalls) {
          idleCalls = calls;
          idleSince = now;
        } else if (now - idleSince >= sliceMs) {
          return stop(STOP_FORCED_PARK, r);
        }
      } else {
        idleCalls = -1;
      }
      continue;
    }
    return stop(r < 0 ? STOP_ERROR : STOP_EXIT, r);
  }
}

Atomics.store(ctl, CTL_TIMER, timer.timerId);
Atomics.store(ctl, CTL_TID, gettid());
Atomics.notify(ctl, CTL_TID);
for (;;) {
  const go = Atomics.exchange(ctl, CTL_GO, 0);
  if (go === 0) {
    Atomics.wait(ctl, CTL_GO, 0);
    continue;
  }
  if (go === GO_QUIT) break;
  Atomics.store(ctl, CTL_STOP, STOP_NONE);
  const slice = Math.max(1, Atomics.load(ctl, CTL_SLICE_MS));
  timer.arm(slice * 1e6, slice * 1e6);
  try {
    runUntilStop(slice);
  } finally {
    timer.disarm();
  }
}
timer.close();
Atomics.store(ctl, CTL_TID, -1);
Atomics.notify(ctl, CTL_TID);
