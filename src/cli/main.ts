#!/usr/bin/env node
// The `hyperlight-ts` command: dispatches to its subcommands. No library logic here.
import { parseArgs } from 'node:util';
import { HyperlightError } from '../errors.js';
import { runDemo } from './demo.js';

const USAGE = `Usage: hyperlight-ts <command> [options]

Commands:
  demo                     run a guest function in a fresh micro-VM, with phase timings
  build-guest -o OUT SRC.. compile C guest sources against the bundled SDK (needs gcc)

Run 'hyperlight-ts <command> --help' for a command's options.`;

type Command = (argv: string[]) => Promise<number> | number;

const commands: Record<string, Command> = {
  demo(argv) {
    const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      console.log('Usage: hyperlight-ts demo\n\nCreates a sandbox on the bundled simpleguest, calls PrintOutput, prints phase timings.');
      return 0;
    }
    runDemo();
    return 0;
  },
  async 'build-guest'(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { output: { type: 'string', short: 'o' }, include: { type: 'string', short: 'I', multiple: true }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help || !values.output || positionals.length === 0) {
      console.log('Usage: hyperlight-ts build-guest -o OUT.elf [-I DIR]... SOURCE.c...\n\nCompiles and links C guest sources with the hyperlight-ts guest SDK (gcc only).');
      return values.help ? 0 : 2;
    }
    const { buildGuest } = await import('./build-guest.js');
    buildGuest({ output: values.output, sources: positionals, includeDirs: values.include ?? [] });
    console.log(`wrote ${values.output}`);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`hyperlight-ts: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (e instanceof HyperlightError) {
      console.error(`error ${e.code}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
