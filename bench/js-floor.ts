// The KVM layer alone, from JS, on the same tiny guest as the C floor: the raw cold cycle,
// the warm Vcpu.run() round trip, and the cost of one guest instruction on this KVM. No
// sandbox, ELF, run loop or wire protocol here (that is ops-sandbox.ts).
import { Kvm } from '../src/kvm/kvm.js';
import * as C from '../src/kvm/constants.js';
import * as X from '../src/x86_64/index.js';
import { flatSegment } from '../src/kvm/structs.js';
import type { Vcpu } from '../src/kvm/vcpu.js';
import type { Vm } from '../src/kvm/vm.js';
import { GuestMemory } from '../src/mem/guest-memory.js';
import type { TraceRecorder } from '../src/sandbox/trace-recorder.js';
import { type LoopOptions, timeLoop } from './stats.js';

const CODE_GPA = 0x4000;
const FLOOR_PORT = 101;

/** out 101, al; jmp back to the out: one I/O exit per KVM_RUN (as bench/kvm-floor.c). */
const EXIT_LOOP = Uint8Array.from([0x66, 0xba, 0x65, 0x00, 0xee, 0xeb, 0xfd]);

/**
 * mov ecx, n; L: dec ecx; jnz L; mov dx, 101; out dx, al; jmp to the start: one exit per
 * KVM_RUN after 2n + 3 instructions.
 */
function spinLoop(n: number): Uint8Array {
  return Uint8Array.from([
    0xb9, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff, // mov ecx, n
    0xff, 0xc9, // dec ecx
    0x75, 0xfc, // jnz -4
    0x66, 0xba, 0x65, 0x00, // mov dx, 101
    0xee, // out dx, al
    0xeb, 0xf0, // jmp -16 (to mov ecx)
  ]);
}

interface TinyMachine { vm: Vm; vcpu: Vcpu; mem: GuestMemory }

/** VM + memory + vCPU in long mode at CODE_GPA, identity-mapped like the C floor. */
function tinyMachine(kvm: Kvm, memBytes: number, code: Uint8Array, mark?: (phase: string) => void): TinyMachine {
  const vm = kvm.createVm();
  mark?.('create-vm');
  const mem = GuestMemory.allocate(memBytes);
  try {
    vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0n, memorySize: BigInt(mem.size), userspaceAddr: mem.hostAddress });
    mark?.('map-memory');
    mem.writeU64(0x1000, 0x2000n | 3n);
    mem.writeU64(0x2000, 0x3000n | 3n);
    mem.writeU64(0x3000, 0x83n);
    mem.copyIn(CODE_GPA, code);
    const vcpu = vm.createVcpu(0);
    mark?.('create-vcpu');
    const sregs = vcpu.getSregs();
    sregs.cs = flatSegment(0x08, X.SEG_TYPE_CODE_XR_ACCESSED, true);
    for (const s of ['ds', 'es', 'fs', 'gs', 'ss'] as const) sregs[s] = flatSegment(0x10, X.SEG_TYPE_DATA_RW_ACCESSED, false);
    sregs.cr3 = 0x1000n;
    sregs.cr4 = X.CR4_INIT;
    sregs.cr0 = X.CR0_INIT;
    sregs.efer = X.EFER_INIT;
    vcpu.setSregs(sregs);
    const regs = vcpu.getRegs();
    regs.rip = BigInt(CODE_GPA);
    regs.rsp = 0x8000n;
    regs.rflags = X.RFLAGS_RESERVED_1;
    vcpu.setRegs(regs);
    mark?.('set-regs');
    return { vm, vcpu, mem };
  } catch (e) {
    vm.close();
    mem.close();
    throw e;
  }
}

function closeTiny(m: TinyMachine): void {
  m.vm.close(); // closes the vCPU first
  m.mem.close();
}

function runToFloorExit(vcpu: Vcpu): void {
  const exit = vcpu.run();
  if (exit.kind !== 'io' || exit.port !== FLOOR_PORT) throw new Error(`tiny guest: unexpected exit ${exit.kind}`);
}

/**
 * The C floor's cold cycle through the KVM layer: create VM, allocate and map memory,
 * create vCPU, set registers, run to the first exit, close. /dev/kvm stays open, as in C.
 * With `phases`, also records each step under the C floor's phase names.
 */
export function jsColdCycle(memBytes: number, opts: LoopOptions, phases?: TraceRecorder): Float64Array {
  const kvm = Kvm.open();
  let i = 0;
  const mark = (name: string, from: bigint): bigint => {
    const now = process.hrtime.bigint();
    phases?.phase(name, from, now);
    return now;
  };
  try {
    return timeLoop(opts, () => {
      if (phases) phases.recording = i++ >= opts.warmup;
    }, () => {
      let t = process.hrtime.bigint();
      const m = tinyMachine(kvm, memBytes, EXIT_LOOP, phases ? (name) => { t = mark(name, t); } : undefined);
      try {
        runToFloorExit(m.vcpu);
        t = mark('first-run', t);
      } finally {
        closeTiny(m);
        mark('teardown', t);
      }
    });
  } finally {
    kvm.close();
  }
}

/** One `vcpu.run()` round trip (KVM_RUN -> OUT -> back, decoded) on a warm vCPU. */
export function jsWarmRun(memBytes: number, opts: LoopOptions): Float64Array {
  const kvm = Kvm.open();
  const m = tinyMachine(kvm, memBytes, EXIT_LOOP);
  try {
    for (let i = 0; i < 100; i++) runToFloorExit(m.vcpu); // as the C loop's warm-up
    const vcpu = m.vcpu;
    return timeLoop(opts, () => undefined, () => { vcpu.run(); });
  } finally {
    closeTiny(m);
    kvm.close();
  }
}
