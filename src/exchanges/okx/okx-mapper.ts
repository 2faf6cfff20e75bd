/** Pure mapping from OKX `trades-all` frames to Ticks and frame classes. No I/O, no clock of its own. */
import type { FrameResult, Rejection } from '../../connection/feed.ts';
import type { Tick } from '../../tick.ts';
import { digitsValue, isPositiveDecimal, isRecord, nonEmptyString, oneOf, parseJson, positiveDecimal, safeInteger } from '../validate.ts';
import type { TradeMapping } from '../validate.ts';

export const OKX_TRADES_CHANNEL = 'trades-all';
/** WS error codes meaning "this instrument/channel does not exist here" (protocols.md §B2). */
const UNKNOWN_INSTRUMENT_CODES = new Set(['60018', '64001', '64002']);
const SERVICE_UPGRADE_NOTICE = '64008';
const IGNORED_EVENTS = new Set(['unsubscribe', 'channel-conn-count', 'channel-conn-count-error']);

export function mapOkxTrade(raw: Record<string, unknown>, receivedAt: number): TradeMapping {
  // Fast path: every field valid (the same predicates as the checks below), read by name, nothing else allocated.
  const { instId, px, sz, side: s } = raw;
  const id = digitsValue(raw.tradeId);
  const ts = digitsValue(raw.ts);
  if (typeof instId === 'string' && instId !== '' && id >= 0 && isPositiveDecimal(px) && isPositiveDecimal(sz) && (s === 'buy' || s === 'sell') && ts >= 0) {
    return { ok: true, tick: { exchange: 'okx', symbol: instId, tradeId: id, price: px, qty: sz, side: s, tradeTime: ts, receivedAt, source: 'live' } };
  }
  const symbol = nonEmptyString(raw, 'instId');
  if (!symbol.ok) return symbol;
  const tradeId = safeInteger(raw, 'tradeId', true);
  if (!tradeId.ok) return tradeId;
  const price = positiveDecimal(raw, 'px');
  if (!price.ok) return price;
  const qty = positiveDecimal(raw, 'sz');
  if (!qty.ok) return qty;
  const side = oneOf(raw, 'side', ['buy', 'sell'] as const);
  if (!side.ok) return side;
  const tradeTime = safeInteger(raw, 'ts', true);
  if (!tradeTime.ok) return tradeTime;
  return {
    ok: true,
    tick: {
      exchange: 'okx',
      symbol: symbol.value,
      tradeId: tradeId.value,
      price: price.value,
      qty: qty.value,
      side: side.value,
      tradeTime: tradeTime.value,
      receivedAt,
      source: 'live',
    },
  };
}

export function classifyOkxFrame(text: string, receivedAt: number): FrameResult {
  if (text === 'pong') return { kind: 'heartbeat' };
  const parsed = parseJson(text);
  if (!parsed.ok) return { kind: 'rejected', reject: parsed.rejection.kind, detail: parsed.rejection.detail };
  const msg = parsed.value;
  if (!isRecord(msg)) return { kind: 'rejected', reject: 'bad_type', detail: 'frame is not a JSON object' };
  if (typeof msg.event === 'string') return classifyEvent(msg);
  if ('arg' in msg || 'data' in msg) return classifyPush(msg, receivedAt);
  return { kind: 'rejected', reject: 'unknown_event', detail: 'frame has neither "event" nor "arg"/"data"' };
}

function classifyEvent(msg: Record<string, unknown>): FrameResult {
  const code = typeof msg.code === 'string' ? msg.code : String(msg.code ?? '');
  const text = typeof msg.msg === 'string' ? msg.msg : '';
  switch (msg.event) {
    case 'subscribe':
      return { kind: 'ack' };
    case 'notice':
      return code === SERVICE_UPGRADE_NOTICE
        ? { kind: 'notice', detail: `OKX notice ${code}: ${text}` }
        : { kind: 'ignore' };
    case 'error': {
      const symbol = refusedInstrument(msg, text);
      if (UNKNOWN_INSTRUMENT_CODES.has(code) && symbol) return { kind: 'symbol_refused', symbol, detail: `OKX error ${code}: ${text}` };
      return { kind: 'rejected', reject: 'exchange_error', detail: `OKX error ${code}: ${text.slice(0, 200)}` };
    }
    default:
      if (IGNORED_EVENTS.has(String(msg.event))) return { kind: 'ignore' };
      return { kind: 'rejected', reject: 'unknown_event', detail: `unknown event ${JSON.stringify(String(msg.event).slice(0, 40))}` };
  }
}

/** The instrument an error names: its `arg.instId`, or `instId:XXX` in the message (protocols.md §B2 example). */
function refusedInstrument(msg: Record<string, unknown>, text: string): string | undefined {
  if (isRecord(msg.arg) && typeof msg.arg.instId === 'string') return msg.arg.instId;
  return /instId:([A-Za-z0-9-]+)/.exec(text)?.[1];
}

function classifyPush(msg: Record<string, unknown>, receivedAt: number): FrameResult {
  if (!isRecord(msg.arg)) return { kind: 'rejected', reject: 'missing_field', detail: 'push without "arg"' };
  if (msg.arg.channel !== OKX_TRADES_CHANNEL) {
    return { kind: 'rejected', reject: 'unknown_event', detail: `push on unexpected channel ${JSON.stringify(String(msg.arg.channel).slice(0, 40))}` };
  }
  if (!Array.isArray(msg.data)) return { kind: 'rejected', reject: msg.data === undefined ? 'missing_field' : 'bad_type', detail: 'push "data" is not an array' };
  const ticks: Tick[] = [];
  const rejects: Rejection[] = [];
  for (const item of msg.data) {
    if (!isRecord(item)) {
      rejects.push({ kind: 'bad_type', detail: 'trade is not an object' });
      continue;
    }
    const mapped = mapOkxTrade(item, receivedAt);
    if (mapped.ok) ticks.push(mapped.tick);
    else rejects.push(mapped.rejection);
  }
  if (ticks.length === 0 && rejects.length > 0) return { kind: 'rejected', reject: rejects[0]!.kind, detail: rejects[0]!.detail };
  return rejects.length > 0 ? { kind: 'ticks', ticks, rejects } : { kind: 'ticks', ticks };
}
