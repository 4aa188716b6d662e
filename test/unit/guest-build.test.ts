// Checks the guest build: reproducible bundled binaries, buildGuest == Makefile, ELF shape, ABI header names.
// Needs gcc, binutils and musl-dev, not make: the bundled guests are rebuilt with buildGuest (the
// Makefile's recipes are checked to be the same command line), so a fresh machine runs it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GUEST_CFLAGS, GUEST_LDFLAGS, GuestBuildError, MUSL_LIB, buildGuest, guestGccArgs, sdkSources,
} from '../../src/cli/build-guest.js';
import { HyperlightError } from '../../src/errors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const GUESTS = join(ROOT, 'guests');
const BUNDLED = ['simpleguest', 'dummyguest', 'hostileguest'] as const;

/** Each bundled guest's directory under guests/ and whether it links the SDK (and musl). */
const GUEST_DIRS: Record<(typeof BUNDLED)[number], { dir: string; sdk: boolean }> = {
  simpleguest: { dir: 'simpleguest', sdk: true }, hostileguest: { dir: 'hostile', sdk: true }, dummyguest: { dir: 'dummyguest', sdk: false },
};

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hl-guest-build-'));
  mkdirSync(join(dir, 'rebuilt'));
  for (const name of BUNDLED) {
    const { dir: sub, sdk } = GUEST_DIRS[name];
    const output = join(dir, 'rebuilt', `${name}.elf`);
    if (sdk) {
      buildGuest({ output, sources: [join(GUESTS, sub, 'main.c')] });
      continue;
    }
    // The dummy guest links no SDK code and no C library: buildGuest's command line without them.
    const include = execFileSync('gcc', ['-print-file-name=include'], { encoding: 'utf8' }).trim();
    const sdkFiles = new Set(sdkSources(GUESTS));
    const args = guestGccArgs({ output, sources: [join(GUESTS, sub, 'main.c')] }, GUESTS, include, 'LIBGCC')
      .filter((a) => !sdkFiles.has(a) && a !== 'LIBGCC' && a !== `${MUSL_LIB}/libc.a`);
    execFileSync('gcc', args, { cwd: GUESTS, stdio: 'pipe' });
  }
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

function bundled(name: string): Buffer {
  return readFileSync(join(GUESTS, 'bin', `${name}.elf`));
}

/** A Makefile variable defined with `:=` over backslash-continued lines, split on spaces. */
function makeVar(name: string): string[] {
  const text = readFileSync(join(GUESTS, 'Makefile'), 'utf8').replace(/\\\n/g, ' ');
  const line = text.split('\n').find((l) => l.startsWith(`${name} :=`));
  if (!line) throw new Error(`${name} not in the Makefile`);
  return line.slice(name.length + 3).trim().split(/\s+/);
}

