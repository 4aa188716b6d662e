// Unit tests of the ELF parser and loader on gcc-built guests and hand-broken copies of them (no KVM).
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ElfInvalidError, GuestMemoryBoundsError } from '../../src/errors.js';
import { parseElf, R_X86_64_RELATIVE, type ElfImage } from '../../src/elf/index.js';
import { readWithElfy } from '../../src/elf/elfy-reader.js';
import { HYPERLIGHT_DEFAULTS, mappedRangesFor, planLayout } from '../../src/mem/x86_64/index.js';
import { compileGuest, GUEST_SOURCE, STATIC_EXEC_FLAGS, STATIC_PIE_FLAGS } from '../fixtures/elf/build-guest.js';

let pie: Uint8Array;
let exec: Uint8Array;

beforeAll(() => {
  pie = compileGuest(GUEST_SOURCE, STATIC_PIE_FLAGS);
  exec = compileGuest(GUEST_SOURCE, STATIC_EXEC_FLAGS);
});

const u16 = (b: Uint8Array, o: number): number => new DataView(b.buffer, b.byteOffset).getUint16(o, true);
const u64 = (b: Uint8Array, o: number): bigint => new DataView(b.buffer, b.byteOffset).getBigUint64(o, true);
const setU16 = (b: Uint8Array, o: number, v: number): void => new DataView(b.buffer, b.byteOffset).setUint16(o, v, true);
const setU32 = (b: Uint8Array, o: number, v: number): void => new DataView(b.buffer, b.byteOffset).setUint32(o, v, true);
const setU64 = (b: Uint8Array, o: number, v: bigint): void => new DataView(b.buffer, b.byteOffset).setBigUint64(o, v, true);

/** File offsets of the program headers of `type` (1 PT_LOAD, 2 PT_DYNAMIC). */
function phdrsOf(b: Uint8Array, type: number): number[] {
  const phoff = Number(u64(b, 32));
  const out: number[] = [];
  for (let i = 0; i < u16(b, 56); i++) {
    const o = phoff + i * 56;
    if (new DataView(b.buffer, b.byteOffset).getUint32(o, true) === type) out.push(o);
  }
  return out;
}

/** File offset of the d_val of dynamic tag `tag`. */
function dynValue(b: Uint8Array, tag: bigint): number {
  const dyn = phdrsOf(b, 2)[0]!;
  const start = Number(u64(b, dyn + 8));
  for (let o = start; o < start + Number(u64(b, dyn + 32)); o += 16) if (u64(b, o) === tag) return o + 8;
  throw new Error(`no tag ${tag}`);
}

/** File offset of the first Elf64_Rela entry (DT_RELA is a vaddr; the first segment maps 1:1). */
const firstRela = (b: Uint8Array): number => Number(u64(b, dynValue(b, 7n)));

function mutated(edit: (b: Uint8Array) => void, from: Uint8Array = pie): Uint8Array {
  const b = from.slice();
  edit(b);
  return b;
}

function refusal(bytes: Uint8Array, opts?: { maxSpan?: number }): ElfInvalidError {
  try {
    parseElf(bytes, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ElfInvalidError);
    expect((e as ElfInvalidError).code).toBe('ERR_ELF_INVALID');
    return e as ElfInvalidError;
  }
  throw new Error('expected ElfInvalidError');
}

