// Public face of the ELF layer: parse and validate a guest ELF, then load it; it knows nothing of KVM or guest memory layout.

export { parseElf, type ParseElfOptions } from './parse.js';
export { ElfImage, type ElfSegment, type ElfRelocation } from './image.js';
export { DEFAULT_MAX_SPAN, R_X86_64_NAMES, R_X86_64_NONE, R_X86_64_RELATIVE } from './constants.js';
export { readFunctionSymbols, nearestSymbol, type ElfSymbol } from './symbols.js';
