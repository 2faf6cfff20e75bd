/**
 * Warn lines that repeat at most once per interval per key, each carrying how many were suppressed since the last
 * one. The keys are ours (a reject kind, a failure cause), and their number is bounded: the oldest is forgotten.
 */
import type { Logger } from '../logger.ts';

export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: Logger, intervalMs: number, maxKeys = 64) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    this.#maxKeys = maxKeys;
  }

  /** Logs at warn unless `key` was logged within the interval (then counts it as suppressed). Returns whether it logged. */
  warn(key: string, fields: Record<string, unknown>, msg: string, now = Date.now()): boolean {
    return this.write('warn', key, fields, msg, now);
  }

  /** Like warn(), at the level given. */
  write(level: 'warn' | 'error', key: string, fields: Record<string, unknown>, msg: string, now = Date.now()): boolean {
    const entry = this.#last.get(key);
    if (entry && now - entry.at < this.#intervalMs) {
      entry.suppressed += 1;
      return false;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.delete(key);
    if (this.#last.size >= this.#maxKeys) this.#last.delete(this.#last.keys().next().value!);
    this.#last.set(key, { at: now, suppressed: 0 });
    this.#logger[level]({ ...fields, suppressedSinceLast: suppressed }, msg);
    return true;
  }
}
