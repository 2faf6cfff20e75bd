/**
 * OKX v5 REST market data (protocols.md §B7): `/api/v5/market/trades` (latest, ≤500) and
 * `/api/v5/market/history-trades` (type 1: by tradeId, `after` = older than, `before` = newer than; type 2: by
 * timestamp; ≤100; newest first). Envelope `{code:"0",msg:"",data:[...]}` with string fields; per-IP request windows
 * of 2 s answered with HTTP 429 `{"msg":"Too Many Requests","code":"50011"}`.
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
  readonly answer: (q: URLSearchParams) => SimTrade[];
}

export class OkxRest {
  readonly #ctx: OkxRestContext;
  readonly #endpoints: Record<string, Endpoint>;

  constructor(ctx: OkxRestContext) {
    this.#ctx = ctx;
    this.#endpoints = {
      '/api/v5/market/trades': { windows: new KeyedWindows(WINDOW_MS), limit: () => ctx.tradesRequestsPer2s, answer: (q) => this.#trades(q) },
      '/api/v5/market/history-trades': { windows: new KeyedWindows(WINDOW_MS), limit: () => ctx.historyRequestsPer2s, answer: (q) => this.#history(q) },
    };
  }

  handle(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    if (!url.pathname.startsWith('/api/')) return false;
    const endpoint = this.#endpoints[url.pathname];
    if (!endpoint || req.method !== 'GET') {
      sendJson(res, 404, { code: '404', msg: `Unknown endpoint ${req.method ?? ''} ${url.pathname}`, data: [] });
      return true;
    }
    const fault = this.#ctx.faults.take();
    if (fault) {
      this.#ctx.countFault(`okx:rest:${fault.kind}`);
      if (fault.kind === 'fail500') sendJson(res, 500, { code: '50026', msg: 'System error. Try again later', data: [] });
      else {
        const retry = fault.extra.retryAfterSeconds;
        sendJson(res, 429, { msg: 'Too Many Requests', code: '50011' }, retry !== undefined ? { 'Retry-After': String(retry) } : {});
      }
      return true;
    }
    if (endpoint.windows.get(clientIp(req)).hit(Date.now()) > endpoint.limit()) {
      sendJson(res, 429, { msg: 'Too Many Requests', code: '50011' });
      return true;
    }
    try {
      sendJson(res, 200, { code: '0', msg: '', data: endpoint.answer(url.searchParams).map(restTrade) });
    } catch (err) {
      if (!(err instanceof OkxError)) throw err;
      sendJson(res, err.status, { code: err.code, msg: err.message, data: [] });
    }
    return true;
  }

  #tape(q: URLSearchParams): Tape {
    const instId = q.get('instId');
    if (instId === null || instId === '') throw new OkxError(400, '50014', 'Parameter instId can not be empty.');
    const tape = this.#ctx.tapes.get(instId);
    if (!tape) throw new OkxError(200, '51001', "Instrument ID, Instrument ID code or Spread ID doesn't exist.");
    return tape;
  }

  /** The most recent trades, newest first; limit default 100, max 500. */
  #trades(q: URLSearchParams): SimTrade[] {
    const tape = this.#tape(q);
    const limit = limitOf(q, 500);
    return tape.latest(limit).reverse();
  }

  #history(q: URLSearchParams): SimTrade[] {
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
