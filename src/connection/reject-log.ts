/**
 * Warn about bad exchange input at most once per interval per kind, with a truncated sample and a count. The sample
 * and the detail are capped here whatever the caller passes: a frame may be megabytes. `internal` (a handler threw)
 * is logged at error level with the error, since it is our bug, not the exchange's.
 */
import type { Logger } from '../logger.ts';
import type { RejectKind } from '../snapshots.ts';
import { RateLimitedLog } from './rate-limited-log.ts';

const SAMPLE_CHARS = 200;
const DETAIL_CHARS = 300;

export function truncateSample(sample: string, max = SAMPLE_CHARS): string {
  return sample.length <= max ? sample : `${sample.slice(0, max)}...(${sample.length} chars)`;
}

export class RejectLog {
  readonly #log: RateLimitedLog;

  constructor(logger: Logger, intervalMs = 10_000) {
    this.#log = new RateLimitedLog(logger, intervalMs);
  }

  report(kind: RejectKind, detail: string, sample: string, now = Date.now(), err?: unknown): void {
    const fields = { kind, detail: truncateSample(detail, DETAIL_CHARS), sample: truncateSample(sample) };
    if (kind === 'internal') this.#log.write('error', kind, { ...fields, err }, 'frame handler failed; the frame is dropped, the connection carries on', now);
    else this.#log.warn(kind, fields, 'rejected exchange frame', now);
  }
}
