#!/usr/bin/env node
// The `hyperlight-ts` command: dispatches to its subcommands and maps errors to exit statuses. No command logic here.
import { readFileSync } from 'node:fs';
import { HyperlightError } from '../index.js';
import { buildGuestCommand } from './build-guest-command.js';
import { demoCommand } from './demo.js';
import { inspectCommand } from './inspect.js';
import { runCommand } from './run.js';
import { typesCommand } from './types-command.js';
import { type Command, UsageError, err, out } from './usage.js';

const USAGE = `Usage: hyperlight-ts <command> [options]

Commands:
  run <guest> <function> [args...] [--returns TYPE]
                           call a guest function in a fresh micro-VM (--trace shows every exit)
  inspect <guest>          ELF summary, declared guest functions, memory map, page tables (no KVM)
  types <guest>            a TypeScript module declaring the guest's functions, for typed calls
  demo                     run a guest function in a fresh micro-VM, with phase timings
  build-guest -o OUT SRC.. compile C guest sources against the bundled SDK (needs gcc)
  help [command]           this text, or a command's options (as '<command> --help')

Options: --version prints the version. The benchmarks are in the repository, not the
package: 'npm run bench' in a clone (docs/benchmarks.md).
Exit status: 0 success, 1 library error ("error <code>: <message>"), 2 usage error.`;

const commands: Readonly<Record<string, Command>> = {
  run: runCommand,
  inspect: inspectCommand,
  types: typesCommand,
  demo: demoCommand,
  'build-guest': buildGuestCommand,
};

/** A Node system error such as ENOENT from writing --trace-html. */
function systemErrorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** The package's version, from the package.json beside dist/ (or src/). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

async function main(argv: string[]): Promise<number> {
  let [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    out(`hyperlight-ts ${version()}\n`);
    return 0;
  }
  if (name === 'help' && rest.length > 0) {
    // `help run` is `run --help`.
    [name, ...rest] = [rest[0]!, '--help'];
  } else if (!name || name === '--help' || name === '-h' || name === 'help') {
    (name ? out : err)(`${USAGE}\n`);
    return name ? 0 : 2;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    err(`hyperlight-ts: unknown command ${JSON.stringify(name)}\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      const synopsis = e.usage.split('\n')[0] ?? '';
      err(`hyperlight-ts ${name}: ${e.message}\n${synopsis}\nRun 'hyperlight-ts ${name} --help' for details.\n`);
      return 2;
    }
    if (e instanceof HyperlightError) {
      err(`error ${e.code}: ${e.message}\n`);
      return 1;
    }
    const code = systemErrorCode(e);
    if (code && e instanceof Error) {
      err(`error ${code}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
