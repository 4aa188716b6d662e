// Vitest global setup: builds the JavaScript guest (guests/bin/jsguest.elf, not committed) when it is missing or older than its
// sources, with make's output shown, so `npm test` needs only gcc, musl-dev and the installed devDependencies.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const guests = join(dirname(fileURLToPath(import.meta.url)), '..', 'guests');
  execFileSync('make', ['-C', guests, '--no-print-directory', 'bin/jsguest.elf'], { stdio: ['ignore', 'inherit', 'inherit'] });
}
