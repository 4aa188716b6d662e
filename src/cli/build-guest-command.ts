// `hyperlight-ts build-guest`: the command-line face of the public buildGuest (src/cli/build-guest.ts); the compiling happens there.
import { UsageError, out, parseCommandArgs } from './usage.js';

export const BUILD_GUEST_USAGE = `Usage: hyperlight-ts build-guest -o OUT.elf [--cc gcc|clang] [-I DIR]... SOURCE.c...

Compiles and links C guest sources with the hyperlight-ts guest SDK and musl
(needs gcc or clang, binutils and musl-dev).

Options:
  -o, --output FILE    the guest ELF to write (required)
      --cc CC          the C compiler: gcc (default) or clang
  -I, --include DIR    an extra include directory (repeatable)
  -h, --help           this text`;

export async function buildGuestCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    output: { type: 'string', short: 'o' },
    include: { type: 'string', short: 'I', multiple: true },
    cc: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, BUILD_GUEST_USAGE);
  if (values.help) {
    out(`${BUILD_GUEST_USAGE}\n`);
    return 0;
  }
  if (!values.output) throw new UsageError('build-guest needs -o OUT.elf', BUILD_GUEST_USAGE);
  if (positionals.length === 0) throw new UsageError('build-guest needs at least one source file', BUILD_GUEST_USAGE);
  const { buildGuest } = await import('../index.js');
  buildGuest({ output: values.output, sources: positionals, includeDirs: values.include ?? [], ...(values.cc ? { cc: values.cc } : {}) });
  out(`wrote ${values.output}\n`);
  return 0;
}
