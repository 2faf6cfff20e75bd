/** Builds every exchange connection the configuration asks for, all on the one shared lifecycle. */
import type { Config } from '../config.ts';
import { Connection } from '../connection/connection.ts';
import type { Logger } from '../logger.ts';
import type { TickSink } from '../tick.ts';
import { createBinanceFeed, splitBinanceSymbols } from './binance/binance-feed.ts';
import { createOkxFeed } from './okx/okx-feed.ts';

export function createConnections(config: Config, sink: TickSink, logger: Logger): Connection[] {
  const connections: Connection[] = [];
  if (config.binanceSymbols.length > 0) {
    const feed = createBinanceFeed({ wsBaseUrl: config.binanceWsUrl, rotateAfterMs: config.binanceRotateAfterMs });
    splitBinanceSymbols(config.binanceSymbols, config.binanceStreamsPerConnection).forEach((symbols, i) => {
      connections.push(new Connection({ connId: `binance-${i}`, feed, symbols, config: config.connection, sink, logger }));
    });
  }
  if (config.okxSymbols.length > 0) {
    const feed = createOkxFeed({ wsBaseUrl: config.okxWsUrl, pingIdleMs: config.okxPingIdleMs, pongTimeoutMs: config.okxPongTimeoutMs });
    connections.push(new Connection({ connId: 'okx-0', feed, symbols: config.okxSymbols, config: config.connection, sink, logger }));
  }
  return connections;
}
