/** Warn about bad exchange input at most once per interval per kind, with a truncated sample and a count. */
import type { Logger } from '../logger.ts';
import type { RejectKind } from '../snapshots.ts';

const SAMPLE_CHARS = 200;

export function truncateSample(sample: string, max = SAMPLE_CHARS): string {
  return sample.length <= max ? sample : `${sample.slice(0, max)}...(${sample.length} chars)`;
}

export class RejectLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #last = new Map<RejectKind, { at: number; suppressed: number }>();

  constructor(logger: Logger, intervalMs = 10_000) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  report(kind: RejectKind, detail: string, sample: string, now = Date.now()): void {
    const entry = this.#last.get(kind);
    if (entry && now - entry.at < this.#intervalMs) {
      entry.suppressed += 1;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.set(kind, { at: now, suppressed: 0 });
    this.#logger.warn({ kind, detail, sample: truncateSample(sample), suppressedSinceLast: suppressed }, 'rejected exchange frame');
  }
}
