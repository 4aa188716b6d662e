// Validates a guest ELF64 x86-64 file completely and turns it into an ElfImage; it writes no guest memory (see ElfImage.load).

import { ElfInvalidError } from '../errors.js';
import * as C from './constants.js';
import { readWithElfy, type ElfyProgram } from './elfy-reader.js';
import { ElfImage, type ElfRelocation, type ElfSegment } from './image.js';
import { readRelocations } from './relocations.js';

export interface ParseElfOptions {
  /** Largest accepted span in bytes (default 64 MiB). */
  readonly maxSpan?: number;
}

/** A program header as read from the raw bytes, u64 fields as bigint. */
export interface RawPhdr {
  readonly index: number;
  readonly type: number;
  readonly flags: number;
  readonly offset: bigint;
  readonly vaddr: bigint;
  readonly filesz: bigint;
  readonly memsz: bigint;
  readonly align: bigint;
}

const hex = (n: bigint | number): string => '0x' + n.toString(16);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function bad(message: string): never {
  throw new ElfInvalidError(message);
}

function checkIdent(view: DataView, length: number): void {
  if (length < C.EHDR_SIZE) bad(`the file is ${length} bytes, shorter than an ELF64 header (64 bytes)`);
  if (view.getUint32(0, false) !== 0x7f454c46) bad('no ELF magic (\\x7fELF) at the start of the file');
  const cls = view.getUint8(4);
  if (cls === 1) bad('ELF32 file: only ELF64 guests are supported');
  if (cls !== C.ELFCLASS64) bad(`unknown ELF class ${cls}`);
  const data = view.getUint8(5);
  if (data !== C.ELFDATA2LSB) bad(data === 2 ? 'big-endian ELF: guests must be little-endian' : `unknown ELF data encoding ${data}`);
  if (view.getUint8(6) !== C.EV_CURRENT) bad(`unknown ELF identification version ${view.getUint8(6)}`);
}

interface RawHeader { type: 'dyn' | 'exec'; entry: bigint; phoff: number; phnum: number }

function checkHeader(view: DataView, length: number): RawHeader {
  checkIdent(view, length);
  const etype = view.getUint16(16, true);
  if (etype === C.ET_REL) bad('a relocatable object (ET_REL, a .o file), not an executable');
  if (etype === C.ET_CORE) bad('a core dump (ET_CORE), not an executable');
  if (etype !== C.ET_EXEC && etype !== C.ET_DYN) bad(`unsupported e_type ${etype}; need ET_DYN or ET_EXEC`);
  const machine = view.getUint16(18, true);
  if (machine !== C.EM_X86_64) bad(`e_machine is ${machine}, not x86-64 (${C.EM_X86_64})`);
  if (view.getUint32(20, true) !== C.EV_CURRENT) bad(`unknown e_version ${view.getUint32(20, true)}`);
  if (view.getUint16(52, true) !== C.EHDR_SIZE) bad(`e_ehsize is ${view.getUint16(52, true)}, not 64`);
  const phentsize = view.getUint16(54, true);
  if (phentsize !== C.PHDR_SIZE) bad(`e_phentsize is ${phentsize}, not ${C.PHDR_SIZE}`);
  const phnum = view.getUint16(56, true);
  if (phnum === 0) bad('no program headers (e_phnum = 0)');
  if (phnum === C.PN_XNUM) bad('e_phnum = PN_XNUM (extended program header count) is not supported');
  const phoff = view.getBigUint64(32, true);
  if (phoff < BigInt(C.EHDR_SIZE) || phoff + BigInt(phnum * C.PHDR_SIZE) > BigInt(length)) {
    bad(`program headers (e_phoff ${hex(phoff)}, ${phnum} entries) lie outside the file (${length} bytes) ` +
      'or overlap the ELF header');
  }
  return { type: etype === C.ET_DYN ? 'dyn' : 'exec', entry: view.getBigUint64(24, true), phoff: Number(phoff), phnum };
}

/**
 * The program headers of an ELF64 x86-64 file after the header checks of parseElf (not
 * the segment checks): for readers of other segment types, such as notes.ts.
 * @throws ElfInvalidError for a bad header or program headers outside the file.
 */
export function readProgramHeaders(bytes: Uint8Array): readonly RawPhdr[] {
  // FFI: none; a read-only DataView over the caller's bytes, used only during this call.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return readPhdrs(view, checkHeader(view, bytes.length));
}

