/**
 * Hostile frame classes, in the real wire shapes, that a test, the hostile-feed run or `POST /__sim/hostile` can send
 * on demand, to check the collector rejects, counts and survives them:
 *
 * | kind          | what                                                                  | the collector counts it as        |
 * |---------------|-----------------------------------------------------------------------|-----------------------------------|
 * | `deepNesting` | a field that is a 10,000-deep array (`{"e":[[[...]]]}`, OKX `code`)   | `bad_type`                        |
 * | `garbage`     | random bytes as a text frame                                          | `invalid_json`                    |
 * | `unsubscribed`| valid trades for a symbol the socket never subscribed to              | `unexpected_symbol`               |
 * | `backwardsId` | valid, genuinely new trades with ids below anything the tape sent     | stored; out of order              |
 * | `duplicate`   | a trade already sent, resent exactly                                  | stored once; duplicate            |
 * | `conflict`    | a trade already sent, resent with another price                       | stored row unchanged; conflicting |
 * | `tinyBurst`   | `{}` frames back to back (send 10,000 at once)                        | `missing_field` / `unknown_event` |
 *
 * Oversized frames are the existing `oversized` fault (they end the socket with 1009).
 */
import { binanceStreamName, tradeEvent } from './binance-ws.ts';
import { tradesAllPush } from './okx-ws.ts';
import type { Random } from './prng.ts';
import type { SimExchange, SimTrade } from './types.ts';

export const HOSTILE_KINDS = ['deepNesting', 'garbage', 'unsubscribed', 'backwardsId', 'duplicate', 'conflict', 'tinyBurst'] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

export function isHostileKind(v: unknown): v is HostileKind {
  return typeof v === 'string' && (HOSTILE_KINDS as readonly string[]).includes(v);
}

/** Nesting depth of `deepNesting`: `String()` of such a value overflows V8's stack (about 10,000 levels). */
export const DEEP_NESTING_LEVELS = 10_000;
/** Symbols no test subscribes to, sent by `unsubscribed`. */
export const UNSUBSCRIBED_SYMBOLS: Readonly<Record<SimExchange, readonly string[]>> = {
  binance: ['XRPUSDT', 'DOGEUSDT'],
  okx: ['XRP-USDT', 'DOGE-USDT'],
};

/** What one socket needs for the frames: its exchange and shape, one symbol it is subscribed to, and that tape. */
export interface HostileTarget {
  readonly exchange: SimExchange;
  /** Binance `/stream` (combined wrapper) or `/ws` (raw events). */
  readonly combined: boolean;
  readonly symbol: string;
  /** The trades of `symbol` already sent, by id, and the range of them; undefined before the first. */
  readonly trade: (id: number) => SimTrade | undefined;
  readonly range: { first: number; last: number } | undefined;
  /** The next id of `backwardsId` for this symbol (the caller keeps it below every id the tape ever had). */
  readonly nextBackwardsId: () => number;
  readonly random: Random;
}

export interface HostileBatch {
  readonly frames: string[];
  /** The trades sent that the collector should store as new (`backwardsId`); empty for the other kinds. */
  readonly newTrades: SimTrade[];
}

const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

/** `count` frames of `kind` for one socket. */
export function hostileFrames(kind: HostileKind, target: HostileTarget, count: number): HostileBatch {
  const frames: string[] = [];
  const newTrades: SimTrade[] = [];
  for (let i = 0; i < count; i++) {
    const frame = one(kind, target, i, newTrades);
    if (frame !== undefined) frames.push(frame);
  }
  return { frames, newTrades };
}

function one(kind: HostileKind, t: HostileTarget, i: number, newTrades: SimTrade[]): string | undefined {
  switch (kind) {
    case 'deepNesting':
      return deepNesting(t, i);
    case 'garbage':
      return garbage(t.random);
    case 'unsubscribed': {
      const symbols = UNSUBSCRIBED_SYMBOLS[t.exchange];
      const base = t.range ? t.trade(t.range.last) : undefined;
      const trade: SimTrade = { ...(base ?? sampleTrade(t.symbol)), symbol: symbols[i % symbols.length]!, tradeId: 1 + Math.floor(t.random() * 1e9) };
      return tradeFrame(t, trade);
    }
    case 'backwardsId': {
      const base = (t.range && t.trade(t.range.first)) ?? sampleTrade(t.symbol);
      const trade: SimTrade = { ...base, tradeId: t.nextBackwardsId(), time: Date.now() - 60_000 };
      newTrades.push(trade);
      return tradeFrame(t, trade);
    }
    case 'duplicate':
    case 'conflict': {
      const sent = recentTrade(t, i);
      if (!sent) return undefined;
      return tradeFrame(t, kind === 'duplicate' ? sent : { ...sent, price: otherPrice(sent.price) });
    }
    case 'tinyBurst':
      return '{}';
  }
}

/** Alternates between a nested event type / error code and a nested field inside an otherwise valid frame. */
function deepNesting(t: HostileTarget, i: number): string {
  const d = deep(DEEP_NESTING_LEVELS);
  if (t.exchange === 'okx') {
    return i % 2 === 0
      ? `{"event":"error","code":${d},"msg":"x"}`
      : `{"arg":{"channel":"trades-all","instId":"${t.symbol}"},"data":[${d}]}`;
  }
  const event = i % 2 === 0 ? `{"e":${d},"E":${Date.now()}}` : tradeEvent({ ...sampleTrade(t.symbol) }, false).replace(/"p":"[^"]*"/, `"p":${d}`);
  return t.combined ? `{"stream":"${binanceStreamName(t.symbol)}","data":${event}}` : event;
}

/** Random bytes read as UTF-8, starting with `}` so that they are never valid JSON. */
function garbage(random: Random): string {
  const bytes = Buffer.alloc(8 + Math.floor(random() * 200));
  for (let k = 0; k < bytes.length; k++) bytes[k] = Math.floor(random() * 256);
  return `}${bytes.toString('utf8')}`;
}

/** One trade in the socket's wire shape. Binance sends it on the stream of the socket's symbol, whatever it says. */
function tradeFrame(t: HostileTarget, trade: SimTrade): string {
  if (t.exchange === 'okx') return tradesAllPush(trade);
  const event = tradeEvent(trade, false);
  return t.combined ? `{"stream":"${binanceStreamName(t.symbol)}","data":${event}}` : event;
}

/** One of the last 50 trades sent, going back one per frame. */
function recentTrade(t: HostileTarget, i: number): SimTrade | undefined {
  if (!t.range) return undefined;
  const span = Math.min(50, t.range.last - t.range.first + 1);
  return t.trade(t.range.last - (i % span));
}

function otherPrice(price: string): string {
  return price === '1.5' ? '2.5' : '1.5';
}

function sampleTrade(symbol: string): SimTrade {
  return { symbol, tradeId: 1, price: '100.5', qty: '0.25', side: 'buy', time: Date.now() };
}
