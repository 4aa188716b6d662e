// `hyperlight-ts run`: one guest call in a fresh sandbox from the command line, optionally traced. Argument parsing lives in values.ts.
import { writeFileSync } from 'node:fs';
import { GuestBinary } from '../sandbox/guest-binary.js';
import { UninitializedSandbox } from '../sandbox/uninitialized-sandbox.js';
import type { ParameterTypeName, ReturnTypeName } from '../sandbox/values.js';
import type { SandboxConfig } from '../sandbox/config.js';
import { TraceRecorder, formatTrace, traceHtml } from './trace.js';
import { BUNDLED_LIST, UsageError, err, out, parseCommandArgs, parseCount, parseSize, resolveGuest } from './usage.js';
import { formatResult, parseArguments, parseTypeName } from './values.js';

export const RUN_USAGE = `Usage: hyperlight-ts run <guest> <function> [args...] --returns TYPE [options]

Creates a sandbox on <guest> (an ELF file, or a bundled guest: ${BUNDLED_LIST}), calls
<function> once and prints its result on stdout. What the guest prints goes to stdout too.

Options:
  --returns TYPE       the function's return type (required): Int UInt Long ULong Float
                       Double String Bool VecBytes Void (any case)
  --types T1,T2,...    the argument types, one per argument (default: inferred)
  --heap SIZE          guest heap in bytes (65536, 0x10000, 64k, 1m)
  --timeout MS         wall-clock limit for the call in milliseconds
  --trace              print start-up phases and every VM exit to stderr
  --trace-html FILE    write the same trace as a self-contained HTML timeline
  -h, --help           this text

Inferred argument types: true/false Bool; 12n Long (ULong above i64); 0x followed by
pairs of hex digits VecBytes; a decimal integer Int; another decimal number Double;
anything else String. With --types, integers may be decimal or 0x hex.

Results: numbers and bigints printed plainly (no n), bytes as 0x-hex, Void prints nothing.

Host functions available to the guest: HostPrint (stdout), HostMethod1(String)->Int (the
length), HostAdd(Int,Int)->Int, and HostEcho<T>(T)->T for every type T; simpleguest's
GuestMethod1, Add and RoundTripHost<T> call them.

Exit status: 0 on success, 1 with "error <code>: <message>" on stderr when the library
fails (guest error, abort, bad ELF, ...), 2 on a usage error.`;

const ECHO_TYPES: readonly ParameterTypeName[] =
  ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes'];

/** Registers the CLI's helper host functions (see RUN_USAGE); harmless for guests that do not call them. */
export function registerCliHostFunctions(u: UninitializedSandbox): void {
  u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (s: string) => s.length);
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => (a + b) | 0);
  for (const type of ECHO_TYPES) {
    u.registerHostFunction(`HostEcho${type}`, { params: [type], returns: type }, (v) => v);
  }
}

interface RunRequest {
  guest: string;
  fn: string;
  args: string[];
  returns: ReturnTypeName;
  types: ParameterTypeName[] | undefined;
  config: SandboxConfig;
  trace: boolean;
  traceHtml: string | undefined;
}

function parseRun(argv: string[]): RunRequest | undefined {
  const { values, positionals } = parseCommandArgs(argv, {
    returns: { type: 'string', short: 'r' },
    types: { type: 'string', short: 't' },
    heap: { type: 'string' },
    timeout: { type: 'string' },
    trace: { type: 'boolean' },
    'trace-html': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, RUN_USAGE);
  if (values.help) return undefined;
  const [guest, fn, ...args] = positionals;
  if (!guest || !fn) throw new UsageError('run needs a guest and a function name', RUN_USAGE);
  if (values.returns === undefined) throw new UsageError('run needs --returns TYPE', RUN_USAGE);
  const returns = parseTypeName(values.returns, true, RUN_USAGE);
  const types = values.types === undefined ? undefined
    : values.types === '' ? [] : values.types.split(',').map((t) => parseTypeName(t, false, RUN_USAGE) as ParameterTypeName);
  const config: SandboxConfig = {};
  if (values.heap !== undefined) config.heapSize = parseSize('heap', values.heap, RUN_USAGE);
  if (values.timeout !== undefined) config.maxExecutionTimeMs = parseCount('timeout', values.timeout, RUN_USAGE);
  return { guest, fn, args, returns, types, config, trace: values.trace ?? false, traceHtml: values['trace-html'] };
}

/** Runs the command; returns the exit status (HyperlightErrors propagate to main). */
export function runCommand(argv: string[]): number {
  const req = parseRun(argv);
  if (!req) {
    out(`${RUN_USAGE}\n`);
    return 0;
  }
  const params = parseArguments(req.args, req.types, RUN_USAGE);
  const tracing = req.trace || req.traceHtml !== undefined;
  const rec = tracing ? new TraceRecorder() : undefined;
  try {
    const t0 = rec ? process.hrtime.bigint() : 0n;
    const u = UninitializedSandbox.create(GuestBinary.filePath(resolveGuest(req.guest).path), req.config);
    if (rec) rec.phase('validate', t0, process.hrtime.bigint());
    registerCliHostFunctions(u);
    const sandbox = u.evolve(rec ? { trace: rec, exits: rec } : {});
    try {
      const result = formatResult(sandbox.callGuestFunctionByName(req.fn, req.returns, params));
      if (result !== undefined) out(`${result}\n`);
    } finally {
      const t = rec ? process.hrtime.bigint() : 0n;
      sandbox.close();
      if (rec) rec.phase('close', t, process.hrtime.bigint());
    }
    return 0;
  } finally {
    // The trace is written also when the call failed: that is when it helps most.
    if (rec && req.trace) err(formatTrace(rec));
    if (rec && req.traceHtml !== undefined) {
      writeFileSync(req.traceHtml, traceHtml(rec, `hyperlight-ts run ${req.guest} ${req.fn}`));
      err(`wrote ${req.traceHtml}\n`);
    }
  }
}
