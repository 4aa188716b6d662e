// Compiles and links C guest sources with the bundled guest SDK and musl (gcc or clang); it does not run or load guests. Public API (src/index.ts), kept beside the command that uses it.
// The flags are guests/Makefile's; test/unit/guest-build.test.ts proves both give byte-identical ELFs.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { HyperlightError } from '../errors.js';
import { packageRoot } from '../package-root.js';

/** gcc failed, was not found, or the inputs are unusable. `stderr` holds gcc's diagnostics. */
export class GuestBuildError extends HyperlightError {
  readonly stderr: string;

  constructor(message: string, stderr = '', options?: { cause?: unknown }) {
    super('ERR_GUEST_BUILD', stderr ? `${message}\n${stderr}` : message, options);
    this.stderr = stderr;
  }
}

/**
 * Compiler flags for guests (same order and values as GUEST_CFLAGS in guests/Makefile).
 * Static-PIE ring-3 code for ordinary x86-64 (SSE2) against musl's headers, page probes for
 * large frames so a stack overflow always hits the guard page, and nothing that varies
 * between builds (no ident, no unwind tables, no build id).
 */
export const GUEST_CFLAGS: readonly string[] = Object.freeze([
  '-std=gnu11', '-O2', '-nostdlib', '-nostdinc', '-fPIE',
  '-mcmodel=small', '-fno-stack-protector',
  '-fstack-clash-protection', '-fcf-protection=none', '-fno-asynchronous-unwind-tables',
  '-fno-unwind-tables', '-fno-ident', '-fno-common', '-fno-plt', '-fvisibility=hidden',
  '-ffunction-sections', '-fdata-sections', '-Wall', '-Wextra', '-Wno-unused-parameter',
]);

/** Linker flags for guests (GUEST_LDFLAGS in guests/Makefile): static PIE, W^X segments on 4 KiB pages. */
export const GUEST_LDFLAGS: readonly string[] = Object.freeze([
  '-static-pie', '-Wl,--no-dynamic-linker', '-Wl,--build-id=none', '-Wl,-z,separate-code',
  '-Wl,-z,noexecstack', '-Wl,-z,norelro', '-Wl,-z,max-page-size=4096',
  '-Wl,-z,common-page-size=4096', '-Wl,--gc-sections', '-Wl,--hash-style=gnu',
  '-Wl,--sort-section=name', '-Wl,-T,sdk/guest.ld',
]);

/** Where Debian's musl-dev puts musl (headers, static libc.a with libm); the Makefile's MUSL_INCLUDE / MUSL_LIB. */
export const MUSL_INCLUDE = '/usr/include/x86_64-linux-musl';
export const MUSL_LIB = '/usr/lib/x86_64-linux-musl';
/** The system packages a guest build needs, named in the error when one is missing. */
export const GUEST_BUILD_PACKAGES = 'gcc (or clang), binutils, musl-dev';

export interface BuildGuestOptions {
  /** Path of the ELF to write (relative to the current directory or absolute). */
  output: string;
  /** The guest's C (or .S) sources, compiled after the SDK sources in this order. */
  sources: string[];
  /** Extra include directories for the guest's own headers. */
  includeDirs?: string[];
  /** Replaces the default `-O2`, e.g. `-Os` or `s`. */
  optimize?: string;
  /** The C compiler: `gcc` (default) or `clang` (any path or name whose basename starts with one of them). */
  cc?: string;
}

/** The SDK sources relative to guests/, sorted bytewise as make's $(sort) does. */
export function sdkSources(guestsDir: string): string[] {
  const names = readdirSync(join(guestsDir, 'sdk', 'src'))
    .filter((n) => n.endsWith('.c') || n.endsWith('.S'))
    .map((n) => `sdk/src/${n}`);
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function runCc(cc: string, args: string[], cwd: string): string {
  const r = spawnSync(cc, args, { cwd, encoding: 'utf8' });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new GuestBuildError(code === 'ENOENT'
      ? `${cc} was not found on PATH; guests need ${GUEST_BUILD_PACKAGES} (apt-get install gcc binutils musl-dev)`
      : `cannot run ${cc}: ${r.error.message}`, '', { cause: r.error });
  }
  if (r.status !== 0) {
    throw new GuestBuildError(`${cc} failed with exit status ${String(r.status ?? r.signal)}`, r.stderr);
  }
  return r.stdout;
}

