/**
 * Tracks the last trade id seen per (exchange, symbol) and reports a gap when a tick's id is not last+1.
 * Seeded from the database at start, so the hole a restart leaves is found too. Bounded by the configured symbols.
 */
import type { Exchange, Tick } from '../tick.ts';
import type { IdRange } from './range-fill.ts';

export interface Gap extends IdRange {
  readonly exchange: Exchange;
  readonly symbol: string;
}

const key = (exchange: Exchange, symbol: string) => `${exchange}\u0000${symbol}`;

export class GapTracker {
  readonly #last = new Map<string, number>();

  /** The highest id already stored for a symbol (from the database at start). */
  seed(exchange: Exchange, symbol: string, lastId: number): void {
    const k = key(exchange, symbol);
    this.#last.set(k, Math.max(lastId, this.#last.get(k) ?? -1));
  }

  last(exchange: Exchange, symbol: string): number | undefined {
    return this.#last.get(key(exchange, symbol));
  }

  /** Records a live tick; returns the gap it reveals, if any. Older or repeated ids (overlap, replay) reveal none. */
  observe(tick: Tick): Gap | null {
    const k = key(tick.exchange, tick.symbol);
    const last = this.#last.get(k);
    if (last !== undefined && tick.tradeId <= last) return null;
    this.#last.set(k, tick.tradeId);
    if (last === undefined || tick.tradeId === last + 1) return null;
    return { exchange: tick.exchange, symbol: tick.symbol, from: last + 1, to: tick.tradeId - 1 };
  }
}
