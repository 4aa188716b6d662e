#!/usr/bin/env node
// The `hyperlight-ts` command: dispatches to its subcommands and maps errors to exit statuses. No command logic here.
import { HyperlightError } from '../errors.js';
import { benchCommand } from './bench.js';
import { buildGuestCommand } from './build-guest-command.js';
import { demoCommand } from './demo.js';
import { inspectCommand } from './inspect.js';
import { runCommand } from './run.js';
import { type Command, UsageError, err, out } from './usage.js';

const USAGE = `Usage: hyperlight-ts <command> [options]

Commands:
  run <guest> <function> [args...] --returns TYPE
                           call a guest function in a fresh micro-VM (--trace shows every exit)
  inspect <guest>          ELF summary, guest memory map and page tables (no KVM needed)
  bench [--json] [--quick] run the benchmark suite
  demo                     run a guest function in a fresh micro-VM, with phase timings
  build-guest -o OUT SRC.. compile C guest sources against the bundled SDK (needs gcc)

Run 'hyperlight-ts <command> --help' for a command's options.
Exit status: 0 success, 1 library error ("error <code>: <message>"), 2 usage error.`;

const commands: Readonly<Record<string, Command>> = {
  run: runCommand,
  inspect: inspectCommand,
  bench: benchCommand,
  demo: demoCommand,
  'build-guest': buildGuestCommand,
};

/** A Node system error such as ENOENT from writing --trace-html. */
function systemErrorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
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
