/**
 * Leak test: 300+ forced reconnects mixing every fault kind against the simulator, on both exchanges, with short
 * timeouts. Afterwards the process's open FDs and TCP sockets are back within 2 of the baseline, no socket of ours is
 * in CLOSE_WAIT, and the simulator holds at most one live socket per connection. Half-open peers (blackhole) must
 * not keep a socket for ws's 30 s close timeout: the FD count returns to the baseline within a few seconds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Connection } from '../src/connection/connection.ts';
import { createConnections } from '../src/exchanges/connections.ts';
import { startMonitor } from '../src/monitor/monitor.ts';
import type { Monitor } from '../src/monitor/monitor.ts';
import { fdCensus, procAvailable, tcpCensus } from '../src/monitor/resources.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import type { FaultKind, SimExchange } from '../src/simulator/index.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { simConfig } from './helpers/collector-env.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

const TARGET_RECONNECTS = 300;

/** Every kind, per exchange; handshake faults hit the next upgrade, so a server close forces one. */
const ROUND: Record<SimExchange, Array<{ kind: FaultKind; count?: number; viaClose?: boolean }>> = {
  binance: [
    { kind: 'close1001' }, { kind: 'reset' }, { kind: 'fin' }, { kind: 'blackhole' }, { kind: 'stallHandshake', viaClose: true },
    { kind: 'refuse503', count: 3, viaClose: true }, { kind: 'refuse429', count: 2, viaClose: true }, { kind: 'serverShutdown' },
    { kind: 'malformed' }, { kind: 'oversized' },
  ],
  okx: [
    { kind: 'close1001' }, { kind: 'reset' }, { kind: 'fin' }, { kind: 'blackhole' }, { kind: 'stallHandshake', viaClose: true },
    { kind: 'refuse503', count: 3, viaClose: true }, { kind: 'refuse429', count: 2, viaClose: true }, { kind: 'notice64008' },
    { kind: 'malformed' }, { kind: 'oversized' },
  ],
};

const sockets = () => tcpCensus().sockets;

