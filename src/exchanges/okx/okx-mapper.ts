/** Pure mapping from OKX `trades-all` frames to Ticks and frame classes. No I/O, no clock of its own. */
import type { FrameResult, Rejection } from '../../connection/feed.ts';
import type { Side, Tick } from '../../tick.ts';
import { describe, digitsValue, epochMillis, isPositiveDecimal, plausibleMillis, isRecord, nonEmptyString, oneOf, parseJson, positiveDecimal, preview, safeInteger, typeName } from '../validate.ts';
import type { PageMapping, TradeMapping } from '../validate.ts';
import { DECIMAL, DIGITS, matchedTick } from '../frame-templates.ts';

export const OKX_TRADES_CHANNEL = 'trades-all';
/** WS error codes meaning "this instrument/channel does not exist here" (protocols.md §B2). */
const UNKNOWN_INSTRUMENT_CODES = new Set(['60018', '64001', '64002']);
const SERVICE_UPGRADE_NOTICE = '64008';
const IGNORED_EVENTS = new Set(['unsubscribe', 'channel-conn-count', 'channel-conn-count-error']);
/** Longest `code` / `msg` echoed into a detail: the rest of a frame is in the rejection log's truncated sample. */
const MAX_CODE_CHARS = 20;
const MAX_MSG_CHARS = 200;

/** OKX codes are strings (`"0"`, `"60018"`), but some answers carry numbers (`"code":50011`): one form for both. */
export function okxCode(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return '';
}

/** "Rate limit reached" (HTTP 200) / "Too Many Requests" (HTTP 429). */
const OKX_RATE_LIMITED = '50011';

/** OKX's rate limit in a REST body: code 50011, as a string or as a number, whatever the HTTP status. */
export function okxRateLimited(body: unknown): boolean {
  return isRecord(body) && okxCode(body.code) === OKX_RATE_LIMITED;
}

export function mapOkxTrade(raw: Record<string, unknown>, receivedAt: number): TradeMapping {
  // Fast path: every field valid (the same predicates as the checks below), read by name, nothing else allocated.
  const { instId, px, sz, side: s } = raw;
  const id = digitsValue(raw.tradeId);
  const ts = digitsValue(raw.ts);
  if (typeof instId === 'string' && instId !== '' && id >= 0 && isPositiveDecimal(px) && isPositiveDecimal(sz) && (s === 'buy' || s === 'sell') && ts >= 0 && plausibleMillis(ts, receivedAt)) {
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
  const tradeTime = epochMillis(raw, 'ts', true, receivedAt);
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

/** The head of a `trades-all` push as OKX serializes it (protocols.md B3), up to the first trade; frame-templates.ts. */
const PUSH_HEAD = '{"arg":{"channel":"trades-all","instId":"';
const PUSH_HEAD_REST_RE = /[A-Z0-9-]{1,40}"\},"data":\[/y;
/** One trade of it, in OKX's key order; `source` optional (2022-2023 pushes lack it, protocols.md D). Groups: instId, tradeId, px, sz, side, ts. */
const PUSH_TRADE_RE = new RegExp(
  `\\{"instId":"([A-Z0-9-]{1,40})","tradeId":"(${DIGITS})","px":"(${DECIMAL})","sz":"(${DECIMAL})","side":"(buy|sell)",` +
    `(?:"source":"[0-9]{1,4}",)?"ts":"(${DIGITS})"\\}`,
  'y',
);
const COMMA = 44;
const CLOSE = ']}';

/** The ticks of a push in OKX's own `trades-all` serialization whose every trade the checks above accept, else null. */
export function matchOkxTradesFrame(text: string, receivedAt: number): Tick[] | null {
  if (!text.startsWith(PUSH_HEAD)) return null;
  PUSH_HEAD_REST_RE.lastIndex = PUSH_HEAD.length;
  if (!PUSH_HEAD_REST_RE.test(text)) return null;
  let at = PUSH_HEAD_REST_RE.lastIndex;
  const ticks: Tick[] = [];
  for (;;) {
    PUSH_TRADE_RE.lastIndex = at;
    const m = PUSH_TRADE_RE.exec(text);
    if (m === null) return null;
    const tick = matchedTick('okx', m[1]!, m[2]!, m[3]!, m[4]!, m[5] as Side, m[6]!, receivedAt);
    if (tick === null) return null;
    ticks.push(tick);
    at = PUSH_TRADE_RE.lastIndex;
    if (text.charCodeAt(at) === COMMA) at += 1;
    else return at + CLOSE.length === text.length && text.endsWith(CLOSE) ? ticks : null;
  }
}

export function classifyOkxFrame(text: string, receivedAt: number): FrameResult {
  const fast = matchOkxTradesFrame(text, receivedAt);
  return fast !== null ? { kind: 'ticks', ticks: fast } : classifyOkxJson(text, receivedAt);
}

/** The general path: parse, then classify and validate field by field, naming what is wrong. */
export function classifyOkxJson(text: string, receivedAt: number): FrameResult {
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
  if (msg.code !== undefined && msg.code !== null && typeof msg.code !== 'string' && typeof msg.code !== 'number') {
    return { kind: 'rejected', reject: 'bad_type', detail: `field "code" is ${typeName(msg.code)}, expected a string` };
  }
  const code = okxCode(msg.code).slice(0, MAX_CODE_CHARS);
  const text = typeof msg.msg === 'string' ? msg.msg.slice(0, MAX_MSG_CHARS) : '';
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
      return { kind: 'rejected', reject: 'exchange_error', detail: `OKX error ${code}: ${text}` };
    }
    default:
      if (IGNORED_EVENTS.has(String(msg.event))) return { kind: 'ignore' };
      return { kind: 'rejected', reject: 'unknown_event', detail: `unknown event ${describe(msg.event)}` };
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
    return { kind: 'rejected', reject: 'unknown_event', detail: `push on unexpected channel ${describe(msg.arg.channel)}` };
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

/**
 * Maps one `history-trades` answer for `instId` (`{code:"0",msg:"",data:[...]}`). A trade of another instrument is
 * refused as `unexpected_symbol`: only what was asked for is accepted.
 */
export function mapOkxRestPage(body: unknown, instId: string, receivedAt: number): PageMapping {
  if (!isRecord(body) || okxCode(body.code) !== '0' || !Array.isArray(body.data)) {
    return { ok: false, detail: `history-trades answered code ${isRecord(body) ? describe(body.code) : '?'}: ${preview(body)}` };
  }
  const ticks: Tick[] = [];
  const rejects: Rejection[] = [];
  for (const raw of body.data) {
    const mapped: TradeMapping = isRecord(raw) ? mapOkxTrade(raw, receivedAt) : { ok: false, rejection: { kind: 'bad_type', detail: 'REST trade is not an object' } };
    if (!mapped.ok) rejects.push(mapped.rejection);
    else if (mapped.tick.symbol !== instId) rejects.push({ kind: 'unexpected_symbol', detail: `REST trade for ${describe(mapped.tick.symbol)} in an answer for ${instId}` });
    else ticks.push({ ...mapped.tick, source: 'backfill' });
  }
  return { ok: true, ticks, rejects };
}