/** The compiler's own include directory and its libgcc (clang: its resource directory and builtins). */
function compilerParts(cc: string, cwd: string): { include: string; libgcc: string } {
  const include = runCc(cc, ['-print-file-name=include'], cwd).trim();
  const libgcc = runCc(cc, ['-print-libgcc-file-name'], cwd).trim();
  return { include, libgcc };
}

/** Builds the compile+link argument list (exported for tests). */
export function guestGccArgs(opts: BuildGuestOptions, guestsDir: string, gccInclude: string, libgcc = 'libgcc.a'): string[] {
  const cwd = process.cwd();
  let cflags = [...GUEST_CFLAGS];
  if (opts.optimize !== undefined) {
    const o = opts.optimize.startsWith('-O') ? opts.optimize : `-O${opts.optimize}`;
    if (!/^-O([0-3sgz]|fast)?$/.test(o)) throw new GuestBuildError(`invalid optimize level: ${opts.optimize}`);
    cflags = cflags.map((f) => (f === '-O2' ? o : f));
  }
  const includes = (opts.includeDirs ?? []).flatMap((d) => ['-I', resolve(cwd, d)]);
  const sources = opts.sources.map((s) => (isAbsolute(s) ? s : resolve(cwd, s)));
  return [
    ...cflags,
    '-isystem', MUSL_INCLUDE, '-isystem', gccInclude, '-I', 'sdk/include', ...includes,
    // Later maps win: paths under guests/ become relative to it (as in the Makefile),
    // other sources relative to the current directory; the directories themselves (DWARF's
    // DW_AT_comp_dir of a -g build) become ".", so a debug build does not record where it ran.
    `-ffile-prefix-map=${cwd}=.`, `-ffile-prefix-map=${cwd}/=`, `-ffile-prefix-map=${guestsDir}=.`, `-ffile-prefix-map=${guestsDir}/=`,
    '-o', resolve(cwd, opts.output),
    ...sdkSources(guestsDir), ...sources,
    `${MUSL_LIB}/libc.a`, libgcc,
    ...GUEST_LDFLAGS,
  ];
}

/**
 * Compiles and links `sources` with the guest SDK and musl into a static-PIE guest ELF at
 * `output`. Runs the compiler (`opts.cc`, default gcc) synchronously from the package's
 * guests/ directory.
 * @throws GuestBuildError when there are no sources, a source is missing, the compiler or
 *   musl-dev is missing (the error names the packages) or the compiler fails (the error
 *   carries its stderr).
 */
export function buildGuest(opts: BuildGuestOptions): void {
  if (opts.sources.length === 0) throw new GuestBuildError('no guest sources given');
  for (const s of opts.sources) {
    if (!existsSync(resolve(process.cwd(), s))) throw new GuestBuildError(`guest source not found: ${s}`);
  }
  const cc = opts.cc ?? 'gcc';
  if (!/^(gcc|clang)/.test(basename(cc))) throw new GuestBuildError(`unsupported compiler ${cc}: use gcc or clang`);
  if (!existsSync(join(MUSL_LIB, 'libc.a')) || !existsSync(join(MUSL_INCLUDE, 'stdio.h'))) {
    throw new GuestBuildError(`musl was not found (${MUSL_LIB}/libc.a): guests need ${GUEST_BUILD_PACKAGES} ` +
      '(apt-get install musl-dev)');
  }
  const guestsDir = join(packageRoot(), 'guests');
  const { include, libgcc } = compilerParts(cc, guestsDir);
  runCc(cc, guestGccArgs(opts, guestsDir, include, libgcc), guestsDir);
}