describe('no leak across hundreds of forced reconnects', { skip: procAvailable() ? false : 'needs /proc' }, () => {
  let sim: ExchangeSimulator;
  let connections: Connection[];
  let monitor: Monitor;

  before(async () => {
    sim = await ExchangeSimulator.start({
      tradesPerSecond: 20,
      binancePingIntervalMs: 250,
      shutdownCloseDelayMs: 50,
      noticeCloseDelayMs: 50,
      retryAfterSeconds: 0,
      oversizedBytes: 100_000,
      binanceHandshakesPer5Min: 1_000_000,
      binanceBanAfterRejections: 0,
      okxHandshakesPerSecond: 100_000,
      okxSubscribesPerHour: 1_000_000,
    });
    const config = simConfig(sim, {
      BINANCE_SYMBOLS: 'BTCUSDT',
      OKX_SYMBOLS: 'BTC-USDT',
      WS_CLOSE_GRACE_MS: '100',
      WS_SILENCE_TIMEOUT_MS: '700',
      WS_HANDSHAKE_TIMEOUT_MS: '400',
      OKX_PING_IDLE_MS: '200',
      OKX_PONG_TIMEOUT_MS: '200',
      BACKOFF_BASE_MS: '5',
      BACKOFF_MAX_MS: '50',
      METRICS_PORT: '0',
      STATS_INTERVAL_MS: '3600000',
    });
    const logger = captureLogs('warn', 10_000).logger;
    connections = createConnections(config, new CollectingSink(), logger);
    monitor = await startMonitor({ config, logger, providers: { connections: () => connections.map((c) => c.snapshot()) }, pid: false, ephemeralPort: true });
    for (const c of connections) c.start();
    await waitFor(() => connections.every((c) => c.state === 'live'), 8000, 'connections live');
  });

  after(async () => {
    await Promise.all(connections.map((c) => c.stop()));
    await monitor.stop();
    await sim.stop();
  });

  const total = () => connections.reduce((n, c) => n + c.snapshot().reconnects, 0);
  const settled = () => connections.every((c) => c.state === 'live') && sim.liveSockets('binance') === 1 && sim.liveSockets('okx') === 1;

  test(`${TARGET_RECONNECTS}+ reconnects of every kind leave FDs and sockets at the baseline`, { timeout: 150_000 }, async () => {
    await waitFor(settled, 5000, 'settled after the first connect');
    await sleep(300);
    await scrapeOnce(monitor.port!); // the ops endpoint's own first-use allocations belong to the baseline
    await waitFor(settled, 5000, 'settled');
    const baseline = { fds: fdCensus().total, sockets: sockets().length };
    const started = Date.now();
    const startReconnects = total();
    let peakFds = baseline.fds;
    let rounds = 0;

    while (total() - startReconnects < TARGET_RECONNECTS) {
      const before = connections.map((c) => c.snapshot());
      for (const c of connections) {
        const exchange = c.exchange;
        const fault = ROUND[exchange][rounds % ROUND[exchange].length]!;
        sim.inject(exchange, fault.kind, ...(fault.count ? [{ count: fault.count }] : []));
        if (fault.viaClose) sim.inject(exchange, 'close1001');
        if (fault.kind === 'malformed') sim.inject(exchange, 'reset'); // malformed frames alone do not reconnect
      }
      await waitFor(() => connections.every((c, i) => c.snapshot().reconnects > before[i]!.reconnects), 10_000, `round ${rounds}: reconnects counted`);
      await waitFor(settled, 10_000, `round ${rounds}: live again on one socket each`);
      peakFds = Math.max(peakFds, fdCensus().total);
      rounds += 1;
      if (rounds % 10 === 0) await scrapeOnce(monitor.port!);
    }
    const reconnects = total() - startReconnects;

    // End on half-open peers: the FDs must come back quickly, not after ws's 30 s close timeout.
    const blackholeBefore = connections.map((c) => c.snapshot().reconnects);
    for (const c of connections) sim.inject(c.exchange, 'blackhole');
    await waitFor(() => connections.every((c, i) => c.snapshot().reconnects > blackholeBefore[i]!), 10_000, 'blackhole detected');
    const detectedAt = Date.now();
    await waitFor(settled, 10_000, 'live again after blackhole');
    await waitFor(() => fdCensus().total <= baseline.fds + 2, 8_000, 'FDs back to the baseline (well under the 30 s close timeout)');
    const blackholeRecoveryMs = Date.now() - detectedAt;

    await sleep(200);
    const after = { fds: fdCensus().total, sockets: sockets() };
    const byReason: Record<string, number> = {};
    for (const c of connections) for (const [r, n] of Object.entries(c.snapshot().reconnectsByReason)) byReason[r] = (byReason[r] ?? 0) + n;
    console.log(
      `leak test: baseline fds=${baseline.fds} sockets=${baseline.sockets}; after fds=${after.fds} sockets=${after.sockets.length}; ` +
        `peak fds=${peakFds}; reconnects=${reconnects} in ${rounds} rounds (by reason ${JSON.stringify(byReason)}); ` +
        `duration=${((Date.now() - started) / 1000).toFixed(1)}s; fds back to baseline ${blackholeRecoveryMs} ms after the last blackhole was detected`,
    );

    assert.ok(reconnects >= TARGET_RECONNECTS);
    for (const reason of ['close', 'error', 'silence', 'heartbeat', 'handshake_timeout', 'notice', 'refused', 'protocol']) assert.ok((byReason[reason] ?? 0) > 0, `some ${reason} reconnects`);
    assert.ok(Math.abs(after.fds - baseline.fds) <= 2, `FDs ${after.fds} within 2 of the baseline ${baseline.fds}`);
    assert.ok(Math.abs(after.sockets.length - baseline.sockets) <= 2, `TCP sockets ${after.sockets.length} within 2 of the baseline ${baseline.sockets}: ${JSON.stringify(after.sockets)}`);
    assert.deepEqual(after.sockets.filter((s) => s.state === 'CLOSE_WAIT'), [], 'no socket of ours in CLOSE_WAIT');
    for (const exchange of ['binance', 'okx'] as const) {
      const perConnection = connections.filter((c) => c.exchange === exchange).length;
      assert.ok(sim.liveSockets(exchange) <= perConnection, `${exchange}: the simulator holds ${sim.liveSockets(exchange)} live sockets for ${perConnection} connection(s)`);
    }
    assert.ok(!monitor.activeAlarms().some((a) => a.kind === 'close_wait' || a.kind === 'fd_threshold'), JSON.stringify(monitor.activeAlarms()));
  });
});

function scrapeOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
}
