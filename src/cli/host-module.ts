// `run --host-module FILE`: loads an ES module whose exports are host functions ({ params, returns, fn }) and checks their shape; it registers nothing itself.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HostFunction, HostFunctionSignature } from '../index.js';
import { UsageError } from './usage.js';

/** One host function from a module, ready for registerHostFunction (the library checks the signature). */
export interface ModuleHostFunction {
  readonly name: string;
  readonly signature: HostFunctionSignature;
  readonly fn: HostFunction;
}

const SHAPE = "each export must be { params: ['Int', ...], returns: 'Int', fn: (...args) => value }";

/**
 * Imports `file` (relative to the working directory) and returns its exports as host
 * functions, named by export name (a `default` export that is an object of them is
 * flattened).
 * @throws UsageError when the file cannot be imported or an export has the wrong shape.
 */
export async function loadHostModule(file: string): Promise<ModuleHostFunction[]> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(resolve(file)).href) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`--host-module ${file}: cannot import it: ${(e as Error).message}`);
  }
  const entries = Object.entries(mod).flatMap(([name, v]): [string, unknown][] =>
    (name === 'default' && v !== null && typeof v === 'object' && !('fn' in v) ? Object.entries(v) : [[name, v]]));
  if (entries.length === 0) throw new UsageError(`--host-module ${file}: exports no host functions; ${SHAPE}`);
  return entries.map(([name, v]) => {
    const h = v as { params?: unknown; returns?: unknown; fn?: unknown } | null;
    if (h === null || typeof h !== 'object' || !Array.isArray(h.params) || typeof h.returns !== 'string' || typeof h.fn !== 'function') {
      throw new UsageError(`--host-module ${file}: export ${JSON.stringify(name)} is not a host function; ${SHAPE}`);
    }
    // The library validates the type names when the function is registered (ConfigInvalidError).
    return { name, signature: { params: h.params, returns: h.returns } as HostFunctionSignature, fn: h.fn as HostFunction };
  });
}
