// Calling the application's callbacks (print, log, exit and phase sinks): one rule for what
// their exceptions become (HostCallbackError, the original as `cause`). Host functions
// follow the same rule through GuestError 17 (host-functions.ts); nothing here runs guests.
import { addSuppressed } from '../errors.js';
import { type CallbackKind, HostCallbackError } from './errors.js';
import type { ExitSink, OutputSinks } from './run-loop.js';
import type { PhaseSink } from './machine.js';

/** Calls `fn(arg)`; a throw becomes HostCallbackError(kind) with the thrown value as cause. */
function guarded<A extends unknown[]>(kind: CallbackKind, fn: (...args: A) => unknown): (...args: A) => void {
  return (...args: A): void => {
    try {
      fn(...args);
    } catch (e) {
      throw new HostCallbackError(kind, e);
    }
  };
}

/** Output sinks whose callbacks throw only HostCallbackError. */
export function guardOutputSinks(sinks: OutputSinks): OutputSinks {
  const log = sinks.log;
  return {
    debugPrint: guarded('print', sinks.debugPrint),
    ...(log ? { log: guarded('log', log) } : {}),
  };
}

/** An exit sink that throws only HostCallbackError (undefined stays undefined). */
export function guardExitSink(sink: ExitSink | undefined): ExitSink | undefined {
  if (sink === undefined) return undefined;
  const exit = guarded('exit-sink', (...a: Parameters<ExitSink['exit']>) => sink.exit(...a));
  if (sink.syscall === undefined) return { exit };
  const syscall = guarded('exit-sink', (nr: bigint, result: bigint) => sink.syscall!(nr, result));
  return { exit, syscall };
}

/** A phase sink that throws only HostCallbackError (undefined stays undefined). */
export function guardPhaseSink(sink: PhaseSink | undefined): PhaseSink | undefined {
  if (sink === undefined) return undefined;
  const phase = guarded('phase-sink', (...a: Parameters<PhaseSink['phase']>) => sink.phase(...a));
  return { phase };
}

/**
 * Runs `cleanup` after a call failed with `error`: a throw from it does not replace the
 * call's error but is recorded on `error.suppressed`. Returns `error`.
 */
export function afterFailure(error: unknown, cleanup: () => void): unknown {
  try {
    cleanup();
  } catch (e) {
    addSuppressed(error, e);
  }
  return error;
}
