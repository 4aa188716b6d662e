// Sandbox configuration: Hyperlight's fields and defaults, validated into a plain object.
import { statSync } from 'node:fs';
import { ConfigInvalidError } from '../errors.js';
import { HYPERLIGHT_DEFAULTS } from '../mem/x86_64/index.js';

export interface SandboxConfig {
  /** Guest heap in bytes (default 128 KiB, Hyperlight's). */
  heapSize?: number;
  /** Guest stack in bytes (default 128 KiB). A guard page lies below it. */
  stackSize?: number;
  /** Host -> guest buffer in bytes (default 0x4000, minimum 0x2000). */
  inputDataSize?: number;
  /** Guest -> host buffer in bytes (default 0x4000, minimum 0x2000). */
  outputDataSize?: number;
  /** Exception (IST) stack in bytes (default 0x4000). */
  exceptionStackSize?: number;
  /**
   * Wall-clock limit per guest call in milliseconds, host functions included (default
   * 1000; 0: none). A call past it fails with ExecutionCanceledError (reason `timeout`).
   */
  maxExecutionTimeMs?: number;
  /** Wall-clock limit for the guest's initialisation in evolve(), in milliseconds (default 2000; 0: none). */
  maxInitializationTimeMs?: number;
  /**
   * Guest output (print and log text, in UTF-8 bytes) the host accepts per call or init
   * (default 16 MiB; 0: no limit). Past it the call fails with OutputLimitError.
   */
  maxOutputBytesPerCall?: number;
  /**
   * A directory (which must exist) where a guest exception or abort writes an ELF core
   * file of the guest (registers at the fault, its memory): `gdb guest.elf <core>` opens it
   * (docs/debugging.md). The error carries the file's path in `crashDumpPath`. Default: none.
   */
  crashDumpDir?: string;
  /** Debugging (docs/debugging.md). Off by default. */
  debug?: DebugConfig;
}

export interface DebugConfig {
  /**
   * Listen for gdb's remote protocol on 127.0.0.1:`gdbPort` (1..65535): the first guest
   * call (or init) waits for gdb to connect and stops the guest at its first instruction.
   */
  gdbPort?: number;
}

/** Default of `maxExecutionTimeMs`: a guest call stops after one second unless configured. */
export const DEFAULT_MAX_EXECUTION_TIME_MS = 1000;
/** Default of `maxInitializationTimeMs`. */
export const DEFAULT_MAX_INITIALIZATION_TIME_MS = 2000;
/** Default of `maxOutputBytesPerCall`. */
export const DEFAULT_MAX_OUTPUT_BYTES_PER_CALL = 16 * 1024 * 1024;

export type ResolvedConfig = Required<Omit<SandboxConfig, 'crashDumpDir' | 'debug'>> & {
  /** undefined: no crash dumps. */
  crashDumpDir: string | undefined;
  /** undefined: no gdb stub. */
  gdbPort: number | undefined;
};

const KNOWN = new Set(['heapSize', 'stackSize', 'inputDataSize', 'outputDataSize', 'exceptionStackSize',
  'maxExecutionTimeMs', 'maxInitializationTimeMs', 'maxOutputBytesPerCall', 'crashDumpDir', 'debug']);

/** Validates types and fills defaults; sizes are range-checked by the layout planner. */
export function resolveConfig(config: SandboxConfig | undefined): ResolvedConfig {
  if (config !== undefined && (config === null || typeof config !== 'object')) {
    throw new ConfigInvalidError('config', 'must be an object');
  }
  const c = config ?? {};
  for (const key of Object.keys(c)) {
    if (!KNOWN.has(key)) throw new ConfigInvalidError(key, `unknown configuration field; known: ${[...KNOWN].join(', ')}`);
  }
  const num = (field: keyof SandboxConfig, fallback: number): number => {
    const v = c[field];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new ConfigInvalidError(field, `must be a non-negative integer, got ${String(v)}`);
    }
    return v;
  };
  const limit = (field: keyof SandboxConfig, fallback: number, max: number, what: string): number => {
    const v = num(field, fallback);
    if (v > max) throw new ConfigInvalidError(field, `must be at most ${what}`);
    return v;
  };
  const DAY_MS = 24 * 3600 * 1000;
  const maxExecutionTimeMs = limit('maxExecutionTimeMs', DEFAULT_MAX_EXECUTION_TIME_MS, DAY_MS, 'one day');
  const maxInitializationTimeMs = limit('maxInitializationTimeMs', DEFAULT_MAX_INITIALIZATION_TIME_MS, DAY_MS, 'one day');
  const maxOutputBytesPerCall = limit('maxOutputBytesPerCall', DEFAULT_MAX_OUTPUT_BYTES_PER_CALL, 2 ** 40, '1 TiB');
  return {
    crashDumpDir: crashDumpDir(c.crashDumpDir),
    gdbPort: gdbPort(c.debug),
    heapSize: num('heapSize', HYPERLIGHT_DEFAULTS.heapSize),
    stackSize: num('stackSize', HYPERLIGHT_DEFAULTS.stackSize),
    inputDataSize: num('inputDataSize', HYPERLIGHT_DEFAULTS.inputDataSize),
    outputDataSize: num('outputDataSize', HYPERLIGHT_DEFAULTS.outputDataSize),
    exceptionStackSize: num('exceptionStackSize', HYPERLIGHT_DEFAULTS.exceptionStackSize),
    maxExecutionTimeMs,
    maxInitializationTimeMs,
    maxOutputBytesPerCall,
  };
}

function crashDumpDir(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '' || v.includes('\0')) {
    throw new ConfigInvalidError('crashDumpDir', `must be a directory path, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  }
  let isDir: boolean;
  try {
    isDir = statSync(v).isDirectory();
  } catch (e) {
    throw new ConfigInvalidError('crashDumpDir', `${v} cannot be read (${(e as Error).message}): create the directory first`, { cause: e });
  }
  if (!isDir) throw new ConfigInvalidError('crashDumpDir', `${v} is not a directory`);
  return v;
}

function gdbPort(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object') throw new ConfigInvalidError('debug', 'must be an object such as { gdbPort: 9999 }');
  for (const key of Object.keys(v)) {
    if (key !== 'gdbPort') throw new ConfigInvalidError(`debug.${key}`, 'unknown debug field; known: gdbPort');
  }
  const port = (v as DebugConfig).gdbPort;
  if (port === undefined) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigInvalidError('debug.gdbPort', `must be a TCP port 1..65535, got ${String(port)}`);
  }
  return port;
}

/** The SandboxConfig that resolves to `r` (a worker thread builds its sandbox from it). */
export function configOf(r: ResolvedConfig): SandboxConfig {
  const { crashDumpDir, gdbPort, ...rest } = r;
  return {
    ...rest,
    ...(crashDumpDir !== undefined ? { crashDumpDir } : {}),
    ...(gdbPort !== undefined ? { debug: { gdbPort } } : {}),
  };
}
