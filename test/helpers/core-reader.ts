// Test helper: reads an ELF core file back (header, program headers, notes), independently of the writer in src/elf/core-file.ts.
export interface CoreNote { name: string; type: number; desc: Uint8Array }
export interface CoreLoad { vaddr: bigint; offset: number; filesz: number; memsz: number; flags: number }
export interface ParsedCore { type: number; machine: number; notes: CoreNote[]; loads: CoreLoad[]; bytes: Uint8Array }

export function parseCore(bytes: Uint8Array): ParsedCore {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, false) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1) throw new Error('not an ELF64 LE file');
  const phoff = Number(v.getBigUint64(32, true));
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  const notes: CoreNote[] = [];
  const loads: CoreLoad[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = v.getUint32(p, true);
    const offset = Number(v.getBigUint64(p + 8, true));
    const filesz = Number(v.getBigUint64(p + 32, true));
    if (offset + filesz > bytes.length) throw new Error(`segment ${i} lies past the file's end`);
    if (type === 4) {
      let at = offset;
      while (at < offset + filesz) {
        const namesz = v.getUint32(at, true);
        const descsz = v.getUint32(at + 4, true);
        const ntype = v.getUint32(at + 8, true);
        const name = new TextDecoder().decode(bytes.subarray(at + 12, at + 12 + namesz)).replace(/\0+$/, '');
        const descAt = at + 12 + ((namesz + 3) & ~3);
        notes.push({ name, type: ntype, desc: bytes.slice(descAt, descAt + descsz) });
        at = descAt + ((descsz + 3) & ~3);
      }
    } else if (type === 1) {
      loads.push({ vaddr: v.getBigUint64(p + 16, true), offset, filesz, memsz: Number(v.getBigUint64(p + 40, true)), flags: v.getUint32(p + 4, true) });
    }
  }
  return { type: v.getUint16(16, true), machine: v.getUint16(18, true), notes, loads, bytes };
}

/** The 27 user_regs_struct words of the core's NT_PRSTATUS, by Linux's names. */
export const LINUX_USER_REGS = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx',
  'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs'];

export function prstatusRegs(core: ParsedCore): Record<string, bigint> {
  const n = core.notes.find((x) => x.name === 'CORE' && x.type === 1);
  if (!n) throw new Error('no NT_PRSTATUS');
  const v = new DataView(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength);
  return Object.fromEntries(LINUX_USER_REGS.map((r, i) => [r, v.getBigUint64(112 + 8 * i, true)]));
}

/** `len` bytes at virtual address `va` from the core's PT_LOAD segments; undefined when not all covered. */
export function readCore(core: ParsedCore, va: bigint, len: number): Uint8Array | undefined {
  const l = core.loads.find((s) => va >= s.vaddr && va + BigInt(len) <= s.vaddr + BigInt(s.filesz));
  if (!l) return undefined;
  const off = l.offset + Number(va - l.vaddr);
  return core.bytes.subarray(off, off + len);
}
