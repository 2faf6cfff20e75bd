/** Builds every exchange connection the configuration asks for, all on the one shared lifecycle. */
import { RateBudget } from '../backfill/rate-budget.ts';
import type { Config } from '../config.ts';
import { Connection } from '../connection/connection.ts';
import type { CollectorError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Exchange, TickSink } from '../tick.ts';
import { createBinanceFeed, splitBinanceSymbols } from './binance/binance-feed.ts';
import { createBinanceInstruments } from './binance/binance-instruments.ts';
import type { InstrumentLookup, StartupCheck } from './instruments.ts';
import { createOkxFeed } from './okx/okx-feed.ts';
import { createOkxInstruments } from './okx/okx-instruments.ts';

export type InstrumentLookups = Partial<Record<Exchange, InstrumentLookup>>;

/**
 * One instruments lookup per enabled exchange, each with a request budget of its own: Binance's exchangeInfo costs
 * 20 of the 6000 weight per minute, once at start; OKX's public/instruments has its own limit (20 per 2 s).
 */
export function createInstrumentLookups(config: Config, logger: Logger): InstrumentLookups {
  const lookups: InstrumentLookups = {};
  if (config.binanceSymbols.length > 0) {
    const budget = new RateBudget({ capacity: config.backfill.binanceWeightPerMinute, windowMs: 60_000 });
    lookups.binance = createBinanceInstruments({ restBaseUrl: config.binanceRestUrl, budget, logger });
  }
  if (config.okxSymbols.length > 0) {
    lookups.okx = createOkxInstruments({ restBaseUrl: config.okxRestUrl, budget: new RateBudget({ capacity: 10, windowMs: 2_000 }), logger });
  }
  return lookups;
}

/** What the start-up check asks of each enabled exchange. */
export function startupChecks(config: Config, lookups: InstrumentLookups): StartupCheck[] {
  const checks: StartupCheck[] = [];
  if (lookups.binance) checks.push({ lookup: lookups.binance, variable: 'BINANCE_SYMBOLS', symbols: config.binanceSymbols });
  if (lookups.okx) checks.push({ lookup: lookups.okx, variable: 'OKX_SYMBOLS', symbols: config.okxSymbols });
  return checks;
}

export interface ConnectionsOptions {
  /** Built from the configuration when not given. */
  readonly instruments?: InstrumentLookups;
  /** A connection found the configuration unworkable (every symbol refused) and stopped itself. */
  readonly onFatal?: (err: CollectorError) => void;
}

export function createConnections(config: Config, sink: TickSink, logger: Logger, opts: ConnectionsOptions = {}): Connection[] {
  const instruments = opts.instruments ?? createInstrumentLookups(config, logger);
  const common = { config: config.connection, sink, logger, ...(opts.onFatal ? { onFatal: opts.onFatal } : {}) };
  const connections: Connection[] = [];
  if (config.binanceSymbols.length > 0) {
    const feed = createBinanceFeed({
      wsBaseUrl: config.binanceWsUrl,
      rotateAfterMs: config.binanceRotateAfterMs,
      pingIdleMs: config.binancePingIdleMs,
      pongTimeoutMs: config.binancePongTimeoutMs,
      ...(instruments.binance ? { instruments: instruments.binance } : {}),
    });
    splitBinanceSymbols(config.binanceSymbols, config.binanceStreamsPerConnection).forEach((symbols, i) => {
      connections.push(new Connection({ connId: `binance-${i}`, feed, symbols, ...common }));
    });
  }
  if (config.okxSymbols.length > 0) {
    const feed = createOkxFeed({
      wsBaseUrl: config.okxWsUrl,
      pingIdleMs: config.okxPingIdleMs,
      pongTimeoutMs: config.okxPongTimeoutMs,
      ...(instruments.okx ? { instruments: instruments.okx } : {}),
    });
    connections.push(new Connection({ connId: 'okx-0', feed, symbols: config.okxSymbols, ...common }));
  }
  return connections;
}
