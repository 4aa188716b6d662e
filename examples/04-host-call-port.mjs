// Example 4: a host call over an I/O port, the mechanism under every sandbox host call: the
// guest leaves a request in memory and does OUT; the host answers in memory and resumes.
import { Kvm, GuestMemory, x86 as X } from 'hyperlight-ts';

const kvm = Kvm.open();
const vm = kvm.createVm();
const mem = GuestMemory.allocate(0x10000);
vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: 0x10000n, userspaceAddr: mem.hostAddress });

// The "ABI" of this example: port 0x10 means "call square()"; the argument is the u16 at
// 0x500, the host's answer goes to the u16 at 0x502. (Hyperlight's is the same idea with
// flatbuffers in an input and an output buffer: docs/guest-abi.md, port 101.)
const PORT_SQUARE = 0x10, ARG = 0x500, RESULT = 0x502;

// The guest (16-bit real mode, to keep the bytes few): sum of square(n) for n = 1..3 in BX.
mem.copyIn(0x1000, Uint8Array.from([
  0xb9, 0x01, 0x00,       // 0x1000 mov cx, 1
  0x89, 0x0e, 0x00, 0x05, // 0x1003 mov [0x500], cx   ; the argument
  0xba, 0x10, 0x00,       // 0x1007 mov dx, 0x10
  0xee,                   // 0x100a out dx, al        ; "host, call square()" -> VM exit
  0x03, 0x1e, 0x02, 0x05, // 0x100b add bx, [0x502]   ; the host's answer is already there
  0x41,                   // 0x100f inc cx
  0x83, 0xf9, 0x04,       // 0x1010 cmp cx, 4
  0x75, 0xee,             // 0x1013 jne 0x1003
  0xf4,                   // 0x1015 hlt
]));

const vcpu = vm.createVcpu(0);
const sregs = vcpu.getSregs();
sregs.cs.base = 0n;
sregs.cs.selector = 0;
vcpu.setSregs(sregs);
const regs = vcpu.getRegs();
Object.assign(regs, { rip: 0x1000n, rbx: 0n, rflags: X.RFLAGS_RESERVED_1 });
vcpu.setRegs(regs);

// The host's side of the ABI: a table of host functions by port.
const hostFunctions = new Map([[PORT_SQUARE, (n) => n * n]]);

for (;;) {
  const exit = vcpu.run(); // the guest runs until it needs us
  if (exit.kind === 'hlt') break;
  if (exit.kind !== 'io' || exit.direction !== 'out') throw new Error(`unexpected exit ${exit.kind}`);
  const fn = hostFunctions.get(exit.port);
  if (!fn) throw new Error(`OUT to unknown port ${exit.port}`); // the sandbox: ERR_GUEST_PROTOCOL
  const arg = mem.view.getUint16(ARG, true);   // read the request from guest memory
  const answer = fn(arg);
  mem.view.setUint16(RESULT, answer, true);    // write the reply into guest memory
  console.log(`guest called square(${arg}) at RIP 0x${vcpu.getRegs().rip.toString(16)}; host answered ${answer}`);
  // Loop: KVM_RUN again resumes the guest right after its OUT instruction.
}
console.log(`guest halted with BX = ${vcpu.getRegs().rbx & 0xffffn} (1 + 4 + 9)`);
vm.close();
mem.close();
kvm.close();
