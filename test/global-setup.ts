// Vitest global setup: builds the JavaScript guest (guests/bin/jsguest.elf, not committed) when it is missing or older than its
// sources, with make's output shown, so `npm test` needs only gcc, musl-dev and the installed devDependencies. A machine
// with gcc but no make (Debian's gcc package does not pull it in) gets make from apt when the tests run as root;
// otherwise the error says what to install.
import { execFileSync, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function haveMake(): boolean {
  return spawnSync('make', ['--version'], { stdio: 'ignore' }).error === undefined;
}

function ensureMake(): void {
  if (haveMake()) return;
  const root = process.getuid?.() === 0;
  if (root && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).error === undefined) {
    process.stderr.write('test setup: make is missing; installing it with apt-get\n');
    const install = (): boolean =>
      spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'make'], { stdio: 'inherit' }).status === 0;
    if (!install()) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit' });
      install();
    }
    if (haveMake()) return;
  }
  throw new Error('the tests build the JavaScript guest with make, which is not installed: install it (apt-get install make)');
}

export default function setup(): void {
  ensureMake();
  const guests = join(dirname(fileURLToPath(import.meta.url)), '..', 'guests');
  // Nothing else runs yet: every CPU compiles (QuickJS's objects build in parallel; the result is the same bytes).
  execFileSync('make', [`-j${availableParallelism()}`, '-C', guests, '--no-print-directory', 'bin/jsguest.elf'],
    { stdio: ['ignore', 'inherit', 'inherit'] });
}
