// `npm run bench [-- --json] [-- --quick]`: the benchmark suite's command line (repository only, not in the package); the measuring is in suite.ts.
import { parseArgs } from 'node:util';
import { runBench } from './suite.js';

const USAGE = `Usage: npm run bench [-- --json] [-- --quick]

Runs the benchmark suite (bench/) and prints its report (docs/benchmarks.md).

Options:
  --json       machine-readable output
  --quick      fewer iterations (a smoke run, not a measurement)
  -h, --help   this text`;

let values: { json?: boolean; quick?: boolean; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false, strict: true,
  }));
} catch (e) {
  process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
} else {
  await runBench({ json: values.json ?? false, quick: values.quick ?? false });
}
