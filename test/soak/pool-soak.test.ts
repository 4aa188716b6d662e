// Soak of the asynchronous API on real KVM: a SandboxPool (ordinary, and in exitless mode)
// under a deterministic random mix of good calls, guest crashes, timeouts, aborts (queued
// and running), failing and hanging async host functions, a full queue and a worker
// terminated from outside. Every call must settle with the value or the typed error its kind
// implies; then fds and POSIX timers are back to the start.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { SandboxPool } from '../../src/async/pool.js';
import { HyperlightError } from '../../src/errors.js';
import { bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';
import { prng } from '../helpers/prng.js';

export const POOL_SOAK_CALLS = 600;

type Kind = 'echo' | 'add' | 'abort-guest' | 'spin-timeout' | 'spin-abort' | 'host-throws' | 'host-hangs';
const KINDS: readonly Kind[] = ['echo', 'echo', 'echo', 'add', 'add', 'abort-guest', 'spin-timeout', 'spin-abort', 'host-throws', 'host-hangs'];
/** The error code each kind must end with (undefined: success). ERR_POOL_BUSY is allowed for any. */
const EXPECTED: Record<Kind, string | undefined> = {
  'echo': undefined, 'add': undefined, 'abort-guest': 'ERR_GUEST_ABORTED', 'spin-timeout': 'ERR_EXECUTION_CANCELED',
  'spin-abort': 'ERR_EXECUTION_CANCELED', 'host-throws': 'ERR_GUEST_ERROR', 'host-hangs': 'ERR_EXECUTION_CANCELED',
};

/** The ids of this process's POSIX timers. */
const posixTimers = (): string[] => readFileSync('/proc/self/timers', 'utf8').split('\n').filter((l) => l.startsWith('ID:')).sort();

describeKvm('pool soak', () => {
  for (const exitless of [false, true]) {
    it(`${exitless ? 'exitless' : 'ordinary'}: ${POOL_SOAK_CALLS} mixed calls settle as expected; a terminated worker is replaced; fds and timers return to the start`, async () => {
      const fds = await openFdCount();
      const timers = posixTimers();
      const random = prng(13);
      const pool = await SandboxPool.create({
        guest: bundledGuestPath('simpleguest'), workers: 2, maxQueue: 16, print: () => undefined, exitless,
        hostFunctions: {
          HostAdd: {
            params: ['Int', 'Int'], returns: 'Int',
            fn: async (a: number, b: number) => {
              if (a === -1) throw new Error('host says no');
              if (a === -2) return new Promise<number>(() => undefined); // never settles
              return a + b;
            },
          },
        },
      });
      const counts: Record<string, number> = {};
      const one = async (i: number): Promise<void> => {
        const kind = KINDS[Math.floor(random() * KINDS.length)]!;
        let outcome: string;
        try {
          let got: unknown;
          let want: unknown;
          switch (kind) {
            case 'echo': got = await pool.call('Echo', 'String', `m${i}`); want = `m${i}`; break;
            case 'add': got = await pool.call('Add', 'Int', i, 1); want = i + 1; break;
            case 'abort-guest': await pool.call('GuestAbortWithCode', 'Int', 5); break;
            case 'spin-timeout': await pool.callGuestFunctionByName('Spin', 'Void', [], { timeoutMs: 5 }); break;
            case 'spin-abort': await pool.callGuestFunctionByName('Spin', 'Void', [], { signal: AbortSignal.timeout(5) }); break;
            case 'host-throws': await pool.call('Add', 'Int', -1, 0); break;
            case 'host-hangs': await pool.callGuestFunctionByName('Add', 'Int', [-2, 0], { timeoutMs: 5 }); break;
          }
          if (got !== want) throw new Error(`call ${i} (${kind}) answered ${String(got)}, expected ${String(want)}`);
          outcome = 'ok';
        } catch (e) {
          if (!(e instanceof HyperlightError)) throw e;
          const allowed = e.code === 'ERR_POOL_BUSY' || e.code === 'ERR_WORKER_CRASHED' || e.code === EXPECTED[kind];
          if (!allowed) throw new Error(`call ${i} (${kind}) failed with ${e.code}: ${e.message}`);
          outcome = e.code;
        }
        if (outcome === 'ok' && EXPECTED[kind] !== undefined) throw new Error(`call ${i} (${kind}) succeeded`);
        counts[outcome] = (counts[outcome] ?? 0) + 1;
      };
      // Bursts of up to 24 calls at once (more than workers + maxQueue: some get PoolBusyError).
      let terminated = false;
      for (let i = 0; i < POOL_SOAK_CALLS;) {
        const n = 1 + Math.floor(random() * 24);
        const burst = Array.from({ length: Math.min(n, POOL_SOAK_CALLS - i) }, (_, j) => one(i + j));
        if (!terminated && i >= POOL_SOAK_CALLS / 2) {
          terminated = true;
          // A worker terminated from outside in the middle of the run.
          const victim = pool.sandboxes[0]!;
          const gone = victim.worker.terminate();
          victim.interruptHandle().kill();
          await gone;
        }
        i += burst.length;
        await Promise.all(burst);
      }
      const st = pool.stats();
      expect(st.calls).toBeGreaterThan(POOL_SOAK_CALLS * 0.5);
      expect(counts.ok).toBeGreaterThan(POOL_SOAK_CALLS * 0.2);
      expect(counts.ERR_EXECUTION_CANCELED).toBeGreaterThan(0);
      expect(counts.ERR_GUEST_ABORTED).toBeGreaterThan(0);
      expect(counts.ERR_GUEST_ERROR).toBeGreaterThan(0);
      expect(counts.ERR_POOL_BUSY).toBeGreaterThan(0);
      expect(st.replacedWorkers).toBeGreaterThanOrEqual(1);
      expect(await Promise.all([pool.call('Echo', 'String', 'end'), pool.call('Echo', 'String', 'end')])).toEqual(['end', 'end']);
      await pool.close();
      expect(await openFdCount()).toBe(fds); // the terminated thread's VM included
      expect(posixTimers()).toEqual(timers); // and its time limit's timer (and, exitless, its vCPU thread's)
    }, 240_000);
  }
});
