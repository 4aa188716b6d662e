// Runs the `elfy` parser over the ELF header and program headers and types its answer; it validates nothing beyond shape.
//
// elfy's one-shot `parse()` also parses the section headers and asserts that a
// section-name string table exists. A loader needs only the program headers, and a
// stripped image may have no sections at all, so only elfy's header and program-header
// steps are used. elfy reads u64 fields as JS numbers (imprecise above 2^53): callers
// must cross-check what comes back against the raw bytes.

import elfyModule from 'elfy';
import { ElfInvalidError } from '../errors.js';

export interface ElfyHeader {
  readonly class?: unknown;
  readonly endian?: unknown;
  readonly type?: unknown;
  readonly machine?: unknown;
  readonly entry?: unknown;
  readonly phoff?: unknown;
  readonly phentsize?: unknown;
  readonly phnum?: unknown;
}

export interface ElfyProgram {
  readonly type?: unknown;
  readonly offset?: unknown;
  readonly vaddr?: unknown;
  readonly filesz?: unknown;
  readonly memsz?: unknown;
  readonly align?: unknown;
  readonly flags?: unknown;
}

interface ElfyParser {
  parseHeader(buf: Buffer): unknown;
  parsePrograms(buf: Buffer, header: unknown): unknown;
}

// elfy is a CommonJS module without types (src/elf/elfy.d.ts declares it `unknown`): the
// default import is its module.exports in both the ESM and the CommonJS build.
const elfy = elfyModule as { Parser: new () => ElfyParser };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/**
 * Parses the header and program headers with elfy.
 * @throws ElfInvalidError (with `cause`) for anything elfy throws or an answer of the wrong shape.
 */
export function readWithElfy(bytes: Uint8Array): { header: ElfyHeader; programs: readonly ElfyProgram[] } {
  // FFI: none; a Buffer view sharing `bytes`' memory, read only, used only during this call.
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: unknown;
  let programs: unknown;
  try {
    const parser = new elfy.Parser();
    header = parser.parseHeader(buf);
    programs = parser.parsePrograms(buf, header);
  } catch (cause) {
    const what = cause instanceof Error ? cause.message : String(cause);
    throw new ElfInvalidError(`the ELF parser (elfy) rejected the file: ${what}`, { cause });
  }
  if (!isRecord(header) || !Array.isArray(programs) || !programs.every(isRecord)) {
    throw new ElfInvalidError('the ELF parser (elfy) returned an unexpected shape');
  }
  return { header, programs };
}
