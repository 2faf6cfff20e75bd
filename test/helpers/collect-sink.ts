/** A TickSink for connection tests: keeps what it is given and never asks for backpressure. */
import type { Tick, TickSink } from '../../src/tick.ts';

export class CollectingSink implements TickSink {
  readonly ticks: Tick[] = [];

  write(tick: Tick): boolean {
    this.ticks.push(tick);
    return true;
  }

  onDrain(): () => void {
    return () => {};
  }

  count(exchange: string, symbol?: string): number {
    return this.ticks.filter((t) => t.exchange === exchange && (symbol === undefined || t.symbol === symbol)).length;
  }

  /** Distinct trade ids received for one symbol, ascending. */
  ids(exchange: string, symbol: string): number[] {
    const set = new Set(this.ticks.filter((t) => t.exchange === exchange && t.symbol === symbol).map((t) => t.tradeId));
    return [...set].sort((a, b) => a - b);
  }
}
