// `hyperlight-ts run`: one guest call in a fresh sandbox from the command line, optionally traced. Argument parsing lives in values.ts.
import { writeFileSync } from 'node:fs';
import {
  GuestBinary, LogLevel, type ParameterTypeName, type ReturnTypeName, type SandboxConfig, TraceRecorder,
  UninitializedSandbox,
} from '../index.js';
import { loadHostModule } from './host-module.js';
import { formatTrace, traceHtml } from './trace.js';
import { BUNDLED_LIST, UsageError, err, out, parseCommandArgs, parseCount, parseSize, resolveGuest } from './usage.js';
import { formatResult, parseArguments, parseTypeName } from './values.js';

export const RUN_USAGE = `Usage: hyperlight-ts run <guest> <function> [args...] [--returns TYPE] [options]

Creates a sandbox on <guest> (an ELF file, or a bundled guest: ${BUNDLED_LIST}), calls
<function> once and prints its result on stdout. What the guest prints goes to stdout too.

Options:
  --returns TYPE       the function's return type: Int UInt Long ULong Float Double String
                       Bool VecBytes Void (any case); needed unless the guest declares the
                       function (see 'hyperlight-ts inspect')
  --types T1,T2,...    the argument types, one per argument (default: the declared ones,
                       else inferred)
  --heap SIZE          guest heap in bytes (65536, 0x10000, 64k, 1m)
  --timeout MS         wall-clock limit for the call in milliseconds
  --host-module FILE   an ES module whose exports are host functions for the guest (below)
  --log-level LEVEL    print guest log records at LEVEL and above to stderr: Trace Debug
                       Information Warning Error Critical (default: none)
  --trace              print start-up phases, host calls and every VM exit to stderr
  --trace-html FILE    write the same trace as a self-contained HTML timeline
  -h, --help           this text

Argument types: the guest's declared parameter types when its ELF declares <function>;
otherwise true/false Bool; 12n Long (ULong above i64); 0x followed by pairs of hex digits
VecBytes; a decimal integer Int; another decimal number Double; anything else String.
With --types or declared types, integers may be decimal or 0x hex.

Host modules: each export is { params: [...], returns: TYPE, fn } (the signature of
registerHostFunction), e.g.
  export const HostAdd = { params: ['Int', 'Int'], returns: 'Int', fn: (a, b) => a + b };
They are registered after (so they replace) the built-in ones below.

Results: numbers and bigints printed plainly (no n), bytes as 0x-hex, Void prints nothing.

Host functions available to the guest: HostPrint (stdout), HostMethod1(String)->Int (the
length), HostAdd(Int,Int)->Int, and HostEcho<T>(T)->T for every type T; simpleguest's
GuestMethod1, Add and RoundTripHost<T> call them.

Exit status: 0 on success, 1 with "error <code>: <message>" on stderr when the library
fails (guest error, abort, bad ELF, ...), 2 on a usage error.`;

const ECHO_TYPES: readonly ParameterTypeName[] =
  ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes'];

/** Registers the CLI's helper host functions (see RUN_USAGE); harmless for guests that do not call them. */
export function registerCliHostFunctions(u: UninitializedSandbox, rec?: TraceRecorder): void {
  const traced = <A extends unknown[], R>(name: string, fn: (...args: A) => R): ((...args: A) => R) => (rec ? rec.hostCall(name, fn) : fn);
  u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, traced('HostMethod1', (s: string) => s.length));
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, traced('HostAdd', (a: number, b: number) => (a + b) | 0));
  for (const type of ECHO_TYPES) {
    u.registerHostFunction(`HostEcho${type}`, { params: [type], returns: type }, traced(`HostEcho${type}`, (v) => v));
  }
  if (rec) u.registerPrint(rec.hostCall('HostPrint', (text: string) => { out(text); return text.length; }));
}

interface RunRequest {
  guest: string;
  fn: string;
  args: string[];
  returns: ReturnTypeName | undefined;
  types: ParameterTypeName[] | undefined;
  config: SandboxConfig;
  hostModule: string | undefined;
  logLevel: number | undefined;
  trace: boolean;
  traceHtml: string | undefined;
}

const LOG_LEVELS: readonly (keyof typeof LogLevel)[] = ['Trace', 'Debug', 'Information', 'Warning', 'Error', 'Critical'];

function parseLogLevel(text: string): number {
  const name = LOG_LEVELS.find((l) => l.toLowerCase() === text.trim().toLowerCase());
  if (!name) throw new UsageError(`--log-level expects one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(text)}`, RUN_USAGE);
  return LogLevel[name];
}

