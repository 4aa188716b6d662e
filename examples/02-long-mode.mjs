// Example 2: 64-bit long mode from scratch: page tables written by hand, control registers
// set with KVM_SET_SREGS, no firmware and no mode switches in the guest. Not the sandbox API.
import { Kvm, GuestMemory, PageTables, flatSegment, x86 as X } from 'hyperlight-ts';

const kvm = Kvm.open();
const vm = kvm.createVm();
const mem = GuestMemory.allocate(0x200000); // 2 MiB of guest-physical memory
vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 0x200000n, userspaceAddr: mem.hostAddress });

// 1. Long mode requires paging. Four levels: PML4 -> PDPT -> PD -> (PT or a 2 MiB page).
//    Identity-map the first 2 MiB with one 2 MiB page: virtual address = physical address.
const P = 1n, RW = 2n, PS = 0x80n; // present, writable, page size (2 MiB leaf in a PD)
mem.writeU64(0x1000, 0x2000n | P | RW); // PML4[0] -> the PDPT at 0x2000
mem.writeU64(0x2000, 0x3000n | P | RW); // PDPT[0] -> the PD at 0x3000
mem.writeU64(0x3000, 0x0n | P | RW | PS); // PD[0]   -> physical 0, 2 MiB
// The library's walker reads the tables like the CPU will:
const t = PageTables.walk(mem.bytes, 0x1000n, 0x4000n);
console.log(`walk 0x4000 -> physical 0x${t.gpa.toString(16)}, ${t.pageSize / 1024} KiB page, writable ${t.writable}`);

// 2. The program: 64-bit arithmetic, a store, an OUT with the result, HLT.
mem.copyIn(0x4000, Uint8Array.from([
  0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // mov rax, 0x1122334455667788
  0x48, 0x01, 0xc0,                                           // add rax, rax (a 64-bit add)
  0x48, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00,             // mov [0x5000], rax
  0x66, 0xba, 0x00, 0x05,                                     // mov dx, 0x500
  0xef,                                                       // out dx, eax (low 32 bits)
  0xf4,                                                       // hlt
]));

// 3. The special registers: CR3 = the PML4; CR0.PG+PE, CR4.PAE, EFER.LME switch long mode
//    on; a code segment with L=1 makes it 64-bit. KVM loads them all at once.
const vcpu = vm.createVcpu(0);
const sregs = vcpu.getSregs();
sregs.cs = flatSegment(0x08, X.SEG_TYPE_CODE_XR_ACCESSED, true); // L=1: 64-bit code
for (const s of ['ds', 'es', 'fs', 'gs', 'ss']) sregs[s] = flatSegment(0x10, X.SEG_TYPE_DATA_RW_ACCESSED, false);
sregs.cr3 = 0x1000n;
sregs.cr4 = X.CR4_INIT;   // 0x620: PAE (+ OSFXSR, OSXMMEXCPT)
sregs.cr0 = X.CR0_INIT;   // 0x80050033: PG, PE, WP, ...
sregs.efer = X.EFER_INIT; // 0xd01: LME, LMA, NXE, SCE
vcpu.setSregs(sregs);
const regs = vcpu.getRegs();
regs.rip = 0x4000n;
regs.rsp = 0x8000n;
regs.rflags = X.RFLAGS_RESERVED_1;
vcpu.setRegs(regs);

// 4. Run until HLT, printing what the guest sends.
for (let exit = vcpu.run(); exit.kind !== 'hlt'; exit = vcpu.run()) {
  if (exit.kind !== 'io') throw new Error(`unexpected exit ${exit.kind}`);
  const low = new DataView(exit.data.buffer, exit.data.byteOffset, 4).getUint32(0, true);
  console.log(`OUT to port 0x${exit.port.toString(16)}: eax = 0x${low.toString(16)}`);
}
const after = vcpu.getSregs();
console.log(`rax = 0x${vcpu.getRegs().rax.toString(16)} (2 x 0x1122334455667788)`);
console.log(`memory[0x5000] = 0x${mem.view.getBigUint64(0x5000, true).toString(16)}`);
console.log(`EFER.LMA = ${(after.efer & X.EFER_LMA) !== 0n} (the CPU is in long mode), CS.L = ${after.cs.l}`);
vm.close();
mem.close();
kvm.close();
