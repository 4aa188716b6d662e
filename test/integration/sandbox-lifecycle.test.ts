// Sandbox lifecycle on real KVM: host-call failures, time limits, kill from a host function
// and from another thread, snapshots, configuration and ELF errors, resource release.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ConfigInvalidError, ElfInvalidError } from '../../src/errors.js';
import { ResourceClosedError } from '../../src/kvm/errors.js';
import { MemorySnapshot } from '../../src/mem/snapshot.js';
import {
  ExecutionCanceledError, GuestError, HostFunctionNotFoundError, ReturnTypeMismatchError,
  SnapshotIncompatibleError,
} from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue as P } from '../../src/sandbox/values.js';
import { catchError } from '../helpers/errors.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';
import { simpleSandbox } from '../helpers/sandbox.js';


describeKvm('host functions called by the guest', () => {
  it('a throwing host function reaches the guest as HostError (17) and surfaces with its cause', () => {
    const boom = new Error('host exploded');
    const { sandbox } = simpleSandbox({}, (u) => u.registerHostFunction('HostMethod1',
      { params: ['String'], returns: 'Int' }, () => { throw boom; }));
    try {
      const e = catchError(() => sandbox.call('GuestMethod1', 'Int', 'x'));
      expect(e).toBeInstanceOf(GuestError);
      expect(e).toMatchObject({ guestCode: 17, code: 'ERR_GUEST_ERROR' });
      expect((e as GuestError).guestMessage).toContain('host exploded');
      expect((e as Error).cause).toBe(boom);
      expect(sandbox.poisoned).toBe(false);
      expect(sandbox.call('Echo', 'String', 'ok')).toBe('ok');
    } finally {
      sandbox.close();
    }
  });

  it('a host function returning the wrong type fails the call with ReturnTypeMismatchError as cause', () => {
    const { sandbox } = simpleSandbox({}, (u) => u.registerHostFunction('HostAdd',
      { params: ['Int', 'Int'], returns: 'Int' }, (() => 'not a number') as unknown as () => number)); // wrong on purpose: checked at run time
    try {
      const e = catchError(() => sandbox.call('Add', 'Int', 1, 2));
      expect(e).toMatchObject({ guestCode: 17 });
      expect((e as Error).cause).toBeInstanceOf(ReturnTypeMismatchError);
    } finally {
      sandbox.close();
    }
  });

  it('an unregistered host function fails the call with HostFunctionNotFoundError as cause', () => {
    const u = UninitializedSandbox.create(bundledGuestPath('simpleguest'));
    const sandbox = u.evolve();
    try {
      const e = catchError(() => sandbox.call('Add', 'Int', 1, 2));
      expect(e).toBeInstanceOf(GuestError);
      expect((e as Error).cause).toBeInstanceOf(HostFunctionNotFoundError);
      expect(((e as Error).cause as HostFunctionNotFoundError).functionName).toBe('HostAdd');
    } finally {
      sandbox.close();
    }
  });
});

describeKvm('stopping a guest', () => {
  it('maxExecutionTimeMs stops Spin with ExecutionCanceledError, poisons, and restore recovers', () => {
    const { sandbox } = simpleSandbox({ maxExecutionTimeMs: 300 });
    try {
      const snap = sandbox.snapshot();
      const start = performance.now();
      const e = catchError(() => sandbox.call('Spin', 'Void'));
      const ms = performance.now() - start;
      expect(e).toBeInstanceOf(ExecutionCanceledError);
      expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'timeout' });
      expect(ms).toBeGreaterThanOrEqual(299);
      expect(sandbox.poisoned).toBe(true);
      sandbox.restore(snap);
      expect(sandbox.call('Echo', 'String', 'alive')).toBe('alive');
    } finally {
      sandbox.close();
    }
  });

  it('kill() from a host function takes effect when the guest is re-entered', () => {
    let sandbox: ReturnType<typeof simpleSandbox>['sandbox'] | undefined;
    const t = simpleSandbox({}, (u) => u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' },
      () => { sandbox!.interruptHandle().kill(); return 1; }));
    sandbox = t.sandbox;
    try {
      const snap = sandbox.snapshot();
      const e = catchError(() => sandbox!.call('GuestMethod1', 'Int', 'x'));
      expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'killed' });
      sandbox.restore(snap);
      expect(sandbox.call('Echo', 'String', 'again')).toBe('again');
    } finally {
      sandbox.close();
    }
  });

  it('kill() with no call running does nothing and is not remembered', () => {
    const { sandbox } = simpleSandbox();
    try {
      expect(sandbox.interruptHandle().kill()).toBe(false);
      expect(sandbox.call('Echo', 'String', 'fine')).toBe('fine');
    } finally {
      sandbox.close();
    }
  });

  it('kill() from a worker thread stops a spinning guest', async () => {
    const { sandbox } = simpleSandbox({ maxExecutionTimeMs: 30_000 }); // only the kill may stop it
    try {
      const snap = sandbox.snapshot();
      const worker = new Worker(new URL('../fixtures/kill-worker.mjs', import.meta.url),
        { workerData: { shared: sandbox.interruptHandle().shared, delayMs: 100 } });
      const online = new Promise((r) => worker.once('online', r));
      await online;
      const reply = new Promise<{ killed: boolean }>((r) => worker.once('message', r));
      const e = catchError(() => sandbox.call('Spin', 'Void'));
      expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'killed' });
      expect((await reply).killed).toBe(true);
      await worker.terminate();
      sandbox.restore(snap);
      expect(sandbox.call('Echo', 'String', 'revived')).toBe('revived');
    } finally {
      sandbox.close();
    }
  });
});