function readPhdrs(view: DataView, h: RawHeader): RawPhdr[] {
  const out: RawPhdr[] = [];
  for (let i = 0; i < h.phnum; i++) {
    const o = h.phoff + i * C.PHDR_SIZE;
    out.push({
      index: i, type: view.getUint32(o, true), flags: view.getUint32(o + 4, true),
      offset: view.getBigUint64(o + 8, true), vaddr: view.getBigUint64(o + 16, true),
      filesz: view.getBigUint64(o + 32, true), memsz: view.getBigUint64(o + 40, true),
      align: view.getBigUint64(o + 48, true),
    });
  }
  return out;
}

const ELFY_TYPES: Readonly<Record<number, string>> = { [C.PT_LOAD]: 'load', [C.PT_DYNAMIC]: 'dynamic', [C.PT_INTERP]: 'interp' };

/** Checks that elfy read the same values as the raw bytes for everything the loader uses. */
function crossCheck(bytes: Uint8Array, h: RawHeader, phdrs: readonly RawPhdr[]): void {
  const { header, programs } = readWithElfy(bytes);
  const same = (what: string, elfyValue: unknown, raw: bigint | number | string): void => {
    if (elfyValue !== raw) bad(`the ELF parser and the raw bytes disagree on ${what}`);
  };
  same('the class', header.class, '64');
  same('the byte order', header.endian, 'lsb');
  same('e_type', header.type, h.type);
  same('e_machine', header.machine, 'amd64');
  same('e_phoff', header.phoff, h.phoff);
  same('e_phnum', header.phnum, h.phnum);
  same('e_phentsize', header.phentsize, C.PHDR_SIZE);
  if (h.entry <= MAX_SAFE) same('e_entry', header.entry, Number(h.entry));
  if (programs.length !== phdrs.length) bad('the ELF parser and the raw bytes disagree on the program header count');
  for (const p of phdrs) {
    const e = programs[p.index] as ElfyProgram;
    const name = ELFY_TYPES[p.type];
    if (name === undefined) continue; // a type the loader ignores
    same(`the type of program header ${p.index}`, e.type, name);
    for (const f of ['offset', 'vaddr', 'filesz', 'memsz', 'align'] as const) {
      if (p[f] > MAX_SAFE) bad(`program header ${p.index}: p_${f} ${hex(p[f])} is too large`);
      same(`p_${f} of program header ${p.index}`, e[f], Number(p[f]));
    }
    const flags = e.flags as Record<string, unknown> | null;
    const rwx = (flags?.r === true ? C.PF_R : 0) | (flags?.w === true ? C.PF_W : 0) | (flags?.x === true ? C.PF_X : 0);
    same(`p_flags of program header ${p.index}`, rwx, p.flags & 7);
  }
}

function interpreterName(bytes: Uint8Array, p: RawPhdr): string {
  if (p.offset >= BigInt(bytes.length)) return '';
  const start = Number(p.offset);
  const end = Math.min(bytes.length, start + Math.min(Number(p.filesz > 256n ? 256n : p.filesz), 256));
  let s = '';
  for (let i = start; i < end && bytes[i] !== 0; i++) {
    const c = bytes[i]!;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
  }
  return s ? ` "${s}"` : '';
}

function checkLoad(p: RawPhdr, fileLength: number): void {
  const where = `PT_LOAD (program header ${p.index})`;
  if (p.filesz > p.memsz) bad(`${where}: p_filesz ${hex(p.filesz)} exceeds p_memsz ${hex(p.memsz)}`);
  if (p.offset + p.filesz > BigInt(fileLength)) {
    bad(`${where}: file bytes [${hex(p.offset)}, ${hex(p.offset + p.filesz)}) lie outside the file (${fileLength} bytes)`);
  }
  if (p.vaddr + p.memsz > C.MAX_VADDR) bad(`${where}: ends beyond the 47-bit address space`);
  if (p.align !== 0n && (p.align & (p.align - 1n)) !== 0n) bad(`${where}: p_align ${hex(p.align)} is not a power of two`);
  if (p.align >= BigInt(C.ELF_PAGE_SIZE) && (p.vaddr % p.align) !== (p.offset % p.align)) {
    bad(`${where}: p_vaddr ${hex(p.vaddr)} and p_offset ${hex(p.offset)} differ modulo p_align ${hex(p.align)}`);
  }
  if ((p.flags & C.PF_W) && (p.flags & C.PF_X)) bad(`${where}: writable and executable at once (W^X)`);
}

