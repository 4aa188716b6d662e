// The ELF core writer (src/elf/core-file.ts) read back by an independent parser: header, notes in Linux's x86-64 layout, PT_LOAD segments.
import { describe, expect, it } from 'vitest';
import {
  AT_ENTRY, NT_AUXV, NT_FPREGSET, NT_PRPSINFO, NT_PRSTATUS, PF_R, PF_W, PF_X, PRPSINFO_SIZE, PRSTATUS_SIZE,
  USER_REGS_ORDER, type UserRegs, buildCoreFile,
} from '../../src/elf/core-file.js';
import { LINUX_USER_REGS, parseCore, prstatusRegs, readCore } from '../helpers/core-reader.js';

const regs = Object.fromEntries(USER_REGS_ORDER.map((r, i) => [r, 0x1000n + BigInt(i)])) as UserRegs;
const text = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);
const stack = new Uint8Array(4096).fill(0xab);

function sample(fpregs?: Uint8Array): Uint8Array {
  return buildCoreFile({
    regs, signal: 11, pid: 4242, name: 'a-very-long-guest-name', args: 'guest args', fpregs,
    auxv: [[AT_ENTRY, 0xa123n]],
    segments: [{ vaddr: 0xa000n, data: text, flags: PF_R | PF_X }, { vaddr: 0x7f000n, data: stack, flags: PF_R | PF_W }],
  });
}

describe('ELF core files', () => {
  it('is an x86-64 ET_CORE file whose PT_LOADs hold the segments at their addresses, page-aligned in the file', () => {
    const core = parseCore(sample());
    expect(core.type).toBe(4);
    expect(core.machine).toBe(62);
    expect(core.loads.map((l) => [l.vaddr, l.filesz, l.memsz, l.flags])).toEqual([
      [0xa000n, 5000, 5000, PF_R | PF_X], [0x7f000n, 4096, 4096, PF_R | PF_W]]);
    for (const l of core.loads) expect(l.offset % 4096).toBe(0);
    expect(readCore(core, 0xa000n + 4999n, 1)).toEqual(Uint8Array.of(4999 & 0xff));
    expect(readCore(core, 0x7f000n, 4096)).toEqual(stack);
    expect(readCore(core, 0x7f000n + 4096n, 1)).toBeUndefined();
  });

  it('writes NT_PRSTATUS with the registers in user_regs_struct order, the signal and pid; NT_PRPSINFO; NT_AUXV ending in AT_NULL', () => {
    const core = parseCore(sample());
    expect(core.notes.map((n) => [n.name, n.type])).toEqual([['CORE', NT_PRSTATUS], ['CORE', NT_PRPSINFO], ['CORE', NT_AUXV]]);
    const [st, ps, aux] = core.notes;
    expect(st!.desc.length).toBe(PRSTATUS_SIZE);
    const r = prstatusRegs(core);
    LINUX_USER_REGS.forEach((name, i) => expect(r[name], name).toBe(0x1000n + BigInt(i)));
    const sv = new DataView(st!.desc.buffer, st!.desc.byteOffset);
    expect(sv.getInt32(0, true)).toBe(11); // si_signo
    expect(sv.getInt16(12, true)).toBe(11); // pr_cursig
    expect(sv.getInt32(32, true)).toBe(4242); // pr_pid
    expect(sv.getInt32(328, true)).toBe(0); // pr_fpvalid: no NT_FPREGSET
    expect(ps!.desc.length).toBe(PRPSINFO_SIZE);
    expect(new TextDecoder().decode(ps!.desc.subarray(40, 56)).replace(/\0+$/, '')).toBe('a-very-long-gue');
    expect(new TextDecoder().decode(ps!.desc.subarray(56, 136)).replace(/\0+$/, '')).toBe('guest args');
    const av = new DataView(aux!.desc.buffer, aux!.desc.byteOffset, aux!.desc.byteLength);
    expect([av.getBigUint64(0, true), av.getBigUint64(8, true), av.getBigUint64(16, true), av.getBigUint64(24, true)])
      .toEqual([AT_ENTRY, 0xa123n, 0n, 0n]);
  });

  it('adds NT_FPREGSET (512 bytes of FXSAVE) and sets pr_fpvalid; refuses another size', () => {
    const fx = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) & 0xff);
    const core = parseCore(sample(fx));
    const fp = core.notes.find((n) => n.type === NT_FPREGSET);
    expect(fp?.desc).toEqual(fx);
    const st = core.notes.find((n) => n.type === NT_PRSTATUS)!;
    expect(new DataView(st.desc.buffer, st.desc.byteOffset).getInt32(328, true)).toBe(1);
    expect(() => sample(new Uint8Array(511))).toThrow(RangeError);
  });
});
