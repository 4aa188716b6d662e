// Reads and validates a static PIE's dynamic relocations through PT_DYNAMIC; it applies none (see ElfImage.load).

import { ElfInvalidError } from '../errors.js';
import * as C from './constants.js';
import type { ElfRelocation } from './image.js';
import type { RawPhdr } from './parse.js';

const hex = (n: bigint | number): string => '0x' + n.toString(16);

function bad(message: string): never {
  throw new ElfInvalidError(message);
}

/** The DT_* values the loader looks at; absent tags are undefined. */
type DynamicTags = Map<bigint, bigint>;

const WATCHED = new Set([C.DT_NEEDED, C.DT_PLTRELSZ, C.DT_RELA, C.DT_RELASZ, C.DT_RELAENT, C.DT_REL, C.DT_RELSZ,
  C.DT_PLTREL, C.DT_JMPREL, C.DT_RELR, C.DT_RELRSZ]);

function readDynamic(view: DataView, dyn: RawPhdr): DynamicTags {
  if (dyn.offset + dyn.filesz > BigInt(view.byteLength)) {
    bad(`PT_DYNAMIC [${hex(dyn.offset)}, +${hex(dyn.filesz)}) lies outside the file`);
  }
  const tags: DynamicTags = new Map();
  const count = Number(dyn.filesz / BigInt(C.DYN_SIZE));
  for (let i = 0; i < count; i++) {
    const o = Number(dyn.offset) + i * C.DYN_SIZE;
    const tag = view.getBigUint64(o, true);
    if (tag === C.DT_NULL) break;
    if (!WATCHED.has(tag)) continue;
    if (tag === C.DT_NEEDED) bad('the binary is dynamically linked: it needs shared libraries (DT_NEEDED)');
    if (tags.has(tag)) bad(`PT_DYNAMIC repeats the tag ${tag}`);
    tags.set(tag, view.getBigUint64(o + 8, true));
  }
  return tags;
}

/** Maps a table at link address `vaddr` (`size` bytes) to its file offset, inside one segment's file bytes. */
function fileOffsetOf(loads: readonly RawPhdr[], vaddr: bigint, size: bigint, what: string): number {
  for (const p of loads) {
    if (vaddr >= p.vaddr && vaddr + size <= p.vaddr + p.filesz) return Number(vaddr - p.vaddr + p.offset);
  }
  return bad(`${what} at ${hex(vaddr)} (${size} bytes) is not inside the file bytes of a loadable segment`);
}

function readTable(view: DataView, loads: readonly RawPhdr[], linkBase: bigint, vaddr: bigint, size: bigint,
  what: string, out: ElfRelocation[]): void {
  if (size % BigInt(C.RELA_SIZE) !== 0n) bad(`${what} size ${size} is not a multiple of ${C.RELA_SIZE}`);
  if (size === 0n) return;
  const start = fileOffsetOf(loads, vaddr, size, what);
  for (let o = start; o < start + Number(size); o += C.RELA_SIZE) {
    const rOffset = view.getBigUint64(o, true);
    const info = view.getBigUint64(o + 8, true);
    const type = Number(info & 0xffff_ffffn);
    const sym = info >> 32n;
    if (type === C.R_X86_64_NONE) {
      out.push({ type, offsetInImage: 0, addend: 0n });
      continue;
    }
    if (type !== C.R_X86_64_RELATIVE) {
      bad(`unsupported relocation type ${type} (${C.R_X86_64_NAMES[type] ?? 'unknown'}) in ${what}; ` +
        'only R_X86_64_RELATIVE and R_X86_64_NONE are accepted (build the guest as a static PIE)');
    }
    if (sym !== 0n) bad(`R_X86_64_RELATIVE at ${hex(rOffset)} names symbol ${sym}; it must name none`);
    const inSegment = loads.some((p) => rOffset >= p.vaddr && rOffset + 8n <= p.vaddr + p.memsz);
    if (!inSegment) bad(`relocation target ${hex(rOffset)} (8 bytes) is not inside a loadable segment`);
    out.push({ type, offsetInImage: Number(rOffset - linkBase), addend: BigInt.asIntN(64, view.getBigUint64(o + 16, true)) });
  }
}

/**
 * Reads the relocations of the image through PT_DYNAMIC (none when it has no PT_DYNAMIC).
 * `loads` are the validated PT_LOADs; `linkBase` the page-aligned first vaddr.
 * @throws ElfInvalidError for DT_NEEDED, DT_REL, DT_RELR, DT_RELAENT != 24, tables outside
 *   the file, a relocation type other than RELATIVE/NONE, or a target outside the segments.
 */
export function readRelocations(view: DataView, phdrs: readonly RawPhdr[], loads: readonly RawPhdr[],
  linkBase: bigint): ElfRelocation[] {
  const dyns = phdrs.filter((p) => p.type === C.PT_DYNAMIC);
  if (dyns.length === 0) return [];
  if (dyns.length > 1) bad(`${dyns.length} PT_DYNAMIC segments; at most one is allowed`);
  const tags = readDynamic(view, dyns[0]!);
  if (tags.has(C.DT_REL) || (tags.get(C.DT_RELSZ) ?? 0n) !== 0n) {
    bad('DT_REL relocations are not supported (x86-64 uses DT_RELA)');
  }
  if (tags.has(C.DT_RELR) || (tags.get(C.DT_RELRSZ) ?? 0n) !== 0n) {
    bad('DT_RELR packed relocations are not supported; link without -z pack-relative-relocs');
  }
  const out: ElfRelocation[] = [];
  const rela = tags.get(C.DT_RELA);
  const relaSize = tags.get(C.DT_RELASZ);
  if ((rela === undefined) !== (relaSize === undefined)) bad('DT_RELA and DT_RELASZ must come together');
  if (rela !== undefined && relaSize !== undefined) {
    const ent = tags.get(C.DT_RELAENT);
    if (ent !== BigInt(C.RELA_SIZE)) bad(`DT_RELAENT is ${ent ?? 'missing'}, not ${C.RELA_SIZE}`);
    readTable(view, loads, linkBase, rela, relaSize, 'DT_RELA', out);
  }
  const pltSize = tags.get(C.DT_PLTRELSZ) ?? 0n;
  if (pltSize !== 0n) {
    const jmprel = tags.get(C.DT_JMPREL);
    if (jmprel === undefined) bad('DT_PLTRELSZ without DT_JMPREL');
    if (tags.get(C.DT_PLTREL) !== C.DT_RELA) bad('DT_PLTREL must be DT_RELA');
    readTable(view, loads, linkBase, jmprel, pltSize, 'DT_JMPREL', out);
  }
  return out;
}
