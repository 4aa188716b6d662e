// The page-table builder checked against the CPU: KVM_TRANSLATE on a real vCPU must agree
// with our own walk() for every region's first and last page, the guards and the null page;
// write and user permission are checked by having the guest CPU write to each page from
// ring 3, because x86 KVM_TRANSLATE always reports writeable = 1 and usermode = 0
// (arch/x86/kvm/x86.c sets both unconditionally).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { walk } from '../../src/mem/x86_64/index.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { describeKvm } from '../helpers/kvm.js';

describeKvm('page tables vs KVM_TRANSLATE', () => {
  let sandbox: MultiUseSandbox;
  beforeAll(() => { sandbox = UninitializedSandbox.create(bundledGuestPath('simpleguest')).evolve(); });
  afterAll(() => sandbox.close());

  it('agree on every region\'s first and last page, guards and the null page', () => {
    const { vcpu, memory, cr3, layout } = sandbox.machine;
    let checked = 0;
    for (const region of layout.regions) {
      for (const gva of [region.gpa, region.gpa + region.size - 4096, region.gpa + 123]) {
        const cpu = vcpu.translate(BigInt(gva));
        const ours = walk(memory.bytes, cr3, gva);
        if (!region.mapped) {
          expect(ours, `${region.name} @0x${gva.toString(16)}`).toBeNull();
          expect(cpu.valid, `${region.name} @0x${gva.toString(16)} (KVM)`).toBe(false);
        } else if (ours === null) {
          // An image page no segment touches stays unmapped.
          expect(region.name).toBe('image');
          expect(cpu.valid).toBe(false);
        } else {
          expect(cpu.valid, `${region.name} @0x${gva.toString(16)}`).toBe(true);
          expect(cpu.physicalAddress).toBe(BigInt(ours.gpa));
          expect(ours.gpa).toBe(gva); // identity map
          expect(cpu.usermode).toBe(false); // KVM always says 0; our walk has the real bit
          expect(ours.user, region.name).toBe(region.user);
          if (region.name !== 'image') expect(ours.writable).toBe(region.writable);
        }
        checked++;
      }
    }
    expect(checked).toBe(layout.regions.length * 3);
  });

  it('agree beyond the end of memory (the doorbell page only) and at non-canonical addresses', () => {
    const { vcpu, memory, cr3, layout } = sandbox.machine;
    const doorbell = BigInt(layout.doorbell.gpa);
    expect(doorbell).toBe(BigInt(layout.totalSize));
    expect(walk(memory.bytes, cr3, doorbell)).toMatchObject({ gpa: layout.doorbell.gpa, writable: true, user: true, executable: false });
    expect(vcpu.translate(doorbell)).toMatchObject({ valid: true, physicalAddress: doorbell });
    for (const gva of [doorbell + 0x1000n, BigInt(layout.totalSize) + 0x10_0000n, 0x8000_0000_0000n, 0xffff_8000_0000_0000n]) {
      expect(walk(memory.bytes, cr3, gva)).toBeNull();
      expect(vcpu.translate(gva).valid).toBe(false);
    }
  });

  it('let the guest CPU at CPL3 write exactly the pages the builder made user-writable', () => {
    // A dedicated sandbox: the probe code is written over the guest's entry point.
    const probe = UninitializedSandbox.create(bundledGuestPath('simpleguest')).evolve();
    try {
      const { vcpu, memory, cr3, layout } = probe.machine;
      const code = probe.machine.entry;
      const halt = BigInt(layout.doorbell.gpa + 8 * 108);
      const imm = new Uint8Array(8);
      new DataView(imm.buffer).setBigUint64(0, halt, true);
      memory.copyIn(Number(code), Uint8Array.from([
        0x88, 0x00,             // mov [rax], al
        0x48, 0xba, ...imm,     // movabs rdx, doorbell + 8 * HALT
        0x48, 0x89, 0x02,       // mov [rdx], rax: the Halt doorbell (an MMIO exit)
        0x0f, 0x0b,             // ud2
      ]));
      const regs = vcpu.getRegs();
      const sregs = vcpu.getSregs(); // CPL3: a fault leaves the vCPU in the host's CPL0 stub
      let pages = 0;
      for (const region of layout.regions) {
        for (let gva = region.gpa; gva < region.gpa + region.size; gva += 4096) {
          const ours = walk(memory.bytes, cr3, gva);
          if (ours === null) continue;
          vcpu.setSregs(sregs);
          vcpu.setRegs({ ...regs, rip: code, rax: BigInt(gva), rsp: BigInt(layout.stack.gpa + layout.stack.size) });
          const exit = vcpu.run();
          // The Halt doorbell means the write went through; the host's #PF stub reports with
          // an OUT to port 0xE0 when it did not.
          const outcome = exit.kind === 'mmio' && exit.address === halt ? 'written'
            : exit.kind === 'io' && exit.port === 0xe0 ? 'faulted' : `exit ${exit.kind}`;
          expect(outcome, `${region.name} page 0x${gva.toString(16)}`).toBe(ours.writable && ours.user ? 'written' : 'faulted');
          pages++;
        }
      }
      expect(pages).toBeGreaterThan(20);
    } finally {
      probe.close();
    }
  });
});
