/** Rate-limit bookkeeping: sliding windows of request times (per key) and Binance's fixed request-weight window. */

/** Counts events in the last `windowMs`. */
export class SlidingWindow {
  readonly #windowMs: number;
  readonly #times: number[] = [];
  #head = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Records an event at `now` and returns how many events (this one included) fall in the window. */
  hit(now: number): number {
    this.#prune(now);
    this.#times.push(now);
    return this.#times.length - this.#head;
  }

  count(now: number): number {
    this.#prune(now);
    return this.#times.length - this.#head;
  }

  /** ms until the oldest event in the window leaves it. */
  msUntilSlot(now: number): number {
    this.#prune(now);
    const oldest = this.#times[this.#head];
    return oldest === undefined ? 0 : Math.max(0, oldest + this.#windowMs - now);
  }

  #prune(now: number): void {
    while (this.#head < this.#times.length && this.#times[this.#head]! <= now - this.#windowMs) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

/** One sliding window per key (client IP). */
export class KeyedWindows {
  readonly #windowMs: number;
  readonly #byKey = new Map<string, SlidingWindow>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  get(key: string): SlidingWindow {
    let w = this.#byKey.get(key);
    if (!w) {
      w = new SlidingWindow(this.#windowMs);
      this.#byKey.set(key, w);
    }
    return w;
  }
}

/** Binance REST weight: a fixed window (1 minute by default) per IP, with a 418 ban for clients that keep going. */
export class WeightWindow {
  readonly #windowMs: number;
  readonly #limit: number;
  readonly #banAfterRejections: number;
  #windowStart = 0;
  #used = 0;
  #rejections = 0;
  #bannedUntil = 0;

  constructor(opts: { windowMs: number; limit: number; banAfterRejections: number }) {
    this.#windowMs = opts.windowMs;
    this.#limit = opts.limit;
    this.#banAfterRejections = opts.banAfterRejections;
  }

  /**
   * Charges `weight` at `now`. `ok`: served; `limited`: 429 (over the window); `banned`: 418. `retryAfterMs` is the
   * wait that avoids a ban (429) or the time until the ban ends (418).
   */
  charge(now: number, weight: number): { outcome: 'ok' | 'limited' | 'banned'; used: number; retryAfterMs: number; bannedUntil: number } {
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now - ((now - this.#windowStart) % this.#windowMs);
      this.#used = 0;
      this.#rejections = 0;
    }
    const windowLeft = this.#windowStart + this.#windowMs - now;
    if (now < this.#bannedUntil) return { outcome: 'banned', used: this.#used, retryAfterMs: this.#bannedUntil - now, bannedUntil: this.#bannedUntil };
    if (this.#used + weight > this.#limit) {
      this.#rejections += 1;
      if (this.#banAfterRejections > 0 && this.#rejections > this.#banAfterRejections) {
        this.#bannedUntil = now + 2 * this.#windowMs;
        return { outcome: 'banned', used: this.#used, retryAfterMs: this.#bannedUntil - now, bannedUntil: this.#bannedUntil };
      }
      return { outcome: 'limited', used: this.#used, retryAfterMs: windowLeft, bannedUntil: 0 };
    }
    this.#used += weight;
    return { outcome: 'ok', used: this.#used, retryAfterMs: 0, bannedUntil: 0 };
  }

  used(now: number): number {
    return now - this.#windowStart >= this.#windowMs ? 0 : this.#used;
  }
}
