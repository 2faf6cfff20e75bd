/**
 * `npm run demo`: the collector against the local simulator with faults switched on, offline. Watch the connection
 * state lines, the gap/backfill lines and the stats line every 10 s; Ctrl-C stops both.
 * Simulated trades never go into your real database: the demo runs its own embedded PostgreSQL under
 * ./.data/demo on port 54339 (emptied at each start, because every run's simulator starts its trade ids afresh;
 * DEMO_DATABASE_URL to use a server of yours instead). The data stays after the demo: its start and closing lines
 * print the one command that queries it (and `npm run db -- --demo` opens it for psql). Other env vars
 * (LOG_PRETTY=0, BINANCE_SYMBOLS...) apply.
 */
import { rmSync } from 'node:fs';
import { DEMO_EMBEDDED, DEMO_QUERY_COMMAND } from '../src/storage/cli-support.ts';
import { embeddedDataDir } from '../src/storage/embedded.ts';
import { loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { createLogger } from '../src/logger.ts';
import { drainLogs } from '../src/log-sink.ts';
import { startCollector } from '../src/collector.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';

const FAULTS = ['close1001', 'reset', 'fin', 'blackhole', 'refuse503', 'refuse429', 'serverShutdown', 'notice64008', 'malformed', 'oversized'] as const;

const DEMO_DIR = './.data/demo';
// As root the data may live under EMBEDDED_PG_RUNTIME_DIR instead (see embedded-root.ts): empty that one too.
rmSync(await embeddedDataDir({ dir: DEMO_EMBEDDED.dir, ...(process.env.EMBEDDED_PG_RUNTIME_DIR ? { runtimeDir: process.env.EMBEDDED_PG_RUNTIME_DIR } : {}) }), { recursive: true, force: true });
rmSync(DEMO_DIR, { recursive: true, force: true });
const { DATABASE_URL: _ignored, DEMO_DATABASE_URL, ...userEnv } = process.env;
const env: Record<string, string | undefined> = {
  LOG_PRETTY: '1',
  METRICS_PORT: '9465',
  STATS_INTERVAL_MS: '10000',
  WS_SILENCE_TIMEOUT_MS: '3000',
  OKX_PING_IDLE_MS: '2000',
  OKX_PONG_TIMEOUT_MS: '2000',
  WS_MAX_PAYLOAD_BYTES: '65536',
  ...userEnv,
  // never the user's real data directory, journal or pid file
  EMBEDDED_PG_DIR: DEMO_EMBEDDED.dir,
  EMBEDDED_PG_PORT: String(DEMO_EMBEDDED.port),
  SPILL_DIR: `${DEMO_DIR}/spill`,
  PID_FILE: `${DEMO_DIR}/collector.pid`,
  ...(DEMO_DATABASE_URL ? { DATABASE_URL: DEMO_DATABASE_URL } : {}),
};
const logger = createLogger({ level: env.LOG_LEVEL ?? 'info', pretty: env.LOG_PRETTY !== '0' });
const sim = await ExchangeSimulator.start({
  tradesPerSecond: 10,
  binanceSymbols: (env.BINANCE_SYMBOLS ?? 'BTCUSDT,ETHUSDT').split(',').filter(Boolean),
  okxSymbols: (env.OKX_SYMBOLS ?? 'BTC-USDT,ETH-USDT').split(',').filter(Boolean),
  oversizedBytes: 200_000,
  shutdownCloseDelayMs: 1000,
  noticeCloseDelayMs: 2000,
  faultSchedule: { everyMs: 7000, kinds: [...FAULTS] },
  logger,
});
let config;
try {
  config = loadConfig({ ...env, BINANCE_WS_URL: sim.binanceWsUrl, OKX_WS_URL: sim.okxWsUrl, BINANCE_REST_URL: sim.binanceRestUrl, OKX_REST_URL: sim.okxRestUrl });
} catch (err) {
  await sim.stop();
  if (err instanceof ConfigError) {
    process.stderr.write(`demo: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
const afterwards = DEMO_DATABASE_URL
  ? 'the ticks are in DEMO_DATABASE_URL: psql "$DEMO_DATABASE_URL"'
  : `query the demo's ticks afterwards with: ${DEMO_QUERY_COMMAND}   (psql: npm run db -- --demo)`;
logger.info({ faults: FAULTS, everyMs: 7000 }, `demo: simulator running with a fault every 7 s; Ctrl-C to stop; ${afterwards}`);
const collector = await startCollector(config, logger);
let signals = 0;
const stop = async () => {
  if (++signals > 1) process.exit(130);
  await collector.stop();
  await sim.stop();
  logger.info(`demo stopped; its data stays until the next demo; ${afterwards}`);
  await drainLogs(250);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