describe('parseElf on a static PIE', () => {
  let img: ElfImage;
  beforeAll(() => { img = parseElf(pie); });

  it('describes the image', () => {
    expect(img.type).toBe('dyn');
    expect(img.fixedBase).toBeUndefined();
    expect(img.linkBase).toBe(0);
    expect(img.firstVaddr).toBe(0);
    expect(img.span % 0x1000).toBe(0);
    expect(img.entryOffset).toBe(Number(u64(pie, 24)));
    const last = img.segments[img.segments.length - 1]!;
    expect(img.span).toBe(Math.ceil((last.offsetInImage + last.memSize) / 0x1000) * 0x1000);
    expect(img.segments.map((s) => `${s.readable ? 'r' : '-'}${s.writable ? 'w' : '-'}${s.executable ? 'x' : '-'}`))
      .toEqual(['r--', 'r-x', 'r--', 'rw-']);
    expect(last.memSize).toBeGreaterThan(last.fileSize); // .bss
    expect(img.relocations.filter((r) => r.type === R_X86_64_RELATIVE)).toHaveLength(2);
  });

  it('loads segments, zeroes BSS and applies RELATIVE relocations for the given base', () => {
    const base = 0x6000;
    const target = new Uint8Array(img.span).fill(0xcc);
    img.load(target, base);
    const view = new DataView(target.buffer);
    for (const s of img.segments) {
      expect(target.subarray(s.offsetInImage, s.offsetInImage + 16)).toEqual(
        pie.subarray(s.fileOffset, s.fileOffset + 16).map((v, i) =>
          img.relocations.some((r) => r.offsetInImage <= s.offsetInImage + i && s.offsetInImage + i < r.offsetInImage + 8) ? target[s.offsetInImage + i]! : v));
      expect(target.subarray(s.offsetInImage + s.fileSize, s.offsetInImage + s.memSize).every((v) => v === 0)).toBe(true);
    }
    const text = new TextDecoder();
    const pointers = img.relocations.map((r) => view.getBigUint64(r.offsetInImage, true));
    for (const [i, r] of img.relocations.entries()) expect(pointers[i]).toBe(BigInt(base) + r.addend);
    // One pointer is msg -> the string, the other ptr -> value (42).
    const strings = pointers.map((p) => text.decode(target.subarray(Number(p) - base, Number(p) - base + 20)));
    expect(strings).toContain('hello from the guest');
    const ints = pointers.map((p) => view.getInt32(Number(p) - base, true));
    expect(ints).toContain(42);
    // Gaps between segments and BSS are zero: every byte outside the segments' file bytes.
    const fromFile = (i: number): boolean => img.segments.some((s) => i >= s.offsetInImage && i < s.offsetInImage + s.fileSize);
    let nonZeroOutside = 0;
    for (let i = 0; i < img.span; i++) if (!fromFile(i) && target[i] !== 0) nonZeroOutside++;
    expect(nonZeroOutside).toBe(0);
  });

  it('relocates relative to the page-aligned first vaddr at any base', () => {
    for (const base of [0, 0x1000, 0x40_0000, 2 ** 40]) {
      const target = new Uint8Array(img.span);
      img.load(target, base);
      for (const r of img.relocations) {
        expect(new DataView(target.buffer).getBigUint64(r.offsetInImage, true)).toBe(BigInt(base) + r.addend);
      }
    }
  });

  it('never writes outside the target', () => {
    const big = new Uint8Array(img.span + 0x3000).fill(0xa5);
    img.load(big.subarray(0x1000, 0x1000 + img.span), 0x6000);
    expect(big.subarray(0, 0x1000).every((v) => v === 0xa5)).toBe(true);
    expect(big.subarray(0x1000 + img.span).every((v) => v === 0xa5)).toBe(true);
  });

  it('checks the load arguments', () => {
    expect(() => img.load(new Uint8Array(img.span - 1), 0)).toThrow(GuestMemoryBoundsError);
    expect(() => img.load(new Uint8Array(img.span), 0x800)).toThrow(/4 KiB aligned/);
    expect(() => img.load(new Uint8Array(img.span), -4096)).toThrow(/4 KiB aligned/);
  });

  it('feeds mappedRangesFor with W^X pages', () => {
    const layout = planLayout({ ...HYPERLIGHT_DEFAULTS, image: { span: img.span } });
    const image = mappedRangesFor(layout, img.segments).filter((r) => r.name?.startsWith('image'));
    expect(image.some((r) => r.executable && !r.writable)).toBe(true);
    expect(image.some((r) => r.writable && !r.executable)).toBe(true);
  });

  it('keeps its own copy of the file', () => {
    const copy = pie.slice();
    const own = parseElf(copy);
    copy.fill(0);
    const target = new Uint8Array(own.span);
    own.load(target, 0);
    expect(target.subarray(0, 4)).toEqual(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]));
  });
});

