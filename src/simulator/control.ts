/**
 * The control API under `/__sim/` (on the Binance port), so other processes (benchmark, soak, demo) can drive a
 * running simulator:
 *   POST /__sim/fault       {"exchange": "binance"|"okx", "kind": <FAULT_KINDS>, "count"?: n}  e.g.
 *                           curl -X POST -d '{"exchange":"binance","kind":"reset"}' http://127.0.0.1:<port>/__sim/fault
 *                           (serverShutdown is Binance only, notice64008 OKX only; count: next n sockets/upgrades)
 *   POST /__sim/rest-fault  {exchange, kind: <REST_FAULT_KINDS>, count?, retryAfterSeconds?}
 *   POST /__sim/raw         {exchange, frames: string[], binary?}   send these frames as they are to every open socket
 *   POST /__sim/hostile     {exchange, kind, count?}   a hostile frame class (hostile.ts) to every open socket
 *   POST /__sim/rate        {tradesPerSecond}
 *   POST /__sim/pause, /__sim/resume, /__sim/step {n?}
 *   GET  /__sim/status      stats, live sockets, subscriptions, tape ranges
 *   GET  /__sim/tape?exchange=&symbol=&fromId=&limit=   trades ascending from fromId (default: the oldest kept)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readJsonBody, sendJson, uintParam } from './http-util.ts';
import { FAULT_KINDS, REST_FAULT_KINDS, faultApplies, isFaultKind, isRestFaultKind } from './faults.ts';
import { isHostileKind } from './hostile.ts';
import type { HostileKind } from './hostile.ts';
import { SIM_EXCHANGES } from './types.ts';
import type { FaultKind, RestFaultKind, SimExchange, SimStats, SimTrade, TapeRange } from './types.ts';

const MAX_TAPE_PAGE = 100_000;

/** What the control API needs from the simulator. */
export interface ControlTarget {
  inject(exchange: SimExchange, kind: FaultKind, opts?: { count?: number }): void;
  injectRest(exchange: SimExchange, kind: RestFaultKind, opts?: { count?: number; retryAfterSeconds?: number }): void;
  sendRaw(exchange: SimExchange, frames: ReadonlyArray<string | Buffer>): number;
  injectHostile(exchange: SimExchange, kind: HostileKind, count?: number): { sockets: number; frames: number[]; newTrades: SimTrade[] };
  setRate(tradesPerSecond: number): void;
  pause(): void;
  resume(): void;
  step(n?: number): void;
  status(): unknown;
  tapeRange(exchange: SimExchange, symbol: string): TapeRange | undefined;
  tapePage(exchange: SimExchange, symbol: string, fromId: number | undefined, limit: number): SimTrade[];
  stats(): SimStats;
}

class ControlError extends Error {}

function exchangeOf(v: unknown): SimExchange {
  if (typeof v === 'string' && (SIM_EXCHANGES as readonly string[]).includes(v)) return v as SimExchange;
  throw new ControlError(`exchange: expected one of ${SIM_EXCHANGES.join(', ')}, got ${JSON.stringify(v)}`);
}

function optionalPositiveInt(body: Record<string, unknown>, name: string): number | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ControlError(`${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

export async function handleControl(target: ControlTarget, req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
  try {
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    if (route === 'GET /__sim/status') return sendJson(res, 200, target.status());
    if (route === 'GET /__sim/tape') return tape(target, url.searchParams, res);
    if (req.method !== 'POST') return sendJson(res, 404, { error: `unknown control endpoint ${route}` });
    const raw = await readJsonBody(req).catch((err: Error) => {
      throw new ControlError(err.message);
    });
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlError('body: expected a JSON object');
    const body = raw as Record<string, unknown>;
    switch (url.pathname) {
      case '/__sim/fault': {
        if (!isFaultKind(body.kind)) throw new ControlError(`kind: unknown fault ${JSON.stringify(body.kind)}; valid kinds: ${FAULT_KINDS.join(', ')}`);
        const count = optionalPositiveInt(body, 'count');
        const exchange = exchangeOf(body.exchange);
        if (!faultApplies(exchange, body.kind)) throw new ControlError(`kind: ${body.kind} does not exist on ${exchange}; valid there: ${FAULT_KINDS.filter((k) => faultApplies(exchange, k)).join(', ')}`);
        target.inject(exchange, body.kind, count !== undefined ? { count } : {});
        break;
      }
      case '/__sim/rest-fault': {
        if (!isRestFaultKind(body.kind)) throw new ControlError(`kind: unknown REST fault ${JSON.stringify(body.kind)}; valid kinds: ${REST_FAULT_KINDS.join(', ')}`);
        const count = optionalPositiveInt(body, 'count');
        const retryAfterSeconds = optionalPositiveInt(body, 'retryAfterSeconds');
        target.injectRest(exchangeOf(body.exchange), body.kind, { ...(count !== undefined ? { count } : {}), ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) });
        break;
      }
      case '/__sim/raw': {
        if (!Array.isArray(body.frames) || !body.frames.every((f) => typeof f === 'string')) throw new ControlError('frames: expected an array of strings');
        const frames = body.binary === true ? body.frames.map((f: string) => Buffer.from(f, 'utf8')) : (body.frames as string[]);
        return sendJson(res, 200, { ok: true, sockets: target.sendRaw(exchangeOf(body.exchange), frames) });
      }
      case '/__sim/hostile': {
        if (!isHostileKind(body.kind)) throw new ControlError(`kind: unknown hostile kind ${JSON.stringify(body.kind)}`);
        const sent = target.injectHostile(exchangeOf(body.exchange), body.kind, optionalPositiveInt(body, 'count') ?? 1);
        return sendJson(res, 200, { ok: true, ...sent });
      }
      case '/__sim/rate':
        if (typeof body.tradesPerSecond !== 'number') throw new ControlError('tradesPerSecond: expected a number');
        target.setRate(body.tradesPerSecond);
        break;
      case '/__sim/pause':
        target.pause();
        break;
      case '/__sim/resume':
        target.resume();
        break;
      case '/__sim/step':
        target.step(optionalPositiveInt(body, 'n') ?? 1);
        break;
      default:
        return sendJson(res, 404, { error: `unknown control endpoint ${route}` });
    }
    sendJson(res, 200, { ok: true, stats: target.stats() });
  } catch (err) {
    if (err instanceof ControlError || err instanceof RangeError) sendJson(res, 400, { error: err.message });
    else sendJson(res, 500, { error: String(err) });
  }
}

function tape(target: ControlTarget, q: URLSearchParams, res: ServerResponse): void {
  const exchange = exchangeOf(q.get('exchange'));
  const symbol = q.get('symbol');
  if (!symbol) throw new ControlError('symbol: required');
  const fromId = uintParam(q, 'fromId');
  const limit = uintParam(q, 'limit');
  if (fromId.kind === 'bad' || limit.kind === 'bad') throw new ControlError('fromId and limit: expected non-negative integers');
  const n = Math.min(limit.kind === 'ok' ? limit.value : 1000, MAX_TAPE_PAGE);
  sendJson(res, 200, {
    exchange,
    symbol,
    range: target.tapeRange(exchange, symbol) ?? null,
    trades: target.tapePage(exchange, symbol, fromId.kind === 'ok' ? fromId.value : undefined, n),
  });
}
