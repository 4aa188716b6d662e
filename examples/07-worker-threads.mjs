// Example 7: keeping the event loop free. A guest call blocks the thread that makes it,
// so a server runs its sandboxes in worker threads and awaits their answers; the main
// thread can still stop a runaway guest through the sandbox's InterruptHandle. (This is
// the mechanism by hand; AsyncSandbox and SandboxPool do it for you: see example 8.)
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { UninitializedSandbox, GuestBinary, bundledGuestPath } from 'hyperlight-ts';

if (isMainThread) {
  // One worker with one sandbox; requests go in as messages and answers come back.
  const worker = new Worker(new URL(import.meta.url));
  const pending = new Map();
  let next = 0;
  let handleShared;
  worker.on('message', (m) => {
    if (m.kind === 'ready') handleShared = m.shared;
    else pending.get(m.id)?.(m);
  });
  const call = (fn, ret, ...args) => new Promise((resolve) => {
    const id = next++;
    pending.set(id, resolve);
    worker.postMessage({ id, fn, ret, args });
  });
  await new Promise((r) => worker.once('message', r)); // 'ready'

  // The event loop keeps running while guests work: this timer goes on ticking.
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 5);
  const [a, b] = await Promise.all([call('Echo', 'String', 'hello'), call('EchoI32', 'Int', 41)]);
  console.log(`answers: ${a.value}, ${b.value + 1}`);

  // A guest that never returns: stop it from here, 50 ms in, with the shared handle.
  const { InterruptHandle } = await import('hyperlight-ts');
  const spinning = call('Spin', 'Void');
  setTimeout(() => console.log(`kill() from the main thread: ${InterruptHandle.fromShared(handleShared).kill()}`), 50);
  const r = await spinning;
  console.log(`Spin ended with ${r.error}; the worker restored its sandbox`);
  console.log(`meanwhile the main thread's 5 ms timer ticked ${ticks > 0 ? 'on' : 'NOT'} (${ticks} times)`);
  console.log(`after restore: ${(await call('Echo', 'String', 'still serving')).value}`);
  clearInterval(timer);
  await worker.terminate();
} else {
  // Calls stop after 1 s by default; give Spin 10 s so that here the kill() is what stops it.
  const sandbox = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')),
    { maxExecutionTimeMs: 10_000 }).evolve();
  const clean = sandbox.snapshot();
  parentPort.postMessage({ kind: 'ready', shared: sandbox.interruptHandle().shared });
  parentPort.on('message', ({ id, fn, ret, args }) => {
    try {
      parentPort.postMessage({ id, value: sandbox.call(fn, ret, ...args) });
    } catch (e) {
      sandbox.restore(clean); // a killed call poisons the sandbox: put it back
      parentPort.postMessage({ id, error: e.code });
    }
  });
}
