// Example 1: the smallest VM there is. A real-mode guest of 22 hand-assembled bytes prints
// a string through an I/O port; the host sees each OUT as a VM exit. Not the sandbox API.
import { Kvm, GuestMemory, x86 as X } from 'hyperlight-ts';

// 1. A VM is a file descriptor from /dev/kvm; its memory is ordinary host memory (mmap)
//    that we hand to KVM as "guest-physical address 0 onwards".
//    (Node 20 has no `using`; we close in reverse order at the end.)
const kvm = Kvm.open();
const vm = kvm.createVm();
const mem = GuestMemory.allocate(0x10000);
vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 0x10000n, userspaceAddr: mem.hostAddress });

// 2. The guest program, placed at guest-physical 0x1000. One comment per instruction.
const MESSAGE = 'Hello from real mode!\n';
mem.copyIn(0x1000, Uint8Array.from([
  0xbe, 0x0f, 0x10,   // 0x1000 mov si, 0x100f   ; SI -> the message below
  0xba, 0xf8, 0x03,   // 0x1003 mov dx, 0x3f8    ; the port (COM1's number; nothing is there)
  0xac,               // 0x1006 lodsb            ; AL = [DS:SI], SI += 1
  0x84, 0xc0,         // 0x1007 test al, al      ; the terminating 0?
  0x74, 0x03,         // 0x1009 jz 0x100e
  0xee,               // 0x100b out dx, al       ; -> a KVM_EXIT_IO for the host
  0xeb, 0xf8,         // 0x100c jmp 0x1006
  0xf4,               // 0x100e hlt              ; -> KVM_EXIT_HLT
  ...new TextEncoder().encode(MESSAGE), 0,
]));

// 3. One vCPU. After creation it is in the x86 reset state: 16-bit real mode, CS base
//    0xffff0000. Point CS at 0 and RIP at our code; RFLAGS bit 1 is always set.
const vcpu = vm.createVcpu(0);
const sregs = vcpu.getSregs();
sregs.cs.base = 0n;
sregs.cs.selector = 0;
vcpu.setSregs(sregs);
const regs = vcpu.getRegs();
regs.rip = 0x1000n;
regs.rflags = X.RFLAGS_RESERVED_1;
vcpu.setRegs(regs);

// 4. The run loop: KVM_RUN executes guest instructions until something needs the host.
let text = '';
let exits = 0;
for (;;) {
  const exit = vcpu.run();
  exits++;
  if (exit.kind === 'io' && exit.direction === 'out' && exit.port === 0x3f8) {
    text += String.fromCharCode(exit.data[0]); // the byte the guest put in AL
    continue; // KVM_RUN again: the guest resumes after its OUT
  }
  if (exit.kind === 'hlt') break;
  throw new Error(`unexpected exit ${exit.kind}`);
}
console.log(`guest wrote: ${JSON.stringify(text)}`);
console.log(`exits: ${exits} (${MESSAGE.length} OUTs, one per character, then 1 HLT)`);
console.log(`final RIP 0x${vcpu.getRegs().rip.toString(16)} (just after the hlt)`);
vm.close(); // closes the vCPU too
mem.close();
kvm.close();
