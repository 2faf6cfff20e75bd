/**
 * What the real exchanges send that our simulator used not to (protocols.md §D), one test each against real
 * sockets: the simulator now behaves that way, and the collector copes. Each would fail without its fix.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { getJson } from '../src/backfill/rest-client.ts';
import { RateBudget } from '../src/backfill/rate-budget.ts';
import type { Connection } from '../src/connection/connection.ts';
import { DEFAULTS, loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { classifyBinanceFrame } from '../src/exchanges/binance/binance-mapper.ts';
import { BINANCE_MAX_URL_CHARS, binanceStreamName } from '../src/exchanges/binance/binance-feed.ts';
import { createConnections } from '../src/exchanges/connections.ts';
import { okxRateLimited } from '../src/exchanges/okx/okx-mapper.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import type { SimulatorOptions } from '../src/simulator/index.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { audit, collectorHarness } from './helpers/collector-harness.ts';
import { simConfig } from './helpers/collector-env.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { FAST_FAULTS_SIM } from './helpers/sim-options.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

/** Runs `fn` with a simulator and the collector's connections for `env`, and stops both whatever happens. */
async function withConnections(
  simOpts: SimulatorOptions,
  env: Record<string, string>,
  fn: (sim: ExchangeSimulator, conns: Connection[], sink: CollectingSink, logs: ReturnType<typeof captureLogs>) => Promise<void>,
): Promise<void> {
  const sim = await ExchangeSimulator.start({ ...FAST_FAULTS_SIM, ...simOpts });
  const sink = new CollectingSink();
  const logs = captureLogs();
  const conns = createConnections(simConfig(sim, env), sink, logs.logger);
  try {
    for (const c of conns) c.start();
    await fn(sim, conns, sink, logs);
  } finally {
    await Promise.all(conns.map((c) => c.stop()));
    await sim.stop();
  }
}

function refusedStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('upgrade accepted'));
    });
    ws.on('error', () => {});
  });
}

/** Trades the collector cannot see: emitted while the exchange's only socket is gone (reset, not yet replaced). */
async function makeGap(sim: ExchangeSimulator, exchange: 'binance' | 'okx'): Promise<void> {
  sim.pause();
  sim.inject(exchange, 'reset');
  await stepWhileGone(sim, exchange);
}

/** Emits 5 trades per symbol at a moment the exchange has no open socket (the simulator paused), then resumes. */
async function stepWhileGone(sim: ExchangeSimulator, exchange: 'binance' | 'okx'): Promise<void> {
  await waitFor(() => {
    if (sim.subscriptions(exchange).length > 0) return false;
    sim.step(5);
    return true;
  }, 3000, 'the socket gone');
  sim.resume();
}

