// Test helper: the real gdb for test/soak/gdb.test.ts. CI's .ci/run installs it (apt package gdb); a machine without it fails these tests with what to install, never skips them.
import { execFileSync } from 'node:child_process';

/** The gdb on PATH; throws with the install command when there is none. */
export function requireGdb(): string {
  try {
    execFileSync('gdb', ['--version'], { stdio: 'pipe' });
    return 'gdb';
  } catch {
    throw new Error('gdb is not installed: apt-get install -y gdb (.ci/run installs it for the soak suite)');
  }
}

/** Runs gdb in batch mode with `commands` (-ex each) on `args`; returns stdout and stderr together. */
export function gdbBatch(commands: readonly string[], args: readonly string[], timeoutMs = 60_000): string {
  const gdb = requireGdb();
  const argv = ['-nx', '-batch', ...commands.flatMap((c) => ['-ex', c]), ...args];
  try {
    return execFileSync(gdb, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`gdb ${argv.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}${x.stderr ?? ''}`);
  }
}
