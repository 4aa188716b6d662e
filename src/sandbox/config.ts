// Sandbox configuration: Hyperlight's fields and defaults, validated into a plain object.
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
  /** Wall-clock limit per guest call in milliseconds (0 or absent: none). */
  maxExecutionTimeMs?: number;
}

export type ResolvedConfig = Required<SandboxConfig>;

const KNOWN = new Set(['heapSize', 'stackSize', 'inputDataSize', 'outputDataSize', 'exceptionStackSize', 'maxExecutionTimeMs']);

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
  const maxExecutionTimeMs = num('maxExecutionTimeMs', 0);
  if (maxExecutionTimeMs > 24 * 3600 * 1000) {
    throw new ConfigInvalidError('maxExecutionTimeMs', 'must be at most one day');
  }
  return {
    heapSize: num('heapSize', HYPERLIGHT_DEFAULTS.heapSize),
    stackSize: num('stackSize', HYPERLIGHT_DEFAULTS.stackSize),
    inputDataSize: num('inputDataSize', HYPERLIGHT_DEFAULTS.inputDataSize),
    outputDataSize: num('outputDataSize', HYPERLIGHT_DEFAULTS.outputDataSize),
    exceptionStackSize: num('exceptionStackSize', HYPERLIGHT_DEFAULTS.exceptionStackSize),
    maxExecutionTimeMs,
  };
}
