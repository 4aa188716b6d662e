// ELF64 / x86-64 numbers the loader checks, each citing its source; no parsing logic here.

/** e_ident[EI_CLASS] = ELFCLASS64 (System V gABI, "ELF Identification"). */
export const ELFCLASS64 = 2;
/** e_ident[EI_DATA] = ELFDATA2LSB, little-endian (gABI). */
export const ELFDATA2LSB = 1;
/** EV_CURRENT, in e_ident[EI_VERSION] and e_version (gABI). */
export const EV_CURRENT = 1;
/** e_type values (gABI, "ELF Header"). */
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;
/** e_machine for AMD x86-64 (gABI machine list). */
export const EM_X86_64 = 62;
/** sizeof(Elf64_Ehdr), sizeof(Elf64_Phdr), sizeof(Elf64_Dyn), sizeof(Elf64_Rela) (gABI). */
export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const DYN_SIZE = 16;
export const RELA_SIZE = 24;
/** e_phnum escape meaning "count in section 0's sh_info" (gABI); refused here. */
export const PN_XNUM = 0xffff;

/** p_type values (gABI, "Program Header"). */
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
/** p_flags bits (gABI). */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** d_tag values (gABI, "Dynamic Section"; DT_RELR from the gABI 2022 update). */
export const DT_NULL = 0n;
export const DT_NEEDED = 1n;
export const DT_PLTRELSZ = 2n;
export const DT_RELA = 7n;
export const DT_RELASZ = 8n;
export const DT_RELAENT = 9n;
export const DT_REL = 17n;
export const DT_RELSZ = 18n;
export const DT_PLTREL = 20n;
export const DT_JMPREL = 23n;
export const DT_RELRSZ = 35n;
export const DT_RELR = 36n;

/** x86-64 relocation types (System V x86-64 psABI, "Relocation Types"). */
export const R_X86_64_NONE = 0;
export const R_X86_64_RELATIVE = 8;

/** psABI relocation names, for error messages. */
export const R_X86_64_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'R_X86_64_NONE', 1: 'R_X86_64_64', 2: 'R_X86_64_PC32', 3: 'R_X86_64_GOT32', 4: 'R_X86_64_PLT32',
  5: 'R_X86_64_COPY', 6: 'R_X86_64_GLOB_DAT', 7: 'R_X86_64_JUMP_SLOT', 8: 'R_X86_64_RELATIVE',
  9: 'R_X86_64_GOTPCREL', 10: 'R_X86_64_32', 11: 'R_X86_64_32S', 12: 'R_X86_64_16', 13: 'R_X86_64_PC16',
  14: 'R_X86_64_8', 15: 'R_X86_64_PC8', 16: 'R_X86_64_DTPMOD64', 17: 'R_X86_64_DTPOFF64',
  18: 'R_X86_64_TPOFF64', 19: 'R_X86_64_TLSGD', 20: 'R_X86_64_TLSLD', 21: 'R_X86_64_DTPOFF32',
  22: 'R_X86_64_GOTTPOFF', 23: 'R_X86_64_TPOFF32', 24: 'R_X86_64_PC64', 25: 'R_X86_64_GOTOFF64',
  26: 'R_X86_64_GOTPC32', 32: 'R_X86_64_SIZE32', 33: 'R_X86_64_SIZE64', 34: 'R_X86_64_GOTPC32_TLSDESC',
  35: 'R_X86_64_TLSDESC_CALL', 36: 'R_X86_64_TLSDESC', 37: 'R_X86_64_IRELATIVE', 38: 'R_X86_64_RELATIVE64',
  41: 'R_X86_64_GOTPCRELX', 42: 'R_X86_64_REX_GOTPCRELX',
});

/** The loader's page size (x86-64 base pages). */
export const ELF_PAGE_SIZE = 0x1000;
/** Default limit on an image's span, in bytes (64 MiB). */
export const DEFAULT_MAX_SPAN = 0x400_0000;
/** Virtual addresses must stay below the 47-bit canonical lower half. */
export const MAX_VADDR = 2n ** 47n;
