/** Warn about bad exchange input at most once per interval per kind, with a truncated sample and a count. */
import type { Logger } from '../logger.ts';
import type { RejectKind } from '../snapshots.ts';
import { RateLimitedLog } from './rate-limited-log.ts';

const SAMPLE_CHARS = 200;

export function truncateSample(sample: string, max = SAMPLE_CHARS): string {
  return sample.length <= max ? sample : `${sample.slice(0, max)}...(${sample.length} chars)`;
}

export class RejectLog {
  readonly #log: RateLimitedLog;

  constructor(logger: Logger, intervalMs = 10_000) {
    this.#log = new RateLimitedLog(logger, intervalMs);
  }

  report(kind: RejectKind, detail: string, sample: string, now = Date.now()): void {
    this.#log.warn(kind, { kind, detail, sample: truncateSample(sample) }, 'rejected exchange frame', now);
  }
}
