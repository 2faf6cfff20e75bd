/** Binance spot: combined `@trade` streams, server ping frames (answered by ws), serverShutdown, 24 h age limit. */
import type { Feed } from '../../connection/feed.ts';
import { classifyBinanceFrame } from './binance-mapper.ts';

/** The documented per-connection maximum (protocols.md §A5). */
export const BINANCE_MAX_STREAMS_PER_CONNECTION = 1024;

export function binanceStreamName(symbol: string): string {
  return `${symbol.toLowerCase()}@trade`;
}

export function binanceStreamUrl(base: string, symbols: readonly string[]): string {
  return `${base}/stream?streams=${symbols.map(binanceStreamName).join('/')}`;
}

export interface BinanceFeedOptions {
  readonly wsBaseUrl: string;
  /** Rotate before the exchange closes the connection at 24 h. */
  readonly rotateAfterMs: number;
}

export function createBinanceFeed(opts: BinanceFeedOptions): Feed {
  return {
    exchange: 'binance',
    url: (symbols) => binanceStreamUrl(opts.wsBaseUrl, symbols),
    // The URL subscribes; LIST_SUBSCRIPTIONS (one inbound message, well under 5/s) confirms the set, which also marks
    // the connection live on a quiet market.
    subscribeMessages: () => [JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 1 })],
    classify: classifyBinanceFrame,
    maxAgeMs: opts.rotateAfterMs,
  };
}

/** Splits symbols into groups of at most `perConnection` streams (never above the exchange's 1024). */
export function splitBinanceSymbols(symbols: readonly string[], perConnection: number): string[][] {
  const size = Math.max(1, Math.min(perConnection, BINANCE_MAX_STREAMS_PER_CONNECTION));
  const groups: string[][] = [];
  for (let i = 0; i < symbols.length; i += size) groups.push(symbols.slice(i, i + size));
  return groups;
}
