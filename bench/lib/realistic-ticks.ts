/**
 * Realistic ticks for the storage benchmark: several symbols interleaved (weighted like a real stream: BTC busiest),
 * contiguous ids per symbol, prices on each market's tick size as the exchange formats them (Binance pads to 8
 * decimals: "42219.91000000"; OKX trims: "42219.9"), quantities on each market's lot size with a heavy tail of
 * small trades (median BTC trade ~0.002 BTC), the taker side at random, receive delays of 1-40 ms.
 * Deterministic for a seed.
 */
import { mulberry32 } from '../../src/simulator/prng.ts';
import type { Exchange, Tick } from '../../src/tick.ts';

interface Market {
  readonly exchange: Exchange;
  readonly symbol: string;
  /** Share of the stream. */
  readonly weight: number;
  readonly price: number;
  /** Decimals of the price tick and of the lot size. */
  readonly priceDecimals: number;
  readonly qtyDecimals: number;
  /** Median trade size. */
  readonly qtyMedian: number;
  readonly firstId: number;
}

export const MARKETS: readonly Market[] = [
  { exchange: 'binance', symbol: 'BTCUSDT', weight: 0.3, price: 42_219.9, priceDecimals: 2, qtyDecimals: 5, qtyMedian: 0.002, firstId: 3_312_456_789 },
  { exchange: 'binance', symbol: 'ETHUSDT', weight: 0.2, price: 3_012.45, priceDecimals: 2, qtyDecimals: 4, qtyMedian: 0.05, firstId: 1_620_345_678 },
  { exchange: 'binance', symbol: 'SOLUSDT', weight: 0.1, price: 102.34, priceDecimals: 2, qtyDecimals: 3, qtyMedian: 2, firstId: 720_123_456 },
  { exchange: 'okx', symbol: 'BTC-USDT', weight: 0.2, price: 42_219.9, priceDecimals: 1, qtyDecimals: 8, qtyMedian: 0.002, firstId: 512_345_678 },
  { exchange: 'okx', symbol: 'ETH-USDT', weight: 0.15, price: 3_012.45, priceDecimals: 2, qtyDecimals: 6, qtyMedian: 0.05, firstId: 398_765_432 },
  { exchange: 'okx', symbol: 'SOL-USDT', weight: 0.05, price: 102.34, priceDecimals: 3, qtyDecimals: 4, qtyMedian: 2, firstId: 201_234_567 },
];

function format(exchange: Exchange, units: number, decimals: number): string {
  const scale = 10 ** decimals;
  const int = Math.floor(units / scale);
  const frac = String(units - int * scale).padStart(decimals, '0');
  if (exchange === 'binance') return `${int}.${frac}${'0'.repeat(8 - decimals)}`;
  const trimmed = frac.replace(/0+$/, '');
  return trimmed ? `${int}.${trimmed}` : String(int);
}

export interface TickSource {
  /** The next `n` ticks, with trade times spread evenly from `fromMs` by `stepMs`. */
  next(n: number): Tick[];
}

export function realisticTicks(opts: { seed: number; fromMs: number; stepMs: number; firstIdOffset?: number }): TickSource {
  const r = mulberry32(opts.seed);
  const state = MARKETS.map((m) => ({ m, priceUnits: Math.round(m.price * 10 ** m.priceDecimals), nextId: m.firstId + (opts.firstIdOffset ?? 0) }));
  const cumulative: number[] = [];
  let sum = 0;
  for (const m of MARKETS) cumulative.push((sum += m.weight));
  let time = opts.fromMs;
  return {
    next(n) {
      const out: Tick[] = [];
      for (let i = 0; i < n; i++) {
        const x = r() * sum;
        const s = state[cumulative.findIndex((c) => x < c)] ?? state[state.length - 1]!;
        const m = s.m;
        s.priceUnits = Math.max(1, s.priceUnits + Math.round((r() - 0.5) * 4));
        // Log-normal size around the median, at least one lot.
        const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
        const qtyUnits = Math.max(1, Math.round(m.qtyMedian * Math.exp(1.6 * z) * 10 ** m.qtyDecimals));
        const tradeTime = Math.floor(time);
        out.push({
          exchange: m.exchange,
          symbol: m.symbol,
          tradeId: s.nextId++,
          price: format(m.exchange, s.priceUnits, m.priceDecimals),
          qty: format(m.exchange, qtyUnits, m.qtyDecimals),
          side: r() < 0.5 ? 'buy' : 'sell',
          tradeTime,
          receivedAt: tradeTime + 1 + Math.floor(r() * 40),
          source: 'live',
        });
        time += opts.stepMs;
      }
      return out;
    },
  };
}
