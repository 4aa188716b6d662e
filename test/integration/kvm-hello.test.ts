// The kvm-hello-world path on real KVM: hand-assembled guests in long mode and real mode,
// an interrupted KVM_RUN, and fd hygiene over 1,000 create/close cycles.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GuestMemory } from '../../src/mem/guest-memory.js';
import { Kvm, flatSegment, kvmConstants as C, type Vm, type Vcpu } from '../../src/kvm/index.js';
import * as X from '../../src/x86_64/index.js';
import { ThreadTimer, gettid, vcpuKickSignal } from '../../src/kvm/libc.js';
import { describeKvm, openFdCount } from '../helpers/kvm.js';

const MEM_SIZE = 0x200000;

describeKvm('KVM hello world', () => {
  let kvm: Kvm;
  beforeAll(() => { kvm = Kvm.open(); });
  afterAll(() => kvm.close());

  function machine(): { vm: Vm; vcpu: Vcpu; mem: GuestMemory; close(): void } {
    const vm = kvm.createVm();
    const mem = GuestMemory.allocate(MEM_SIZE);
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: BigInt(MEM_SIZE), userspaceAddr: mem.hostAddress });
    const vcpu = vm.createVcpu(0);
    return { vm, vcpu, mem, close() { vm.close(); mem.close(); } };
  }

  /** Identity-maps the first 2 MiB with one large page: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000. */
  function identityMap(mem: GuestMemory): void {
    const P = 1n, RW = 2n, PS = 0x80n;
    mem.writeU64(0x1000, 0x2000n | P | RW);
    mem.writeU64(0x2000, 0x3000n | P | RW);
    mem.writeU64(0x3000, 0n | P | RW | PS);
  }

  it('runs a long-mode guest: OUT to a port, a memory write, a register, HLT', () => {
    const m = machine();
    try {
      identityMap(m.mem);
      m.mem.copyIn(0x4000, Uint8Array.from([
        0x66, 0xba, 0xf8, 0x03,                   // mov dx, 0x3f8
        0xb0, 0x41,                               // mov al, 'A'
        0xee,                                     // out dx, al
        0xc7, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, // mov dword [0x5000], ...
        0xbe, 0xba, 0xfe, 0xca,                   //   ... 0xcafebabe
        0x48, 0xc7, 0xc0, 0x2a, 0x00, 0x00, 0x00, // mov rax, 42
        0xf4,                                     // hlt
      ]));
      const sregs = m.vcpu.getSregs();
      sregs.cs = flatSegment(0x08, X.SEG_TYPE_CODE_XR_ACCESSED, true);
      for (const s of ['ds', 'es', 'fs', 'gs', 'ss'] as const) sregs[s] = flatSegment(0x10, X.SEG_TYPE_DATA_RW_ACCESSED, false);
      sregs.cr3 = 0x1000n;
      sregs.cr4 = X.CR4_INIT;
      sregs.cr0 = X.CR0_INIT;
      sregs.efer = X.EFER_INIT;
      m.vcpu.setSregs(sregs);
      const regs = m.vcpu.getRegs();
      regs.rip = 0x4000n;
      regs.rsp = 0x8000n;
      regs.rflags = X.RFLAGS_RESERVED_1;
      m.vcpu.setRegs(regs);

      const first = m.vcpu.run();
      expect(first.kind).toBe('io');
      if (first.kind !== 'io') return;
      expect([first.direction, first.port, first.size, first.count]).toEqual(['out', 0x3f8, 1, 1]);
      expect(String.fromCharCode(first.data[0]!)).toBe('A');
      expect(m.vcpu.run().kind).toBe('hlt');
      expect(m.mem.readU32(0x5000)).toBe(0xcafebabe);
      expect(m.vcpu.getRegs().rax).toBe(42n);
      expect(m.vcpu.getSregs().efer & X.EFER_LMA).toBe(X.EFER_LMA);
    } finally {
      m.close();
    }
  });

  it('runs a real-mode guest', () => {
    const m = machine();
    try {
      m.mem.copyIn(0x1000, Uint8Array.from([
        0xba, 0xf8, 0x03,                         // mov dx, 0x3f8
        0xb0, 0x52,                               // mov al, 'R'
        0xee,                                     // out dx, al
        0xc7, 0x06, 0x00, 0x05, 0x34, 0x12,       // mov word [0x500], 0x1234
        0xb8, 0x07, 0x00,                         // mov ax, 7
        0xf4,                                     // hlt
      ]));
      const sregs = m.vcpu.getSregs();
      sregs.cs.base = 0n;
      sregs.cs.selector = 0;
      m.vcpu.setSregs(sregs);
      const regs = m.vcpu.getRegs();
      regs.rip = 0x1000n;
      regs.rflags = X.RFLAGS_RESERVED_1;
      m.vcpu.setRegs(regs);
      const exit = m.vcpu.run();
      expect(exit.kind === 'io' && exit.port === 0x3f8 && exit.data[0] === 0x52).toBe(true);
      expect(m.vcpu.run().kind).toBe('hlt');
      expect(m.mem.readU16(0x500)).toBe(0x1234);
      expect(m.vcpu.getRegs().rax & 0xffffn).toBe(7n);
    } finally {
      m.close();
    }
  });

  it('returns { kind: "interrupted" } when a POSIX timer signals the vCPU thread', () => {
    const m = machine();
    const timer = new ThreadTimer(gettid(), vcpuKickSignal());
    try {
      m.mem.copyIn(0x1000, Uint8Array.from([0xeb, 0xfe])); // jmp $ (spin forever)
      const sregs = m.vcpu.getSregs();
      sregs.cs.base = 0n;
      sregs.cs.selector = 0;
      m.vcpu.setSregs(sregs);
      const regs = m.vcpu.getRegs();
      regs.rip = 0x1000n;
      regs.rflags = X.RFLAGS_RESERVED_1;
      m.vcpu.setRegs(regs);
      const start = process.hrtime.bigint();
      timer.arm(30e6, 5e6); // 30 ms, then every 5 ms until the guest is out
      const exit = m.vcpu.run();
      timer.disarm();
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      expect(exit.kind).toBe('interrupted');
      expect(ms).toBeGreaterThanOrEqual(29);
      expect(m.vcpu.getRegs().rip).toBe(0x1000n);
    } finally {
      timer.close();
      m.close();
    }
  });

  it('leaves the open fd count unchanged after 1,000 create/close cycles', async () => {
    const before = await openFdCount();
    for (let i = 0; i < 1000; i++) {
      const k = Kvm.open();
      const vm = k.createVm();
      const mem = GuestMemory.allocate(0x10000);
      vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 0x10000n, userspaceAddr: mem.hostAddress });
      vm.createVcpu(0); // left open on purpose: vm.close() must close it
      vm.close();
      mem.close();
      k.close();
    }
    expect(await openFdCount()).toBe(before);
  });
});
