/** The feed every benchmark client gets: 4 symbols on two exchanges of one simulator, rates given as totals. */
import { ExchangeSimulator } from '../../src/simulator/index.ts';
import type { SimExchange } from '../../src/simulator/index.ts';

export const BINANCE_SYMBOLS = ['BTCUSDT', 'ETHUSDT'];
export const OKX_SYMBOLS = ['BTC-USDT', 'ETH-USDT'];
export const SYMBOLS: ReadonlyArray<{ exchange: SimExchange; symbol: string }> = [
  ...BINANCE_SYMBOLS.map((symbol) => ({ exchange: 'binance' as const, symbol })),
  ...OKX_SYMBOLS.map((symbol) => ({ exchange: 'okx' as const, symbol })),
];

/** The simulator's rate is per symbol; the benchmark speaks of the total across symbols. */
export const perSymbol = (total: number): number => total / SYMBOLS.length;

export function startBenchSimulator(totalRate: number): Promise<ExchangeSimulator> {
  return ExchangeSimulator.start({
      tradesPerSecond: perSymbol(totalRate),
      binanceSymbols: BINANCE_SYMBOLS,
      okxSymbols: OKX_SYMBOLS,
      seed: 42,
      // Every client run opens fresh sockets: lift the handshake and subscribe limits out of the way.
      binanceHandshakesPer5Min: 100_000,
      okxHandshakesPerSecond: 1_000,
      okxSubscribesPerHour: 100_000,
    });
}

/** Trades the simulator has emitted so far, over every symbol. */
export function emittedTotal(sim: ExchangeSimulator): number {
  let n = 0;
  for (const s of SYMBOLS) n += sim.tapeRange(s.exchange, s.symbol)?.last ?? 0;
  return n;
}

/** The last trade id emitted per `exchange:symbol`. */
export function lastIds(sim: ExchangeSimulator): Map<string, number> {
  return new Map(SYMBOLS.map((s) => [`${s.exchange}:${s.symbol}`, sim.tapeRange(s.exchange, s.symbol)?.last ?? 0]));
}

/** The stream variables the collector and the bench's own clients read (same names). */
export function streamEnv(sim: ExchangeSimulator): Record<string, string> {
  return {
    BINANCE_WS_URL: sim.binanceWsUrl,
    OKX_WS_URL: sim.okxWsUrl,
    BINANCE_SYMBOLS: BINANCE_SYMBOLS.join(','),
    OKX_SYMBOLS: OKX_SYMBOLS.join(','),
  };
}

/** The collector's configuration in a benchmark: the simulator, the bench database, no backfill. */
export function collectorEnv(sim: ExchangeSimulator, databaseUrl: string): Record<string, string> {
  return {
    ...streamEnv(sim),
    BINANCE_REST_URL: sim.binanceRestUrl,
    OKX_REST_URL: sim.okxRestUrl,
    DATABASE_URL: databaseUrl,
    // Each client run restarts the collector while the simulator keeps emitting: backfilling those holes over REST
    // would be work no steady-state deployment does.
    BACKFILL_ENABLED: '0',
  };
}