const LEVEL_NAMES: readonly string[] = Object.keys(LogLevel);

function parseRun(argv: string[]): RunRequest | undefined {
  const { values, positionals } = parseCommandArgs(argv, {
    returns: { type: 'string', short: 'r' },
    types: { type: 'string', short: 't' },
    heap: { type: 'string' },
    timeout: { type: 'string' },
    'host-module': { type: 'string' },
    'log-level': { type: 'string' },
    trace: { type: 'boolean' },
    'trace-html': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, RUN_USAGE);
  if (values.help) return undefined;
  const [guest, fn, ...args] = positionals;
  if (!guest || !fn) throw new UsageError('run needs a guest and a function name', RUN_USAGE);
  const returns = values.returns === undefined ? undefined : parseTypeName(values.returns, true, RUN_USAGE);
  const types = values.types === undefined ? undefined
    : values.types === '' ? [] : values.types.split(',').map((t) => parseTypeName(t, false, RUN_USAGE) as ParameterTypeName);
  const config: SandboxConfig = {};
  if (values.heap !== undefined) config.heapSize = parseSize('heap', values.heap, RUN_USAGE);
  if (values.timeout !== undefined) config.maxExecutionTimeMs = parseCount('timeout', values.timeout, RUN_USAGE);
  const logLevel = values['log-level'] === undefined ? undefined : parseLogLevel(values['log-level']);
  return {
    guest, fn, args, returns, types, config, hostModule: values['host-module'], logLevel,
    trace: values.trace ?? false, traceHtml: values['trace-html'],
  };
}

/** The return and parameter types of the call: given, else declared by the guest's ELF. */
function signatureFor(req: RunRequest, binary: GuestBinary): { returns: ReturnTypeName; types: readonly ParameterTypeName[] | undefined } {
  const declared = binary.functions().find((f) => f.name === req.fn);
  const returns = req.returns ?? declared?.returns;
  if (returns === undefined) {
    throw new UsageError(`run needs --returns TYPE: the guest declares no function ${JSON.stringify(req.fn)}`, RUN_USAGE);
  }
  return { returns, types: req.types ?? declared?.params };
}

/** Runs the command; returns the exit status (HyperlightErrors propagate to main). */
export async function runCommand(argv: string[]): Promise<number> {
  const req = parseRun(argv);
  if (!req) {
    out(`${RUN_USAGE}\n`);
    return 0;
  }
  const binary = GuestBinary.filePath(resolveGuest(req.guest).path);
  const hostModule = req.hostModule === undefined ? [] : await loadHostModule(req.hostModule);
  const tracing = req.trace || req.traceHtml !== undefined;
  const rec = tracing ? new TraceRecorder() : undefined;
  try {
    const t0 = rec ? process.hrtime.bigint() : 0n;
    const u = UninitializedSandbox.create(binary, req.config);
    if (rec) rec.phase('validate', t0, process.hrtime.bigint());
    const { returns, types } = signatureFor(req, binary);
    const params = parseArguments(req.args, types, RUN_USAGE);
    registerCliHostFunctions(u, rec);
    for (const h of hostModule) {
      u.registerHostFunction(h.name, h.signature, rec ? rec.hostCall(h.name, h.fn) : h.fn);
    }
    if (req.logLevel !== undefined) {
      u.registerLogger((r) => err(`guest log ${LEVEL_NAMES[r.level] ?? r.level}: ${r.message}` +
        `${r.sourceFile ? ` (${r.sourceFile}:${r.line})` : ''}\n`), req.logLevel);
    }
    const sandbox = u.evolve(rec ? { trace: rec, exits: rec } : {});
    try {
      const result = formatResult(sandbox.callGuestFunctionByName(req.fn, returns, params));
      if (result !== undefined) out(`${result}\n`);
    } finally {
      const t = rec ? process.hrtime.bigint() : 0n;
      sandbox.close();
      if (rec) rec.phase('close', t, process.hrtime.bigint());
    }
    return 0;
  } catch (e) {
    rec?.fail(e);
    throw e;
  } finally {
    // The trace is written also when the call failed: that is when it helps most.
    if (rec && req.trace) err(formatTrace(rec));
    if (rec && req.traceHtml !== undefined) {
      writeFileSync(req.traceHtml, traceHtml(rec, `hyperlight-ts run ${req.guest} ${req.fn}`));
      err(`wrote ${req.traceHtml}\n`);
    }
  }
}
