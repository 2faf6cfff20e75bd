/**
 * Tracks the last trade id seen per (exchange, symbol) of the configured symbols and classifies each live tick:
 * the next id, a jump that reveals a gap, or a late id (at or below the last: a duplicate, a conflicting version or
 * an out-of-order trade, for the late-tick check to tell apart). Seeded from the database at start, so the hole a
 * restart leaves is found too. State exists only for configured symbols: a symbol the configuration does not name
 * (whatever a feed sends) is `untracked` and creates none, so the map is bounded by the configuration.
 */
import type { Exchange, Tick } from '../tick.ts';
import type { IdRange } from './range-fill.ts';

export interface Gap extends IdRange {
  readonly exchange: Exchange;
  readonly symbol: string;
}

export type Observation =
  | { readonly kind: 'next' }
  | { readonly kind: 'gap'; readonly gap: Gap }
  | { readonly kind: 'late' }
  | { readonly kind: 'untracked' };

const NEXT: Observation = Object.freeze({ kind: 'next' });
const LATE: Observation = Object.freeze({ kind: 'late' });
const UNTRACKED: Observation = Object.freeze({ kind: 'untracked' });

/** One slot per configured symbol; `last` is undefined until the first id (or a seed). */
interface Slot {
  last: number | undefined;
}

export class GapTracker {
  readonly #slots = new Map<Exchange, Map<string, Slot>>();

  constructor(symbols: Readonly<Partial<Record<Exchange, readonly string[]>>>) {
    for (const [exchange, list] of Object.entries(symbols) as Array<[Exchange, readonly string[]]>) {
      this.#slots.set(exchange, new Map(list.map((s) => [s, { last: undefined }])));
    }
  }

  /** How many symbols hold state (the configured ones, never more). */
  get size(): number {
    let n = 0;
    for (const m of this.#slots.values()) n += m.size;
    return n;
  }

  /** The highest id already stored for a symbol (from the database at start). Ignored for unconfigured symbols. */
  seed(exchange: Exchange, symbol: string, lastId: number): void {
    const slot = this.#slots.get(exchange)?.get(symbol);
    if (slot) slot.last = Math.max(lastId, slot.last ?? -1);
  }

  last(exchange: Exchange, symbol: string): number | undefined {
    return this.#slots.get(exchange)?.get(symbol)?.last;
  }

  /** Classifies a live tick and records it as the last id when it is newer. Synchronous, O(1), no allocation. */
  observe(tick: Tick): Observation {
    const slot = this.#slots.get(tick.exchange)?.get(tick.symbol);
    if (!slot) return UNTRACKED;
    const last = slot.last;
    if (last !== undefined && tick.tradeId <= last) return LATE;
    slot.last = tick.tradeId;
    if (last === undefined || tick.tradeId === last + 1) return NEXT;
    return { kind: 'gap', gap: { exchange: tick.exchange, symbol: tick.symbol, from: last + 1, to: tick.tradeId - 1 } };
  }
}
