// Real gdb against the library (in the soak suite, which CI runs with gdb installed by .ci/run; npm test keeps the pure-JS checks of the same files: test/unit/core-file.test.ts, test/integration/crash-dump.test.ts, test/integration/gdb-stub.test.ts). See docs/debugging.md.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GuestAbortedError, GuestExceptionError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { catchError } from '../helpers/errors.js';
import { gdbBatch, requireGdb } from '../helpers/gdb.js';
import { freePort } from '../helpers/rsp-client.js';

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

describe('gdb drives the stub', () => {
  it('break at a guest function, step, print its variables, continue; the guest finishes its call', async () => {
    const gdb = requireGdb();
    const port = await freePort();
    const sandbox = UninitializedSandbox.create(binary, { debug: { gdbPort: port } }).evolve();
    const log = join(root, 'gdb-session.txt');
    const fd = openSync(log, 'w');
    const commands = [`target remote 127.0.0.1:${port}`, 'break sum_to', 'continue', 'step', 'step', 'print n',
      'print total', 'info registers rip', 'bt', 'continue'];
    const child = spawn(gdb, ['-nx', '-batch', ...commands.flatMap((c) => ['-ex', c]), elf], { stdio: ['ignore', fd, fd] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let result: bigint;
    try {
      result = sandbox.call('Sum', 'Long', 5); // waits for gdb, then runs under it
    } finally {
      sandbox.close(); // gdb's last continue ends with the guest's exit
      closeSync(fd);
    }
    expect(await exited).toBe(0);
    const out = readFileSync(log, 'utf8');
    expect(result).toBe(15n);
    expect(out).toMatch(/Breakpoint 1 at 0x[0-9a-f]+: file debugguest\/main\.c, line \d+/);
    expect(out).toMatch(/Breakpoint 1, sum_to \(n=5\) at debugguest\/main\.c:\d+/);
    expect(out).toMatch(/^\$1 = 5$/m);
    expect(out).toMatch(/^\$2 = 15$/m);
    expect(out).toMatch(/rip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <sum_to\+\d+>/);
    expect(frames(out).slice(0, 2)).toEqual(['sum_to', 'sum']);
    expect(out).toMatch(/exited normally/);
  });
});
