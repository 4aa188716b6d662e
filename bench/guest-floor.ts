// The C floor that runs the library's own guest (bench/kvm-floor-guest.c): this side writes
// the image it runs, the memory and vCPU state of a simpleguest sandbox evolved from its
// init template at the moment its first Echo("hi") enters KVM_RUN, and parses the results.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '../src/kvm/kvm.js';
import { kvm_regs, kvm_run, kvm_sregs } from '../src/kvm/layouts.generated.js';
import { encodeCpuid } from '../src/kvm/structs.js';
import { KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from '../src/kvm/constants.js';
import { DOORBELL_STRIDE, OP_HALT } from '../src/sandbox/abi.js';
import { guestCpuid } from '../src/sandbox/machine.js';
import { SYSCALL_ENTRY_SENTINEL } from '../src/x86_64/index.js';
import { buildCProgram, runJsonProgram, numberArray } from './c-floor.js';
import { echo, uninitialized } from './ops-sandbox.js';

const PAGE = 4096;
/** Bytes of each I/O buffer the C side puts back before a warm call (the Echo call is far smaller). */
const IO_PREFIX = 512;

export interface GuestFloorSamples {
  /** evolve()'s syscalls from the template, the first Echo's KVM_RUN, teardown. */
  coldNs: number[];
  /** A warm Echo: I/O buffers put back, KVM_RUN to the Halt doorbell. */
  warmNs: number[];
}

/** The image kvm-floor-guest reads (its header comment and struct image_header say the format). */
function captureImage(): Buffer {
  const u = uninitialized('simpleguest');
  u.evolve().close(); // makes the init template
  const sandbox = u.evolve();
  try {
    const { vcpu, memory, layout, features } = sandbox.machine;
    let image: Buffer | undefined;
    const run = vcpu.run.bind(vcpu);
    vcpu.run = () => {
      if (!image) image = imageOf();
      return run();
    };
    const imageOf = (): Buffer => {
      const syncBits = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
      const raw = vcpu.kvmRun;
      const dirtyRegs = Number(new DataView(raw.buffer, raw.byteOffset).getBigUint64(kvm_run.fields.kvm_dirty_regs[0], true));
      if ((dirtyRegs & syncBits) !== syncBits) throw new Error('the first call\'s registers are not in kvm_run\'s sync area');
      const regs = raw.slice(kvm_run.fields['s.regs.regs'][0], kvm_run.fields['s.regs.regs'][0] + kvm_regs.size);
      const sregs = raw.slice(kvm_run.fields['s.regs.sregs'][0], kvm_run.fields['s.regs.sregs'][0] + kvm_sregs.size);
      const xsave = vcpu.getXsave();
      const kvm = Kvm.open();
      let cpuid: Uint8Array;
      try {
        cpuid = encodeCpuid(guestCpuid(kvm));
      } finally {
        kvm.close();
      }
      const bytes = memory.bytes;
      const pages: number[] = [];
      for (let p = 0; p < bytes.length; p += PAGE) {
        if (bytes.subarray(p, p + PAGE).some((b) => b !== 0)) pages.push(p);
      }
      const header = Buffer.alloc(8 + 13 * 8);
      header.write('HLFLOOR1', 0, 'latin1');
      [memory.size, layout.doorbell.gpa + DOORBELL_STRIDE * OP_HALT, layout.inputData.gpa, layout.outputData.gpa, IO_PREFIX,
        pages.length, syncBits, Number(SYSCALL_ENTRY_SENTINEL), features.xsave ? Number(features.xcr0) : 0,
        kvm_regs.size, kvm_sregs.size, xsave.length, cpuid.length]
        .forEach((v, i) => header.writeBigUInt64LE(BigInt(v), 8 + 8 * i));
      const parts: Uint8Array[] = [header, regs, sregs, xsave, cpuid];
      for (const p of pages) {
        const at = Buffer.alloc(8);
        at.writeBigUInt64LE(BigInt(p));
        parts.push(at, bytes.subarray(p, p + PAGE));
      }
      return Buffer.concat(parts);
    };
    echo(sandbox, 'simpleguest');
    if (!image) throw new Error('Echo made no KVM_RUN');
    return image;
  } finally {
    sandbox.close();
  }
}

/** Writes the image, runs kvm-floor-guest on it (`cold` cold cycles, `warm` warm calls). */
export function runGuestFloor(cold: number, warm: number): GuestFloorSamples {
  const exe = buildCProgram('kvm-floor-guest');
  const dir = mkdtempSync(join(tmpdir(), 'hyperlight-ts-floor-'));
  try {
    const file = join(dir, 'simpleguest-echo.img');
    writeFileSync(file, captureImage());
    const out = runJsonProgram(exe, [file, String(cold), String(warm)]);
    return { coldNs: numberArray(out, 'cold_ns'), warmNs: numberArray(out, 'warm_ns') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
