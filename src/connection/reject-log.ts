/**
 * Warn about bad exchange input at most once per interval per kind, with a truncated sample and a count. The sample
 * and the detail are capped here whatever the caller passes: a frame may be megabytes. `internal` (a handler threw)
 * is logged at error level with the error, since it is our bug, not the exchange's.
 */
import type { Logger } from '../logger.ts';
import type { RejectKind } from '../snapshots.ts';

const SAMPLE_CHARS = 200;
const DETAIL_CHARS = 300;

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

  report(kind: RejectKind, detail: string, sample: string, now = Date.now(), err?: unknown): void {
    const entry = this.#last.get(kind);
    if (entry && now - entry.at < this.#intervalMs) {
      entry.suppressed += 1;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.set(kind, { at: now, suppressed: 0 });
    const fields = { kind, detail: truncateSample(detail, DETAIL_CHARS), sample: truncateSample(sample), suppressedSinceLast: suppressed };
    if (kind === 'internal') this.#logger.error({ ...fields, err }, 'frame handler failed; the frame is dropped, the connection carries on');
    else this.#logger.warn(fields, 'rejected exchange frame');
  }
}
