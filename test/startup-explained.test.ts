/**
 * The first minutes explained (issue #12 points 3 and 5): an unreachable exchange gives one warn line per cause,
 * not three info lines per attempt, and /readyz and the stats line name the cause; `collector started` names the
 * endpoints; the configured symbols are checked against the exchanges' public lists (an unknown one stops the
 * start naming it, exit code 2; an unreachable list only warns, within a bounded time); a connection whose every
 * instrument is refused stops the collector with exit code 2.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.ts';
import { createConnections, createInstrumentLookups, startupChecks } from '../src/exchanges/connections.ts';
import { checkSymbolsAtStart } from '../src/exchanges/instruments.ts';
import { startMonitor } from '../src/monitor/monitor.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { spawnCollector } from './helpers/child-collector.ts';
import type { ChildCollector } from './helpers/child-collector.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { collectorHarness } from './helpers/collector-harness.ts';
import { simConfig, simEnv } from './helpers/collector-env.ts';
import { createTestDatabase } from './helpers/db.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait-for.ts';

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('an exchange that cannot be reached', () => {
  test('one warn line for the cause (not three info lines per attempt); the cause in the snapshot, /readyz and the stats line', async () => {
    const sim = await ExchangeSimulator.start({ tradesPerSecond: 0 });
    const port = await closedPort();
    const logs = captureLogs('debug');
    const config = simConfig(sim, { BINANCE_WS_URL: `ws://127.0.0.1:${port}`, OKX_SYMBOLS: '', BINANCE_SYMBOLS: 'BTCUSDT', METRICS_PORT: '0', STATS_INTERVAL_MS: '300' });
    const [conn] = createConnections(config, new CollectingSink(), logs.logger);
    const monitor = await startMonitor({ config, logger: logs.logger, providers: { connections: () => [conn!.snapshot()] }, pid: false, ephemeralPort: true });
    try {
      conn!.start();
      const attempts = () => logs.find((l) => l.msg === 'connection state' && l.to === 'connecting').length;
      await waitFor(() => attempts() >= 6, 10_000, 'six connection attempts');
      const cause = `connect ECONNREFUSED 127.0.0.1:${port}`;
      const warns = logs.find((l) => l.level === 40);
      assert.equal(warns.length, 1, JSON.stringify(warns));
      assert.equal(warns[0]!.msg, `binance/binance-0 cannot connect to ws://127.0.0.1:${port}/stream: ${cause}; retrying in ${String(warns[0]!.retryInMs)} ms`);
      const infoTransitions = logs.find((l) => l.level === 30 && l.msg === 'connection state');
      assert.deepEqual(infoTransitions.map((l) => l.to), ['connecting'], 'only the start is logged at info; the failing loop at debug');
      assert.equal(conn!.snapshot().cause, cause);
      const ready = await get(monitor.port!, '/readyz');
      assert.equal(ready.status, 503);
      const reasons = (JSON.parse(ready.body) as { reasons: string[] }).reasons;
      assert.ok(reasons.some((r) => new RegExp(`^binance/binance-0 is (backoff|connecting|closing): ${cause}$`).test(r)), JSON.stringify(reasons));
      const stats = await waitFor(() => logs.find((l) => l.msg === 'stats').at(-1), 3000, 'a stats line');
      assert.equal((stats.connections as Array<{ cause: string }>)[0]!.cause, cause);
    } finally {
      await conn!.stop();
      await monitor.stop();
      await sim.stop();
    }
  });
});

describe('liveness detections are counted', () => {
  test('by deadline, per connection: the stats line and /metrics', async () => {
    const sim = await ExchangeSimulator.start({ binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
    const logs = captureLogs('info');
    const config = simConfig(sim, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT', METRICS_PORT: '0', STATS_INTERVAL_MS: '200' });
    const conns = createConnections(config, new CollectingSink(), logs.logger);
    const monitor = await startMonitor({ config, logger: logs.logger, providers: { connections: () => conns.map((c) => c.snapshot()) }, pid: false, ephemeralPort: true });
    try {
      for (const c of conns) c.start();
      await waitFor(() => conns.every((c) => c.state === 'live'), 5000, 'live');
      for (const ex of ['binance', 'okx'] as const) sim.inject(ex, 'blackhole');
      await waitFor(() => conns.every((c) => c.snapshot().detections?.heartbeat === 1), 5000, 'both detected');
      const metrics = (await get(monitor.port!, '/metrics')).body;
      for (const [exchange, conn] of [['binance', 'binance-0'], ['okx', 'okx-0']]) {
        assert.match(metrics, new RegExp(`liveness_detections_total\\{exchange="${exchange}",conn="${conn}",reason="heartbeat"\\} 1\\b`));
        assert.match(metrics, new RegExp(`liveness_detections_total\\{exchange="${exchange}",conn="${conn}",reason="silence"\\} 0\\b`));
      }
      const stats = await waitFor(() => logs.find((l) => l.msg === 'stats' && (l.connections as Array<{ detections: { total: { heartbeat: number } } }>).every((c) => c.detections.total.heartbeat === 1))[0], 3000, 'a stats line with them');
      assert.ok(stats);
    } finally {
      await Promise.all(conns.map((c) => c.stop()));
      await monitor.stop();
      await sim.stop();
    }
  });
});

describe('symbols checked against the exchanges at start', () => {
  let sim: ExchangeSimulator;
  before(async () => {
    sim = await ExchangeSimulator.start({ tradesPerSecond: 0, binanceSymbols: ['BTCUSDT', 'ETHUSDT'], okxSymbols: ['BTC-USDT', 'ETH-USDT'], symbolStates: { ETHUSDT: 'BREAK', 'ETH-USDT': 'suspend' } });
  });
  after(() => sim.stop());

  const check = (env: Record<string, string>, timeoutMs = 3000) => {
    const logs = captureLogs('info');
    const config = simConfig(sim, env);
    return { logs, done: checkSymbolsAtStart(startupChecks(config, createInstrumentLookups(config, logs.logger)), timeoutMs, logs.logger) };
  };

  test('unknown symbols: a configuration error naming them (Binance exchangeInfo, OKX public/instruments)', async () => {
    const { logs, done } = check({ BINANCE_SYMBOLS: 'BTCUSDT,FOOBARUSDT', OKX_SYMBOLS: 'BTC-USDT,FOO-BAR' });
    await assert.rejects(done, (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.variable, 'BINANCE_SYMBOLS');
      assert.match(err.message, new RegExp(`BINANCE_SYMBOLS: expected symbols that GET ${sim.binanceRestUrl}/api/v3/exchangeInfo lists \\(not listed: FOOBARUSDT; symbols are case-sensitive\\)`));
      return true;
    });
    assert.ok(logs.find((l) => l.level === 50 && /OKX_SYMBOLS: .*not listed: FOO-BAR/.test(String(l.msg))).length === 1, 'the OKX one is named too');
  });

  test('listed but not trading: a warning each; every symbol known: start', async () => {
    const { logs, done } = check({ BINANCE_SYMBOLS: 'BTCUSDT,ETHUSDT', OKX_SYMBOLS: 'BTC-USDT,ETH-USDT' });
    await done;
    assert.ok(logs.find((l) => l.level === 40 && l.msg === 'ETHUSDT is listed with state BREAK, not TRADING: no trades will arrive until it trades again').length === 1);
    assert.ok(logs.find((l) => l.level === 40 && String(l.msg).startsWith('ETH-USDT is listed with state suspend, not live')).length === 1);
  });

  test('unreachable or silent exchange: a warning, never a long wait', async () => {
    const port = await closedPort();
    const silent: Server = createServer((s: Socket) => s.on('error', () => {})); // accepts and never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const started = Date.now();
      const { logs, done } = check({ BINANCE_REST_URL: `http://127.0.0.1:${port}`, OKX_REST_URL: `http://127.0.0.1:${silentPort}`, BINANCE_SYMBOLS: 'FOOBARUSDT', OKX_SYMBOLS: 'FOO-BAR' }, 800);
      await done;
      assert.ok(Date.now() - started < 3000, `bounded: ${Date.now() - started} ms`);
      const warns = logs.find((l) => l.level === 40).map((l) => String(l.msg));
      assert.ok(warns.some((m) => /^could not check BINANCE_SYMBOLS against GET http:\/\/127\.0\.0\.1:\d+\/api\/v3\/exchangeInfo \(.*ECONNREFUSED.*\): starting without the check$/.test(m)), JSON.stringify(warns));
      assert.ok(warns.some((m) => /^could not check OKX_SYMBOLS against .* \(no answer within 800 ms\): starting without the check$/.test(m)), JSON.stringify(warns));
    } finally {
      silent.close();
    }
  });
});

describe('the collector process', () => {
  let sim: ExchangeSimulator;
  let wrongUrl: ExchangeSimulator;
  let db: { url: string; drop(): Promise<void> };
  let dir: string;
  const children: ChildCollector[] = [];
  before(async () => {
    sim = await ExchangeSimulator.start({ binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
    wrongUrl = await ExchangeSimulator.start({ binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'], okxTradesAllOn: 'public' });
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'mc-startup-'));
  });
  after(async () => {
    for (const c of children) c.kill();
    await sim.stop();
    await wrongUrl.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  const spawn = (s: ExchangeSimulator, extra: Record<string, string>) => {
    const c = spawnCollector(simEnv(s, { DATABASE_URL: db.url, METRICS_PORT: '0', PID_FILE: join(dir, 'c.pid'), SPILL_DIR: join(dir, 'spill'), LOG_LEVEL: 'info', ...extra }));
    children.push(c);
    return c;
  };

  test('"collector started" names the WebSocket and REST endpoints in use', async () => {
    const logs = captureLogs('info');
    const h = await collectorHarness(sim, logs.logger, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT' });
    try {
      await h.start();
      const started = logs.find((l) => l.msg === 'collector started')[0]!;
      assert.deepEqual(started.endpoints, {
        binance: { ws: sim.binanceWsUrl, rest: sim.binanceRestUrl },
        okx: { ws: sim.okxWsUrl, rest: sim.okxRestUrl },
      });
    } finally {
      await h.close();
    }
  });

  test('an unknown symbol stops the start with exit code 2, naming it', { timeout: 30_000 }, async () => {
    const c = spawn(sim, { BINANCE_SYMBOLS: 'BTCUSDT,FOOBARUSDT', OKX_SYMBOLS: 'BTC-USDT' });
    const exit = await c.exited;
    assert.equal(exit.code, 2, JSON.stringify(c.lines.slice(-3)));
    assert.ok(c.lines.some((l) => l.level === 60 && /not listed: FOOBARUSDT/.test(JSON.stringify(l))), 'the fatal line names it');
  });

  test('every instrument refused (wrong URL or channel): a graceful stop, exit code 2, naming the URL and the channel', { timeout: 30_000 }, async () => {
    const c = spawn(wrongUrl, { BINANCE_SYMBOLS: '', OKX_SYMBOLS: 'BTC-USDT' });
    const exit = await c.exited;
    assert.equal(exit.code, 2, JSON.stringify(c.lines.slice(-3)));
    const fatal = c.lines.find((l) => l.level === 60);
    assert.match(String(fatal?.msg), new RegExp(`refused every instrument of okx-0 on ${wrongUrl.okxWsUrl.replace(/[.:/]/g, '\\$&')}/ws/v5/business channel trades-all`));
    assert.ok(c.lines.some((l) => l.msg === 'collector stopped'), 'stopped gracefully');
  });
});
