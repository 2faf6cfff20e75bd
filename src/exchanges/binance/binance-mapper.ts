/** Pure mapping from Binance stream frames to Ticks and frame classes. No I/O, no clock of its own. */
import type { FrameResult, Rejection } from '../../connection/feed.ts';
import type { Tick, TickSource } from '../../tick.ts';
import { boolean, describe, epochMillis, isPositiveDecimal, isSafeUint, plausibleMillis, isRecord, nonEmptyString, parseJson, positiveDecimal, preview, safeInteger, typeName } from '../validate.ts';
import type { PageMapping, TradeMapping } from '../validate.ts';
import { DECIMAL, JSON_UINT, matchedTick } from '../frame-templates.ts';

/** Where one trade shape keeps each field: the stream event (`t`, `p`...) and REST (`id`, `price`...) differ only here. */
interface TradeFields {
  readonly id: string;
  readonly price: string;
  readonly qty: string;
  readonly time: string;
  /** true: the buyer was the maker, so the taker (the side we store) sold. */
  readonly buyerIsMaker: string;
}

const STREAM_FIELDS: TradeFields = { id: 't', price: 'p', qty: 'q', time: 'T', buyerIsMaker: 'm' };
const REST_FIELDS: TradeFields = { id: 'id', price: 'price', qty: 'qty', time: 'time', buyerIsMaker: 'isBuyerMaker' };

function mapTrade(raw: Record<string, unknown>, f: TradeFields, symbol: string, receivedAt: number, source: TickSource): TradeMapping {
  const tradeId = safeInteger(raw, f.id, false);
  if (!tradeId.ok) return tradeId;
  const price = positiveDecimal(raw, f.price);
  if (!price.ok) return price;
  const qty = positiveDecimal(raw, f.qty);
  if (!qty.ok) return qty;
  const tradeTime = epochMillis(raw, f.time, false, receivedAt);
  if (!tradeTime.ok) return tradeTime;
  const buyerIsMaker = boolean(raw, f.buyerIsMaker);
  if (!buyerIsMaker.ok) return buyerIsMaker;
  return {
    ok: true,
    tick: {
      exchange: 'binance',
      symbol,
      tradeId: tradeId.value,
      price: price.value,
      qty: qty.value,
      side: buyerIsMaker.value ? 'sell' : 'buy',
      tradeTime: tradeTime.value,
      receivedAt,
      source,
    },
  };
}

/** Maps one raw `@trade` event (`{e,E,s,t,p,q,T,m,M}`). */
export function mapBinanceTrade(raw: Record<string, unknown>, receivedAt: number): TradeMapping {
  // Fast path: every field valid (the same predicates as the checks below), read by name, nothing else allocated.
  const { s, t, p, q, T, m } = raw;
  if (typeof s === 'string' && s !== '' && isSafeUint(t) && isPositiveDecimal(p) && isPositiveDecimal(q) && isSafeUint(T) && plausibleMillis(T, receivedAt) && typeof m === 'boolean') {
    return { ok: true, tick: { exchange: 'binance', symbol: s, tradeId: t, price: p, qty: q, side: m ? 'sell' : 'buy', tradeTime: T, receivedAt, source: 'live' } };
  }
  const symbol = nonEmptyString(raw, 's');
  if (!symbol.ok) return symbol;
  return mapTrade(raw, STREAM_FIELDS, symbol.value, receivedAt, 'live');
}

/**
 * A combined-stream `@trade` frame as Binance serializes it (protocols.md A2), the pre-2024-06 `b`/`a` fields
 * optional; see frame-templates.ts. Groups: s, t, p, q, T, m.
 */
const TRADE_FRAME_RE = new RegExp(
  `^\\{"stream":"[a-z0-9]{1,40}@trade","data":\\{"e":"trade","E":${JSON_UINT},"s":"([A-Z0-9]{1,40})","t":(${JSON_UINT}),` +
    `"p":"(${DECIMAL})","q":"(${DECIMAL})",(?:"b":${JSON_UINT},"a":${JSON_UINT},)?"T":(${JSON_UINT}),"m":(true|false),"M":(?:true|false)\\}\\}$`,
);

/** The tick of a frame in Binance's own trade serialization that the checks below would accept, else null. */
export function matchBinanceTradeFrame(text: string, receivedAt: number): Tick | null {
  const m = TRADE_FRAME_RE.exec(text);
  return m === null ? null : matchedTick('binance', m[1]!, m[2]!, m[3]!, m[4]!, m[6] === 'true' ? 'sell' : 'buy', m[5]!, receivedAt);
}