describe('Binance as it really is', () => {
  test('1024 streams on one connection against a server that refuses long handshake URLs: short URL, paced SUBSCRIBE, every stream flows', { timeout: 30_000 }, async () => {
    const symbols = Array.from({ length: 1024 }, (_, i) => `C${String(i).padStart(4, '0')}USDT`);
    await withConnections(
      { binanceSymbols: symbols, okxSymbols: [], tradesPerSecond: 0.2, binancePingIntervalMs: 20_000 },
      { BINANCE_SYMBOLS: symbols.join(','), OKX_SYMBOLS: '', BINANCE_STREAMS_PER_CONNECTION: '1024' },
      async (sim, conns, sink) => {
        const full = `${sim.binanceWsUrl}/stream?streams=${symbols.map(binanceStreamName).join('/')}`;
        assert.ok(full.length > 14_000, `the URL with every stream is ${full.length} characters`);
        assert.equal(await refusedStatus(full), 414, 'the simulator refuses it, as real servers do');
        assert.equal(conns.length, 1);
        await waitFor(() => sim.subscriptions('binance')[0]?.length === 1024, 15_000, 'all 1024 streams subscribed');
        await waitFor(() => sink.count('binance', symbols[1023]) > 0 && sink.count('binance', symbols[0]) > 0, 15_000, 'the first (URL) and the last (SUBSCRIBE) stream deliver');
        assert.equal(conns[0]!.state, 'live');
        assert.equal(conns[0]!.snapshot().reconnects, 0);
        assert.equal(conns[0]!.snapshot().resubscribed, 0, 'LIST_SUBSCRIPTIONS listed everything');
        const peak = sim.stats().binanceInboundPeakPerSecond;
        assert.ok(peak <= 3, `inbound messages stayed far under 5/s (peak ${peak})`);
        console.log(`1024 streams: handshake URL under ${BINANCE_MAX_URL_CHARS} characters, the rest by paced SUBSCRIBE; Binance inbound peak ${peak}/s`);
      },
    );
  });

  test('LIST_SUBSCRIPTIONS lacking streams: compared with what was asked, the missing ones subscribed again, logged and counted', async () => {
    const symbols = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT'];
    await withConnections({ binanceSymbols: symbols, okxSymbols: [] }, { BINANCE_SYMBOLS: symbols.join(','), OKX_SYMBOLS: '' }, async (sim, [conn], sink, logs) => {
      await waitFor(() => conn!.state === 'live', 5000, 'live');
      sim.inject('binance', 'partialSubscriptions'); // the next socket silently loses half of its URL's streams
      sim.inject('binance', 'close1001');
      await waitFor(() => conn!.snapshot().resubscribed === 2, 5000, 'two streams subscribed again');
      const warned = logs.find((l) => String(l.msg).includes("subscription list lacks 2 of 4 streams"));
      assert.equal(warned.length, 1);
      assert.deepEqual(warned[0]!.missing, ['BTCUSDT', 'BNBUSDT']);
      await waitFor(() => sim.subscriptions('binance')[0]?.length === 4, 3000, 'all four subscribed on the server');
      const counts = () => symbols.map((s) => sink.count('binance', s));
      const before = counts();
      await waitFor(() => counts().every((n, i) => n > before[i]! + 2), 5000, 'every symbol flows again');
      assert.equal(sim.stats().faultsInjected['binance:partialSubscriptions'], 1);
    });
  });

  for (const shape of ['flat', 'nested'] as const) {
    test(`${shape} error frames count as exchange_error`, async () => {
      await withConnections({ binanceErrorShape: shape }, { OKX_SYMBOLS: '', BINANCE_SYMBOLS: 'BTCUSDT' }, async (sim, [conn]) => {
        await waitFor(() => conn!.state === 'live', 5000, 'live');
        const before = conn!.snapshot().rejected;
        sim.inject('binance', 'errorFrame');
        await waitFor(() => conn!.snapshot().rejected.exchange_error === before.exchange_error + 1, 3000, 'exchange_error counted');
        assert.equal(conn!.snapshot().rejected.missing_field, before.missing_field);
        assert.equal(conn!.state, 'live');
      });
    });
  }

  test('timeUnit=MICROSECOND: refused in BINANCE_WS_URL, and microsecond trade times on the wire are never taken as milliseconds', async () => {
    assert.throws(() => loadConfig({ BINANCE_WS_URL: 'wss://stream.binance.com:9443?timeUnit=MICROSECOND' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /BINANCE_WS_URL: expected .* without a query string .*\?timeUnit=MICROSECOND is not supported/);
      return true;
    });
    const sim = await ExchangeSimulator.start({ tradesPerSecond: 50, binanceSymbols: ['BTCUSDT'], okxSymbols: [] });
    const clients: WebSocket[] = [];
    try {
      const frames = (query: string) => new Promise<string[]>((resolve) => {
        const got: string[] = [];
        const ws = new WebSocket(`${sim.binanceWsUrl}/stream?streams=btcusdt@trade${query}`);
        clients.push(ws);
        ws.on('message', (d) => {
          got.push(String(d));
          if (got.length === 5) resolve(got);
        });
      });
      const [micro, milli] = await Promise.all([frames('&timeUnit=MICROSECOND'), frames('')]);
      for (const f of micro) {
        const r = classifyBinanceFrame(f, Date.now());
        assert.equal(r.kind, 'rejected', f);
        assert.match((r as { detail: string }).detail, /field "T" is \d{16}: not a time in milliseconds/);
      }
      for (const f of milli) assert.equal(classifyBinanceFrame(f, Date.now()).kind, 'ticks', f);
    } finally {
      for (const ws of clients) ws.terminate();
      await sim.stop();
    }
  });
});

