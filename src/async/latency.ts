// A fixed-size ring of recent latencies with percentiles on demand (for SandboxPool.stats()).

export interface LatencySummary {
  /** Samples the percentiles are taken over (the most recent, at most the ring's size). */
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export class LatencyRing {
  readonly #values: Float64Array;
  #next = 0;
  #count = 0;

  constructor(size = 4096) {
    this.#values = new Float64Array(size);
  }

  add(ms: number): void {
    this.#values[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#values.length;
    if (this.#count < this.#values.length) this.#count++;
  }

  /** Nearest-rank percentiles of the kept samples (all 0 when there are none). */
  summary(): LatencySummary {
    const n = this.#count;
    if (n === 0) return { samples: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const sorted = this.#values.slice(0, n).sort();
    const at = (p: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
    return { samples: n, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[n - 1]! };
  }
}