describe('guest build', () => {
  it('keeps the Makefile flags and GUEST_CFLAGS/GUEST_LDFLAGS identical', () => {
    expect(makeVar('GUEST_CFLAGS')).toEqual([...GUEST_CFLAGS]);
    expect(makeVar('GUEST_LDFLAGS')).toEqual([...GUEST_LDFLAGS]);
  });

  it('rebuilds byte-identical copies of the committed guests/bin binaries', () => {
    for (const name of BUNDLED) {
      const rebuilt = readFileSync(join(dir, 'rebuilt', `${name}.elf`));
      expect(rebuilt.equals(bundled(name)), `${name}.elf differs: run make -C guests and commit`).toBe(true);
    }
  });

  it('the Makefile builds each bundled guest with the command line buildGuest uses', () => {
    // With the flags equal (above), the same recipe means the same ELF: buildGuest's order is
    // flags, includes, prefix map, -o, SDK sources, the guest's sources, libc and libgcc, link flags.
    const text = readFileSync(join(GUESTS, 'Makefile'), 'utf8').replace(/\\\n/g, ' ');
    const recipe = (target: string): string | undefined => {
      const lines = text.split('\n');
      const at = lines.findIndex((l) => l.startsWith(`$(OUT)/${target}.elf:`));
      return at < 0 ? undefined : lines[at + 1]?.trim();
    };
    for (const name of BUNDLED) {
      const { dir: sub, sdk } = GUEST_DIRS[name];
      expect(recipe(name), `the Makefile's ${name} recipe`).toBe(sdk
        ? `$(GUEST_CC) $(GUEST_CFLAGS) $(INCLUDES) $(PREFIX_MAP) -o $@ $(SDK_SRCS) ${sub}/main.c $(LIBS) $(GUEST_LDFLAGS)`
        : `$(GUEST_CC) $(GUEST_CFLAGS) $(INCLUDES) $(PREFIX_MAP) -o $@ ${sub}/main.c $(GUEST_LDFLAGS)`);
    }
    expect(text).toContain('INCLUDES := -isystem $(MUSL_INCLUDE) -isystem $(GCC_INCLUDE) -I sdk/include');
    expect(text).toContain('LIBS := $(MUSL_LIB)/libc.a $(LIBGCC)');
    expect(text).toContain('SDK_SRCS := $(sort $(wildcard sdk/src/*.c sdk/src/*.S))');
  });

  it('builds the hello-world guest of docs/guest-sdk.md', () => {
    const doc = readFileSync(join(ROOT, 'docs/guest-sdk.md'), 'utf8');
    const code = /```c\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(code).toBeDefined();
    expect(code?.split('\n').length).toBeLessThan(30);
    const src = join(dir, 'hello.c');
    writeFileSync(src, code ?? '');
    const out = join(dir, 'hello.elf');
    buildGuest({ output: out, sources: [src], optimize: 's' });
    expect(readFileSync(out).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  });

  it('throws GuestBuildError with gcc diagnostics on a broken source', () => {
    const src = join(dir, 'broken.c');
    writeFileSync(src, 'void hyperlight_main(void) { this is not C; }\n');
    let caught: unknown;
    try {
      buildGuest({ output: join(dir, 'broken.elf'), sources: [src] });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(GuestBuildError);
    expect(caught).toBeInstanceOf(HyperlightError);
    const err = caught as GuestBuildError;
    expect(err.code).toBe('ERR_GUEST_BUILD');
    expect(err.stderr).toMatch(/error/);
    expect(() => buildGuest({ output: join(dir, 'x.elf'), sources: [join(dir, 'missing.c')] }))
      .toThrow(GuestBuildError);
    expect(() => buildGuest({ output: join(dir, 'x.elf'), sources: [] })).toThrow(GuestBuildError);
  });
});

describe('bundled guest ELFs', () => {
  for (const name of BUNDLED) {
    const path = join(GUESTS, 'bin', `${name}.elf`);

    it(`${name}: static PIE, no interpreter, no relocations but RELATIVE, W^X page-aligned segments`, () => {
      const headers = execFileSync('readelf', ['-hlrW', path], { encoding: 'utf8' });
      expect(headers).toMatch(/Type:\s+DYN/);
      expect(headers).not.toMatch(/INTERP/);
      const relocs = headers.split('\n').filter((l) => /^[0-9a-f]{12,16}\s+[0-9a-f]+\s+R_X86_64_/.test(l));
      expect(relocs.every((l) => /R_X86_64_(RELATIVE|NONE)/.test(l))).toBe(true);
      const loads = headers.split('\n').filter((l) => /^\s*LOAD\s/.test(l)).map((l) => {
        const f = l.trim().split(/\s+/);
        return { offset: Number(f[1]), vaddr: Number(f[2]), flags: f.slice(6, -1).join(''), align: Number(f.at(-1)) };
      });
      expect(loads.length).toBeGreaterThanOrEqual(3);
      for (const seg of loads) {
        expect(seg.vaddr % 4096, `segment at ${seg.vaddr}`).toBe(0);
        expect(seg.offset % 4096).toBe(0);
        expect(seg.align).toBe(4096);
        expect(seg.flags === 'RWE').toBe(false);
        expect(seg.flags.includes('W') && seg.flags.includes('E')).toBe(false);
      }
      expect(loads.map((s) => s.flags)).toEqual(expect.arrayContaining(['R', 'RE', 'RW']));
    });
  }
});

describe('guests/sdk/include/hyperlight/abi.h', () => {
  it('defines exactly the agreed constants', () => {
    const text = readFileSync(join(GUESTS, 'sdk/include/hyperlight/abi.h'), 'utf8');
    const defs = new Map<string, string>();
    for (const m of text.matchAll(/^#define (HL_\w+) (\S+)$/gm)) defs.set(m[1] ?? '', m[2] ?? '');
    expect(Object.fromEntries(defs)).toEqual({
      HL_OP_LOG: '99', HL_OP_CALL_FUNCTION: '101', HL_OP_ABORT: '102',
      HL_OP_DEBUG_PRINT: '103', HL_OP_HALT: '108', HL_DOORBELL_STRIDE: '8', HL_DEBUG_PRINT_MAX: '0x10000',
      HL_PEB_OFF_INPUT_SIZE: '0', HL_PEB_OFF_INPUT_PTR: '8', HL_PEB_OFF_OUTPUT_SIZE: '16',
      HL_PEB_OFF_OUTPUT_PTR: '24', HL_PEB_OFF_INIT_SIZE: '32', HL_PEB_OFF_INIT_PTR: '40',
      HL_PEB_OFF_HEAP_SIZE: '48', HL_PEB_OFF_HEAP_PTR: '56', HL_PEB_OFF_STACK_SIZE: '64',
      HL_PEB_OFF_STACK_PTR: '72', HL_PEB_OFF_DOORBELL_SIZE: '80', HL_PEB_OFF_DOORBELL_PTR: '88',
      HL_PEB_OFF_MAGIC: '96', HL_PEB_OFF_ABI_VERSION: '104', HL_PEB_OFF_RANDOM_SEED: '112', HL_PEB_SIZE: '120',
      HL_PEB_MAGIC: '0x3142455053544C48ULL', HL_ABI_VERSION: '2',
      HL_ABORT_MAX_BYTES: '1024', HL_IOBUF_EMPTY_SP: '8',
      HL_PEB_OFF_REGIONS: '0x800', HL_MAPPED_REGION_ENTRY_SIZE: '24', HL_MAPPED_REGIONS_MAX: '16',
      HL_MAPPED_REGION_WRITABLE: '1',
      HL_OP_PARK: '110', HL_OP_WAKE: '111', HL_PEB_OFF_MAILBOX_SIZE: '120', HL_PEB_OFF_MAILBOX_PTR: '128',
      HL_MB_OFF_HOST_WORD: '0', HL_MB_OFF_SPIN_TICKS: '8', HL_MB_OFF_WAITING: '16', HL_MB_OFF_GUEST_WORD: '64',
      HL_MB_OFF_GUEST_ARG: '72', HL_MB_OFF_GUEST_STATE: '128', HL_MB_CMD_CALL: '1', HL_MB_CMD_REPLY: '2',
      HL_MB_CMD_PARK: '3',
      HL_MB_OFF_HOST_FEATURES: '20', HL_MB_OFF_HOST_RECORD: '24', HL_MB_OFF_GUEST_RECORD: '80', HL_MB_OFF_GUEST_FEATURES: '140',
      HL_MB_OFF_HOST_NAME: '256', HL_MB_OFF_GUEST_NAME: '384', HL_MB_FEATURE_INLINE: '1', HL_MB_REC_OFF_NAME_LEN: '0',
      HL_MB_REC_OFF_COUNT: '1', HL_MB_REC_OFF_TYPE: '2', HL_MB_REC_OFF_PTYPES: '4', HL_MB_REC_OFF_VALUES: '8',
      HL_MB_REC_MAX_PARAMS: '4', HL_MB_NAME_MAX: '120', HL_MB_CMD_CALL_INLINE: '4', HL_MB_CMD_REPLY_INLINE: '5',
      HL_OP_CALL_INLINE: '112', HL_OP_HALT_INLINE: '113',
    });
  });
});
