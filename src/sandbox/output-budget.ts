// How much guest output (print and log text) the host accepts per call: a byte budget per
// call, and the default printer's backlog check. It prints nothing itself.
import type { GuestLogRecord } from './codec.js';
import { OutputLimitError } from './errors.js';
import type { OutputSinks } from './run-loop.js';

/**
 * Output the default printer keeps queued on a stdout that nobody drains (a full pipe):
 * beyond it, text is dropped and counted instead of buffered without bound.
 */
export const DEFAULT_PRINT_BACKLOG_BYTES = 16 * 1024 * 1024;

/** One sandbox's output budget. `begin()` at the start of every call (or init). */
export class OutputBudget {
  readonly #limit: number;
  #used = 0;
  /** Bytes the default printer dropped because stdout was backed up (over the sandbox's life). */
  dropped = 0;

  /** @param limit bytes per call; 0 means no limit. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  begin(): void {
    this.#used = 0;
  }

  /** Counts `text` against this call's budget; throws OutputLimitError once it is exceeded. */
  spend(text: string): void {
    if (this.#limit === 0) return;
    this.#used += Buffer.byteLength(text);
    if (this.#used > this.#limit) throw new OutputLimitError(this.#limit, this.#used);
  }
}

/**
 * The library's default print function: writes to process.stdout, unless more than
 * DEFAULT_PRINT_BACKLOG_BYTES are already waiting there, in which case the text is dropped
 * and counted on `budget.dropped`. Returns the characters accepted (0 when dropped).
 */
export function printToStdout(text: string, budget: OutputBudget): number {
  const out = process.stdout;
  if (out.writableLength >= DEFAULT_PRINT_BACKLOG_BYTES) {
    budget.dropped += Buffer.byteLength(text);
    return 0;
  }
  out.write(text);
  return text.length;
}

/** `sinks` with every DebugPrint text and log message counted against `budget` first. */
export function budgetSinks(sinks: OutputSinks, budget: OutputBudget): OutputSinks {
  const { debugPrint, log } = sinks;
  return {
    debugPrint: (text) => { budget.spend(text); debugPrint(text); },
    ...(log ? { log: (record: GuestLogRecord) => { budget.spend(record.message); log(record); } } : {}),
  };
}