describe('OKX as it really is', () => {
  test('50011 with HTTP 200 and numeric codes: the shared budget pauses and it counts as rate-limited', async () => {
    const sim = await ExchangeSimulator.start({ okxNumericCodes: true });
    try {
      sim.injectRest('okx', 'rateLimit200');
      const budget = new RateBudget({ capacity: 10, windowMs: 2000 });
      const url = `${sim.okxRestUrl}/api/v5/market/history-trades?instId=BTC-USDT&limit=5`;
      const started = Date.now();
      const body = await getJson({ url, budget, cost: 1, logger: captureLogs().logger, rateLimitedBody: okxRateLimited, defaultRateLimitWaitMs: 300 });
      assert.equal((body as { code: unknown }).code, 0, 'numeric success code');
      assert.equal(budget.counters.rateLimited, 1);
      assert.equal(budget.counters.requests, 2, 'retried after the pause');
      assert.ok(Date.now() - started >= 300, 'waited for the budget pause');
    } finally {
      await sim.stop();
    }
  });

  test('a gap backfilled through 50011-with-HTTP-200 answers and numeric codes is filled, never marked unfillable', { timeout: 40_000 }, async () => {
    const sim = await ExchangeSimulator.start({ ...FAST_FAULTS_SIM, okxNumericCodes: true, binanceSymbols: [], okxSymbols: ['BTC-USDT'] });
    const logs = captureLogs('info');
    const h = await collectorHarness(sim, logs.logger, { BINANCE_SYMBOLS: '', OKX_SYMBOLS: 'BTC-USDT' });
    let maxUnfillable = 0;
    let sampler: NodeJS.Timeout | undefined;
    try {
      const c = await h.start();
      await waitFor(() => c.connections[0]!.state === 'live', 8000, 'live');
      await sleep(300);
      sampler = setInterval(() => (maxUnfillable = Math.max(maxUnfillable, c.backfiller.snapshot().unfillable)), 20);
      sim.injectRest('okx', 'rateLimit200', { count: 2 });
      await makeGap(sim, 'okx');
      await waitFor(() => c.backfiller.snapshot().detected >= 1, 8000, 'gap detected');
      await waitFor(() => c.backfiller.snapshot().filled >= 1, 20_000, 'gap filled');
      const gaps = c.backfiller.snapshot();
      assert.ok(gaps.restRateLimited >= 2, `rate-limited answers counted (${gaps.restRateLimited})`);
      assert.equal(maxUnfillable, 0, 'never unfillable meanwhile');
      sim.pause();
      const last = sim.tapeRange('okx', 'BTC-USDT')!.last;
      await waitFor(async () => (await audit(h.url, sim, 'okx', 'BTC-USDT', last)).missing.length === 0, 10_000, 'every id stored');
    } finally {
      clearInterval(sampler);
      await h.close();
      await sim.stop();
    }
  });

  test('no 64008 on /business: the upgrade is a plain close, reconnected at once (no backoff) after a long-live socket, and backfill fills the hole', { timeout: 30_000 }, async () => {
    const sim = await ExchangeSimulator.start({ ...FAST_FAULTS_SIM, tradesPerSecond: 50, noticeCloseDelayMs: 200, binanceSymbols: [], okxSymbols: ['BTC-USDT'] });
    const logs = captureLogs('debug');
    const h = await collectorHarness(sim, logs.logger, { BINANCE_SYMBOLS: '', OKX_SYMBOLS: 'BTC-USDT', PLANNED_CLOSE_MIN_LIVE_MS: '1000' });
    try {
      const c = await h.start();
      const conn = c.connections[0]!;
      // A close soon after going live is not "planned": it backs off as usual.
      await waitFor(() => conn.state === 'live', 8000, 'live');
      sim.inject('okx', 'close1001');
      await waitFor(() => conn.snapshot().reconnects === 1 && conn.state === 'live', 5000, 'reconnected');
      const early = logs.find((l) => l.msg === 'connection state' && l.to === 'backoff');
      assert.match(String(early[0]!.reason), /^reconnect in \d+ ms$/);
      await sleep(1200);
      sim.pause();
      // The replacement's upgrade stalls (until the handshake timeout): a window with no OKX socket, in which the
      // trades stepped below cannot be seen live. The reconnect itself still starts at once (asserted below).
      sim.inject('okx', 'stallHandshake');
      sim.inject('okx', 'notice64008');
      await stepWhileGone(sim, 'okx');
      await waitFor(() => conn.snapshot().reconnects === 3 && conn.state === 'live', 8000, 'reconnected after the upgrade');
      const planned = logs.find((l) => l.msg === 'connection state' && l.to === 'backoff')[1]!;
      assert.match(String(planned.reason), /^planned close after \d+ ms live: reconnect at once$/);
      assert.equal(planned.delayMs, 0);
      assert.equal(conn.snapshot().reconnectsByReason.notice, 0, 'no notice arrived');
      assert.equal(conn.snapshot().reconnectsByReason.handshake_timeout, 1, 'the stalled upgrade');
      assert.equal(conn.snapshot().closeCodes['1001'], 2);
      assert.equal(logs.find((l) => String(l.msg).includes('closed the connection cleanly')).length, 1);
      await sleep(300);
      sim.pause();
      const last = sim.tapeRange('okx', 'BTC-USDT')!.last;
      await waitFor(async () => (await audit(h.url, sim, 'okx', 'BTC-USDT', last)).missing.length === 0, 15_000, 'the hole filled by backfill');
      assert.ok(c.backfiller.snapshot().filled >= 1);
    } finally {
      await h.close();
      await sim.stop();
    }
  });
});

test('no exchange host is hard-coded anywhere but the configured defaults (src/config.ts)', () => {
  const files = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []));
  const host = /\b(?:https?|wss?):\/\/[a-z0-9.-]*\b(?:okx|binance)\.(?:com|vision)\b/i;
  const found: string[] = [];
  // The simulator quotes OKX's own error text, which carries a help-centre link; it is not a host we call.
  for (const f of files('src').filter((f) => !f.startsWith(join('src', 'simulator')) && f !== join('src', 'config.ts'))) {
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      const code = line.trim();
      if (!code.startsWith('*') && !code.startsWith('//') && !code.startsWith('/*') && host.test(code)) found.push(`${f}:${i + 1}: ${code}`);
    });
  }
  assert.deepEqual(found, []);
  assert.equal(DEFAULTS.OKX_REST_URL, 'https://openapi.okx.com', "the REST host OKX's docs give now");
});
