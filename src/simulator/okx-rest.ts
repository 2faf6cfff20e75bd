/**
 * OKX v5 REST (protocols.md §B7): `/api/v5/market/trades` (latest, ≤500), `/api/v5/market/history-trades` (type 1:
 * by tradeId, `after` = older than, `before` = newer than; type 2: by timestamp; ≤100; newest first) and
 * `/api/v5/public/instruments?instType=SPOT[&instId=]` (unknown instId: code 51001 with HTTP 200). Envelope
 * `{code:"0",msg:"",data:[...]}` with string fields (codes as numbers with `okxNumericCodes`); per-IP request
 * windows of 2 s answered with HTTP 429 `{"msg":"Too Many Requests","code":"50011"}`, and the `rateLimit200` fault's
 * HTTP 200 `{"code":"50011","msg":"Rate limit reached. ..."}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientIp, sendJson, uintParam } from './http-util.ts';
import { KeyedWindows } from './limits.ts';
import type { Tape } from './tape.ts';
import type { FaultQueue } from './faults.ts';
import type { RestFaultKind, SimTrade } from './types.ts';

const WINDOW_MS = 2_000;

export interface OkxRestContext {
  readonly tapes: ReadonlyMap<string, Tape>;
  readonly faults: FaultQueue<RestFaultKind, { retryAfterSeconds: number | undefined }>;
  readonly historyRequestsPer2s: number;
  readonly tradesRequestsPer2s: number;
  readonly numericCodes: boolean;
  /** State by instId where it is not `live`. */
  readonly symbolStates: Readonly<Record<string, string>>;
  countFault(key: string): void;
}

class OkxError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, msg: string) {
    super(msg);
    this.status = status;
    this.code = code;
  }
}

interface Endpoint {
  readonly windows: KeyedWindows;
  readonly limit: () => number;
  readonly answer: (q: URLSearchParams) => unknown[];
}

/** Documented limit of public/instruments: 20 requests per 2 s per IP and instrument type. */
const INSTRUMENTS_PER_2S = 20;

export class OkxRest {
  readonly #ctx: OkxRestContext;
  readonly #endpoints: Record<string, Endpoint>;