const PAGE = 4096;

describeKvm('snapshots', () => {
  it('restore brings memory back byte for byte after scattered writes, any number of times', () => {
    const { sandbox } = simpleSandbox();
    try {
      sandbox.call('AddToStatic', 'Int', 1);
      const snap = sandbox.snapshot();
      const before = MemorySnapshot.capture(sandbox.machine.memory);
      for (let round = 0; round < 3; round++) {
        expect(sandbox.call('SetStatic', 'Int')).toBe(5);
        sandbox.call('CallMalloc', 'Int', 20_000);
        sandbox.call('Echo', 'String', 'dirty the buffers '.repeat(100));
        sandbox.restore(snap);
        expect(Buffer.from(sandbox.machine.memory.bytes).equals(restoredCopy(before, sandbox.machine.memory.size))).toBe(true);
        expect(sandbox.call('GetStatic', 'Int')).toBe(1);
        sandbox.restore(snap);
      }
    } finally {
      sandbox.close();
    }
  });

  it('after snapshot() the dirty log holds only what calls write, so a restore copies those pages, not also every page guest init wrote', () => {
    const { sandbox } = simpleSandbox();
    try {
      const { vm, layout, memory } = sandbox.machine;
      const pagesIn = (log: Uint8Array): number[] => {
        const out: number[] = [];
        log.forEach((b, i) => { for (let k = 0; k < 8; k++) if (b & (1 << k)) out.push((i * 8 + k) * PAGE); });
        return out;
      };
      const initWrote = pagesIn(vm.getDirtyLog(0)); // read only: the log still holds them
      expect(initWrote).toContain(layout.heap.gpa); // init's registrations and mallocs
      const snap = sandbox.snapshot();
      const before = MemorySnapshot.capture(memory);
      sandbox.call('Echo', 'String', 'hi');
      const callWrote = pagesIn(vm.getDirtyLog(0));
      // Echo writes the SDK's hot data page, both I/O buffers' stack pointers and its stack.
      expect(callWrote).toContain(layout.inputData.gpa);
      expect(callWrote).toContain(layout.outputData.gpa);
      expect(callWrote).toContain(layout.stack.gpa + layout.stack.size - PAGE);
      expect(callWrote).toHaveLength(4);
      expect(callWrote).not.toContain(layout.heap.gpa);
      sandbox.restore(snap);
      expect(Buffer.from(memory.bytes).equals(restoredCopy(before, memory.size))).toBe(true);
      expect(sandbox.call('Echo', 'String', 'again')).toBe('again');
    } finally {
      sandbox.close();
    }
  });

  it('restores an older snapshot (full copy) and the newer one again', () => {
    const { sandbox } = simpleSandbox();
    try {
      const s1 = sandbox.snapshot();
      sandbox.call('AddToStatic', 'Int', 10);
      const s2 = sandbox.snapshot();
      sandbox.call('AddToStatic', 'Int', 5);
      sandbox.restore(s1);
      expect(sandbox.call('GetStatic', 'Int')).toBe(0);
      sandbox.restore(s2);
      expect(sandbox.call('GetStatic', 'Int')).toBe(10);
    } finally {
      sandbox.close();
    }
  });

  it('refuses a snapshot from a sandbox with another layout', () => {
    const a = simpleSandbox().sandbox;
    const b = simpleSandbox({ heapSize: 256 * 1024 }).sandbox;
    try {
      expect(() => b.restore(a.snapshot())).toThrow(SnapshotIncompatibleError);
    } finally {
      a.close();
      b.close();
    }
  });
});

