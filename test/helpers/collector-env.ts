/** Configuration pointing the collector at a running simulator, with timeouts short enough for tests. */
import { loadConfig } from '../../src/config.ts';
import type { Config } from '../../src/config.ts';
import type { ExchangeSimulator } from '../../src/simulator/index.ts';

export function simEnv(sim: ExchangeSimulator, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    BINANCE_WS_URL: sim.binanceWsUrl,
    OKX_WS_URL: sim.okxWsUrl,
    BINANCE_REST_URL: sim.binanceRestUrl,
    OKX_REST_URL: sim.okxRestUrl,
    BINANCE_SYMBOLS: 'BTCUSDT,ETHUSDT',
    OKX_SYMBOLS: 'BTC-USDT,ETH-USDT',
    WS_SILENCE_TIMEOUT_MS: '1500',
    WS_HANDSHAKE_TIMEOUT_MS: '1000',
    WS_CLOSE_GRACE_MS: '300',
    WS_MAX_PAYLOAD_BYTES: '65536',
    OKX_PING_IDLE_MS: '400',
    OKX_PONG_TIMEOUT_MS: '400',
    BINANCE_PING_IDLE_MS: '400',
    BINANCE_PONG_TIMEOUT_MS: '400',
    BACKOFF_BASE_MS: '50',
    BACKOFF_MAX_MS: '400',
    ...overrides,
  };
}

export function simConfig(sim: ExchangeSimulator, overrides: Record<string, string> = {}): Config {
  return loadConfig(simEnv(sim, overrides));
}

/** Only where the simulator is and which symbols: every other setting (timeouts, heartbeats, backoff) the default. */
export function defaultConfigFor(sim: ExchangeSimulator, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    BINANCE_WS_URL: sim.binanceWsUrl,
    OKX_WS_URL: sim.okxWsUrl,
    BINANCE_REST_URL: sim.binanceRestUrl,
    OKX_REST_URL: sim.okxRestUrl,
    BINANCE_SYMBOLS: 'BTCUSDT',
    OKX_SYMBOLS: 'BTC-USDT',
    ...overrides,
  });
}