/** Validates PT_LOAD headers and returns those with a non-zero size, in order. */
function checkLoads(phdrs: readonly RawPhdr[], fileLength: number): RawPhdr[] {
  const loads: RawPhdr[] = [];
  // Rights of the page where the previous segment ended: a page may be shared by a chain of
  // small segments, and the union over all of them must respect W^X.
  let tailPage = -1n;
  let tailFlags = 0;
  for (const p of phdrs) {
    if (p.type !== C.PT_LOAD) continue;
    checkLoad(p, fileLength);
    if (p.memsz === 0n) continue;
    const prev = loads[loads.length - 1];
    if (prev && p.vaddr < prev.vaddr + prev.memsz) {
      bad(`PT_LOAD (program header ${p.index}) at ${hex(p.vaddr)} overlaps or precedes the previous one ` +
        `(${hex(prev.vaddr)}..${hex(prev.vaddr + prev.memsz)}); segments must be ascending and disjoint`);
    }
    const firstPage = pageDown(p.vaddr);
    const headFlags = p.flags | (firstPage === tailPage ? tailFlags : 0);
    if ((headFlags & (C.PF_W | C.PF_X)) === (C.PF_W | C.PF_X)) {
      bad(`PT_LOAD (program header ${p.index}) shares the page ${hex(firstPage)} with a previous ` +
        'segment and one is writable, another executable (W^X)');
    }
    tailPage = pageDown(p.vaddr + p.memsz - 1n);
    tailFlags = tailPage === firstPage ? headFlags : p.flags;
    loads.push(p);
  }
  if (loads.length === 0) bad('no loadable segment (PT_LOAD with p_memsz > 0)');
  return loads;
}

function pageDown(n: bigint): bigint {
  return n - (n % BigInt(C.ELF_PAGE_SIZE));
}

function pageUp(n: bigint): bigint {
  return pageDown(n + BigInt(C.ELF_PAGE_SIZE) - 1n);
}

/**
 * Parses and validates a guest ELF: ELF64, little-endian, x86-64, ET_DYN or ET_EXEC, no
 * PT_INTERP, at least one PT_LOAD, PT_LOADs inside the file, ascending and disjoint,
 * filesz <= memsz, power-of-two alignment with vaddr = offset mod align (align >= 4 KiB),
 * no W+X segment or shared page, span <= maxSpan, entry inside the file part of an
 * executable segment, and only R_X86_64_RELATIVE/NONE relocations (through PT_DYNAMIC's
 * DT_RELA/DT_RELASZ/DT_RELAENT = 24) targeting 8 bytes inside a segment.
 * @throws ElfInvalidError for any violation, and for anything the `elfy` parser throws (as `cause`).
 */
export function parseElf(bytes: Uint8Array, opts: ParseElfOptions = {}): ElfImage {
  if (!(bytes instanceof Uint8Array)) bad('the input must be a Uint8Array');
  const maxSpan = opts.maxSpan ?? C.DEFAULT_MAX_SPAN;
  if (!Number.isSafeInteger(maxSpan) || maxSpan <= 0) bad(`maxSpan must be a positive integer, got ${String(maxSpan)}`);
  // FFI: none; a read-only DataView over the caller's bytes, used only during this call.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = checkHeader(view, bytes.length);
  const phdrs = readPhdrs(view, header);
  const interp = phdrs.find((p) => p.type === C.PT_INTERP);
  if (interp) {
    bad(`the binary is dynamically linked: it has a program interpreter (PT_INTERP${interpreterName(bytes, interp)}); ` +
      'guests must be static (build with -static-pie -nostdlib)');
  }
  crossCheck(bytes, header, phdrs);
  const loads = checkLoads(phdrs, bytes.length);
  const first = loads[0]!;
  const linkBase = pageDown(first.vaddr);
  const end = loads.reduce((m, p) => (p.vaddr + p.memsz > m ? p.vaddr + p.memsz : m), 0n);
  const span = pageUp(end) - linkBase;
  if (span > BigInt(maxSpan)) bad(`the image spans ${hex(span)} bytes, more than the limit ${hex(maxSpan)}`);
  const entryIn = loads.find((p) => (p.flags & C.PF_X) && header.entry >= p.vaddr && header.entry < p.vaddr + p.filesz);
  if (!entryIn) bad(`the entry point ${hex(header.entry)} is not inside the file bytes of an executable segment`);
  const segments: ElfSegment[] = loads.map((p) => ({
    offsetInImage: Number(p.vaddr - linkBase), vaddr: Number(p.vaddr), fileOffset: Number(p.offset),
    fileSize: Number(p.filesz), memSize: Number(p.memsz), readable: (p.flags & C.PF_R) !== 0,
    writable: (p.flags & C.PF_W) !== 0, executable: (p.flags & C.PF_X) !== 0,
  }));
  const relocations: ElfRelocation[] = readRelocations(view, phdrs, loads, linkBase);
  return new ElfImage({
    type: header.type, entryOffset: Number(header.entry - linkBase), span: Number(span),
    firstVaddr: Number(first.vaddr), linkBase: Number(linkBase), segments, relocations,
  }, bytes);
}
