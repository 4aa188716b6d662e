// Soak tests on real KVM: 10,000 create/evolve/call/close cycles with flat fds and bounded RSS, 1,000 sandboxes open at once, and sandboxes on several worker threads killed from another thread.
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';

/** docs/security.md cites these numbers. */
export const SOAK_CYCLES = 10_000;
export const SOAK_OPEN_AT_ONCE = 1_000;
export const SOAK_WORKERS = 3;
export const SOAK_WORKER_ROUNDS = 20;
const MiB = 1024 * 1024;

const bytes = GuestBinary.filePath(bundledGuestPath('simpleguest')).bytes();

// A real collection before each RSS reading, so garbage not yet collected is not counted.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function rssAfterGc(): number {
  gc();
  return process.memoryUsage().rss;
}

describeKvm('soak', () => {
  it(`${SOAK_CYCLES} create/evolve/call/close cycles: open fds unchanged, RSS growth under 20 MiB`, async () => {
    const cycle = (i: number): void => {
      const u = UninitializedSandbox.create(GuestBinary.buffer(bytes)); // the ELF is read once, parsed per cycle
      using sandbox = u.evolve();
      if (sandbox.call('Echo', 'String', 'soak') !== 'soak') throw new Error(`cycle ${i}: wrong answer`);
    };
    for (let i = 0; i < 100; i++) cycle(i); // warm up allocators and JIT
    const fds = await openFdCount();
    const rss = rssAfterGc();
    const t0 = performance.now();
    for (let i = 0; i < SOAK_CYCLES; i++) cycle(i);
    const seconds = (performance.now() - t0) / 1000;
    const fdsAfter = await openFdCount();
    const growth = rssAfterGc() - rss;
    console.info(`soak: ${SOAK_CYCLES} cycles in ${seconds.toFixed(1)} s (${(SOAK_CYCLES / seconds).toFixed(0)} cycles/s), ` +
      `fds ${fds} -> ${fdsAfter}, RSS ${(growth / MiB).toFixed(1)} MiB growth`);
    expect(fdsAfter).toBe(fds);
    expect(growth).toBeLessThan(20 * MiB);
  }, 300_000);

  it(`${SOAK_OPEN_AT_ONCE} sandboxes open at once each answer a call; closing them all brings fds back`, async () => {
    const fds = await openFdCount();
    const open: MultiUseSandbox[] = [];
    try {
      for (let i = 0; i < SOAK_OPEN_AT_ONCE; i++) open.push(UninitializedSandbox.create(GuestBinary.buffer(bytes)).evolve());
      expect(await openFdCount()).toBeGreaterThanOrEqual(fds + SOAK_OPEN_AT_ONCE);
      open.forEach((s, i) => expect(s.call('EchoI32', 'Int', i)).toBe(i));
      // State is per sandbox: each keeps its own counter.
      open.forEach((s, i) => s.call('AddToStatic', 'Int', i));
      open.forEach((s, i) => expect(s.call('GetStatic', 'Int')).toBe(i));
    } finally {
      for (const s of open) s.close();
    }
    expect(open.every((s) => s.status() === 'closed')).toBe(true);
    expect(await openFdCount()).toBe(fds);
  }, 120_000);

  it(`${SOAK_WORKERS} worker threads run sandboxes at once while a killer thread stops their spinning calls`, async () => {
    const fds = await openFdCount();
    const url = new URL('../fixtures/hostile-soak/worker.mjs', import.meta.url);
    const killer = new Worker(url, { workerData: { role: 'killer' } });
    const runners = Array.from({ length: SOAK_WORKERS }, (_, id) =>
      new Worker(url, { workerData: { role: 'runner', id, rounds: SOAK_WORKER_ROUNDS } }));
    let kills = 0;
    killer.on('message', () => { kills++; });
    type Result = { id: number; killed: number; echoes: number; fresh: number; errors: string[] };
    const results = await Promise.all(runners.map((w) => new Promise<Result>((resolve, reject) => {
      w.on('error', reject);
      w.on('message', (m: { spinning?: number; shared?: SharedArrayBuffer; done?: Result }) => {
        if (m.done) resolve(m.done);
        else killer.postMessage({ shared: m.shared, id: m.spinning });
      });
    })));
    await Promise.all(runners.map((w) => w.terminate()));
    await killer.terminate();
    for (const r of results) {
      expect(r.errors).toEqual([]);
      expect(r).toMatchObject({ killed: SOAK_WORKER_ROUNDS, echoes: SOAK_WORKER_ROUNDS, fresh: SOAK_WORKER_ROUNDS });
    }
    expect(kills).toBe(SOAK_WORKERS * SOAK_WORKER_ROUNDS);
    expect(await openFdCount()).toBe(fds);
  }, 120_000);
});
