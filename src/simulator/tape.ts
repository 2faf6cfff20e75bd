/**
 * The tape of one symbol on one exchange: the single source of truth for what was traded. Trades get contiguous ids
 * from `firstTradeId`, a deterministic price/qty/side from the seed, and the time they were emitted (= sent). The
 * newest `retention` trades are kept in typed arrays (a ring), so a long benchmark does not fill the heap with objects.
 */
import { hashString, mulberry32 } from './prng.ts';
import type { Random } from './prng.ts';
import type { SimExchange, SimTrade, TapeRange } from './types.ts';

/** Prices are kept in cents, quantities in units of 1e-5. */
const PRICE_DECIMALS = 2;
const QTY_DECIMALS = 5;
const INITIAL_CAPACITY = 1024;

const BASE_PRICE_CENTS: Record<string, number> = { BTC: 3_000_000, ETH: 200_000, BNB: 30_000, SOL: 10_000, XRP: 50 };

function basePriceCents(symbol: string): number {
  for (const [asset, cents] of Object.entries(BASE_PRICE_CENTS)) if (symbol.startsWith(asset)) return cents;
  return 100 + (hashString(symbol) % 100_000);
}

function fixed(units: number, decimals: number): string {
  const scale = 10 ** decimals;
  const int = Math.floor(units / scale);
  return `${int}.${String(units - int * scale).padStart(decimals, '0')}`;
}

/** Binance sends 8 decimals, padded with zeros ("30000.12000000"); OKX trims trailing zeros ("30000.12"). */
export function formatPrice(exchange: SimExchange, cents: number): string {
  const s = fixed(cents, PRICE_DECIMALS);
  return exchange === 'binance' ? `${s}000000` : trimZeros(s);
}

export function formatQty(exchange: SimExchange, units: number): string {
  const s = fixed(units, QTY_DECIMALS);
  return exchange === 'binance' ? `${s}000` : trimZeros(s);
}

/** price x qty, exact, trailing zeros trimmed (Binance `quoteQty`). */
export function formatQuoteQty(cents: number, qtyUnits: number): string {
  const product = BigInt(cents) * BigInt(qtyUnits);
  const scale = 10n ** BigInt(PRICE_DECIMALS + QTY_DECIMALS);
  return trimZeros(`${product / scale}.${String(product % scale).padStart(PRICE_DECIMALS + QTY_DECIMALS, '0')}`);
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

export class Tape {
  readonly exchange: SimExchange;
  readonly symbol: string;
  readonly #retention: number;
  readonly #random: Random;
  #first: number;
  #next: number;
  #capacity = 0;
  #price = new Float64Array(0);
  #qty = new Float64Array(0);
  #time = new Float64Array(0);
  #buy = new Uint8Array(0);
  #lastPrice: number;

  constructor(exchange: SimExchange, symbol: string, opts: { seed: number; firstTradeId: number; retention: number }) {
    this.exchange = exchange;
    this.symbol = symbol;
    this.#retention = opts.retention;
    this.#first = opts.firstTradeId;
    this.#next = opts.firstTradeId;
    this.#random = mulberry32((opts.seed ^ hashString(`${exchange}:${symbol}`)) >>> 0);
    this.#lastPrice = basePriceCents(symbol);
    this.#grow(Math.min(INITIAL_CAPACITY, opts.retention));
  }

  get size(): number {
    return this.#next - this.#first;
  }

  /** The id the next trade will get. */
  get nextId(): number {
    return this.#next;
  }

  /** Appends the next trade, stamped `now`, and returns it. Price, qty and side depend only on the seed and the id. */
  emit(now: number): SimTrade {
    const id = this.#next;
    if (this.size === this.#capacity) {
      if (this.#capacity < this.#retention) this.#grow(Math.min(this.#retention, this.#capacity * 2));
      else this.#first += 1;
    }
    const r = this.#random;
    const buy = r() < 0.5;
    const step = Math.max(2, Math.round(this.#lastPrice * 0.0004));
    this.#lastPrice = Math.max(1, this.#lastPrice + Math.round((r() - 0.5) * step));
    const qty = 1 + Math.floor(r() ** 3 * 500_000);
    const i = id % this.#capacity;
    this.#price[i] = this.#lastPrice;
    this.#qty[i] = qty;
    this.#time[i] = now;
    this.#buy[i] = buy ? 1 : 0;
    this.#next = id + 1;
    return this.#build(id, i);
  }

  range(): TapeRange | undefined {
    return this.size === 0 ? undefined : { first: this.#first, last: this.#next - 1 };
  }

  has(id: number): boolean {
    return Number.isSafeInteger(id) && id >= this.#first && id < this.#next;
  }

  get(id: number): SimTrade | undefined {
    return this.has(id) ? this.#build(id, id % this.#capacity) : undefined;
  }

  /** Raw units of a retained trade (for quoteQty). */
  units(id: number): { priceCents: number; qtyUnits: number } | undefined {
    if (!this.has(id)) return undefined;
    const i = id % this.#capacity;
    return { priceCents: this.#price[i]!, qtyUnits: this.#qty[i]! };
  }

  /** Up to `limit` trades with id >= fromId, ascending. */
  ascendingFrom(fromId: number, limit: number): SimTrade[] {
    const out: SimTrade[] = [];
    for (let id = Math.max(fromId, this.#first); id < this.#next && out.length < limit; id++) out.push(this.get(id)!);
    return out;
  }

  /** The latest `limit` trades, ascending. */
  latest(limit: number): SimTrade[] {
    return this.ascendingFrom(this.#next - limit, limit);
  }

  /** Up to `limit` trades with lowExclusive < id < highExclusive, newest first. */
  descending(highExclusive: number, lowExclusive: number, limit: number): SimTrade[] {
    const out: SimTrade[] = [];
    for (let id = Math.min(highExclusive - 1, this.#next - 1); id > lowExclusive && id >= this.#first && out.length < limit; id--) {
      out.push(this.get(id)!);
    }
    return out;
  }

  /** The first retained id whose time is >= `time` (the next id if none). Times never decrease along the tape. */
  firstIdAtOrAfter(time: number): number {
    let lo = this.#first;
    let hi = this.#next;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.#time[mid % this.#capacity]! < time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Up to `limit` trades with time < beforeTime, newest first (OKX history type=2). */
  descendingByTime(beforeTime: number, limit: number): SimTrade[] {
    return this.descending(this.firstIdAtOrAfter(beforeTime), this.#first - 1, limit);
  }

  all(): SimTrade[] {
    return this.ascendingFrom(this.#first, this.size);
  }

  #build(id: number, i: number): SimTrade {
    return {
      symbol: this.symbol,
      tradeId: id,
      price: formatPrice(this.exchange, this.#price[i]!),
      qty: formatQty(this.exchange, this.#qty[i]!),
      side: this.#buy[i] === 1 ? 'buy' : 'sell',
      time: this.#time[i]!,
    };
  }

  #grow(capacity: number): void {
    const price = new Float64Array(capacity);
    const qty = new Float64Array(capacity);
    const time = new Float64Array(capacity);
    const buy = new Uint8Array(capacity);
    for (let id = this.#first; id < this.#next; id++) {
      const from = id % this.#capacity;
      const to = id % capacity;
      price[to] = this.#price[from]!;
      qty[to] = this.#qty[from]!;
      time[to] = this.#time[from]!;
      buy[to] = this.#buy[from]!;
    }
    this.#capacity = capacity;
    this.#price = price;
    this.#qty = qty;
    this.#time = time;
    this.#buy = buy;
  }
}
