/**
 * Binance spot REST market data (protocols.md §A6): `/api/v3/trades`, `/api/v3/historicalTrades`, `/api/v3/aggTrades`,
 * `/api/v3/ping`, `/api/v3/time`, `/api/v3/exchangeInfo` (`symbol`, `symbols=[...]`, `showPermissionSets`,
 * `symbolStatus`; an unknown symbol among them refuses the request with -1121). Ascending order, request weight per
 * IP in a fixed window with `X-MBX-USED-WEIGHT-1M` on every answer, 429 + Retry-After over the limit and 418 for
 * clients that keep going.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientIp, sendJson, uintParam } from './http-util.ts';
import type { Param } from './http-util.ts';
import { WeightWindow } from './limits.ts';
import { formatQuoteQty } from './tape.ts';
import type { Tape } from './tape.ts';
import type { FaultQueue } from './faults.ts';
import type { RestFaultKind, SimTrade } from './types.ts';

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 500;
const WEIGHTS: Record<string, number> = {
  '/api/v3/ping': 1,
  '/api/v3/time': 1,
  '/api/v3/trades': 25,
  '/api/v3/historicalTrades': 25,
  '/api/v3/aggTrades': 4,
  '/api/v3/exchangeInfo': 20,
};
/** Quote assets, longest first, to split a symbol into base and quote for exchangeInfo. */
const QUOTES = ['FDUSD', 'USDT', 'USDC', 'TUSD', 'BUSD', 'EUR', 'TRY', 'BTC', 'ETH', 'BNB'];

export interface BinanceRestContext {
  readonly tapes: ReadonlyMap<string, Tape>;
  readonly faults: FaultQueue<RestFaultKind, { retryAfterSeconds: number | undefined }>;
  readonly retryAfterSeconds: number;
  readonly weightPerWindow: number;
  readonly weightWindowMs: number;
  readonly banAfterRejections: number;
  /** Status by symbol where it is not TRADING. */
  readonly symbolStates: Readonly<Record<string, string>>;
  countFault(key: string): void;
}

class BadRequest extends Error {
  readonly code: number;
  constructor(code: number, msg: string) {
    super(msg);
    this.code = code;
  }
}

export class BinanceRest {
  readonly #ctx: BinanceRestContext;
  readonly #weights = new Map<string, WeightWindow>();

  constructor(ctx: BinanceRestContext) {
    this.#ctx = ctx;
  }

  /** Answers a request under `/api/`; returns false for any other path. */
  handle(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    if (!url.pathname.startsWith('/api/')) return false;
    const weight = WEIGHTS[url.pathname];
    if (weight === undefined || req.method !== 'GET') {
      sendJson(res, 404, { code: -1, msg: `Unknown endpoint ${req.method ?? ''} ${url.pathname}` });
      return true;
    }
    const fault = this.#ctx.faults.take();
    if (fault) {
      this.#ctx.countFault(`binance:rest:${fault.kind}`);
      if (fault.kind === 'fail500') sendJson(res, 500, { code: -1000, msg: 'An unknown error occured while processing the request.' });
      else this.#tooMuch(res, fault.extra.retryAfterSeconds ?? this.#ctx.retryAfterSeconds, 0);
      return true;
    }
    const now = Date.now();
    const charge = this.#window(clientIp(req)).charge(now, weight);
    if (charge.outcome === 'limited') {
      this.#tooMuch(res, Math.ceil(charge.retryAfterMs / 1000), charge.used);
      return true;
    }
    if (charge.outcome === 'banned') {
      const headers = { 'Retry-After': String(Math.ceil(charge.retryAfterMs / 1000)), 'X-MBX-USED-WEIGHT-1M': String(charge.used) };
      sendJson(res, 418, { code: -1003, msg: `Way too much request weight used; IP banned until ${charge.bannedUntil}. Please use WebSocket Streams for live updates to avoid bans.` }, headers);
      return true;
    }
    const headers = { 'X-MBX-USED-WEIGHT-1M': String(charge.used) };
    try {
      sendJson(res, 200, this.#answer(url), headers);
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      sendJson(res, 400, { code: err.code, msg: err.message }, headers);
    }
    return true;
  }

  #window(ip: string): WeightWindow {
    let w = this.#weights.get(ip);
    if (!w) {
      w = new WeightWindow({ windowMs: this.#ctx.weightWindowMs, limit: this.#ctx.weightPerWindow, banAfterRejections: this.#ctx.banAfterRejections });
      this.#weights.set(ip, w);
    }
    return w;
  }

  #tooMuch(res: ServerResponse, retryAfterSeconds: number, used: number): void {
    const limit = this.#ctx.weightPerWindow;
    sendJson(res, 429, {
      code: -1003,
      msg: `Too much request weight used; current limit is ${limit} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.`,
    }, { 'Retry-After': String(Math.max(1, retryAfterSeconds)), 'X-MBX-USED-WEIGHT-1M': String(used) });
  }

  #answer(url: URL): unknown {
    const q = url.searchParams;
    switch (url.pathname) {
      case '/api/v3/ping':
        return {};
      case '/api/v3/time':
        return { serverTime: Date.now() };
      case '/api/v3/trades': {
        const tape = this.#tape(q);
        return tape.latest(limitOf(q)).map((t) => restTrade(tape, t));
      }
      case '/api/v3/historicalTrades': {
        const tape = this.#tape(q);
        const limit = limitOf(q);
        const fromId = param(q, 'fromId');
        const trades = fromId === undefined ? tape.latest(limit) : tape.ascendingFrom(fromId, limit);
        return trades.map((t) => restTrade(tape, t));
      }
      case '/api/v3/aggTrades':
        return this.#aggTrades(q);
      case '/api/v3/exchangeInfo':
        return this.#exchangeInfo(q);
      default:
        return {};
    }
  }

