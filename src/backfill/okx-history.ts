/** OKX `GET /api/v5/market/history-trades?instId&type=1&after&limit` (newest first, ≤100), paged backwards over a gap. */
import { mapOkxTrade, okxCode, okxRateLimited } from '../exchanges/okx/okx-mapper.ts';
import { isRecord } from '../exchanges/validate.ts';
import { answerSample } from '../exchanges/instruments.ts';
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
    if (!isRecord(body) || okxCode(body.code) !== '0' || !Array.isArray(body.data)) {
      const code = isRecord(body) ? okxCode(body.code) || '?' : '?';
      throw new RestError('E_REST', `history-trades answered code ${code}: ${answerSample(body)}`, 200, '');
    }
    const now = Date.now();
    const ticks: Tick[] = [];
    for (const raw of body.data) {
      const mapped = isRecord(raw) ? mapOkxTrade(raw, now) : null;
      if (mapped?.ok) ticks.push({ ...mapped.tick, source: 'backfill' });
      else log.warn({ instId, detail: mapped ? mapped.rejection.detail : 'not an object' }, 'rejected REST trade');
    }
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
