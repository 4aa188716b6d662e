// Writes ELF core files (ET_CORE) the way Linux lays them out for an x86-64 process, so gdb and other tools open them: one PT_NOTE (NT_PRSTATUS, NT_PRPSINFO, NT_FPREGSET, NT_AUXV) and one PT_LOAD per memory run. Pure byte arithmetic; no I/O.
import { PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE } from './constants.js';

/** The general registers in the order of Linux's `struct user_regs_struct` (x86-64), 27 words. */
export const USER_REGS_ORDER = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type UserRegName = typeof USER_REGS_ORDER[number];
export type UserRegs = Record<UserRegName, bigint>;

/** Note types (Linux include/uapi/linux/elf.h). */
export const NT_PRSTATUS = 1;
export const NT_FPREGSET = 2;
export const NT_PRPSINFO = 3;
export const NT_AUXV = 6;
/** Auxiliary vector tags gdb reads to place a PIE (AT_ENTRY against e_entry). */
export const AT_NULL = 0n;
export const AT_PHDR = 3n;
export const AT_PHENT = 4n;
export const AT_PHNUM = 5n;
export const AT_PAGESZ = 6n;
export const AT_ENTRY = 9n;

export { PF_R, PF_W, PF_X };

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
/** sizeof(struct elf_prstatus) on x86-64, and where pr_reg starts in it. */
export const PRSTATUS_SIZE = 336;
export const PRSTATUS_OFF_REG = 112;
const PRSTATUS_OFF_FPVALID = 328;
/** sizeof(struct elf_prpsinfo) on x86-64 (pr_fname at 40, 16 bytes; pr_psargs at 56, 80 bytes). */
export const PRPSINFO_SIZE = 136;
/** The FXSAVE image gdb expects in NT_FPREGSET (struct user_fpregs_struct). */
export const FPREGSET_SIZE = 512;

export interface CoreSegment {
  /** Virtual address of the first byte. */
  vaddr: bigint;
  data: Uint8Array;
  /** PF_R | PF_W | PF_X. */
  flags: number;
}

export interface CoreFileParts {
  regs: UserRegs;
  /** The signal the process "died" of (si_signo, pr_cursig). */
  signal: number;
  pid: number;
  /** Up to 15 bytes of process name, and up to 79 of arguments (pr_fname, pr_psargs). */
  name: string;
  args: string;
  /** 512 bytes in FXSAVE layout; absent: no NT_FPREGSET. */
  fpregs?: Uint8Array;
  /** Pairs of (tag, value); AT_NULL is appended. */
  auxv: ReadonlyArray<readonly [bigint, bigint]>;
  segments: readonly CoreSegment[];
}

const align4 = (n: number): number => (n + 3) & ~3;
const utf8 = new TextEncoder();

function note(type: number, desc: Uint8Array): Uint8Array {
  const name = utf8.encode('CORE\0');
  const out = new Uint8Array(12 + align4(name.length) + align4(desc.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, name.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(name, 12);
  out.set(desc, 12 + align4(name.length));
  return out;
}

function prstatus(p: CoreFileParts): Uint8Array {
  const b = new Uint8Array(PRSTATUS_SIZE);
  const v = new DataView(b.buffer);
  v.setInt32(0, p.signal, true); // si_signo
  v.setInt16(12, p.signal, true); // pr_cursig
  v.setInt32(32, p.pid, true); // pr_pid
  USER_REGS_ORDER.forEach((r, i) => v.setBigUint64(PRSTATUS_OFF_REG + 8 * i, BigInt.asUintN(64, p.regs[r]), true));
  v.setInt32(PRSTATUS_OFF_FPVALID, p.fpregs ? 1 : 0, true);
  return b;
}

function prpsinfo(p: CoreFileParts): Uint8Array {
  const b = new Uint8Array(PRPSINFO_SIZE);
  const v = new DataView(b.buffer);
  b[1] = 'R'.charCodeAt(0); // pr_sname
  v.setInt32(24, p.pid, true);
  b.set(utf8.encode(p.name).subarray(0, 15), 40);
  b.set(utf8.encode(p.args).subarray(0, 79), 56);
  return b;
}

function auxv(pairs: CoreFileParts['auxv']): Uint8Array {
  const all = [...pairs, [AT_NULL, 0n] as const];
  const b = new Uint8Array(16 * all.length);
  const v = new DataView(b.buffer);
  all.forEach(([t, x], i) => { v.setBigUint64(16 * i, t, true); v.setBigUint64(16 * i + 8, x, true); });
  return b;
}

/** The core file of `parts`: ELF header, program headers, the note segment, then each segment's bytes page-aligned. */
export function buildCoreFile(parts: CoreFileParts): Uint8Array {
  if (parts.fpregs && parts.fpregs.length !== FPREGSET_SIZE) {
    throw new RangeError(`NT_FPREGSET holds ${FPREGSET_SIZE} bytes (FXSAVE), got ${parts.fpregs.length}`);
  }
  const notes = [note(NT_PRSTATUS, prstatus(parts)), note(NT_PRPSINFO, prpsinfo(parts))];
  if (parts.fpregs) notes.push(note(NT_FPREGSET, parts.fpregs));
  notes.push(note(NT_AUXV, auxv(parts.auxv)));
  const notesSize = notes.reduce((n, x) => n + x.length, 0);
  const phnum = 1 + parts.segments.length;
  const notesAt = EHDR_SIZE + PHDR_SIZE * phnum;
  let at = Math.ceil((notesAt + notesSize) / 4096) * 4096;
  const offsets = parts.segments.map((s) => {
    const o = at;
    at += Math.ceil(s.data.length / 4096) * 4096;
    return o;
  });
  const out = new Uint8Array(at);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // ELFCLASS64, little-endian, EV_CURRENT, System V
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(32, BigInt(EHDR_SIZE), true); // e_phoff
  v.setUint16(52, EHDR_SIZE, true);
  v.setUint16(54, PHDR_SIZE, true);
  v.setUint16(56, phnum, true);
  v.setUint16(58, 64, true); // e_shentsize (no sections)
  const phdr = (i: number, type: number, flags: number, offset: number, vaddr: bigint, filesz: number,
    memsz: number, align: number): void => {
    const p = EHDR_SIZE + PHDR_SIZE * i;
    v.setUint32(p, type, true);
    v.setUint32(p + 4, flags, true);
    v.setBigUint64(p + 8, BigInt(offset), true);
    v.setBigUint64(p + 16, vaddr, true);
    v.setBigUint64(p + 24, 0n, true);
    v.setBigUint64(p + 32, BigInt(filesz), true);
    v.setBigUint64(p + 40, BigInt(memsz), true);
    v.setBigUint64(p + 48, BigInt(align), true);
  };
  phdr(0, PT_NOTE, PF_R, notesAt, 0n, notesSize, 0, 4);
  let n = notesAt;
  for (const x of notes) { out.set(x, n); n += x.length; }
  parts.segments.forEach((s, i) => {
    phdr(1 + i, PT_LOAD, s.flags, offsets[i]!, s.vaddr, s.data.length, s.data.length, 4096);
    out.set(s.data, offsets[i]!);
  });
  return out;
}
