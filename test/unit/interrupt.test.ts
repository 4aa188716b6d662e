// InterruptState and InterruptHandle without KVM: a kill applies to the call it was issued for or to none, and a forged handle never signals another process.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CANCEL_KILL, CANCEL_NONE, CANCEL_TIMEOUT, InterruptHandle, InterruptState, cancelCall } from '../../src/sandbox/interrupt.js';

describe('late kills (issue 12, finding 5)', () => {
  it('a kill aimed at a call that has ended does not cancel the next call', () => {
    const state = new InterruptState();
    const handle = state.handle();
    state.beginCall();
    const first = handle.currentCall();
    expect(first).toBeGreaterThan(0);
    state.endCall();
    state.beginCall(); // the next call starts before the late kill lands
    expect(handle.currentCall()).not.toBe(first);
    expect(cancelCall(handle.slots, first, CANCEL_KILL)).toBe(false);
    expect(state.enterRun()).toBe(CANCEL_NONE);
    state.leaveRun();
    state.endCall();
  });

  it('a cancel written for an old call after the next began (the lost race) is ignored; a real kill still works', () => {
    const state = new InterruptState();
    const handle = state.handle();
    state.beginCall();
    const first = handle.currentCall();
    state.endCall();
    state.beginCall();
    // What a kill() that read `first` before the call ended and exchanged after would leave.
    Atomics.store(handle.slots, 2, (first << 2) | CANCEL_KILL);
    expect(state.cancelReason()).toBe(CANCEL_NONE);
    expect(handle.kill()).toBe(true);
    expect(state.cancelReason()).toBe(CANCEL_KILL);
    state.timeout(); // a timeout after a kill keeps the kill
    expect(state.cancelReason()).toBe(CANCEL_KILL);
    state.endCall();
    expect(handle.kill()).toBe(false);
    state.beginCall();
    expect(state.cancelReason()).toBe(CANCEL_NONE);
    state.timeout();
    expect(state.cancelReason()).toBe(CANCEL_TIMEOUT);
    state.endCall();
  });
});

describe('forged interrupt handles (issue 12, finding 4)', () => {
  it('kill() with another process\'s pid and tid in the shared memory leaves that process alone', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })));
    await new Promise((resolve) => child.once('spawn', resolve));
    const state = new InterruptState();
    const forged = InterruptHandle.fromShared(state.handle().shared);
    const slots = new Int32Array(forged.shared);
    const pid = child.pid!;
    Atomics.store(slots, 0, 1);   // RUNNING
    Atomics.store(slots, 1, 7);   // a call in progress
    Atomics.store(slots, 3, pid); // TID
    Atomics.store(slots, 4, pid); // the old PID slot
    expect(forged.kill()).toBe(true);
    // Give a signal, had one been sent, time to end the child; then end it ourselves.
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
  });
});
