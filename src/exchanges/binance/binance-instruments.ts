/** Binance spot `GET /api/v3/exchangeInfo?showPermissionSets=false`: `symbols[].symbol` and `symbols[].status`. */
import { getJson, RestError } from '../../backfill/rest-client.ts';
import type { RateBudget } from '../../backfill/rate-budget.ts';
import type { Logger } from '../../logger.ts';
import { answerSample } from '../instruments.ts';
import type { InstrumentLookup, InstrumentStates } from '../instruments.ts';
import { isRecord } from '../validate.ts';

/** The documented request weight of exchangeInfo. */
export const BINANCE_EXCHANGE_INFO_WEIGHT = 20;

/** Symbol -> status (`TRADING`, `BREAK`, `HALT`...) of every listed symbol; null for an answer of another shape. */
export function parseExchangeInfo(body: unknown): InstrumentStates | null {
  if (!isRecord(body) || !Array.isArray(body.symbols)) return null;
  const states = new Map<string, string>();
  for (const s of body.symbols) {
    if (isRecord(s) && typeof s.symbol === 'string' && typeof s.status === 'string') states.set(s.symbol, s.status);
  }
  return states;
}

export function createBinanceInstruments(opts: { restBaseUrl: string; budget: RateBudget; logger: Logger }): InstrumentLookup {
  // The full list (one request, weight 20) rather than `symbols=[...]`: that form refuses the whole request with
  // -1121 when one symbol is unknown, without naming it.
  const url = `${opts.restBaseUrl}/api/v3/exchangeInfo?showPermissionSets=false`;
  const log = opts.logger.child({ component: 'instruments', exchange: 'binance' });
  return {
    exchange: 'binance',
    endpoint: `GET ${opts.restBaseUrl}/api/v3/exchangeInfo`,
    tradingState: 'TRADING',
    async states(symbols, signal) {
      const body = await getJson({ url, budget: opts.budget, cost: BINANCE_EXCHANGE_INFO_WEIGHT, logger: log, retries: 1, ...(signal ? { signal } : {}) });
      const all = parseExchangeInfo(body);
      if (all === null) throw new RestError('E_REST', `exchangeInfo answered ${answerSample(body)}`, 200, '');
      return new Map(symbols.flatMap((s) => (all.has(s) ? [[s, all.get(s)!] as const] : [])));
    },
  };
}
