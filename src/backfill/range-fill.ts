/** How a backfill of trade ids [from, to] went: what was delivered and which ids the exchange could not give. */
import type { Tick } from '../tick.ts';
import type { RateBudget } from './rate-budget.ts';

export interface IdRange {
  readonly from: number;
  readonly to: number;
}

export interface FillResult {
  readonly delivered: number;
  /** Ids the exchange no longer has (or never returned). Empty: the range is complete. */
  readonly missing: readonly IdRange[];
}

/** One exchange's REST history, paged until [from, to] is covered. `deliver` gets each page's ticks in range. */
export interface RangeFiller {
  readonly exchange: Tick['exchange'];
  /** The exchange's request budget, shared by every symbol (its counters feed the stats line). */
  readonly budget: RateBudget;
  fill(symbol: string, range: IdRange, deliver: (ticks: Tick[]) => Promise<void>, signal?: AbortSignal): Promise<FillResult>;
}

/** Ranges of [from, to] that `ids` (ascending, distinct) do not cover. */
export function uncovered(range: IdRange, ids: readonly number[]): IdRange[] {
  const holes: IdRange[] = [];
  let next = range.from;
  for (const id of ids) {
    if (id < next || id > range.to) continue;
    if (id > next) holes.push({ from: next, to: id - 1 });
    next = id + 1;
  }
  if (next <= range.to) holes.push({ from: next, to: range.to });
  return holes;
}
