/**
 * OKX `GET /api/v5/public/instruments?instType=SPOT[&instId=X]`: `{"code":"0","data":[{"instId":..,"state":"live"}]}`;
 * an unknown instId is `{"code":"51001",...,"data":[]}` with HTTP 200. Codes may arrive as numbers.
 */
import { getJson, RestError } from '../../backfill/rest-client.ts';
import type { RateBudget } from '../../backfill/rate-budget.ts';
import type { Logger } from '../../logger.ts';
import { answerSample } from '../instruments.ts';
import type { InstrumentLookup, InstrumentStates } from '../instruments.ts';
import { isRecord } from '../validate.ts';
import { okxCode, okxRateLimited } from './okx-mapper.ts';

/** "Instrument ID, Instrument ID code or Spread ID doesn't exist." */
export const OKX_UNKNOWN_INSTRUMENT = '51001';

/** instId -> state (`live`, `suspend`, `preopen`, `test`) of every listed instrument; null for another shape. */
export function parseOkxInstruments(body: unknown): InstrumentStates | null {
  if (!isRecord(body)) return null;
  const code = okxCode(body.code);
  if (code === OKX_UNKNOWN_INSTRUMENT) return new Map();
  if (code !== '0' || !Array.isArray(body.data)) return null;
  const states = new Map<string, string>();
  for (const i of body.data) {
    if (isRecord(i) && typeof i.instId === 'string' && typeof i.state === 'string') states.set(i.instId, i.state);
  }
  return states;
}

export function createOkxInstruments(opts: { restBaseUrl: string; budget: RateBudget; logger: Logger }): InstrumentLookup {
  const base = `${opts.restBaseUrl}/api/v5/public/instruments?instType=SPOT`;
  const log = opts.logger.child({ component: 'instruments', exchange: 'okx' });
  return {
    exchange: 'okx',
    endpoint: `GET ${base}`,
    tradingState: 'live',
    async states(symbols, signal) {
      // One instrument (a 60018 to confirm): ask for it alone; several: the whole spot list in one request.
      const url = symbols.length === 1 ? `${base}&instId=${encodeURIComponent(symbols[0]!)}` : base;
      const body = await getJson({ url, budget: opts.budget, cost: 1, logger: log, retries: 1, defaultRateLimitWaitMs: 2_000, rateLimitedBody: okxRateLimited, ...(signal ? { signal } : {}) });
      const all = parseOkxInstruments(body);
      if (all === null) throw new RestError('E_REST', `public/instruments answered ${answerSample(body)}`, 200, '');
      return new Map(symbols.flatMap((s) => (all.has(s) ? [[s, all.get(s)!] as const] : [])));
    },
  };
}
