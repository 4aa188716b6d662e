// A validated guest ELF image and its loader into a caller-given byte range; it parses nothing (see parse.ts) and knows no guest memory layout.

import { type ElfSymbol, readFunctionSymbols } from './symbols.js';
import { ConfigInvalidError, ElfInvalidError, GuestMemoryBoundsError } from '../errors.js';
import { ELF_PAGE_SIZE, R_X86_64_RELATIVE } from './constants.js';

/** One PT_LOAD segment, placed relative to the image base. */
export interface ElfSegment {
  /** Bytes from the image base (link address `linkBase`) to the segment's first byte. */
  readonly offsetInImage: number;
  /** Link-time virtual address (p_vaddr). */
  readonly vaddr: number;
  /** Where its initialised bytes start in the file (p_offset). */
  readonly fileOffset: number;
  /** Initialised bytes (p_filesz); the rest up to memSize is zero (BSS). */
  readonly fileSize: number;
  /** Bytes in memory (p_memsz), >= fileSize. */
  readonly memSize: number;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly executable: boolean;
}

/** A dynamic relocation accepted by the loader. */
export interface ElfRelocation {
  /** R_X86_64_RELATIVE (8) or R_X86_64_NONE (0). */
  readonly type: number;
  /** Bytes from the image base to the 8-byte field patched (RELATIVE), in [0, span - 8]. */
  readonly offsetInImage: number;
  /** r_addend, signed 64-bit. */
  readonly addend: bigint;
}

export interface ElfImageFields {
  readonly type: 'dyn' | 'exec';
  readonly entryOffset: number;
  readonly span: number;
  readonly firstVaddr: number;
  readonly linkBase: number;
  readonly segments: readonly ElfSegment[];
  readonly relocations: readonly ElfRelocation[];
}

/**
 * A guest ELF64 x86-64 image that passed every check in `parseElf`. Holds its own copy of
 * the file bytes, so later changes to the caller's buffer cannot affect loading.
 */
const symbolCache = new WeakMap<ElfImage, readonly ElfSymbol[]>();

export class ElfImage implements ElfImageFields {
  /** 'dyn' (ET_DYN, a static PIE: loads anywhere page-aligned) or 'exec' (ET_EXEC: fixed address). */
  readonly type: 'dyn' | 'exec';
  /** Bytes from the image base to the entry point (e_entry - linkBase). */
  readonly entryOffset: number;
  /** Bytes from linkBase to the page-rounded end of the last PT_LOAD. */
  readonly span: number;
  /** p_vaddr of the first PT_LOAD. */
  readonly firstVaddr: number;
  /** firstVaddr rounded down to 4 KiB: the link-time address of image offset 0. */
  readonly linkBase: number;
  /** For ET_EXEC: the guest address the image must be loaded at (= linkBase). */
  readonly fixedBase: number | undefined;
  /** PT_LOAD segments with a non-zero memSize, in address order. */
  readonly segments: readonly ElfSegment[];
  /** From DT_RELA (and DT_JMPREL): only R_X86_64_RELATIVE / R_X86_64_NONE survive parsing. */
  readonly relocations: readonly ElfRelocation[];
  readonly #file: Uint8Array;

  /** Use `parseElf`; this constructor trusts its already validated arguments. */
  constructor(fields: ElfImageFields, file: Uint8Array) {
    this.type = fields.type;
    this.entryOffset = fields.entryOffset;
    this.span = fields.span;
    this.firstVaddr = fields.firstVaddr;
    this.linkBase = fields.linkBase;
    this.fixedBase = fields.type === 'exec' ? fields.linkBase : undefined;
    this.segments = Object.freeze(fields.segments.map((s) => Object.freeze({ ...s })));
    this.relocations = Object.freeze(fields.relocations.map((r) => Object.freeze({ ...r })));
    this.#file = file.slice();
    Object.freeze(this);
  }

  /** The ELF's function symbols (.symtab STT_FUNC), sorted by address; [] for a stripped file. Read once. */
  functionSymbols(): readonly ElfSymbol[] {
    let syms = symbolCache.get(this);
    if (!syms) symbolCache.set(this, (syms = Object.freeze(readFunctionSymbols(this.#file))));
    return syms;
  }

  /**
   * Writes the image into `target[0, span)`: zeroes it (BSS and gaps), copies each
   * segment's file bytes, then applies the RELATIVE relocations for an image whose first
   * byte sits at guest address `base` (value = base - linkBase + addend, mod 2^64).
   * Never writes at or beyond `target[span]`.
   * @param target the image region only (e.g. a subarray of guest memory), length >= span.
   * @param base guest address of target[0]: 4 KiB aligned; for ET_EXEC it must be `fixedBase`.
   * @throws GuestMemoryBoundsError when target is shorter than span; ConfigInvalidError for a
   *   bad base; ElfInvalidError when an ET_EXEC image is not loaded at its fixed base.
   */
  load(target: Uint8Array, base: number): void {
    if (!(target instanceof Uint8Array) || target.length < this.span) {
      throw new GuestMemoryBoundsError(0, this.span, target instanceof Uint8Array ? target.length : 0,
        'the image target');
    }
    if (!Number.isSafeInteger(base) || base < 0 || base % ELF_PAGE_SIZE !== 0 ||
        !Number.isSafeInteger(base + this.span)) {
      throw new ConfigInvalidError('base', `must be a 4 KiB aligned guest address, got ${String(base)}`);
    }
    if (this.fixedBase !== undefined && base !== this.fixedBase) {
      throw new ElfInvalidError(`an ET_EXEC image must be loaded at its link address ` +
        `0x${this.fixedBase.toString(16)}, not 0x${base.toString(16)}`);
    }
    const image = target.subarray(0, this.span);
    image.fill(0);
    for (const s of this.segments) {
      image.set(this.#file.subarray(s.fileOffset, s.fileOffset + s.fileSize), s.offsetInImage);
    }
    // FFI: none; a DataView over the caller's image bytes, `span` long, used only here.
    const view = new DataView(image.buffer, image.byteOffset, this.span);
    const delta = BigInt(base) - BigInt(this.linkBase);
    for (const r of this.relocations) {
      if (r.type !== R_X86_64_RELATIVE) continue;
      view.setBigUint64(r.offsetInImage, BigInt.asUintN(64, delta + r.addend), true);
    }
  }
}
