/**
 * What one connection subscribed to, and the check every tick passes: a tick of any other symbol is never emitted
 * (an exchange sending XRPUSDT on the btcusdt@trade stream must not plant a row). A Set lookup per tick; nothing is
 * allocated unless a tick is refused.
 */
import type { Tick } from '../tick.ts';

export class Subscription {
  readonly #symbols: Set<string>;

  constructor(symbols: readonly string[]) {
    this.#symbols = new Set(symbols);
  }

  has(symbol: string): boolean {
    return this.#symbols.has(symbol);
  }

  /** The symbol is no longer served (the exchange refused it). */
  add(symbol: string): void {
    this.#symbols.add(symbol);
  }

  delete(symbol: string): void {
    this.#symbols.delete(symbol);
  }

  /** True when every tick is of a subscribed symbol (the hot path: no allocation). */
  allowsAll(ticks: readonly Tick[]): boolean {
    for (const t of ticks) if (!this.#symbols.has(t.symbol)) return false;
    return true;
  }

  /** The ticks of subscribed symbols and the others. */
  split(ticks: readonly Tick[]): { kept: Tick[]; refused: Tick[] } {
    const kept: Tick[] = [];
    const refused: Tick[] = [];
    for (const t of ticks) (this.#symbols.has(t.symbol) ? kept : refused).push(t);
    return { kept, refused };
  }
}
