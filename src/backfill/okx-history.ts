/** OKX `GET /api/v5/market/history-trades?instId&type=1&after&limit` (newest first, ≤100), paged backwards over a gap. */
import { mapOkxRestPage, okxRateLimited } from '../exchanges/okx/okx-mapper.ts';
import type { Logger } from '../logger.ts';
import type { Tick } from '../tick.ts';
import type { RateBudget } from './rate-budget.ts';
import { getJson, RestError } from './rest-client.ts';
import { uncovered } from './range-fill.ts';
import type { FillResult, IdRange, RangeFiller } from './range-fill.ts';

const MAX_LIMIT = 100;
/** OKX documents no Retry-After; its history window is 2 s. */
const OKX_RATE_WINDOW_MS = 2_000;


export function createOkxHistory(opts: { restBaseUrl: string; budget: RateBudget; logger: Logger }): RangeFiller {
  const log = opts.logger.child({ component: 'backfill', exchange: 'okx' });

  /** Trades with tradeId < `before` (OKX's `after` means "older than"), newest first. */
  async function page(instId: string, before: number, signal?: AbortSignal): Promise<Tick[]> {
    const url = `${opts.restBaseUrl}/api/v5/market/history-trades?instId=${encodeURIComponent(instId)}&type=1&after=${before}&limit=${MAX_LIMIT}`;
    const body = await getJson({ url, budget: opts.budget, cost: 1, logger: log, defaultRateLimitWaitMs: OKX_RATE_WINDOW_MS, rateLimitedBody: okxRateLimited, ...(signal ? { signal } : {}) });
    const mapped = mapOkxRestPage(body, instId, Date.now());
    if (!mapped.ok) throw new RestError('E_REST', mapped.detail, 200, '');
    const [first] = mapped.rejects;
    if (first) log.warn({ instId, rejected: mapped.rejects.length, kind: first.kind, detail: first.detail }, 'rejected REST trades');
    const ticks = mapped.ticks;
    return ticks.sort((a, b) => b.tradeId - a.tradeId);
  }

  return {
    budget: opts.budget,
    exchange: 'okx',
    async fill(symbol: string, range: IdRange, deliver, signal): Promise<FillResult> {
      let before = range.to + 1;
      let delivered = 0;
      const seen: number[] = [];
      while (before > range.from) {
        const ticks = (await page(symbol, before, signal)).filter((t) => t.tradeId < before);
        if (ticks.length === 0) break;
        const inRange = ticks.filter((t) => t.tradeId >= range.from);
        if (inRange.length > 0) await deliver([...inRange].reverse());
        delivered += inRange.length;
        for (const t of inRange) seen.push(t.tradeId);
        before = ticks.at(-1)!.tradeId;
      }
      return { delivered, missing: uncovered(range, seen.sort((a, b) => a - b)) };
    },
  };
}