  /** One aggregate per trade (as on the stream): `a` = `f` = `l` = the trade id. */
  #aggTrades(q: URLSearchParams): unknown {
    const tape = this.#tape(q);
    const limit = limitOf(q);
    const fromId = param(q, 'fromId');
    const start = param(q, 'startTime');
    const end = param(q, 'endTime');
    if (fromId !== undefined && (start !== undefined || end !== undefined)) {
      throw new BadRequest(-1128, 'Combination of optional parameters invalid.');
    }
    let trades: SimTrade[];
    if (fromId !== undefined) trades = tape.ascendingFrom(fromId, limit);
    else if (start !== undefined) trades = tape.ascendingFrom(tape.firstIdAtOrAfter(start), limit).filter((t) => end === undefined || t.time <= end);
    else if (end !== undefined) {
      const last = tape.firstIdAtOrAfter(end + 1) - 1;
      trades = tape.ascendingFrom(last - limit + 1, limit).filter((t) => t.tradeId <= last);
    } else trades = tape.latest(limit);
    return trades.map((t) => ({ a: t.tradeId, p: t.price, q: t.qty, f: t.tradeId, l: t.tradeId, T: t.time, m: t.side === 'sell', M: true }));
  }

  #exchangeInfo(q: URLSearchParams): unknown {
    let symbols = [...this.#ctx.tapes.keys()];
    const one = q.get('symbol');
    const many = q.get('symbols');
    if (one !== null && many !== null) throw new BadRequest(-1101, "Parameter 'symbol' and 'symbols' were provided.");
    const asked = one !== null ? [one] : many !== null ? parseSymbolList(many) : null;
    if (asked !== null) {
      if (asked.some((s) => !this.#ctx.tapes.has(s))) throw new BadRequest(-1121, 'Invalid symbol.');
      symbols = asked;
    }
    const status = (s: string) => this.#ctx.symbolStates[s] ?? 'TRADING';
    const wanted = q.get('symbolStatus');
    if (wanted !== null) symbols = symbols.filter((s) => status(s) === wanted);
    const permissionSets = q.get('showPermissionSets') === 'false' ? [] : [['SPOT', 'MARGIN']];
    return {
      timezone: 'UTC',
      serverTime: Date.now(),
      rateLimits: [
        { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: this.#ctx.weightPerWindow },
        { rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 5, limit: 61000 },
      ],
      exchangeFilters: [],
      symbols: symbols.map((symbol) => {
        const quote = QUOTES.find((x) => symbol.endsWith(x) && symbol.length > x.length) ?? symbol.slice(-4);
        return {
          symbol, status: status(symbol), baseAsset: symbol.slice(0, -quote.length), baseAssetPrecision: 8, quoteAsset: quote,
          quotePrecision: 8, quoteAssetPrecision: 8, baseCommissionPrecision: 8, quoteCommissionPrecision: 8,
          orderTypes: ['LIMIT', 'LIMIT_MAKER', 'MARKET', 'STOP_LOSS_LIMIT', 'TAKE_PROFIT_LIMIT'],
          icebergAllowed: true, ocoAllowed: true, otoAllowed: true, quoteOrderQtyMarketAllowed: true, allowTrailingStop: true,
          cancelReplaceAllowed: true, isSpotTradingAllowed: true, isMarginTradingAllowed: false,
          filters: [{ filterType: 'PRICE_FILTER', minPrice: '0.01000000', maxPrice: '1000000.00000000', tickSize: '0.01000000' }],
          permissions: [], permissionSets, defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
          allowedSelfTradePreventionModes: ['EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'],
        };
      }),
    };
  }

  #tape(q: URLSearchParams): Tape {
    const symbol = q.get('symbol');
    if (symbol === null || symbol === '') throw new BadRequest(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
    const tape = this.#ctx.tapes.get(symbol);
    if (!tape) throw new BadRequest(-1121, 'Invalid symbol.');
    return tape;
  }
}

/** `symbols=["BTCUSDT","ETHUSDT"]` (JSON array, as the docs show it). */
function parseSymbolList(raw: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new BadRequest(-1100, "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.");
  }
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new BadRequest(-1100, "Illegal characters found in parameter 'symbols'.");
  return v as string[];
}

function param(q: URLSearchParams, name: string): number | undefined {
  const p: Param = uintParam(q, name, 20);
  if (p.kind === 'bad') throw new BadRequest(-1100, `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`);
  return p.kind === 'ok' ? p.value : undefined;
}

/** Default 500; above 1000 the server serves 1000 [inf]; 0 is not a valid value. */
function limitOf(q: URLSearchParams): number {
  const limit = param(q, 'limit') ?? DEFAULT_LIMIT;
  if (limit < 1) throw new BadRequest(-1130, "Data sent for parameter 'limit' is not valid.");
  return Math.min(limit, MAX_LIMIT);
}

function restTrade(tape: Tape, t: SimTrade): Record<string, unknown> {
  const units = tape.units(t.tradeId)!;
  return {
    id: t.tradeId,
    price: t.price,
    qty: t.qty,
    quoteQty: formatQuoteQty(units.priceCents, units.qtyUnits),
    time: t.time,
    isBuyerMaker: t.side === 'sell',
    isBestMatch: true,
  };
}
