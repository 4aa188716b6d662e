// Real gdb against the library (in the soak suite, which CI runs with gdb installed by .ci/run; npm test keeps the pure-JS checks of the same files: test/unit/core-file.test.ts, test/integration/crash-dump.test.ts, test/integration/gdb-stub.test.ts). See docs/debugging.md.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GuestAbortedError, GuestExceptionError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { catchError } from '../helpers/errors.js';
import { gdbBatch } from '../helpers/gdb.js';

const root = mkdtempSync(join(tmpdir(), 'hlts-gdb-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const elf = bundledGuestPath('debugguest');
const binary = GuestBinary.filePath(elf);

/** The function names of gdb's last `bt` in `out` (opening a core prints frame #0 first), innermost first. */
function frames(out: string): string[] {
  const bt = out.slice(out.lastIndexOf('#0 '));
  return [...bt.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(/gm)].map((m) => m[1]!);
}

describe('gdb opens crash dumps', () => {
  it('backtrace of a page fault three calls deep names every guest function, with arguments', () => {
    const sandbox = UninitializedSandbox.create(binary, { crashDumpDir: root }).evolve();
    try {
      const e = catchError(() => sandbox.call('Crash', 'Int', 3)) as GuestExceptionError;
      expect(e).toBeInstanceOf(GuestExceptionError);
      const out = gdbBatch(['bt', 'info registers rip'], [elf, e.crashDumpPath!]);
      expect(out).toMatch(/Program terminated with signal SIGSEGV/);
      expect(frames(out).slice(0, 4)).toEqual(['crash_inner', 'crash_middle', 'crash_outer', 'crash']);
      expect(out).toMatch(/crash_inner \(depth=5\) at debugguest\/main\.c:\d+/);
      expect(out).toMatch(/crash_outer \(depth=3\)/);
      expect(out).toMatch(new RegExp(`rip\\s+0x${e.rip.toString(16)}\\s+0x${e.rip.toString(16)} <crash_inner\\+\\d+>`));
    } finally {
      sandbox.close();
    }
  });

  it('backtrace of an abort reaches the guest functions below the SDK\'s abort', () => {
    const sandbox = UninitializedSandbox.create(binary, { crashDumpDir: root }).evolve();
    try {
      const e = catchError(() => sandbox.call('AbortDeep', 'Int', 9)) as GuestAbortedError;
      expect(e).toBeInstanceOf(GuestAbortedError);
      const out = gdbBatch(['bt'], [elf, e.crashDumpPath!]);
      expect(out).toMatch(/Program terminated with signal SIGABRT/);
      const names = frames(out);
      const at = names.indexOf('abort_inner');
      expect(at).toBeGreaterThan(0);
      expect(names.slice(at, at + 3)).toEqual(['abort_inner', 'abort_outer', 'abort_deep']);
      expect(out).toMatch(/abort_inner \(code=9\)/);
    } finally {
      sandbox.close();
    }
  });
});
