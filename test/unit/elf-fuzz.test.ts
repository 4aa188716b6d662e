// Fuzzes parseElf/load with seeded mutations of a gcc-built guest: every input must load cleanly or throw ElfInvalidError.
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigInvalidError, ElfInvalidError } from '../../src/errors.js';
import { parseElf, type ElfImage } from '../../src/elf/index.js';
import { buildPageTables, HYPERLIGHT_DEFAULTS, mappedRangesFor, planLayout } from '../../src/mem/x86_64/index.js';
import { compileGuest, GUEST_SOURCE, STATIC_EXEC_FLAGS, STATIC_PIE_FLAGS } from '../fixtures/elf/build-guest.js';
import { prng } from '../helpers/prng.js';

const ITERATIONS = 12_000;
const SENTINEL = 0xa5;
const GUARD = 0x1000;

/** Offsets worth hitting: ELF header fields, every program header field, .dynamic and .rela.dyn entries. */
function interestingOffsets(b: Uint8Array): number[] {
  const v = new DataView(b.buffer, b.byteOffset);
  const out = [4, 5, 6, 7, 16, 18, 20, 24, 32, 40, 48, 52, 54, 56, 58, 60, 62];
  const phoff = Number(v.getBigUint64(32, true));
  for (let i = 0; i < v.getUint16(56, true); i++) {
    const o = phoff + i * 56;
    out.push(o, o + 4, o + 8, o + 16, o + 24, o + 32, o + 40, o + 48);
    if (v.getUint32(o, true) === 2) {
      const dyn = Number(v.getBigUint64(o + 8, true));
      const size = Number(v.getBigUint64(o + 32, true));
      for (let d = dyn; d < dyn + size; d += 16) {
        out.push(d, d + 8);
        if (v.getBigUint64(d, true) === 7n) { // DT_RELA: a vaddr equal to its file offset in these guests
          const rela = Number(v.getBigUint64(d + 8, true));
          for (let r = rela; r < rela + 4 * 24 && r + 24 <= b.length; r += 24) out.push(r, r + 8, r + 16);
        }
      }
    }
  }
  return out;
}

const WIDTHS = [1, 2, 4, 8] as const;

function mutate(src: Uint8Array, offsets: readonly number[], rnd: () => number): Uint8Array {
  let b = src.slice();
  const count = 1 + Math.floor(rnd() * 3);
  for (let m = 0; m < count; m++) {
    const kind = rnd();
    if (kind < 0.25) {
      // Bit flip, mostly in the first 1 KiB (headers, program headers, .rela.dyn).
      const limit = rnd() < 0.8 ? Math.min(1024, b.length) : b.length;
      const at = Math.floor(rnd() * limit);
      b[at] = b[at]! ^ (1 << Math.floor(rnd() * 8));
    } else if (kind < 0.35) {
      b = b.slice(0, Math.floor(rnd() * b.length));
    } else {
      const at = offsets[Math.floor(rnd() * offsets.length)]!;
      const width = WIDTHS[Math.floor(rnd() * WIDTHS.length)]!;
      if (at + width > b.length) continue;
      const v = new DataView(b.buffer, b.byteOffset);
      const choice = rnd();
      const max = 2n ** BigInt(width * 8) - 1n;
      let value: bigint;
      if (choice < 0.25) value = 0n;
      else if (choice < 0.45) value = max;
      else if (choice < 0.65) value = BigInt(Math.floor(rnd() * 0x10000)) & max;
      else if (choice < 0.8) value = (BigInt(Math.floor(rnd() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(rnd() * 2 ** 32))) & max;
      else value = (1n << BigInt(Math.floor(rnd() * width * 8))) & max;
      if (width === 1) v.setUint8(at, Number(value));
      else if (width === 2) v.setUint16(at, Number(value), true);
      else if (width === 4) v.setUint32(at, Number(value), true);
      else v.setBigUint64(at, value, true);
    }
  }
  return b;
}

/** Whatever parses must also plan and map, or be refused by the planner with a typed error. */
function mapInto(img: ElfImage, i: number): void {
  let layout;
  try {
    layout = planLayout({ ...HYPERLIGHT_DEFAULTS, image: { span: img.span, fixedBase: img.fixedBase } });
  } catch (e) {
    if (e instanceof ElfInvalidError || e instanceof ConfigInvalidError) return;
    throw new Error(`iteration ${i}: planLayout threw ${String(e)}`, { cause: e });
  }
  const built = buildPageTables(mappedRangesFor(layout, img.segments), layout.pageTables);
  expect(built.used).toBeLessThanOrEqual(layout.pageTables.size);
}

function fuzz(src: Uint8Array, seed: number, iterations = ITERATIONS): { loaded: number; refused: number; messages: Set<string> } {
  const rnd = prng(seed);
  const offsets = interestingOffsets(src);
  let loaded = 0;
  let refused = 0;
  const messages = new Set<string>();
  for (let i = 0; i < iterations; i++) {
    const input = mutate(src, offsets, rnd);
    let img;
    try {
      img = parseElf(input, { maxSpan: 0x10_0000 });
    } catch (e) {
      if (!(e instanceof ElfInvalidError)) {
        throw new Error(`iteration ${i}: parseElf threw ${String(e)} instead of ElfInvalidError`, { cause: e });
      }
      refused++;
      messages.add(e.message.replace(/0x[0-9a-f]+|\d+/g, 'N'));
      continue;
    }
    const buf = new Uint8Array(GUARD + img.span + GUARD).fill(SENTINEL);
    const target = buf.subarray(GUARD, GUARD + img.span);
    img.load(target, img.fixedBase ?? 0x20_0000);
    for (let k = 0; k < GUARD; k++) {
      if (buf[k] !== SENTINEL || buf[GUARD + img.span + k] !== SENTINEL) {
        throw new Error(`iteration ${i}: load wrote outside its target`);
      }
    }
    mapInto(img, i);
    loaded++;
  }
  return { loaded, refused, messages };
}

describe('ELF fuzz', () => {
  let pie: Uint8Array;
  let exec: Uint8Array;
  beforeAll(() => {
    pie = compileGuest(GUEST_SOURCE, STATIC_PIE_FLAGS);
    exec = compileGuest(GUEST_SOURCE, STATIC_EXEC_FLAGS);
  });

  it(`mutates a static PIE ${ITERATIONS} times: load or ElfInvalidError, never a write outside`, () => {
    const r = fuzz(pie, 0x5eed_1234);
    expect(r.loaded + r.refused).toBe(ITERATIONS);
    // Both outcomes happen a lot, and the refusals come from many different checks.
    expect(r.loaded).toBeGreaterThan(ITERATIONS / 20);
    expect(r.refused).toBeGreaterThan(ITERATIONS / 4);
    expect(r.messages.size).toBeGreaterThan(20);
  }, 20_000);

  it('mutates an ET_EXEC guest 3000 times with the same guarantees', () => {
    const r = fuzz(exec, 42, 3000);
    expect(r.loaded + r.refused).toBe(3000);
    expect(r.loaded).toBeGreaterThan(100);
    expect(r.refused).toBeGreaterThan(500);
  }, 20_000);
});