/** Classifies one text frame from a raw (`/ws`) or combined (`/stream`) connection. */
export function classifyBinanceFrame(text: string, receivedAt: number): FrameResult {
  const fast = matchBinanceTradeFrame(text, receivedAt);
  return fast !== null ? { kind: 'ticks', ticks: [fast] } : classifyBinanceJson(text, receivedAt);
}

/** The general path: parse, then classify and validate field by field, naming what is wrong. */
export function classifyBinanceJson(text: string, receivedAt: number): FrameResult {
  const parsed = parseJson(text);
  if (!parsed.ok) return { kind: 'rejected', reject: parsed.rejection.kind, detail: parsed.rejection.detail };
  const msg = parsed.value;
  if (!isRecord(msg)) return { kind: 'rejected', reject: 'bad_type', detail: 'frame is not a JSON object' };
  if ('id' in msg && ('result' in msg || 'error' in msg)) return classifyControlResponse(msg);
  // The docs print control errors flat, `{"code":2,"msg":"Invalid request: ..."}` (servers nest them, above).
  if ('code' in msg && 'msg' in msg && !('e' in msg) && !('data' in msg)) return controlError(msg.code, msg.msg, msg.id);
  const event = 'stream' in msg && 'data' in msg ? msg.data : msg;
  if (!isRecord(event)) return { kind: 'rejected', reject: 'bad_type', detail: 'combined "data" is not an object' };
  if (event.e === undefined || event.e === null) return { kind: 'rejected', reject: 'missing_field', detail: 'missing field "e" (event type)' };
  if (typeof event.e !== 'string') return { kind: 'rejected', reject: 'bad_type', detail: `field "e" (event type) is ${typeName(event.e)}, expected a string` };
  switch (event.e) {
    case 'trade': {
      const mapped = mapBinanceTrade(event, receivedAt);
      return mapped.ok
        ? { kind: 'ticks', ticks: [mapped.tick] }
        : { kind: 'rejected', reject: mapped.rejection.kind, detail: mapped.rejection.detail };
    }
    case 'serverShutdown':
      return { kind: 'notice', detail: `serverShutdown at ${describe(event.E)}` };
    default:
      return { kind: 'rejected', reject: 'unknown_event', detail: `unknown event type ${describe(event.e)}` };
  }
}

function classifyControlResponse(msg: Record<string, unknown>): FrameResult {
  if (isRecord(msg.error)) return controlError(msg.error.code, msg.error.msg, msg.id);
  // LIST_SUBSCRIPTIONS answers the stream names; GET_PROPERTY a value; the others null.
  if (Array.isArray(msg.result)) return { kind: 'subscriptions', symbols: listedSymbols(msg.result) };
  return { kind: 'ack' };
}

function controlError(code: unknown, text: unknown, id: unknown): FrameResult {
  return { kind: 'rejected', reject: 'exchange_error', detail: `control request ${describe(id)} failed: ${describe(code)} ${describe(text, 200)}` };
}

/** The symbol of one of our stream names (`btcusdt@trade` -> `BTCUSDT`); null for other streams. */
export function binanceStreamSymbol(stream: string): string | null {
  return stream.endsWith('@trade') && stream.length > 6 ? stream.slice(0, -6).toUpperCase() : null;
}

function listedSymbols(result: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const s of result) {
    const symbol = typeof s === 'string' ? binanceStreamSymbol(s) : null;
    if (symbol !== null) out.push(symbol);
  }
  return out;
}

/** Maps one trade of `GET /api/v3/historicalTrades` / `trades` (`{id,price,qty,quoteQty,time,isBuyerMaker,...}`). */
export function mapBinanceRestTrade(raw: unknown, symbol: string, receivedAt: number): TradeMapping {
  if (!isRecord(raw)) return { ok: false, rejection: { kind: 'bad_type', detail: 'REST trade is not an object' } };
  return mapTrade(raw, REST_FIELDS, symbol, receivedAt, 'backfill');
}

/** Maps one `historicalTrades` / `trades` answer for `symbol`: an array of trades, or an error body. */
export function mapBinanceRestPage(body: unknown, symbol: string, receivedAt: number): PageMapping {
  if (!Array.isArray(body)) return { ok: false, detail: `historicalTrades answered ${preview(body)}` };
  const ticks: Tick[] = [];
  const rejects: Rejection[] = [];
  for (const raw of body) {
    const mapped = mapBinanceRestTrade(raw, symbol, receivedAt);
    if (mapped.ok) ticks.push(mapped.tick);
    else rejects.push(mapped.rejection);
  }
  return { ok: true, ticks, rejects };
}
