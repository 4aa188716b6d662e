// The worker thread of an AsyncSandbox: owns one VM, takes its operations from the shared
// channel (blocking in Atomics.wait between them), and sends every host call, print and log
// to the main thread, blocking until the answer comes. No policy here: poisoning is the
// MultiUseSandbox's, timing limits the main thread's.
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigInvalidError } from '../errors.js';
import { ExitlessSandbox } from '../exitless/exitless-sandbox.js';
import { ExecutionCanceledError } from '../sandbox/errors.js';
import { GuestBinary } from '../sandbox/guest-binary.js';
import { MultiUseSandbox } from '../sandbox/multi-use-sandbox.js';
import { Snapshot } from '../sandbox/snapshot.js';
import { UninitializedSandbox } from '../sandbox/uninitialized-sandbox.js';
import type { PlainValue } from '../sandbox/values.js';
import { CTL_CANCEL, CTL_CLOSING, type Up, WorkerEnd, sleepWithoutPolling } from './channel.js';
import { resourcesOf, trackTimer, trackTimers } from './reclaim.js';
import { type CallMeasure, type FromWorker, type HostRequest, type ToWorker, type WorkerInit, toWire } from './wire.js';

/** A failure the main thread reported for a host function, print or log (its message only). */
class HostCallFailed extends Error {}

