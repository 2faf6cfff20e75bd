/** Capped exponential backoff with full jitter, honouring a server's Retry-After; reset only after data. */

export interface BackoffOptions {
  baseMs: number;
  factor: number;
  maxMs: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  readonly #opts: Required<BackoffOptions>;
  #attempt = 0;

  constructor(opts: BackoffOptions) {
    this.#opts = { random: Math.random, ...opts };
  }

  /** The number of delays handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling of the next delay: min(max, base * factor^attempt). */
  ceiling(): number {
    const { baseMs, factor, maxMs } = this.#opts;
    return Math.min(maxMs, baseMs * factor ** this.#attempt);
  }

  /** The next delay: uniform in [0, ceiling] (full jitter), but never shorter than `retryAfterMs`. */
  next(retryAfterMs?: number): number {
    const jittered = Math.round(this.#opts.random() * this.ceiling());
    this.#attempt += 1;
    return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
