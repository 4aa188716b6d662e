// `hyperlight-ts bench`: hands over to the benchmark suite in src/bench/ when it is built; the suite itself lives there, not here.
import { UsageError, err, out, parseCommandArgs } from './usage.js';

export const BENCH_USAGE = `Usage: hyperlight-ts bench [--json] [--quick]

Runs the benchmark suite (src/bench/) and prints its report.

Options:
  --json       machine-readable output
  --quick      fewer iterations (a smoke run, not a measurement)
  -h, --help   this text`;

/** What src/bench/index.ts exports. */
interface BenchModule {
  runBench(opts: { json?: boolean; quick?: boolean; out?: (s: string) => void }): Promise<void>;
}

function isBenchModule(m: unknown): m is BenchModule {
  return typeof m === 'object' && m !== null && typeof (m as { runBench?: unknown }).runBench === 'function';
}

/** Whether `e` says that the bench module itself (not something it imports) is missing. */
function benchMissing(e: unknown, specifier: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' && e instanceof Error && e.message.includes(specifier.replace('../', '/'));
}

export async function benchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    json: { type: 'boolean' },
    quick: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, BENCH_USAGE);
  if (values.help) {
    out(`${BENCH_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`bench takes no arguments, got ${positionals.join(' ')}`, BENCH_USAGE);
  // A variable specifier: the module is optional and written separately, so tsc must not resolve it.
  const specifier = '../bench/index.js';
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (e) {
    if (!benchMissing(e, specifier)) throw e;
    err('hyperlight-ts bench: the benchmark suite is not built (no dist/src/bench/index.js); ' +
      'it comes from src/bench/index.ts: run `npm run build` once it exists\n');
    return 1;
  }
  if (!isBenchModule(mod)) {
    err('hyperlight-ts bench: src/bench/index.ts does not export runBench(opts)\n');
    return 1;
  }
  await mod.runBench({ json: values.json ?? false, quick: values.quick ?? false, out });
  return 0;
}
