// `npm test`'s first step: compiles the TypeScript (the package build, then the tests' type
// check) while make builds the JavaScript guest beside it. Building that guest is one long
// compile (QuickJS's quickjs.c, ~20 s) on one CPU while tsc keeps mostly one other busy, so
// side by side they take about as long as the longer of the two instead of their sum. The
// tests' global setup (test/global-setup.ts) runs make again, which then finds the guest up
// to date; without make here (it installs it when missing), or when this build fails, the
// global setup builds the guest itself and reports what went wrong.
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a command with inherited output; resolves to its exit status (1 when it could not start). */
function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (e) => { process.stderr.write(`pretest: ${cmd} could not start: ${e.message}\n`); resolve(1); });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const haveMake = spawnSync('make', ['--version'], { stdio: 'ignore' }).error === undefined;
const guest = haveMake
  ? run('make', [`-j${availableParallelism()}`, '-C', 'guests', '--no-print-directory', 'bin/jsguest.elf'])
  : Promise.resolve(0);
const compile = (async () => {
  const build = await run('npm', ['run', 'build']);
  return build !== 0 ? build : run(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.test.json']);
})();

const [compiled, built] = await Promise.all([compile, guest]);
if (built !== 0) process.stderr.write('pretest: building the JavaScript guest failed; the test setup tries again and reports why\n');
process.exit(compiled);
