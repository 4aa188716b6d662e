// Host functions a guest may call: registration with a declared signature, and the call
// itself with argument and return checks. No wire encoding, no vCPU.
import { ConfigInvalidError } from '../errors.js';
import { HostFunctionNotFoundError, ParameterTypeMismatchError, ReturnTypeMismatchError } from './errors.js';
import {
  type ParameterTypeName, type PlainArgs, type PlainOf, type PlainValue, type ReturnTypeName, type TypedValue,
  type TypedValueOf, coerceReturn, parseReturnTypeName, parseTypeName,
} from './values.js';

/** Hyperlight's ErrorCode HostError: what the guest receives when a host function fails. */
export const HOST_ERROR_CODE = 17;

/** Hyperlight's limit on host-function parameters. */
export const MAX_HOST_FUNCTION_PARAMETERS = 32;

export interface HostFunctionSignature<
  P extends readonly ParameterTypeName[] = readonly ParameterTypeName[], R extends ReturnTypeName = ReturnTypeName,
> {
  /** Parameter types, as `ParameterType.Int` or the name `'Int'`. */
  params: P;
  /** Return type, as `ReturnType.Int` or the name `'Int'` (`'Void'` for none). */
  returns: R;
}

/**
 * What a host function may return for return type `R`: its plain value (Long/ULong also
 * as a safe-integer number), the matching ParameterValue, or for Void nothing.
 */
export type HostReturn<R extends ReturnTypeName> =
  R extends 'Void' ? void | null | undefined
    : R extends 'Long' | 'ULong' ? PlainOf<R> | number | TypedValueOf<R>
      : R extends ParameterTypeName ? PlainOf<R> | TypedValueOf<R> : never;

/**
 * A host function: takes the plain values of its declared parameter types (in order) and
 * returns one of its return type (also checked at run time). It may return a Promise of
 * one for an AsyncSandbox or a SandboxPool (evolveAsync()); a sync sandbox fails such a
 * host call with GuestError 17.
 */
export type HostFunction<
  P extends readonly ParameterTypeName[] = readonly ParameterTypeName[], R extends ReturnTypeName = ReturnTypeName,
> = (...args: PlainArgs<P>) => HostReturn<R> | Promise<HostReturn<R>>;

interface Entry {
  readonly params: readonly ParameterTypeName[];
  readonly returns: ReturnTypeName;
  readonly fn: (...args: never[]) => unknown;
}

/** The host functions of one sandbox. */
export class HostFunctionRegistry {
  readonly #entries = new Map<string, Entry>();

  /** Registers (or replaces) `name`. Throws ConfigInvalidError for a bad signature. */
  register(name: string, signature: HostFunctionSignature, fn: (...args: never[]) => unknown): void {
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
      throw new ConfigInvalidError('hostFunction.name', 'must be a non-empty string of at most 256 characters');
    }
    if (typeof fn !== 'function') throw new ConfigInvalidError(`hostFunction.${name}`, 'implementation must be a function');
    if (!signature || !Array.isArray(signature.params)) {
      throw new ConfigInvalidError(`hostFunction.${name}.params`, 'must be an array of parameter types');
    }
    if (signature.params.length > MAX_HOST_FUNCTION_PARAMETERS) {
      throw new ConfigInvalidError(`hostFunction.${name}.params`, `at most ${MAX_HOST_FUNCTION_PARAMETERS} parameters`);
    }
    const params = signature.params.map((p, i) => parseTypeName(p, `hostFunction.${name}.params[${i}]`));
    const returns = parseReturnTypeName(signature.returns, `hostFunction.${name}.returns`);
    this.#entries.set(name, { params, returns, fn });
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Registered names with their signatures (for tools). */
  list(): { name: string; params: readonly ParameterTypeName[]; returns: ReturnTypeName }[] {
    return [...this.#entries].map(([name, e]) => ({ name, params: e.params, returns: e.returns }));
  }

  /** A copy, so an evolved sandbox is not affected by later registrations. */
  clone(): HostFunctionRegistry {
    const r = new HostFunctionRegistry();
    for (const [k, v] of this.#entries) r.#entries.set(k, v);
    return r;
  }

  /**
   * Calls `name` with the guest's arguments. Throws HostFunctionNotFoundError,
   * ParameterTypeMismatchError (count or types differ from the signature),
   * ReturnTypeMismatchError, or whatever the function throws.
   */
  call(name: string, args: readonly TypedValue[]): TypedValue | undefined {
    const e = this.#entries.get(name);
    if (!e) throw new HostFunctionNotFoundError(name);
    if (args.length !== e.params.length) {
      throw new ParameterTypeMismatchError(`host function ${name} takes ${e.params.length} arguments, the guest passed ${args.length}`);
    }
    const plain: PlainValue[] = new Array<PlainValue>(args.length);
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a.type !== e.params[i]) {
        throw new ParameterTypeMismatchError(`host function ${name} argument ${i} must be ${e.params[i]}, the guest passed ${a.type}`);
      }
      plain[i] = a.value;
    }
    // The arguments were checked against the declared types just above.
    const result = (e.fn as (...args: PlainValue[]) => unknown)(...plain);
    if (isThenable(result)) {
      result.then(undefined, () => undefined); // its rejection is reported below, not left unhandled
      throw new ReturnTypeMismatchError(`host function ${name} returned a Promise: async host functions need ` +
        'an AsyncSandbox (evolveAsync()) or a SandboxPool; a synchronous sandbox cannot wait');
    }
    return coerceReturn(e.returns, result);
  }

  /**
   * Calls `name` with plain arguments that were already checked against its parameter
   * types (by the worker thread's registry, see src/async/) and checks its result. A
   * function that returns a Promise gives a Promise of the checked result. Throws (or
   * rejects with) what `call()` does.
   */
  callPlain(name: string, args: readonly PlainValue[]): TypedValue | undefined | Promise<TypedValue | undefined> {
    const e = this.#entries.get(name);
    if (!e) throw new HostFunctionNotFoundError(name);
    const result = (e.fn as (...args: PlainValue[]) => unknown)(...args);
    if (isThenable(result)) return Promise.resolve(result).then((v) => coerceReturn(e.returns, v));
    return coerceReturn(e.returns, result);
  }
}

/** Whether `v` is a Promise or another thenable. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null &&
    typeof (v as { then?: unknown }).then === 'function';
}
