// The page-table builder checked against the CPU: KVM_TRANSLATE on a real vCPU must agree
// with our own walk() for every region's first and last page, the guards and the null page;
// write permission is checked by having the guest CPU write to each page, because x86
// KVM_TRANSLATE always reports writeable = 1 (arch/x86/kvm/x86.c sets it unconditionally).
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
          expect(cpu.usermode).toBe(false);
          if (region.name !== 'image') expect(ours.writable).toBe(region.writable);
        }
        checked++;
      }
    }
    expect(checked).toBe(layout.regions.length * 3);
  });

  it('agree beyond the end of memory and at non-canonical addresses', () => {
    const { vcpu, memory, cr3, layout } = sandbox.machine;
    for (const gva of [BigInt(layout.totalSize), BigInt(layout.totalSize) + 0x10_0000n, 0x8000_0000_0000n, 0xffff_8000_0000_0000n]) {
      expect(walk(memory.bytes, cr3, gva)).toBeNull();
      expect(vcpu.translate(gva).valid).toBe(false);
    }
  });

  it('let the guest CPU write exactly the pages the builder made writable', () => {
    // A dedicated sandbox: the probe code is written over the guest's entry point.
    const probe = UninitializedSandbox.create(bundledGuestPath('simpleguest')).evolve();
    try {
      const { vcpu, memory, cr3, layout } = probe.machine;
      const img = probe.machine;
      const code = img.entry;
      memory.copyIn(Number(code), Uint8Array.from([
        0x88, 0x00,             // mov [rax], al
        0x66, 0xba, 0x6c, 0x00, // mov dx, 108 (Halt)
        0xef,                   // out dx, eax
        0xf4,                   // hlt
      ]));
      const regs = vcpu.getRegs();
      let pages = 0;
      for (const region of layout.regions) {
        for (let gva = region.gpa; gva < region.gpa + region.size; gva += 4096) {
          const ours = walk(memory.bytes, cr3, gva);
          if (ours === null) continue;
          vcpu.setRegs({ ...regs, rip: code, rax: BigInt(gva), rsp: BigInt(layout.stack.gpa + layout.stack.size) });
          const exit = vcpu.run();
          // Halt (port 108) means the write went through; the SDK's #PF handler reports on
          // port 102 (Abort) when it did not.
          expect(exit.kind).toBe('io');
          const port = exit.kind === 'io' ? exit.port : -1;
          expect(port === 108 ? 'written' : port === 102 ? 'faulted' : `port ${port}`,
            `${region.name} page 0x${gva.toString(16)}`).toBe(ours.writable ? 'written' : 'faulted');
          pages++;
        }
      }
      expect(pages).toBeGreaterThan(20);
    } finally {
      probe.close();
    }
  });
});
