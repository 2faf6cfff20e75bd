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

export class GapTracker {
  /** exchange -> symbol -> last id: per tick two lookups by strings the frame already has, no key string built. */
  readonly #last = new Map<Exchange, Map<string, number>>();

  #symbols(exchange: Exchange): Map<string, number> {
    let m = this.#last.get(exchange);
    if (m === undefined) {
      m = new Map();
      this.#last.set(exchange, m);
    }
    return m;
  }

  /** The highest id already stored for a symbol (from the database at start). */
  seed(exchange: Exchange, symbol: string, lastId: number): void {
    const m = this.#symbols(exchange);
    m.set(symbol, Math.max(lastId, m.get(symbol) ?? -1));
  }

  last(exchange: Exchange, symbol: string): number | undefined {
    return this.#last.get(exchange)?.get(symbol);
  }

  /** Records a live tick; returns the gap it reveals, if any. Older or repeated ids (overlap, replay) reveal none. */
  observe(tick: Tick): Gap | null {
    const m = this.#symbols(tick.exchange);
    const last = m.get(tick.symbol);
    if (last !== undefined && tick.tradeId <= last) return null;
    m.set(tick.symbol, tick.tradeId);
    if (last === undefined || tick.tradeId === last + 1) return null;
    return { exchange: tick.exchange, symbol: tick.symbol, from: last + 1, to: tick.tradeId - 1 };
  }
}
