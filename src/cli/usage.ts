// Shared plumbing of the CLI commands: usage errors, option parsing, sizes, guest paths. No command logic.
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BUNDLED_GUESTS, bundledGuestPath } from '../index.js';

/** A command line the CLI cannot act on; main turns it into exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The command's usage text, printed after the message. */
  readonly usage: string;
  constructor(message: string, usage = '') {
    super(message);
    this.usage = usage;
  }
}

/** A subcommand: takes its own arguments, returns the exit status (throws UsageError for 2). */
export type Command = (argv: string[]) => Promise<number> | number;

/** Writes to stdout (the command's result). */
export function out(text: string): void {
  process.stdout.write(text);
}

/** Writes to stderr (diagnostics, traces). */
export function err(text: string): void {
  process.stderr.write(text);
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

const NEGATIVE_NUMBER = /^-(\d|\.\d|Infinity$)/;
const HIDDEN = '\u0000arg';

/**
 * `parseArgs` in strict mode with positionals, turning its TypeErrors into UsageError with
 * `usage` attached. Negative numbers (`-5`, `-1.5`, `-5n`) are arguments, not options:
 * they are hidden from parseArgs and put back afterwards.
 */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, usage: string): Parsed<O> {
  const hidden = argv.map((a, i) => (NEGATIVE_NUMBER.test(a) ? `${HIDDEN}${i}` : a));
  const restore = (v: string): string => (v.startsWith(HIDDEN) ? argv[Number(v.slice(HIDDEN.length))]! : v);
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args: hidden, options, allowPositionals: true as const, strict: true as const });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e), usage);
  }
  const values = parsed.values as Record<string, unknown>;
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'string') values[k] = restore(v);
    else if (Array.isArray(v)) values[k] = v.map((x: unknown) => (typeof x === 'string' ? restore(x) : x));
  }
  parsed.positionals.forEach((p, i) => { parsed.positionals[i] = restore(p); });
  return parsed;
}

const SIZE = /^(0x[0-9a-f]+|\d+)([km]?)$/i;

/**
 * A byte count: decimal or 0x hex, optionally followed by k (KiB) or m (MiB).
 * @throws UsageError when `text` is not such a number.
 */
export function parseSize(flag: string, text: string, usage: string): number {
  const m = SIZE.exec(text.trim());
  if (!m) throw new UsageError(`--${flag} expects a byte count such as 65536, 0x10000, 64k or 1m; got ${JSON.stringify(text)}`, usage);
  const unit = m[2]!.toLowerCase() === 'k' ? 1024 : m[2]!.toLowerCase() === 'm' ? 1024 * 1024 : 1;
  const n = Number(m[1]!) * unit;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${flag} is too large: ${text}`, usage);
  return n;
}

/** A non-negative integer option (milliseconds, counts). */
export function parseCount(flag: string, text: string, usage: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--${flag} expects a non-negative integer, got ${JSON.stringify(text)}`, usage);
  return Number(text);
}

/**
 * Resolves a guest argument: an existing file wins; otherwise a bundled guest's name
 * (`simpleguest`, `dummyguest`); otherwise the text is returned as a path (the sandbox
 * then reports that it cannot read it).
 */
export function resolveGuest(arg: string): { path: string; bundled: string | undefined } {
  if (existsSync(arg)) return { path: arg, bundled: undefined };
  const bundled = BUNDLED_GUESTS.find((name) => name === arg);
  if (bundled) return { path: bundledGuestPath(bundled), bundled };
  return { path: arg, bundled: undefined };
}

/** The names of the bundled guests, for help texts. */
export const BUNDLED_LIST = BUNDLED_GUESTS.join(', ');
