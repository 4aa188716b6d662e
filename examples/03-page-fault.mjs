// Example 3: a page fault as the guest sees it: the CPU pushes an error code, sets CR2 and
// jumps through the guest's IDT to its handler, which reports to the host. Not the sandbox API.
import { Kvm, GuestMemory, flatSegment, x86 as X } from 'hyperlight-ts';

const kvm = Kvm.open();
const vm = kvm.createVm();
const mem = GuestMemory.allocate(0x200000);
vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 0x200000n, userspaceAddr: mem.hostAddress });

// Page tables: 0-2 MiB read-write, 2-4 MiB read-only, nothing above (not present).
const P = 1n, RW = 2n, PS = 0x80n;
mem.writeU64(0x1000, 0x2000n | P | RW);
mem.writeU64(0x2000, 0x3000n | P | RW);
mem.writeU64(0x3000, 0x000000n | P | RW | PS); // PD[0]: 0 .. 2 MiB, writable
mem.writeU64(0x3008, 0x000000n | P | PS);      // PD[1]: 2 .. 4 MiB, read-only (same frame)

// A GDT in memory (the CPU reads the handler's code segment from it on delivery) and an
// IDT whose entry 14 (#PF) is a 64-bit interrupt gate to the handler at 0x4100.
mem.writeU64(0x500 + 8, 0x00209a0000000000n);  // GDT[1] = selector 0x08: 64-bit code
mem.writeU64(0x500 + 16, 0x0000920000000000n); // GDT[2] = selector 0x10: data
mem.copyIn(0x6000 + 14 * 16, Uint8Array.from([
  0x00, 0x41, 0x08, 0x00, 0x00, 0x8e, 0x00, 0x00, // offset 15..0, selector 0x08, IST 0, type: present interrupt gate, offset 31..16
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // offset 63..32, reserved
]));

mem.copyIn(0x4000, Uint8Array.from([
  0xb8, 0xad, 0xde, 0x00, 0x00,             // 0x4000 mov eax, 0xdead
  0x89, 0x04, 0x25, 0x00, 0x00, 0x40, 0x00, // 0x4005 mov [0x400000], eax  ; 4 MiB: not present
  0xf4, 0x90, 0x90, 0x90,                   // 0x400c hlt (never reached), padding
  0x89, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, // 0x4010 mov [0x200000], eax  ; 2 MiB: read-only
  0xf4,                                     // 0x4017 hlt (never reached)
]));
mem.copyIn(0x4100, Uint8Array.from([        // the #PF handler
  0x5b,                                     // pop rbx       ; the error code the CPU pushed
  0x0f, 0x20, 0xd0,                         // mov rax, cr2  ; the address that faulted
  0x66, 0xba, 0x0e, 0x00,                   // mov dx, 14    ; "port = vector" for the host
  0xee,                                     // out dx, al
  0xf4,                                     // hlt
]));

const vcpu = vm.createVcpu(0);
const sregs = vcpu.getSregs();
sregs.cs = flatSegment(0x08, X.SEG_TYPE_CODE_XR_ACCESSED, true);
for (const s of ['ds', 'es', 'fs', 'gs', 'ss']) sregs[s] = flatSegment(0x10, X.SEG_TYPE_DATA_RW_ACCESSED, false);
Object.assign(sregs, { cr3: 0x1000n, cr4: X.CR4_INIT, cr0: X.CR0_INIT, efer: X.EFER_INIT });
sregs.gdt = { base: 0x500n, limit: 23 };
sregs.idt = { base: 0x6000n, limit: 256 * 16 - 1 };
vcpu.setSregs(sregs);

function faultAt(rip) {
  const regs = vcpu.getRegs();
  Object.assign(regs, { rip, rsp: 0x8000n, rflags: X.RFLAGS_RESERVED_1 });
  vcpu.setRegs(regs);
  const exit = vcpu.run();
  if (exit.kind !== 'io') throw new Error(`unexpected exit ${exit.kind}`);
  const r = vcpu.getRegs();
  const savedRip = mem.view.getBigUint64(Number(r.rsp), true); // the CPU pushed it below the error code
  const e = r.rbx;
  console.log(`vector ${exit.port} (#PF) CR2 0x${r.rax.toString(16)} error code 0x${e.toString(16)} ` +
    `(${e & 1n ? 'protection violation' : 'not present'}, ${e & 2n ? 'write' : 'read'}, ` +
    `${e & 4n ? 'user' : 'supervisor'}) faulting RIP 0x${savedRip.toString(16)}`);
}
faultAt(0x4000n); // the store to 4 MiB
faultAt(0x4010n); // the store to the read-only page (CR0.WP makes it fault in ring 0 too)
vm.close();
mem.close();
kvm.close();
