// Benchmark measurement primitives: timed loops with warm-up, medians and p99, the progress
// line. Not the operations themselves (ops-*.ts) nor the report (report.ts).

/** Nanoseconds from a monotonic clock, as a number (exact to 2^53 ns, 104 days). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export interface Summary {
  /** Samples kept after warm-up. */
  n: number;
  median: number;
  p99: number;
  min: number;
  mean: number;
}

/** Median (mean of the middle two for even n), p99 (nearest rank), min and mean. */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  if (n === 0) return { n: 0, median: Number.NaN, p99: Number.NaN, min: Number.NaN, mean: Number.NaN };
  const mid = n >> 1;
  const median = n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const p99 = sorted[Math.min(n - 1, Math.ceil(0.99 * n) - 1)]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n, median, p99, min: sorted[0]!, mean: sum / n };
}

/** Writes a one-line status to stderr, overwriting the previous one; throttled. */
export class Progress {
  #last = 0;
  #width = 0;
  readonly #enabled: boolean;
  /** A terminal: one line rewritten with \r; otherwise (a file, a pipe, CI) one line per step and no ticks. */
  readonly #tty: boolean;
  #step = 0;
  /** Steps the run will take; lower it when one is dropped (so the count ends at [n/n]). */
  total: number;
  #label = '';

  constructor(steps: number, enabled = true, tty = process.stderr.isTTY === true) {
    this.total = steps;
    this.#enabled = enabled;
    this.#tty = tty;
  }

  /** Steps started so far. */
  get stepsTaken(): number {
    return this.#step;
  }

  /** Starts the next named step. */
  step(label: string): void {
    this.#step++;
    this.#label = label;
    this.#write(`[${this.#step}/${this.total}] ${label}`, true);
  }

  /** Reports `done` of `total` iterations of the current step (at most ~10 writes/s; terminals only). */
  tick(done: number, total: number): void {
    if (this.#tty) this.#write(`[${this.#step}/${this.total}] ${this.#label} ${done}/${total}`, false);
  }

  #write(text: string, force: boolean): void {
    if (!this.#enabled) return;
    if (!this.#tty) {
      process.stderr.write(`${text}\n`);
      return;
    }
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const padded = text.length < this.#width ? text.padEnd(this.#width) : text;
    this.#width = text.length;
    process.stderr.write(`\r${padded}`);
  }

  /** Clears the line. */
  done(): void {
    if (!this.#enabled || !this.#tty || this.#width === 0) return;
    process.stderr.write(`\r${' '.repeat(this.#width)}\r`);
    this.#width = 0;
  }
}

export interface LoopOptions {
  /** Timed iterations kept. */
  iterations: number;
  /** Untimed iterations run first (JIT, caches, first-run costs). */
  warmup: number;
  progress?: Progress;
}

/**
 * Runs `setup` (untimed), then times `body` alone, `iterations + warmup` times; returns the
 * kept samples in ns. `body` gets what `setup` returned; `teardown` (untimed, after the
 * clock stops) gets what `body` returned.
 */
export function timeLoop<T, R>(opts: LoopOptions, setup: () => T, body: (value: T) => R,
  teardown?: (result: R) => void): Float64Array {
  const total = opts.iterations + opts.warmup;
  const samples = new Float64Array(opts.iterations);
  for (let i = 0; i < total; i++) {
    const value = setup();
    const t0 = process.hrtime.bigint();
    const result = body(value);
    const t1 = process.hrtime.bigint();
    if (teardown) teardown(result);
    if (i >= opts.warmup) samples[i - opts.warmup] = Number(t1 - t0);
    opts.progress?.tick(i + 1, total);
  }
  return samples;
}

/** `timeLoop` for an asynchronous body (no setup/teardown). */
export async function timeLoopAsync(opts: LoopOptions, body: () => Promise<void>): Promise<Float64Array> {
  const total = opts.iterations + opts.warmup;
  const samples = new Float64Array(opts.iterations);
  for (let i = 0; i < total; i++) {
    const t0 = process.hrtime.bigint();
    await body();
    const t1 = process.hrtime.bigint();
    if (i >= opts.warmup) samples[i - opts.warmup] = Number(t1 - t0);
    opts.progress?.tick(i + 1, total);
  }
  return samples;
}

/** Warm-up count for `iterations`: a tenth, at least 2, at most 50. */
export function warmupFor(iterations: number): number {
  return Math.max(2, Math.min(50, Math.ceil(iterations / 10)));
}
