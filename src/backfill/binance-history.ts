/** Binance `GET /api/v3/historicalTrades?symbol&fromId&limit` (ascending, weight 25), paged over a gap. */
import { mapBinanceRestPage } from '../exchanges/binance/binance-mapper.ts';
import type { Logger } from '../logger.ts';
import type { Tick } from '../tick.ts';
import type { RateBudget } from './rate-budget.ts';
import { getJson, RestError } from './rest-client.ts';
import { uncovered } from './range-fill.ts';
import type { FillResult, IdRange, RangeFiller } from './range-fill.ts';

export const BINANCE_HISTORICAL_TRADES_WEIGHT = 25;
const MAX_LIMIT = 1000;

export function createBinanceHistory(opts: { restBaseUrl: string; budget: RateBudget; logger: Logger }): RangeFiller {
  const log = opts.logger.child({ component: 'backfill', exchange: 'binance' });

  async function page(symbol: string, fromId: number, limit: number, signal?: AbortSignal): Promise<Tick[]> {
    const url = `${opts.restBaseUrl}/api/v3/historicalTrades?symbol=${encodeURIComponent(symbol)}&fromId=${fromId}&limit=${limit}`;
    const body = await getJson({ url, budget: opts.budget, cost: BINANCE_HISTORICAL_TRADES_WEIGHT, logger: log, ...(signal ? { signal } : {}) });
    const mapped = mapBinanceRestPage(body, symbol, Date.now());
    if (!mapped.ok) throw new RestError('E_REST', mapped.detail, 200, '');
    const [first] = mapped.rejects;
    if (first) log.warn({ symbol, rejected: mapped.rejects.length, kind: first.kind, detail: first.detail }, 'rejected REST trades');
    const ticks = mapped.ticks;
    return ticks.sort((a, b) => a.tradeId - b.tradeId);
  }

  return {
    budget: opts.budget,
    exchange: 'binance',
    async fill(symbol: string, range: IdRange, deliver, signal): Promise<FillResult> {
      let cursor = range.from;
      let delivered = 0;
      const seen: number[] = [];
      while (cursor <= range.to) {
        const ticks = (await page(symbol, cursor, Math.min(MAX_LIMIT, range.to - cursor + 1), signal)).filter((t) => t.tradeId >= cursor);
        if (ticks.length === 0) break;
        const inRange = ticks.filter((t) => t.tradeId <= range.to);
        if (inRange.length > 0) await deliver(inRange);
        delivered += inRange.length;
        for (const t of inRange) seen.push(t.tradeId);
        cursor = ticks.at(-1)!.tradeId + 1;
      }
      return { delivered, missing: uncovered(range, seen) };
    },
  };
}
