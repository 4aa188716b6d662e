// GuestBinary vmPool: VMs of cleanly closed sandboxes are reset and reused; nothing of a
// previous sandbox survives (memory, registers, FPU, debug registers); poisoned ones die.
import { describe, expect, it, vi } from 'vitest';
import { GuestMemory } from '../../src/mem/guest-memory.js';
import { ConfigInvalidError } from '../../src/errors.js';
import { PEB_OFF_RANDOM_SEED } from '../../src/sandbox/abi.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';

/** A copy of a sandbox's memory with its PEB random seed (different in every sandbox) zeroed. */
function withoutSeed(s: MultiUseSandbox): Buffer {
  const copy = Buffer.from(s.machine.memory.bytes);
  copy.fill(0, s.layout.peb.gpa + PEB_OFF_RANDOM_SEED, s.layout.peb.gpa + PEB_OFF_RANDOM_SEED + 8);
  return copy;
}

const pooled = (n: number): GuestBinary => GuestBinary.filePath(bundledGuestPath('simpleguest'), { vmPool: n });

describeKvm('VM pool', () => {
  it('reuses the VM of a cleanly closed sandbox, with nothing of it left', () => {
    const binary = pooled(2);
    const u = UninitializedSandbox.create(binary);
    const first = u.evolve();
    const { vm, vcpu } = first.machine;
    expect(first.call('AddToStatic', 'Int', 41)).toBe(41);
    first.call('CallMalloc', 'Int', 30_000);
    vcpu.setDebugRegs({ db: [0x1234n, 0n, 0n, 0n], dr6: 0xffff0ff0n, dr7: 0x401n }); // as a guest could
    first.close();
    expect(binary.idleVms).toBe(1);

    const second = u.evolve();
    const fresh = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest'))).evolve();
    const reused = u.evolve(); // pool empty now: a new VM from the same init template
    try {
      expect(binary.idleVms).toBe(0);
      expect(second.machine.vm).toBe(vm); // the same kernel VM, reset
      // Memory: identical to a new VM started from the same template, page for page; against
      // a VM that ran init itself only the pages with state seeded per init may differ: musl's
      // random state, AT_RANDOM and the values derived from it, the start-up stack. Each
      // sandbox's own random seed in the PEB is left out.
      const a = withoutSeed(second);
      expect(diffPages(a, withoutSeed(reused))).toEqual([]);
      expect(diffPages(a, withoutSeed(fresh)).length).toBeLessThanOrEqual(5);
      // Registers, x87/SSE and debug state as on a new vCPU.
      expect(second.machine.vcpu.getRegs()).toEqual(reused.machine.vcpu.getRegs());
      expect(second.machine.vcpu.getSregs()).toEqual(reused.machine.vcpu.getSregs());
      expect(second.machine.vcpu.getFpu()).toEqual(reused.machine.vcpu.getFpu());
      expect(second.machine.vcpu.getDebugRegs()).toEqual({ db: [0n, 0n, 0n, 0n], dr6: 0xffff0ff0n, dr7: 0x400n });
      expect(second.call('GetStatic', 'Int')).toBe(0);
    } finally {
      second.close();
      fresh.close();
      reused.close();
      binary.releaseIdleVms();
    }
  });

  it('a VM whose last sandbox wrote every byte of its memory is reset, in place, to exactly a new VM\'s memory (template and fresh init); restores after it are exact', () => {
    const binary = pooled(1);
    const u = UninitializedSandbox.create(binary);
    const dirty = (): void => {
      const s = u.evolve();
      expect(s.call('AddToStatic', 'Int', 7)).toBe(7);
      s.machine.memory.bytes.fill(0xa5); // every page resident and not what any start holds
      s.close();
      expect(binary.idleVms).toBe(1);
    };
    dirty();
    const fromTemplate = u.evolve(); // the reset VM
    const newFromTemplate = u.evolve(); // the pool is empty: a new VM from the same template
    try {
      expect(fromTemplate.machine.vm).not.toBe(newFromTemplate.machine.vm);
      expect(diffPages(withoutSeed(fromTemplate), withoutSeed(newFromTemplate))).toEqual([]);
      // The dirty log kept the last sandbox's pages: a restore copies them back too, and is exact.
      const snap = fromTemplate.snapshot();
      const atSnapshot = withoutSeed(fromTemplate);
      expect(fromTemplate.call('AddToStatic', 'Int', 5)).toBe(5);
      fromTemplate.call('CallMalloc', 'Int', 20_000);
      fromTemplate.restore(snap);
      expect(diffPages(withoutSeed(fromTemplate), atSnapshot)).toEqual([]);
      expect(fromTemplate.call('GetStatic', 'Int')).toBe(0);
    } finally {
      fromTemplate.close();
      newFromTemplate.close();
    }
    dirty();
    const fresh = u.evolve({ freshInit: true }); // the reset VM, running guest init
    const newFresh = u.evolve({ freshInit: true }); // a new VM running it
    try {
      // Only the state guest init seeds from its entropy may differ (as in the test above).
      expect(diffPages(withoutSeed(fresh), withoutSeed(newFresh)).length).toBeLessThanOrEqual(5);
      expect(fresh.call('GetStatic', 'Int')).toBe(0);
      expect(fresh.call('Echo', 'String', 'clean')).toBe('clean');
    } finally {
      fresh.close();
      newFresh.close();
      binary.releaseIdleVms();
    }
  });

  it('a page mincore does not report resident (a page in swap) is discarded at reset, so it reads as zero as well', () => {
    const binary = pooled(1);
    const u = UninitializedSandbox.create(binary);
    const last = u.evolve();
    last.machine.memory.bytes.fill(0x5a);
    last.close();
    // As if every page of the last guest had gone to swap: present, holding its bytes, not resident.
    const spy = vi.spyOn(GuestMemory.prototype, 'residentPages').mockImplementation(function (this: GuestMemory) {
      return new Uint8Array(this.size / 4096);
    });
    let reset: MultiUseSandbox | undefined;
    let fresh: MultiUseSandbox | undefined;
    try {
      reset = u.evolve();
      expect(spy).toHaveBeenCalledTimes(1);
      fresh = u.evolve(); // a new VM from the same template
      expect(diffPages(withoutSeed(reset), withoutSeed(fresh))).toEqual([]);
      expect(reset.call('Echo', 'String', 'zeroed')).toBe('zeroed');
    } finally {
      spy.mockRestore();
      reset?.close();
      fresh?.close();
      binary.releaseIdleVms();
    }
  });

  it('never reuses a poisoned sandbox\'s VM, and keeps at most vmPool VMs', () => {
    const binary = pooled(1);
    const u = UninitializedSandbox.create(binary);
    const bad = u.evolve();
    expect(() => bad.call('GuestAbortWithCode', 'Int', 3)).toThrow();
    expect(bad.poisoned).toBe(true);
    bad.close();
    expect(binary.idleVms).toBe(0);
    const list: MultiUseSandbox[] = [u.evolve(), u.evolve(), u.evolve()];
    for (const s of list) s.close();
    expect(binary.idleVms).toBe(1);
    binary.releaseIdleVms();
    expect(binary.idleVms).toBe(0);
  });

  it('closing from inside a call is refused', () => {
    let sandbox: MultiUseSandbox | undefined;
    const u = UninitializedSandbox.create(bundledGuestPath('simpleguest'));
    let refused: unknown;
    u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, () => {
      try { sandbox!.close(); } catch (e) { refused = e; }
      return 1;
    });
    sandbox = u.evolve();
    try {
      expect(sandbox.call('GuestMethod1', 'Int', 'x')).toBe(1);
      expect(refused).toMatchObject({ code: 'ERR_SANDBOX_BUSY' });
    } finally {
      sandbox.close();
    }
  });

  it('holds fds only while VMs are idle, and 200 pooled cycles leave the count flat', async () => {
    const before = await openFdCount();
    const binary = pooled(4);
    const u = UninitializedSandbox.create(binary);
    for (let i = 0; i < 200; i++) {
      using s = u.evolve();
      expect(s.call('Echo', 'String', `n${i}`)).toBe(`n${i}`);
    }
    expect(binary.idleVms).toBe(1);
    expect(await openFdCount()).toBe(before + 2); // one idle VM: VM + vCPU fds
    binary.releaseIdleVms();
    expect(await openFdCount()).toBe(before);
  });

  it('validates vmPool', () => {
    expect(() => GuestBinary.filePath('x', { vmPool: -1 })).toThrow(ConfigInvalidError);
    expect(() => GuestBinary.filePath('x', { vmPool: 1.5 })).toThrow(ConfigInvalidError);
  });
});

function diffPages(a: Buffer, b: Buffer): string[] {
  const out: string[] = [];
  for (let p = 0; p < a.length; p += 4096) if (!a.subarray(p, p + 4096).equals(b.subarray(p, p + 4096))) out.push(p.toString(16));
  return out;
}

describe('vmPool default', () => {
  it('is off: close() releases everything', () => {
    expect(GuestBinary.filePath('x').idleVms).toBe(0);
  });
});
