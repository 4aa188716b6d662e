// Guests link musl: its start-up, stdio (%f/%g/%e), strtod, qsort, libm and time work in a guest, served by the host's Linux system calls; hostile system calls get Linux's errors and never touch host memory.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import type { Snapshot } from '../../src/sandbox/snapshot.js';
import { ERRNO, SYS } from '../../src/sandbox/syscalls.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { describeKvm } from '../helpers/kvm.js';
import { TraceRecorder } from '../../src/sandbox/trace-recorder.js';
import { formatTrace } from '../../src/cli/trace.js';

/** SortInts's generator and checksum, step for step (guests/simpleguest/main.c). */
function sortChecksum(n: number, seed: bigint): bigint {
  const v: number[] = [];
  let x = BigInt.asUintN(64, seed);
  for (let i = 0; i < n; i++) {
    x = BigInt.asUintN(64, x * 6364136223846793005n + 1442695040888963407n);
    v.push(Number(BigInt.asIntN(32, x >> 33n)));
  }
  v.sort((a, b) => a - b);
  let sum = 0n;
  for (const e of v) sum = BigInt.asIntN(64, sum * 31n + BigInt(e));
  return sum;
}

describeKvm('musl in a guest', () => {
  let simple: MultiUseSandbox;
  let hostile: MultiUseSandbox;
  const printed: string[] = [];
  beforeAll(() => {
    // The sort and libc functions run for seconds on a loaded machine: no time limit stops them (correctness, not speed, is tested here).
    const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')), { heapSize: 1 << 21, maxExecutionTimeMs: 60_000 });
    u.registerPrint((t) => { printed.push(t); return t.length; });
    simple = u.evolve();
    const h = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('hostileguest')));
    h.registerPrint((t) => { printed.push(t); return t.length; });
    hostile = h.evolve();
  });
  afterAll(() => { simple?.close(); hostile?.close(); });

  it('formats doubles with printf %f, %g and %e exactly as C does', () => {
    expect(simple.call('FormatDouble', 'String', 3.141592653589793, 6)).toBe('3.141593|3.14159|3.141593e+00');
    expect(simple.call('FormatDouble', 'String', -0.1, 20)).toBe('-0.10000000000000000555|-0.1|-1.000000e-01');
    // %.0f of 1e300 prints the double's exact value, as BigInt does
    expect(simple.call('FormatDouble', 'String', 1e300, 0)).toBe(`${BigInt(1e300)}|1e+300|1.000000e+300`);
  });

  it('parses with strtod and computes with libm', () => {
    expect(simple.call('ParseDouble', 'Double', '  -12.5e-3xyz')).toBe(-0.0125);
    expect(simple.call('ParseDouble', 'Double', '0x1.8p1')).toBe(3);
    const x = 2.5;
    const want = Math.sqrt(x) + Math.sin(x) * Math.cos(x) + Math.log(x) + Math.exp(-x) + Math.pow(x, 0.25);
    expect(simple.call('MathMix', 'Double', x)).toBeCloseTo(want, 14);
  });

  it('sorts 10^5 malloc\'d ints with qsort', () => {
    expect(simple.call('SortInts', 'Long', 100_000, 42n)).toBe(sortChecksum(100_000, 42n));
  });

  it('has ctype and the time (clock_gettime served by the host)', () => {
    expect(simple.call('Upper', 'String', 'abc-xyz')).toBe('ABC-XYZ');
    const now = Math.floor(Date.now() / 1000);
    const t = simple.call('WallClock', 'Long') as bigint;
    expect(Math.abs(Number(t) - now)).toBeLessThanOrEqual(2);
  });

  it('sends printf output through write/writev into the print function', () => {
    printed.length = 0;
    expect(simple.call('PrintOutput', 'Int', 'via musl\n')).toBe(9);
    expect(printed.join('')).toBe('via musl\n');
  });

  it('answers unknown system calls -ENOSYS and counts them; a trace shows each call by number and name', () => {
    const rec = new TraceRecorder();
    hostile.traceExits(rec);
    try {
      expect(hostile.call('RawSyscall', 'Long', 9999n, 0n, 0n, 0n)).toBe(BigInt(-ERRNO.ENOSYS));
      expect(hostile.call('RawSyscall', 'Long', -1n, 0n, 0n, 0n)).toBe(BigInt(-ERRNO.ENOSYS));
      expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.getpid), 0n, 0n, 0n)).toBe(1n);
    } finally {
      hostile.traceExits(undefined);
    }
    const calls = rec.exits.filter((x) => x.reason === 'syscall');
    expect(calls.map((x) => [x.port, x.detail])).toEqual([[9999, 'syscall 9999 = -1 ENOSYS'], [-1, 'syscall -1 = -1 ENOSYS'], [SYS.getpid, 'getpid = 1']]);
    expect(calls[2]!.syscall).toEqual({ nr: SYS.getpid, name: 'getpid', result: 1n });
    expect(rec.exits.some((x) => x.detail === 'cpu exception')).toBe(false);
    const summary = rec.syscallSummary();
    expect(summary.total).toBe(3);
    expect(summary.enosys).toBe(2);
    expect([...summary.byName]).toEqual([['9999', 1], ['-1', 1], ['getpid', 1]]);
    expect(formatTrace(rec)).toContain('system calls (3, 2 answered -ENOSYS): 9999 1, -1 1, getpid 1');
    expect(hostile.call('Ping', 'Int', 1)).toBeDefined();
  });

  it('answers pointers outside the guest -EFAULT and never writes read-only or host memory', () => {
    const EFAULT = BigInt(-ERRNO.EFAULT);
    const code = hostile.call('AddressOf', 'Long', 1) as bigint;
    // write(1, ...) from beyond the guest's memory, and from the host's system area (below the PEB)
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.write), 1n, 1n << 40n, 16n)).toBe(EFAULT);
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.write), 1n, 0x1000n, 16n)).toBe(EFAULT);
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.write), 1n, -1n, 16n)).toBe(EFAULT);
    // clock_gettime into code (read+execute) or outside memory: refused; into .bss: done
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.clock_gettime), 0n, code, 0n)).toBe(EFAULT);
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.getrandom), 1n << 40n, 16n, 0n)).toBe(EFAULT);
    const scratch = hostile.call('AddressOf', 'Long', 0) as bigint;
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.getrandom), scratch, 16n, 0n)).toBe(16n);
    // writev with an absurd count or an iovec outside memory
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.writev), 1n, scratch, 1n << 40n)).toBe(BigInt(-ERRNO.EINVAL));
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.writev), 1n, 1n << 40n, 2n)).toBe(EFAULT);
    // other fds
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.write), 7n, scratch, 4n)).toBe(BigInt(-ERRNO.EBADF));
    expect(hostile.call('Ping', 'Int', 2)).toBeDefined();
  });

  it('keeps brk and mmap inside the guest heap: -ENOMEM beyond it', () => {
    const brk = hostile.call('RawSyscall', 'Long', BigInt(SYS.brk), 0n, 0n, 0n) as bigint;
    // the SDK claimed the whole heap with brk at start-up: nothing is left to map
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.brk), brk + (1n << 30n), 0n, 0n)).toBe(brk);
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.brk), 1n << 46n, 0n, 0n)).toBe(brk);
    // mmap(NULL, 1 GiB, RW, PRIVATE|ANONYMOUS, -1, 0) is hostile's raw_syscall with 3 args: r10 = 0 (flags 0): EINVAL/ENOSYS
    const mm = hostile.call('RawSyscall', 'Long', BigInt(SYS.mmap), 0n, 1n << 30n, 3n) as bigint;
    expect(mm < 0n).toBe(true);
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.munmap), brk - 4096n, 4096n, 0n)).toBe(0n);
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.mprotect), 1n << 40n, 4096n, 1n)).toBe(BigInt(-ERRNO.ENOMEM));
  });

  describe('anonymous memory in an SDK guest (mmap, munmap, mprotect from the heap, no system call)', () => {
    const RW = 3;
    const PRIVATE = 2;
    const CHUNK = 64n * 1024n;
    const mmap = (len: bigint, prot = RW, flags = PRIVATE): bigint => simple.call('Mmap', 'Long', len, prot, flags) as bigint;
    const munmap = (addr: bigint, len: bigint): number => simple.call('Munmap', 'Int', addr, len) as number;
    const mprotect = (addr: bigint, len: bigint, prot: number): number => simple.call('Mprotect', 'Int', addr, len, prot) as number;
    /** Maps CHUNKs until the heap is exhausted; the last answer must be -ENOMEM. */
    const fill = (): bigint[] => {
      const got: bigint[] = [];
      for (;;) {
        const a = mmap(CHUNK);
        if (a < 0n) {
          expect(a).toBe(BigInt(-ERRNO.ENOMEM));
          return got;
        }
        got.push(a);
      }
    };
    let fresh: Snapshot;
    beforeAll(() => { fresh = simple.snapshot(); });
    afterEach(() => simple.restore(fresh));

    it('cycles large mallocs and frees without losing memory', () => {
      expect(simple.call('MallocCycles', 'Int', 300, 1 << 20)).toBe(300); // 1 MiB of a 2 MiB heap, 300 times
      expect(simple.call('MallocCycles', 'Int', 2, 3 << 20)).toBe(0); // more than the heap: NULL at once
      expect(simple.call('MallocCycles', 'Int', 300, 1 << 20)).toBe(300);
    });

    it('hands out zeroed, page-aligned heap pages; -ENOMEM only when the heap is exhausted; freed holes are reused', () => {
      const rec = new TraceRecorder();
      simple.traceExits(rec);
      const all = fill();
      simple.traceExits(undefined);
      expect(rec.exits.filter((x) => x.reason === 'syscall')).toEqual([]); // served in the guest
      expect(all.length).toBeGreaterThanOrEqual(25); // 2 MiB heap, 64 KiB (+ a page of alignment) each
      for (const a of all) expect(a % 4096n).toBe(0n);
      expect(new Set(all).size).toBe(all.length);
      expect(simple.call('ReadMappedBuffer', 'VecBytes', all[0]!, 4096n)).toEqual(new Uint8Array(4096));
      expect(simple.call('WriteMappedBuffer', 'Bool', all[0]!, CHUNK)).toBe(true);
      // Fragmentation: free every other chunk; as many chunks fit again, zeroed, in the holes.
      const holes = all.filter((_, i) => i % 2 === 0);
      for (const a of holes) expect(munmap(a, CHUNK)).toBe(0);
      const again = holes.map(() => mmap(CHUNK));
      for (const a of again) expect(a > 0n).toBe(true);
      expect(simple.call('ReadMappedBuffer', 'VecBytes', again[0]!, 4096n)).toEqual(new Uint8Array(4096));
      expect(mmap(CHUNK)).toBe(BigInt(-ERRNO.ENOMEM));
      // Everything back: one mapping of most of the heap fits (the holes merged).
      for (const a of [...all.filter((_, i) => i % 2 === 1), ...again]) expect(munmap(a, CHUNK)).toBe(0);
      const big = mmap(BigInt(all.length - 2) * CHUNK);
      expect(big > 0n).toBe(true);
      expect(munmap(big, BigInt(all.length - 2) * CHUNK)).toBe(0);
      expect(fill().length).toBe(all.length);
    });

    it('munmap cuts a mapping as Linux does; the pages return with the last piece', () => {
      const n = fill().length;
      simple.restore(fresh);
      const a = mmap(3n * 4096n);
      expect(munmap(a + 4096n, 4096n)).toBe(0); // the middle page: two pieces stay
      expect(munmap(a, 4096n)).toBe(0);
      expect(munmap(a + 8192n, 4096n)).toBe(0); // the last piece: the block is freed
      expect(munmap(a, 4096n)).toBe(0); // nothing mapped there: not an error
      expect(fill().length).toBe(n);
      expect(munmap(a + 1n, 4096n)).toBe(-ERRNO.EINVAL);
      expect(munmap(a, 0n)).toBe(-ERRNO.EINVAL);
    });

    it('refuses what Linux refuses, and executable heap pages (W^X)', () => {
      expect(mmap(0n)).toBe(BigInt(-ERRNO.EINVAL));
      expect(mmap(CHUNK, RW, 0)).toBe(BigInt(-ERRNO.EINVAL)); // neither private nor shared
      expect(mmap(CHUNK, 8)).toBe(BigInt(-ERRNO.EINVAL)); // an unknown protection bit
      expect(mmap(CHUNK, 4 | RW)).toBe(BigInt(-ERRNO.EPERM));
      expect(mmap(1n << 40n)).toBe(BigInt(-ERRNO.ENOMEM));
      expect(mmap(-1n)).toBe(BigInt(-ERRNO.EINVAL)); // wraps
      const a = mmap(CHUNK);
      expect(mprotect(a, CHUNK, 1)).toBe(0);
      expect(mprotect(a, CHUNK, RW)).toBe(0);
      expect(mprotect(a, CHUNK, 0)).toBe(0);
      expect(mprotect(a, CHUNK, 4 | 1)).toBe(-ERRNO.EPERM);
      expect(mprotect(a + 1n, 4096n, 1)).toBe(-ERRNO.EINVAL);
      expect(mprotect(a, 4096n, 16)).toBe(-ERRNO.EINVAL);
      expect(mprotect(1n << 40n, 4096n, 1)).toBe(-ERRNO.ENOMEM); // outside the heap
      expect(simple.call('WriteMappedBuffer', 'Bool', a, CHUNK)).toBe(true); // still usable
    });

    it('restore() and snapshots bring the mappings back', () => {
      const n = fill().length;
      simple.restore(fresh);
      expect(fill().length).toBe(n); // nothing leaked across the restore
      simple.restore(fresh);
      const kept = mmap(CHUNK);
      const withOne = simple.snapshot();
      expect(fill().length).toBe(n - 1);
      simple.restore(withOne);
      expect(munmap(kept, CHUNK)).toBe(0); // the snapshot's mapping is there to unmap
      expect(fill().length).toBe(n);
    });
  });

  it('exit_group aborts the call with the exit code; restore makes the sandbox usable', () => {
    const snap = hostile.snapshot();
    expect(() => hostile.call('RawSyscall', 'Long', BigInt(SYS.exit_group), 7n, 0n, 0n))
      .toThrow(expect.objectContaining({ code: 'ERR_GUEST_ABORTED', abortCode: 7 }));
    hostile.restore(snap);
    expect(hostile.call('RawSyscall', 'Long', BigInt(SYS.getpid), 0n, 0n, 0n)).toBe(1n);
  });
});