  constructor(ctx: OkxRestContext) {
    this.#ctx = ctx;
    this.#endpoints = {
      '/api/v5/market/trades': { windows: new KeyedWindows(WINDOW_MS), limit: () => ctx.tradesRequestsPer2s, answer: (q) => this.#trades(q) },
      '/api/v5/market/history-trades': { windows: new KeyedWindows(WINDOW_MS), limit: () => ctx.historyRequestsPer2s, answer: (q) => this.#history(q) },
      '/api/v5/public/instruments': { windows: new KeyedWindows(WINDOW_MS), limit: () => INSTRUMENTS_PER_2S, answer: (q) => this.#instruments(q) },
    };
  }

  handle(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    if (!url.pathname.startsWith('/api/')) return false;
    const endpoint = this.#endpoints[url.pathname];
    if (!endpoint || req.method !== 'GET') {
      sendJson(res, 404, { code: this.#code('404'), msg: `Unknown endpoint ${req.method ?? ''} ${url.pathname}`, data: [] });
      return true;
    }
    const fault = this.#ctx.faults.take();
    if (fault) {
      this.#ctx.countFault(`okx:rest:${fault.kind}`);
      if (fault.kind === 'fail500') sendJson(res, 500, { code: this.#code('50026'), msg: 'System error. Try again later', data: [] });
      else if (fault.kind === 'rateLimit200') {
        sendJson(res, 200, { code: this.#code('50011'), msg: 'Rate limit reached. Please refer to API documentation and throttle requests accordingly.', data: [] });
      } else {
        const retry = fault.extra.retryAfterSeconds;
        sendJson(res, 429, { msg: 'Too Many Requests', code: this.#code('50011') }, retry !== undefined ? { 'Retry-After': String(retry) } : {});
      }
      return true;
    }
    if (endpoint.windows.get(clientIp(req)).hit(Date.now()) > endpoint.limit()) {
      sendJson(res, 429, { msg: 'Too Many Requests', code: this.#code('50011') });
      return true;
    }
    try {
      sendJson(res, 200, { code: this.#code('0'), msg: '', data: endpoint.answer(url.searchParams) });
    } catch (err) {
      if (!(err instanceof OkxError)) throw err;
      sendJson(res, err.status, { code: this.#code(err.code), msg: err.message, data: [] });
    }
    return true;
  }

  #code(code: string): string | number {
    return this.#ctx.numericCodes ? Number(code) : code;
  }

  #instruments(q: URLSearchParams): unknown[] {
    const instType = q.get('instType');
    if (instType === null || instType === '') throw new OkxError(400, '50014', 'Parameter instType can not be empty.');
    if (!['SPOT', 'MARGIN', 'SWAP', 'FUTURES', 'OPTION'].includes(instType)) throw new OkxError(400, '51000', 'Parameter instType error');
    if (instType !== 'SPOT') return []; // the simulator lists spot instruments only
    const instId = q.get('instId');
    const ids = instId === null || instId === '' ? [...this.#ctx.tapes.keys()] : [instId];
    if (ids.some((id) => !this.#ctx.tapes.has(id))) throw new OkxError(200, '51001', "Instrument ID, Instrument ID code or Spread ID doesn't exist.");
    return ids.map((id) => {
      const [baseCcy = '', quoteCcy = ''] = id.split('-');
      return {
        instType: 'SPOT', instId: id, uly: '', instFamily: '', baseCcy, quoteCcy, settleCcy: '', ctValCcy: '', optType: '', stk: '',
        listTime: '1606468572000', auctionEndTime: '', expTime: '', lever: '', tickSz: '0.1', lotSz: '0.00000001', minSz: '0.00001',
        ctVal: '', state: this.#ctx.symbolStates[id] ?? 'live', ruleType: 'normal', ctType: '', alias: '', ctMult: '',
        maxLmtSz: '9999999999', maxMktSz: '1000000', maxLmtAmt: '20000000', maxMktAmt: '1000000', maxTwapSz: '9999999999',
        maxIcebergSz: '9999999999', maxTriggerSz: '9999999999', maxStopSz: '1000000', futureSettlement: false, tradeQuoteCcyList: [quoteCcy],
      };
    });
  }

  #tape(q: URLSearchParams): Tape {
    const instId = q.get('instId');
    if (instId === null || instId === '') throw new OkxError(400, '50014', 'Parameter instId can not be empty.');
    const tape = this.#ctx.tapes.get(instId);
    if (!tape) throw new OkxError(200, '51001', "Instrument ID, Instrument ID code or Spread ID doesn't exist.");
    return tape;
  }

  /** The most recent trades, newest first; limit default 100, max 500. */
  #trades(q: URLSearchParams): unknown[] {
    const tape = this.#tape(q);
    const limit = limitOf(q, 500);
    return tape.latest(limit).reverse().map(restTrade);
  }

  #history(q: URLSearchParams): unknown[] {
    return this.#historyTrades(q).map(restTrade);
  }

  #historyTrades(q: URLSearchParams): SimTrade[] {
    const tape = this.#tape(q);
    const type = q.get('type') ?? '1';
    if (type !== '1' && type !== '2') throw new OkxError(400, '51000', 'Parameter type error');
    const limit = limitOf(q, 100);
    const after = id(q, 'after');
    const before = id(q, 'before');
    if (type === '2') {
      if (before !== undefined) throw new OkxError(400, '50039', 'Parameter "before" isn\'t supported for timestamp pagination');
      return after === undefined ? tape.latest(limit).reverse() : tape.descendingByTime(after, limit);
    }
    // ids in (before, after), newest first; `before` alone therefore gives the latest page above it.
    return tape.descending(after ?? Number.MAX_SAFE_INTEGER, before ?? -1, limit);
  }
}

function id(q: URLSearchParams, name: string): number | undefined {
  const p = uintParam(q, name);
  if (p.kind === 'bad') throw new OkxError(400, '51000', `Parameter ${name} error`);
  return p.kind === 'ok' ? p.value : undefined;
}

/** Default and maximum are the same on both endpoints' docs for history (100); market/trades defaults to 100. */
function limitOf(q: URLSearchParams, max: number): number {
  const p = uintParam(q, 'limit', 6);
  if (p.kind === 'bad' || (p.kind === 'ok' && p.value < 1)) throw new OkxError(400, '51000', 'Parameter limit error');
  return Math.min(p.kind === 'ok' ? p.value : 100, max);
}

function restTrade(t: SimTrade): Record<string, string> {
  return { instId: t.symbol, side: t.side, sz: t.qty, px: t.price, source: '0', tradeId: String(t.tradeId), ts: String(t.time) };
}
