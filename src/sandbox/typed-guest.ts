// Typed calls from a map of guest function signatures (what `hyperlight-ts types` prints): one method per guest function, checked by tsc; no wire work here.
import { ConfigInvalidError } from '../errors.js';
import type { MultiUseSandbox } from './multi-use-sandbox.js';
import type { CallArgument, ParameterTypeName, PlainArgs, PlainOf, ReturnTypeName } from './values.js';

/** Guest function signatures by name: `{ Add: { params: ['Int', 'Int'], returns: 'Int' } }`. */
export type GuestFunctionMap = Readonly<Record<string, {
  readonly params: readonly ParameterTypeName[];
  readonly returns: ReturnTypeName;
}>>;

/** One method per guest function: plain arguments of its parameter types, its result type. */
export type TypedGuest<F extends GuestFunctionMap> = {
  readonly [K in keyof F]: (...args: PlainArgs<F[K]['params']>) => PlainOf<F[K]['returns']>;
};

/**
 * Methods that call `sandbox`'s guest functions with the types of `functions`:
 * `typedGuest(sandbox, simpleguest).Add(40, 2)` is `sandbox.call('Add', 'Int', 40, 2)`,
 * typed `number`. Calls go through call(), so a guest that declares the function checks
 * the types again at run time.
 * @throws ConfigInvalidError when `functions` is not a map of signatures.
 */
export function typedGuest<const F extends GuestFunctionMap>(sandbox: MultiUseSandbox, functions: F): TypedGuest<F> {
  if (typeof functions !== 'object' || functions === null) throw new ConfigInvalidError('functions', 'must be a map of guest function signatures');
  const out: Record<string, (...args: CallArgument[]) => unknown> = {};
  for (const [name, sig] of Object.entries(functions)) {
    if (!sig || typeof sig.returns !== 'string' || !Array.isArray(sig.params)) {
      throw new ConfigInvalidError(`functions.${name}`, 'must be { params: [...], returns: TYPE }');
    }
    out[name] = (...args: CallArgument[]): unknown => sandbox.call(name, sig.returns, ...args);
  }
  return Object.freeze(out) as unknown as TypedGuest<F>;
}
