/**
 * Binance spot: combined `@trade` streams. As many streams as fit a short handshake URL ride in it; the rest are
 * subscribed with paced SUBSCRIBE requests; LIST_SUBSCRIPTIONS then confirms the set (and what it lacks is
 * requested again). Our own ping frame after a short idle time, the server's pings answered by ws, serverShutdown,
 * the 24 h age limit.
 */
import type { Feed } from '../../connection/feed.ts';
import type { InstrumentLookup } from '../instruments.ts';
import { classifyBinanceFrame } from './binance-mapper.ts';

/** The documented per-connection maximum (protocols.md §A5). */
export const BINANCE_MAX_STREAMS_PER_CONNECTION = 1024;
/**
 * Real servers refused handshake URLs of about 8,000 characters (8004 measured; protocols.md §D); 1024 `@trade`
 * streams make about 15 KB. Stay far below: what does not fit is subscribed after the handshake.
 */
export const BINANCE_MAX_URL_CHARS = 4_000;
/** Streams per SUBSCRIBE request (very long params have been seen to fail silently; LIST catches that). */
export const BINANCE_STREAMS_PER_REQUEST = 100;
/**
 * Least spacing of our control frames. Binance allows 5 inbound messages per second per connection and counts
 * requests, pings and pongs alike; 2/s of requests leaves room for the pong to a server ping and for our own ping.
 */
export const BINANCE_CONTROL_INTERVAL_MS = 500;

export function binanceStreamName(symbol: string): string {
  return `${symbol.toLowerCase()}@trade`;
}

/** The leading symbols whose streams fit a handshake URL of at most `maxChars`, and the rest. */
export function splitForUrl(base: string, symbols: readonly string[], maxChars = BINANCE_MAX_URL_CHARS): { inUrl: string[]; rest: string[] } {
  let length = `${base}/stream?streams=`.length;
  let n = 0;
  while (n < symbols.length) {
    const add = binanceStreamName(symbols[n]!).length + (n > 0 ? 1 : 0);
    if (length + add > maxChars) break;
    length += add;
    n++;
  }
  return { inUrl: symbols.slice(0, n), rest: symbols.slice(n) };
}

export function binanceStreamUrl(base: string, symbols: readonly string[], maxChars = BINANCE_MAX_URL_CHARS): string {
  const { inUrl } = splitForUrl(base, symbols, maxChars);
  return inUrl.length === 0 ? `${base}/stream` : `${base}/stream?streams=${inUrl.map(binanceStreamName).join('/')}`;
}

/** SUBSCRIBE requests for `symbols` in chunks, then one LIST_SUBSCRIPTIONS to confirm the whole set. */
export function binanceSubscribeRequests(symbols: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i += BINANCE_STREAMS_PER_REQUEST) {
    out.push(JSON.stringify({ method: 'SUBSCRIBE', params: symbols.slice(i, i + BINANCE_STREAMS_PER_REQUEST).map(binanceStreamName), id: out.length + 1 }));
  }
  out.push(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: out.length + 1 }));
  return out;
}

export interface BinanceFeedOptions {
  readonly wsBaseUrl: string;
  /** Rotate before the exchange closes the connection at 24 h. */
  readonly rotateAfterMs: number;
  /** Send a ping frame after this long without any inbound frame... */
  readonly pingIdleMs: number;
  /** ...and terminate the socket if nothing arrives within this long after it. */
  readonly pongTimeoutMs: number;
  readonly instruments?: InstrumentLookup;
  /** Tests only: a shorter handshake URL budget. */
  readonly maxUrlChars?: number;
}

export function createBinanceFeed(opts: BinanceFeedOptions): Feed {
  const maxUrl = opts.maxUrlChars ?? BINANCE_MAX_URL_CHARS;
  return {
    exchange: 'binance',
    channel: '@trade',
    url: (symbols) => binanceStreamUrl(opts.wsBaseUrl, symbols, maxUrl),
    // The URL subscribes what fits; the rest goes by SUBSCRIBE; LIST_SUBSCRIPTIONS confirms the set, which also marks
    // the connection live on a quiet market.
    subscribeMessages: (symbols) => binanceSubscribeRequests(splitForUrl(opts.wsBaseUrl, symbols, maxUrl).rest),
    resubscribeMessages: binanceSubscribeRequests,
    controlIntervalMs: BINANCE_CONTROL_INTERVAL_MS,
    classify: classifyBinanceFrame,
    heartbeat: { idleMs: opts.pingIdleMs, timeoutMs: opts.pongTimeoutMs, ping: 'frame' },
    maxAgeMs: opts.rotateAfterMs,
    ...(opts.instruments ? { instruments: opts.instruments } : {}),
  };
}

/** Splits symbols into groups of at most `perConnection` streams (never above the exchange's 1024). */
export function splitBinanceSymbols(symbols: readonly string[], perConnection: number): string[][] {
  const size = Math.max(1, Math.min(perConnection, BINANCE_MAX_STREAMS_PER_CONNECTION));
  const groups: string[][] = [];
  for (let i = 0; i < symbols.length; i += size) groups.push(symbols.slice(i, i + size));
  return groups;
}