if (parentPort === null) throw new TypeError('src/async/worker.js runs only as a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;
const channel = new WorkerEnd(init.channel, init.overflow, init.doorbell);
if (init.exitless) sleepWithoutPolling();
const control = channel.control;

/** The operation running now (host requests carry it, so late replies can be told apart). */
let currentOp = 0;
let hostSeq = 0;
/** Measurement of the call in progress (observe). */
let hostNs = 0;
let hostCalls = 0;

const post = (m: FromWorker): void => port.postMessage(m);
const send = (m: Up): void => channel.send(m);

/**
 * Sends a host request and blocks this thread until the main thread answers it or cancels
 * the operation. A cancel throws ExecutionCanceledError: from a host function the guest
 * then gets a host error and is stopped at its next entry (kill() was requested too).
 */
function ask(request: HostRequest): PlainValue {
  const t0 = performance.now();
  hostCalls++;
  send(request);
  try {
    for (;;) {
      const wake = channel.wakeValue();
      const r = channel.receive();
      if (r !== undefined) {
        if (r.op !== 'reply' || r.seq !== request.seq) continue; // nothing else is sent while the guest waits
        if (r.ok) return r.value;
        throw new HostCallFailed(r.message);
      }
      if (Atomics.load(control, CTL_CANCEL) === currentOp) {
        // The main thread's kill() may not have reached the vCPU's state yet: cancel the call
        // here too (from this thread it only marks it), or the guest, handed this as a host
        // error, could run on to its end and the call fail as a GuestError instead.
        sandbox?.interruptHandle().kill();
        throw new ExecutionCanceledError('killed', ' while the guest waited for the host');
      }
      channel.wait(wake);
    }
  } finally {
    hostNs += performance.now() - t0;
  }
}

/** The worker's sandbox: a MultiUseSandbox, or an ExitlessSandbox whose vCPU spins on a thread of its own (it waits on the mailbox). */
type Hosted = MultiUseSandbox | ExitlessSandbox;

function build(): Hosted {
  const proxy = (name: string) => (...args: PlainValue[]) => ask({ kind: 'host', op: currentOp, seq: ++hostSeq, name, args });
  const print = (text: string): number => {
    ask({ kind: 'print', op: currentOp, seq: ++hostSeq, text });
    return text.length;
  };
  if (init.snapshot) {
    const hosts = Object.fromEntries(init.hosts.map((h) => [h.name, { params: h.params, returns: h.returns, fn: proxy(h.name) }]));
    return MultiUseSandbox.fromSnapshot(Snapshot.fromFileBytes(init.snapshot), hosts, { print });
  }
  const uninit = UninitializedSandbox.create(GuestBinary.buffer(init.guest), init.config);
  for (const h of init.hosts) {
    uninit.registerHostFunction(h.name, { params: h.params, returns: h.returns },
      proxy(h.name));
  }
  uninit.registerPrint(print);
  if (init.logLevel < 6) {
    uninit.registerLogger((record) => { ask({ kind: 'log', op: currentOp, seq: ++hostSeq, record }); }, init.logLevel);
  }
  return init.exitless ? uninit.evolve({ freshInit: init.freshInit, exitless: init.exitless }) : uninit.evolve({ freshInit: init.freshInit });
}

const snapshots = new Map<number, Snapshot>();
let nextSnapshot = 1;
let sandbox: Hosted;

function keep(s: Snapshot): number {
  const id = nextSnapshot++;
  snapshots.set(id, s);
  return id;
}

function call(m: Extract<ToWorker, { op: 'call' }>): void {
  if (Atomics.load(control, CTL_CANCEL) === m.id) {
    // Cancelled while this message was on its way: nothing runs, nothing is poisoned.
    send({ kind: 'done', id: m.id, ok: false, error: toWire(new ExecutionCanceledError('killed', ' before it started')), poisoned: sandbox.poisoned });
    return;
  }
  hostNs = 0;
  hostCalls = 0;
  const s = sandbox;
  // Exits: traced on a MultiUseSandbox; an exitless one counts its vCPU thread's (parks and wake-ups included).
  let exits = 0;
  if (m.observe) {
    if (s instanceof ExitlessSandbox) exits = -s.stats.exits;
    else s.traceExits({ exit: () => { exits++; } });
  }
  const t0 = performance.now();
  let reply: Up;
  try {
    const value = sandbox.callGuestFunctionByName(m.name, m.returns, m.params);
    reply = { kind: 'done', id: m.id, ok: true, value, poisoned: false };
  } catch (e) {
    reply = { kind: 'done', id: m.id, ok: false, error: toWire(e), poisoned: sandbox.poisoned };
  }
  if (m.observe) {
    if (s instanceof ExitlessSandbox) exits += s.stats.exits;
    else s.traceExits(undefined);
    const measure: CallMeasure = { guestNs: (performance.now() - t0 - hostNs) * 1e6, hostNs: hostNs * 1e6, exits, hostCalls };
    reply.measure = measure;
  }
  send(reply);
  // Off the caller's path: the reply is on its way while the sandbox is put back.
  if (m.restoreAfter !== 0) sandbox.restore(snapshot(m.restoreAfter));
}

function snapshot(id: number): Snapshot {
  const s = snapshots.get(id);
  if (s === undefined) throw new RangeError(`worker has no snapshot ${id}`);
  return s;
}

/** Runs `fn` for operation `id` and sends its outcome. */
function answer(id: number, fn: () => PlainValue): void {
  try {
    send({ kind: 'done', id, ok: true, value: fn(), poisoned: sandbox.poisoned });
  } catch (e) {
    send({ kind: 'done', id, ok: false, error: toWire(e), poisoned: sandbox.poisoned });
  }
}

function mapRegion(m: Extract<ToWorker, { op: 'map' }>): number {
  if (sandbox instanceof ExitlessSandbox) {
    throw new ConfigInvalidError('exitless', 'mapRegion() needs a sandbox that is not exitless: evolve without `exitless` to map host memory');
  }
  return sandbox.mapRegion(m.source, m.guestAddress, { writable: m.writable });
}

/** Runs one operation; false once the sandbox is closed. */
function run(m: ToWorker): boolean {
  currentOp = m.id;
  try {
    switch (m.op) {
      case 'call': call(m); break;
      case 'snapshot': answer(m.id, () => keep(sandbox.snapshot())); break;
      case 'restore': answer(m.id, () => { sandbox.restore(snapshot(m.snapshot)); return undefined; }); break;
      case 'map': answer(m.id, () => mapRegion(m)); break;
      case 'drop': answer(m.id, () => { snapshots.delete(m.snapshot); return undefined; }); break;
      case 'close':
        Atomics.store(control, CTL_CLOSING, 1);
        snapshots.clear();
        answer(m.id, () => { sandbox.close(); return undefined; });
        return false;
    }
    return true;
  } finally {
    currentOp = 0;
  }
}

/** Serves operations until close: this thread never returns to its event loop in between. */
function serve(): void {
  for (;;) {
    const wake = channel.wakeValue();
    const m = channel.receive();
    if (m === undefined) {
      channel.wait(wake); // a cancel of an operation that has already finished wakes it too
    } else if (m.op !== 'reply' && !run(m)) {
      return;
    }
  }
}

let ready = false;
const timers = trackTimers();
try {
  sandbox = build();
  if (sandbox instanceof ExitlessSandbox) trackTimer(timers, sandbox.vcpuTimerId);
  // An exitless sandbox took its snapshot when it parked in its mailbox loop (its restores come back there).
  const initSnapshot = keep(sandbox instanceof ExitlessSandbox ? sandbox.initialSnapshot : sandbox.snapshot());
  post({ kind: 'ready', interrupt: sandbox.interruptHandle().shared, initSnapshot, resources: resourcesOf(sandbox.machine, timers) });
  ready = true;
} catch (e) {
  post({ kind: 'failed', error: toWire(e) });
  port.close();
  init.overflow.close();
}
if (ready) {
  serve();
  port.close(); // nothing else keeps this thread alive: it exits
  init.overflow.close();
}
