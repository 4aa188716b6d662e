// The guest-function ELF notes: what the bundled guests declare, and malformed notes rejected with ElfInvalidError instead of read out of bounds; no KVM needed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ElfInvalidError } from '../../src/errors.js';
import { readElfNotes } from '../../src/elf/notes.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { declaredArguments, findGuestFunction, formatSignature, readGuestFunctions } from '../../src/sandbox/guest-functions.js';
import { ParameterValue as P } from '../../src/sandbox/values.js';

const simple = readFileSync(bundledGuestPath('simpleguest'));

/** The file offset of simpleguest's PT_NOTE segment and its size. */
function noteSegment(bytes: Uint8Array): { offset: number; size: number; phdr: number } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(v.getBigUint64(32, true));
  for (let i = 0; i < v.getUint16(56, true); i++) {
    const o = phoff + i * 56;
    if (v.getUint32(o, true) === 4) return { offset: Number(v.getBigUint64(o + 8, true)), size: Number(v.getBigUint64(o + 32, true)), phdr: o };
  }
  throw new Error('no PT_NOTE');
}

describe('guest function notes', () => {
  it("lists simpleguest's registered functions with their declared signatures", () => {
    const fns = readGuestFunctions(simple);
    const byName = new Map(fns.map((f) => [f.name, formatSignature(f)]));
    expect(byName.get('Echo')).toBe('Echo(String) -> String');
    expect(byName.get('Add')).toBe('Add(Int, Int) -> Int');
    expect(byName.get('LogMessage')).toBe('LogMessage(String, Long) -> Int');
    expect(byName.get('NoOp')).toBe('NoOp() -> Void');
    expect(byName.get('24K_in_8K_out')).toBe('24K_in_8K_out(VecBytes) -> VecBytes');
    expect(byName.get('RoundTripHostULong')).toBe('RoundTripHostULong(ULong) -> ULong');
    expect(byName.get('PrintElevenArgs'))
      .toBe('PrintElevenArgs(String, Int, Long, String, String, Bool, Bool, UInt, ULong, Int, Float) -> Int');
    // Every registration in hyperlight_main is declared: count them in the source.
    const source = readFileSync(new URL('../../guests/simpleguest/main.c', import.meta.url), 'utf8');
    const registrations = source.match(/^\s+HYPERLIGHT_REGISTER_(FUNCTION|TYPED)\("/gm) ?? [];
    expect(fns).toHaveLength(registrations.length);
    expect(fns.map((f) => f.name)).toEqual([...fns.map((f) => f.name)].sort());
  });

  it('findGuestFunction (one name, for call()) gives what readGuestFunctions lists, for every guest and name', () => {
    for (const g of ['simpleguest', 'hostileguest', 'dummyguest'] as const) {
      const bytes = readFileSync(bundledGuestPath(g));
      const all = readGuestFunctions(bytes);
      for (const f of all) expect(findGuestFunction(bytes, f.name), `${g} ${f.name}`).toEqual(f);
      expect(findGuestFunction(bytes, 'NoSuchFunction')).toBeUndefined();
      expect(findGuestFunction(bytes, 'Ech')).toBeUndefined(); // a prefix of a name is not the name
    }
    const b = GuestBinary.filePath(bundledGuestPath('simpleguest'));
    expect(b.declaredFunction('LogMessage')).toEqual({ name: 'LogMessage', params: ['String', 'Long'], returns: 'Int' });
    expect(b.declaredFunction('LogMessage')).toBe(b.declaredFunction('LogMessage'));
  });

  it('GuestBinary.functions() reads them once; a guest without the SDK declares none', () => {
    const b = GuestBinary.filePath(bundledGuestPath('simpleguest'));
    expect(b.functions()).toBe(b.functions());
    expect(Object.isFrozen(b.functions())).toBe(true);
    expect(GuestBinary.filePath(bundledGuestPath('dummyguest')).functions()).toEqual([]);
    expect(GuestBinary.filePath(bundledGuestPath('hostileguest')).functions().length).toBeGreaterThan(20);
  });

  it('every byte of the note segment cut short or a length field inflated is an ElfInvalidError, never a crash', () => {
    const { offset, size, phdr } = noteSegment(simple);
    expect(size).toBeGreaterThan(100);
    // A note whose descsz runs past the segment.
    const inflated = new Uint8Array(simple);
    new DataView(inflated.buffer).setUint32(offset + 4, 0xffff_fff0, true);
    expect(() => readElfNotes(inflated)).toThrow(ElfInvalidError);
    // A namesz that overflows 32-bit arithmetic.
    const namesz = new Uint8Array(simple);
    new DataView(namesz.buffer).setUint32(offset, 0xffff_ffff, true);
    expect(() => readElfNotes(namesz)).toThrow(/runs past the end of its PT_NOTE segment/);
    // PT_NOTE beyond the end of the file.
    const outside = new Uint8Array(simple);
    new DataView(outside.buffer).setBigUint64(phdr + 32, BigInt(simple.length), true);
    expect(() => readElfNotes(outside)).toThrow(/outside the file/);
    // A truncated segment: every shorter p_filesz either reads whole notes or throws ElfInvalidError.
    for (let cut = 0; cut < size; cut += 7) {
      const t = new Uint8Array(simple);
      new DataView(t.buffer).setBigUint64(phdr + 32, BigInt(cut), true);
      try {
        expect(readGuestFunctions(t).length).toBeLessThanOrEqual(readGuestFunctions(simple).length);
      } catch (e) {
        expect(e, `cut ${cut}`).toBeInstanceOf(ElfInvalidError);
      }
    }
  });

  it('rejects a signature record of another version, an unknown type, and a name that is not UTF-8', () => {
    const { offset, size } = noteSegment(simple);
    const v = new DataView(simple.buffer, simple.byteOffset);
    /** File offset of the descriptor of the first record of `type` (12 header bytes, owner padded to 12). */
    const firstDesc = (type: number): number => {
      for (let at = offset; at < offset + size;) {
        const descsz = v.getUint32(at + 4, true);
        if (v.getUint32(at + 8, true) === type) return at + 24;
        at += 24 + Math.ceil(descsz / 4) * 4;
      }
      throw new Error(`no record of type ${type}`);
    };
    const mutate = (at: number, byte: number): Uint8Array => { const m = new Uint8Array(simple); m[at] = byte; return m; };
    expect(() => readGuestFunctions(mutate(firstDesc(1), 2))).toThrow(/version 2 is not 1/);
    expect(() => readGuestFunctions(mutate(firstDesc(1) + 1, 10))).toThrow(/return type 10 is unknown/);
    expect(() => readGuestFunctions(mutate(firstDesc(1) + 2, 12))).toThrow(/12 parameters, more than 11/);
    expect(() => readGuestFunctions(mutate(firstDesc(2), 0xff))).toThrow(/a name record is not UTF-8/);
  });

  it('declaredArguments converts plain values to the declared types and names the signature on a mismatch', () => {
    const log = readGuestFunctions(simple).find((f) => f.name === 'LogMessage')!;
    expect(declaredArguments(log, 'Int', ['hi', 3])).toEqual([P.String('hi'), P.Long(3n)]);
    expect(() => declaredArguments(log, 'String', ['hi', 3])).toThrow(/LogMessage\(String, Long\) -> Int \(declared in its ELF\) returns Int, the caller expected String/);
    expect(() => declaredArguments(log, 'Int', ['hi'])).toThrow(/takes 2 arguments, got 1/);
    expect(() => declaredArguments(log, 'Int', ['hi', 'x'])).toThrow(/argument 1 of LogMessage\(String, Long\) -> Int: Long expects/);
    expect(() => declaredArguments(log, 'Int', ['hi', 1.5])).toThrow(expect.objectContaining({ code: 'ERR_PARAMETER_TYPE_MISMATCH' }));
  });
});