describeKvm('evolving many sandboxes from one UninitializedSandbox', () => {
  it('runs guest init once, then starts independent sandboxes from its result', () => {
    const u = UninitializedSandbox.create(bundledGuestPath('simpleguest'));
    u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b);
    let initExits = 0;
    const first = u.evolve({ exits: { exit: () => { initExits++; } } });
    let laterExits = 0;
    const second = u.evolve({ exits: { exit: () => { laterExits++; } } });
    try {
      expect(initExits).toBeGreaterThan(0); // the Halt at the end of init at least
      expect(laterExits).toBe(0);           // no guest code ran to start the second
      first.traceExits(undefined);
      second.traceExits(undefined);
      expect(first.call('AddToStatic', 'Int', 5)).toBe(5);
      expect(second.call('GetStatic', 'Int')).toBe(0);
      expect(second.call('Add', 'Int', 2, 3)).toBe(5);
      expect(second.dispatchAddress).toBe(first.dispatchAddress);
      let freshExits = 0;
      const third = u.evolve({ freshInit: true, exits: { exit: () => { freshExits++; } } });
      expect(freshExits).toBeGreaterThan(0);
      third.close();
    } finally {
      first.close();
      second.close();
    }
  });

  it('shares the init template through a reused GuestBinary, per layout', () => {
    const binary = GuestBinary.filePath(bundledGuestPath('simpleguest'));
    const count = (u: UninitializedSandbox): number => {
      let exits = 0;
      u.evolve({ exits: { exit: () => { exits++; } } }).close();
      return exits;
    };
    expect(count(UninitializedSandbox.create(binary))).toBeGreaterThan(0);
    expect(count(UninitializedSandbox.create(binary))).toBe(0);
    expect(count(UninitializedSandbox.create(binary, { heapSize: 256 * 1024 }))).toBeGreaterThan(0); // another layout
    expect(count(UninitializedSandbox.create(binary, { heapSize: 256 * 1024 }))).toBe(0);
    const printing = UninitializedSandbox.create(binary);
    printing.registerLogger(() => {}, 0); // another log level: init state differs
    expect(count(printing)).toBeGreaterThan(0);
    const same = UninitializedSandbox.create(binary);
    expect(count(same)).toBe(0);
    same.registerLogger(() => {}, 1); // the level changes after an evolve: init runs again
    expect(count(same)).toBeGreaterThan(0);
    expect(count(same)).toBe(0);
  });
});

describeKvm('creation errors and resources', () => {
  it('names the bad configuration field', () => {
    const e = catchError(() => UninitializedSandbox.create(bundledGuestPath('simpleguest'), { inputDataSize: 0x100 }));
    expect(e).toBeInstanceOf(ConfigInvalidError);
    expect(e).toMatchObject({ code: 'ERR_CONFIG_INVALID', field: 'inputDataSize' });
    expect(catchError(() => UninitializedSandbox.create(bundledGuestPath('simpleguest'), { heapSize: -1 })))
      .toMatchObject({ field: 'heapSize' });
    expect(catchError(() => UninitializedSandbox.create(bundledGuestPath('simpleguest'), { bogus: 1 } as never)))
      .toMatchObject({ field: 'bogus' });
  });

  it('refuses a dynamic system binary with a reason', () => {
    const e = catchError(() => UninitializedSandbox.create(GuestBinary.filePath('/bin/true')));
    expect(e).toBeInstanceOf(ElfInvalidError);
    expect((e as Error).message).toMatch(/interpreter|dynamic/);
  });

  it('the dummy guest evolves and answers', () => {
    const sandbox = UninitializedSandbox.create(bundledGuestPath('dummyguest')).evolve();
    try {
      expect(sandbox.status()).toBe('ready');
      expect(sandbox.call('Anything', 'Void')).toBeUndefined();
    } finally {
      sandbox.close();
    }
  });

  it('close() is idempotent and later calls throw', () => {
    const { sandbox } = simpleSandbox();
    sandbox.close();
    sandbox.close();
    expect(sandbox.status()).toBe('closed');
    expect(() => sandbox.call('Echo', 'String', 'x')).toThrow(ResourceClosedError);
  });

  it('create/evolve/call/close cycles leave open fds unchanged (RSS under load: npm run test:soak)', async () => {
    const bytes = GuestBinary.filePath(bundledGuestPath('simpleguest')).bytes();
    const cycle = (): void => {
      const u = UninitializedSandbox.create(GuestBinary.buffer(bytes));
      using sandbox = u.evolve();
      expect(sandbox.call('Echo', 'String', 'cycle')).toBe('cycle');
    };
    cycle(); // lazily opened process-wide fds (/dev/kvm probes) are not leaks
    const fds = await openFdCount();
    for (let i = 0; i < 50; i++) cycle();
    expect(await openFdCount()).toBe(fds);
  });
});

/** The bytes memory should hold after restoring `snap` (pages it did not store are zero). */
function restoredCopy(snap: MemorySnapshot, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let p = 0; p < size / 4096; p++) out.set(snap.page(p), p * 4096);
  return out;
}
