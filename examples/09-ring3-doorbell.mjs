// Example 9: the sandbox's design by hand: the host owns ring 0, the guest runs at CPL3 and
// leaves by storing to a doorbell page that has no memory behind it (an MMIO exit); a
// privileged instruction at CPL3 faults into the host's CPL0 handler, which reports by OUT.
import { Kvm, GuestMemory, x86 as X } from 'hyperlight-ts';

const kvm = Kvm.open();
const vm = kvm.createVm();
const mem = GuestMemory.allocate(0x20_0000); // one 2 MiB page; the doorbell is the next one
vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 0x20_0000n, userspaceAddr: mem.hostAddress });
const q = (at, v) => mem.view.setBigUint64(at, v, true);
const DOORBELL = 0x20_0000n; // mapped below, but no memory slot: a store there exits

// Page tables: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000; two 2 MiB user pages (P W U PS).
q(0x1000, 0x2000n | 7n); q(0x2000, 0x3000n | 7n); q(0x3000, 0x87n); q(0x3008, DOORBELL | 0x87n);
// GDT at 0x5000: 0x08 kernel code, 0x18 user data (DPL 3), 0x20 user code (DPL 3), 0x28 TSS.
const seg = (type, dpl, code) => X.codeDataDescriptor({ type, dpl, code, long: code, present: true });
q(0x5008, seg(X.SEG_TYPE_CODE_XR_ACCESSED, 0, true));
q(0x5018, seg(X.SEG_TYPE_DATA_RW_ACCESSED, 3, false));
q(0x5020, seg(X.SEG_TYPE_CODE_XR_ACCESSED, 3, true));
const [tssLo, tssHi] = X.tssDescriptor(0x5100n, 103);
q(0x5028, tssLo); q(0x5030, tssHi);
q(0x5100 + X.TSS_OFF_RSP0, 0x9000n); // the CPU switches to this stack on entering ring 0
// IDT at 0x6000: vector 13 (#GP) -> the CPL0 handler at 0x7000: out %al, $0xe0; hlt.
const [gpLo, gpHi] = X.interruptGate(0x7000n, 0x08, 0, 0);
q(0x6000 + 16 * 13, gpLo); q(0x6008 + 16 * 13, gpHi);
mem.copyIn(0x7000, Uint8Array.from([0xe6, 0xe0, 0xf4]));
// The ring-3 guest at 0x4000: two doorbell stores, then cli (privileged: #GP).
mem.copyIn(0x4000, Uint8Array.from([
  0x48, 0x89, 0x02,       // mov [rdx], rax   ; ring: the host sees RAX's value
  0x48, 0xff, 0xc0,       // inc rax
  0x48, 0x89, 0x02,       // mov [rdx], rax   ; ring again
  0xfa,                   // cli              ; not allowed at CPL3
]));

const vcpu = vm.createVcpu(0);
const sregs = vcpu.getSregs();
const user = (selector, type, code) => ({ base: 0n, limit: 0xffff_ffff, selector, type, present: 1, dpl: 3,
  db: code ? 0 : 1, s: 1, l: code ? 1 : 0, g: 1, avl: 0, unusable: 0 });
sregs.cs = user(0x23, X.SEG_TYPE_CODE_XR_ACCESSED, true); // CPL 3: RPL 3 in CS
for (const s of ['ds', 'es', 'fs', 'gs', 'ss']) sregs[s] = user(0x1b, X.SEG_TYPE_DATA_RW_ACCESSED, false);
sregs.tr = { ...sregs.tr, base: 0x5100n, limit: 103, selector: 0x28, type: X.SEG_TYPE_TSS64_BUSY, present: 1 };
Object.assign(sregs, { gdt: { base: 0x5000n, limit: 0x37 }, idt: { base: 0x6000n, limit: 0xfff },
  cr3: 0x1000n, cr0: X.CR0_GUEST, cr4: X.CR4_INIT, efer: X.EFER_GUEST });
vcpu.setSregs(sregs);
vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x4000n, rsp: 0x8000n, rax: 41n, rdx: DOORBELL + 8n * 108n, rflags: 2n });

for (;;) {
  const exit = vcpu.run();
  if (exit.kind === 'mmio') {
    const value = new DataView(exit.data.buffer, exit.data.byteOffset, 8).getBigUint64(0, true);
    console.log(`doorbell: the CPL3 guest stored ${value} at 0x${exit.address.toString(16)} (op ${Number(exit.address - DOORBELL) / 8})`);
  } else if (exit.kind === 'io' && exit.port === 0xe0) {
    const frame = new DataView(mem.bytes.buffer, mem.bytes.byteOffset + 0x9000 - 40, 40); // RIP CS RFLAGS RSP SS
    console.log(`#GP at CPL3: the host's CPL0 handler reports RIP 0x${frame.getBigUint64(0, true).toString(16)} (the cli), ` +
      `CS 0x${frame.getBigUint64(8, true).toString(16)} (ring ${frame.getBigUint64(8, true) & 3n})`);
    break;
  } else {
    throw new Error(`unexpected exit ${exit.kind}`);
  }
}
vm.close();
mem.close();
kvm.close();
