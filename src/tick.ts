/** The one normalized trade type both exchanges map into, and the one interface ticks leave the core through. */

export type Exchange = 'binance' | 'okx';
export const EXCHANGES: readonly Exchange[] = ['binance', 'okx'];

/** The taker's side. */
export type Side = 'buy' | 'sell';

/** Where a tick came from: the live stream or a REST backfill of a gap. */
export type TickSource = 'live' | 'backfill';

export interface Tick {
  readonly exchange: Exchange;
  /** Exchange-native symbol: `BTCUSDT` (Binance), `BTC-USDT` (OKX). */
  readonly symbol: string;
  /** Contiguous per symbol on both exchanges; always a safe integer. */
  readonly tradeId: number;
  /** Exact decimal string as the exchange sent it; never a float. */
  readonly price: string;
  /** Exact decimal string as the exchange sent it; never a float. */
  readonly qty: string;
  readonly side: Side;
  /** Exchange trade time, ms since epoch. */
  readonly tradeTime: number;
  /** When the collector received it, ms since epoch. */
  readonly receivedAt: number;
  readonly source: TickSource;
}

/**
 * Where ticks go. `write` never drops a tick: it accepts it and returns false when the producer should pause
 * (backpressure) until the listener given to `onDrain` is called.
 */
export interface TickSink {
  write(tick: Tick): boolean;
  onDrain(listener: () => void): () => void;
}

/** A decimal string the database can store exactly: digits, one optional fraction, no sign, no exponent. */
export const DECIMAL_RE = /^\d{1,40}(\.\d{1,40})?$/;
