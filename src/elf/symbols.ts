// Reads the function symbols of an ELF64 file's .symtab (for naming a guest address in fault reports); every offset is checked against the file, and a malformed table yields no symbols rather than an error.

/** A function symbol: its link-time address and size in bytes. */
export interface ElfSymbol {
  readonly name: string;
  readonly value: number;
  readonly size: number;
}

const SHT_SYMTAB = 2;
const STT_FUNC = 2;
const SYM_SIZE = 24;
const SHDR_SIZE = 64;
const MAX_SYMBOLS = 1 << 16;
const utf8 = new TextDecoder();

/** The STT_FUNC symbols with a name and an address, sorted by address; [] when there is no usable table. */
export function readFunctionSymbols(file: Uint8Array): ElfSymbol[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const inFile = (off: number, len: number): boolean => Number.isSafeInteger(off) && off >= 0 && len >= 0 && off + len <= file.length;
  if (!inFile(0, 64)) return [];
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  if (shentsize !== SHDR_SIZE || !inFile(shoff, shnum * SHDR_SIZE)) return [];
  const section = (i: number): { type: number; offset: number; size: number; link: number } => {
    const at = shoff + i * SHDR_SIZE;
    return {
      type: v.getUint32(at + 4, true), offset: Number(v.getBigUint64(at + 0x18, true)),
      size: Number(v.getBigUint64(at + 0x20, true)), link: v.getUint32(at + 0x28, true),
    };
  };
  for (let i = 0; i < shnum; i++) {
    const symtab = section(i);
    if (symtab.type !== SHT_SYMTAB || symtab.link >= shnum) continue;
    const strtab = section(symtab.link);
    if (!inFile(symtab.offset, symtab.size) || !inFile(strtab.offset, strtab.size)) return [];
    const out: ElfSymbol[] = [];
    const count = Math.min(Math.floor(symtab.size / SYM_SIZE), MAX_SYMBOLS);
    for (let s = 0; s < count; s++) {
      const at = symtab.offset + s * SYM_SIZE;
      if ((v.getUint8(at + 4) & 0xf) !== STT_FUNC) continue;
      const nameOff = v.getUint32(at, true);
      const value = Number(v.getBigUint64(at + 8, true));
      if (nameOff === 0 || nameOff >= strtab.size || value === 0 || !Number.isSafeInteger(value)) continue;
      const start = strtab.offset + nameOff;
      let end = start;
      const limit = strtab.offset + strtab.size;
      while (end < limit && file[end] !== 0) end++;
      out.push({ name: utf8.decode(file.subarray(start, end)), value, size: Number(v.getBigUint64(at + 16, true)) });
    }
    return out.sort((a, b) => a.value - b.value);
  }
  return [];
}

/** The symbol containing `address` (or else the nearest one below it), with the offset into it. */
export function nearestSymbol(symbols: readonly ElfSymbol[], address: number): { symbol: ElfSymbol; offset: number } | undefined {
  let lo = 0;
  let hi = symbols.length - 1;
  let best: ElfSymbol | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = symbols[mid]!;
    if (s.value <= address) {
      best = s;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best ? { symbol: best, offset: address - best.value } : undefined;
}
