/**
 * A request budget per exchange, shared by every symbol: a fixed window of `capacity` units per `windowMs`, plus a
 * hard pause when the exchange answers 429/418 with Retry-After. `take()` waits (abortably) until it fits.
 */
export interface RateBudgetOptions {
  readonly capacity: number;
  readonly windowMs: number;
  readonly now?: () => number;
}

export class RateBudget {
  /** What went through this budget: requests sent, failed (after any answer or none), rate-limited. */
  readonly counters = { requests: 0, errors: 0, rateLimited: 0 };
  readonly #capacity: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = 0;
  #used = 0;
  #pausedUntil = 0;

  constructor(opts: RateBudgetOptions) {
    this.#capacity = opts.capacity;
    this.#windowMs = opts.windowMs;
    this.#now = opts.now ?? Date.now;
  }

  /** Milliseconds until `cost` units can be spent (0: now). Spends them when it returns 0. */
  tryTake(cost: number): number {
    const now = this.#now();
    if (now < this.#pausedUntil) return this.#pausedUntil - now;
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#used = 0;
    }
    if (this.#used + cost > this.#capacity) return this.#windowStart + this.#windowMs - now;
    this.#used += cost;
    return 0;
  }

  async take(cost: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const wait = this.tryTake(cost);
      if (wait === 0) return;
      await abortableSleep(wait, signal);
    }
  }

  /** The exchange said stop (429/418 Retry-After): nobody spends anything until then. */
  pauseFor(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + ms);
  }

  get pausedUntil(): number {
    return this.#pausedUntil;
  }
}

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