describe('parseElf on an ET_EXEC guest', () => {
  it('has a fixed base and loads only there', () => {
    const img = parseElf(exec);
    expect(img.type).toBe('exec');
    expect(img.fixedBase).toBe(0x40_0000);
    expect(img.linkBase).toBe(0x40_0000);
    expect(img.entryOffset).toBe(Number(u64(exec, 24)) - 0x40_0000);
    const layout = planLayout({ ...HYPERLIGHT_DEFAULTS, image: { span: img.span, fixedBase: img.fixedBase } });
    expect(layout.image.gpa).toBe(0x40_0000);
    const memory = new Uint8Array(layout.totalSize);
    img.load(memory.subarray(layout.image.gpa, layout.image.gpa + img.span), layout.image.gpa);
    expect(memory.subarray(0x40_0000, 0x40_0004)).toEqual(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]));
    expect(() => img.load(new Uint8Array(img.span), 0x6000)).toThrow(ElfInvalidError);
  });
});

describe('parseElf refusals', () => {
  it('refuses /bin/true as dynamically linked', () => {
    if (!existsSync('/bin/true')) throw new Error('/bin/true is missing');
    const e = refusal(new Uint8Array(readFileSync('/bin/true')));
    expect(e.message).toMatch(/dynamically linked.*interpreter/);
    expect(e.message).toMatch(/ld-linux/);
  });

  it.each<[string, (b: Uint8Array) => void, RegExp]>([
    ['magic', (b) => { b[1] = 0x46; }, /no ELF magic/],
    ['ELF32', (b) => { b[4] = 1; }, /ELF32/],
    ['big-endian', (b) => { b[5] = 2; }, /big-endian/],
    ['ident version', (b) => { b[6] = 0; }, /identification version/],
    ['ET_REL', (b) => setU16(b, 16, 1), /relocatable/],
    ['ET_CORE', (b) => setU16(b, 16, 4), /core dump/],
    ['machine', (b) => setU16(b, 18, 3), /not x86-64/],
    ['e_version', (b) => setU32(b, 20, 2), /e_version/],
    ['e_ehsize', (b) => setU16(b, 52, 52), /e_ehsize/],
    ['phentsize', (b) => setU16(b, 54, 32), /e_phentsize is 32/],
    ['phnum 0', (b) => setU16(b, 56, 0), /no program headers/],
    ['PN_XNUM', (b) => setU16(b, 56, 0xffff), /PN_XNUM/],
    ['phoff outside', (b) => setU64(b, 32, 0xffff_ffff_ffff_0000n), /outside the file/],
    ['filesz > memsz', (b) => { const p = phdrsOf(b, 1)[3]!; setU64(b, p + 32, u64(b, p + 40) + 1n); }, /exceeds p_memsz/],
    ['offset outside file', (b) => { const p = phdrsOf(b, 1)[1]!; setU64(b, p + 8, 0x10_0000n); }, /outside the file/],
    ['huge offset', (b) => { const p = phdrsOf(b, 1)[1]!; setU64(b, p + 8, 2n ** 60n); }, /too large/],
    ['align not power of 2', (b) => { const p = phdrsOf(b, 1)[1]!; setU64(b, p + 48, 0x3000n); }, /power of two/],
    ['vaddr vs offset', (b) => { const p = phdrsOf(b, 1)[1]!; setU64(b, p + 16, u64(b, p + 16) + 0x10n); }, /differ modulo/],
    ['overlap', (b) => { const p = phdrsOf(b, 1)[1]!; setU64(b, p + 16, 0n); setU64(b, p + 8, 0n); }, /overlaps or precedes/],
    ['W+X segment', (b) => setU32(b, phdrsOf(b, 1)[1]! + 4, 7), /writable and executable/],
    ['W+X shared page', (b) => { const p = phdrsOf(b, 1)[2]!; setU32(b, p + 4, 6); setU32(b, phdrsOf(b, 1)[1]! + 4, 5);
      const q = phdrsOf(b, 1)[1]!; setU64(b, p + 16, u64(b, q + 16) + 0x100n); setU64(b, p + 8, u64(b, q + 8) + 0x100n); }, /shares the page 0x1000 .*W\^X/],
    ['W+X across a chain of small segments in one page', (b) => {
      const [s0, s1, s2] = phdrsOf(b, 1) as [number, number, number];
      setU32(b, s0 + 4, 6);
      for (const [p, at, flags] of [[s1, 0x300n, 4], [s2, 0x400n, 5]] as const) {
        setU32(b, p + 4, flags); setU64(b, p + 8, at); setU64(b, p + 16, at); setU64(b, p + 32, 0x10n); setU64(b, p + 40, 0x10n);
      }
      setU64(b, 24, 0x400n);
    }, /program header 2\) shares the page 0x0 with a previous segment/],
    ['no PT_LOAD', (b) => { for (const p of phdrsOf(b, 1)) setU32(b, p, 4); }, /no loadable segment/],
    ['entry outside', (b) => setU64(b, 24, 0n), /entry point 0x0 is not inside/],
    ['entry in BSS', (b) => setU64(b, 24, 0x3fffn), /entry point/],
    ['PT_INTERP', (b) => setU32(b, phdrsOf(b, 1)[0]!, 3), /interpreter/],
    ['DT_NEEDED', (b) => setU64(b, dynValue(b, 0x6ffffef5n) - 8, 1n), /DT_NEEDED/],
    ['DT_RELAENT', (b) => setU64(b, dynValue(b, 9n), 16n), /DT_RELAENT is 16/],
    ['DT_RELASZ', (b) => setU64(b, dynValue(b, 8n), 25n), /not a multiple of 24/],
    ['DT_RELA outside', (b) => setU64(b, dynValue(b, 7n), 0x9_0000n), /not inside the file bytes/],
    ['DT_REL', (b) => setU64(b, dynValue(b, 0x6ffffef5n) - 8, 17n), /DT_REL relocations/],
    ['DT_RELR', (b) => setU64(b, dynValue(b, 0x6ffffef5n) - 8, 36n), /DT_RELR/],
    ['R_X86_64_64', (b) => setU64(b, firstRela(b) + 8, 1n), /unsupported relocation type 1 \(R_X86_64_64\)/],
    ['R_X86_64_IRELATIVE', (b) => setU64(b, firstRela(b) + 8, 37n), /type 37 \(R_X86_64_IRELATIVE\)/],
    ['unknown reloc', (b) => setU64(b, firstRela(b) + 8, 0xbeefn), /type 48879 \(unknown\)/],
    ['RELATIVE with symbol', (b) => setU64(b, firstRela(b) + 8, (3n << 32n) | 8n), /names symbol 3/],
    ['reloc target outside', (b) => setU64(b, firstRela(b), 0x10_0000n), /relocation target 0x100000/],
    ['reloc target at span end', (b) => { const p = phdrsOf(b, 1)[3]!; setU64(b, firstRela(b), u64(b, p + 16) + u64(b, p + 40) - 4n); }, /relocation target/],
  ])('refuses %s', (_name, edit, message) => {
    expect(refusal(mutated(edit)).message).toMatch(message);
  });

  it('refuses truncated files', () => {
    expect(refusal(pie.subarray(0, 10)).message).toMatch(/shorter than an ELF64 header/);
    expect(refusal(pie.subarray(0, 200)).message).toMatch(/outside the file/);
    expect(refusal(pie.subarray(0, 0x1010)).message).toMatch(/outside the file/);
  });

  it('enforces the span limit', () => {
    expect(refusal(pie, { maxSpan: 0x1000 }).message).toMatch(/more than the limit 0x1000/);
    expect(refusal(pie, { maxSpan: 0 }).message).toMatch(/maxSpan/);
    const far = mutated((b) => { const p = phdrsOf(b, 1)[3]!; setU64(b, p + 40, 0x800_0000n); });
    expect(refusal(far).message).toMatch(/spans 0x8004000 bytes/);
  });

  it('refuses non-byte input', () => {
    expect(refusal('ELF' as unknown as Uint8Array).message).toMatch(/Uint8Array/);
  });

  it('wraps what elfy throws into ElfInvalidError with the cause', () => {
    const short = new Uint8Array(20);
    short.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    let caught: unknown;
    try { readWithElfy(short); } catch (e) { caught = e; }
    expect(caught).toBeInstanceOf(ElfInvalidError);
    expect((caught as Error).message).toMatch(/elfy/);
    expect((caught as Error).cause).toBeInstanceOf(Error);
  });

  it('accepts an image without section headers (elfy would assert on them)', () => {
    const img = parseElf(mutated((b) => { setU64(b, 40, 0n); setU16(b, 60, 0); setU16(b, 62, 0); }));
    expect(img.type).toBe('dyn');
  });
});
