// Reads the ELF notes of PT_NOTE segments (gABI "Note Section"), every length bounds-checked against the segment; it interprets no note's contents.
import { ElfInvalidError } from '../errors.js';
import { PT_NOTE } from './constants.js';
import { readProgramHeaders } from './parse.js';

/**
 * One note: its owner (the name field up to its NUL, one character per byte), type, and
 * where its descriptor lies in the file (offsets, not a view: parsing thousands of
 * binaries with a view per note showed up as RSS growth).
 */
export interface ElfNote {
  readonly owner: string;
  readonly type: number;
  /** File offset of the descriptor; descOffset + descSize <= the file's length. */
  readonly descOffset: number;
  readonly descSize: number;
}

/** n rounded up to a multiple of 4 (arithmetic, not bitwise: n may exceed 2^31). */
const pad4 = (n: number): number => Math.ceil(n / 4) * 4;

/** Where one note lies in the file: its owner name (without the NUL), type and descriptor. */
export interface ElfNoteSpan {
  readonly ownerOffset: number;
  /** Bytes of the owner name before its NUL (or the whole name field when it has none). */
  readonly ownerSize: number;
  readonly type: number;
  readonly descOffset: number;
  readonly descSize: number;
}

/**
 * Calls `visit` for every note in the file's PT_NOTE segments, in file order, until it
 * returns true; allocates nothing per note beyond the span object.
 * @throws ElfInvalidError for a bad ELF header, a PT_NOTE outside the file, or a note
 *   whose name or descriptor runs past the end of its segment.
 */
export function forEachElfNote(bytes: Uint8Array, visit: (note: ElfNoteSpan) => boolean | void): void {
  // FFI: none; a read-only DataView over the caller's bytes, used only during this call.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const p of readProgramHeaders(bytes)) {
    if (p.type !== PT_NOTE || p.filesz === 0n) continue;
    if (p.offset + p.filesz > BigInt(bytes.length)) {
      throw new ElfInvalidError(`PT_NOTE (program header ${p.index}) lies outside the file`);
    }
    const end = Number(p.offset + p.filesz);
    let at = Number(p.offset);
    while (at + 12 <= end) {
      const namesz = view.getUint32(at, true);
      const descsz = view.getUint32(at + 4, true);
      const type = view.getUint32(at + 8, true);
      const nameAt = at + 12;
      const descAt = nameAt + pad4(namesz);
      if (namesz > end - nameAt || descAt > end || descsz > end - descAt) {
        throw new ElfInvalidError(`note at file offset 0x${at.toString(16)} runs past the end of its PT_NOTE segment`);
      }
      let ownerSize = 0;
      while (ownerSize < namesz && bytes[nameAt + ownerSize] !== 0) ownerSize++;
      if (visit({ ownerOffset: nameAt, ownerSize, type, descOffset: descAt, descSize: descsz }) === true) return;
      at = descAt + pad4(descsz);
    }
  }
}

/**
 * Every note in the file's PT_NOTE segments, in file order (see forEachElfNote).
 * @throws ElfInvalidError as forEachElfNote does.
 */
export function readElfNotes(bytes: Uint8Array): ElfNote[] {
  const notes: ElfNote[] = [];
  forEachElfNote(bytes, (n) => {
    let owner = '';
    for (let i = 0; i < n.ownerSize; i++) owner += String.fromCharCode(bytes[n.ownerOffset + i]!);
    notes.push({ owner, type: n.type, descOffset: n.descOffset, descSize: n.descSize });
  });
  return notes;
}
