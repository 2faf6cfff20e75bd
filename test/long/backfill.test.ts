/**
 * Completeness end to end: simulator → collector (in-process) → real Postgres. Whatever the connection goes
 * through, the table ends up holding every trade id from the first stored to the last emitted, with the fields the
 * simulator sent, each once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeSimulator } from '../../src/simulator/index.ts';
import type { FaultKind, SimExchange } from '../../src/simulator/index.ts';
import type { Collector } from '../../src/collector.ts';
import type { Tick } from '../../src/tick.ts';
import { audit, collectorHarness, sqlRows } from '../helpers/collector-harness.ts';
import type { Harness } from '../helpers/collector-harness.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { sleep, waitFor } from '../helpers/wait-for.ts';
import { FAST_FAULTS_SIM } from '../helpers/sim-options.ts';

const SIM = FAST_FAULTS_SIM;
const SYMBOLS: Record<SimExchange, string[]> = { binance: ['BTCUSDT', 'ETHUSDT'], okx: ['BTC-USDT', 'ETH-USDT'] };
const ENV = { BINANCE_SYMBOLS: SYMBOLS.binance.join(','), OKX_SYMBOLS: SYMBOLS.okx.join(','), OKX_REST_REQUESTS_PER_2S: '15' };
const FAULTS: FaultKind[] = ['close1001', 'reset', 'fin', 'blackhole', 'stallHandshake', 'refuse503', 'refuse429', 'oversized', 'malformed'];
const HANDSHAKE_FAULTS = new Set<FaultKind>(['stallHandshake', 'refuse503', 'refuse429']);

const allLive = (c: Collector) => c.connections.every((x) => x.state === 'live');

/** Stops the tape, waits until the table holds every emitted id of every symbol (backfill done), audits. */
async function settleAndAudit(h: Harness, sim: ExchangeSimulator, c: Collector): Promise<void> {
  await waitFor(() => allLive(c), 15_000, 'every connection live');
  await sleep(500); // live ticks after the last fault reveal any gap it left
  sim.pause();
  const lastIds = Object.fromEntries(
    (Object.keys(SYMBOLS) as SimExchange[]).flatMap((ex) => SYMBOLS[ex].map((s) => [`${ex}:${s}`, sim.tapeRange(ex, s)!.last])),
  );
  // One more trade per symbol after the pause point would reveal a gap at the very end; step one to be sure.
  sim.step(1);
  await waitFor(async () => {
    for (const ex of Object.keys(SYMBOLS) as SimExchange[]) {
      for (const s of SYMBOLS[ex]) {
        const a = await audit(h.url, sim, ex, s);
        if (a.missing.length > 0) return false;
      }
    }
    return true;
  }, 60_000, 'every emitted id stored');
  for (const ex of Object.keys(SYMBOLS) as SimExchange[]) {
    for (const s of SYMBOLS[ex]) {
      const a = await audit(h.url, sim, ex, s);
      assert.deepEqual(a.missing, [], `${ex} ${s}: no missing id`);
      assert.deepEqual(a.wrong, [], `${ex} ${s}: fields equal what was sent`);
      assert.equal(a.stored, a.last - a.first + 1, `${ex} ${s}: no duplicate, no extra (${a.first}..${a.last})`);
      assert.ok(a.last >= lastIds[`${ex}:${s}`]!, 'up to the last emitted before the end');
    }
  }
}

describe('completeness under every fault kind', () => {
  let sim: ExchangeSimulator;
  let h: Harness;
  let c: Collector;
  const logs = captureLogs('info');

  before(async () => {
    sim = await ExchangeSimulator.start({ ...SIM, binanceSymbols: SYMBOLS.binance, okxSymbols: SYMBOLS.okx });
    h = await collectorHarness(sim, logs.logger, ENV);
    c = await h.start();
  });
  after(async () => {
    await h.close();
    await sim.stop();
  });

  test('every fault kind, twice, on both exchanges: no hole, no duplicate, fields exact', async () => {
    await waitFor(() => allLive(c), 10_000, 'live');
    for (let round = 0; round < 2; round++) {
      for (const fault of FAULTS) {
        for (const ex of ['binance', 'okx'] as const) {
          sim.inject(ex, fault);
          if (HANDSHAKE_FAULTS.has(fault)) sim.inject(ex, 'close1001');
        }
        await waitFor(() => allLive(c), 15_000, `live again after ${fault}`);
        await sleep(150);
      }
      for (const ex of ['binance', 'okx'] as const) sim.inject(ex, ex === 'binance' ? 'serverShutdown' : 'notice64008');
      await sleep(800);
    }
    await settleAndAudit(h, sim, c);
    const gaps = c.backfiller.snapshot();
    assert.ok(gaps.detected > 0 && gaps.filled > 0, `gaps were found and filled: ${JSON.stringify(gaps)}`);
    const open = await sqlRows<{ n: string }>(h.url, "select count(*) as n from gaps where status <> 'filled'");
    assert.equal(Number(open[0]!.n), 0, 'no gap left open');
  });
});

describe('restart and REST trouble', () => {
  test('a restart while the exchange keeps trading: the hole is filled from the last stored id', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM, binanceSymbols: SYMBOLS.binance, okxSymbols: SYMBOLS.okx });
    const logs = captureLogs('info');
    const h = await collectorHarness(sim, logs.logger, ENV);
    try {
      const first = await h.start();
      await waitFor(() => allLive(first), 10_000, 'live');
      await sleep(1000);
      await first.stop();
      const stoppedAt = sim.tapeRange('binance', 'BTCUSDT')!.last;
      sim.step(300); // the exchange trades on while we are down
      const second = await h.start();
      await settleAndAudit(h, sim, second);
      const a = await audit(h.url, sim, 'binance', 'BTCUSDT');
      assert.ok(a.backfilled >= 300, `the restart hole came over REST (${a.backfilled} backfilled rows)`);
      assert.ok(logs.find((l) => l.msg === 'gap tracking seeded from the database').length > 0);
      assert.ok(a.first < stoppedAt);
      await second.stop();
    } finally {
      await h.close();
      await sim.stop();
    }
  });

  test('429 with Retry-After and failing REST: backfill waits, records the unfillable gap with its reason, fills it once REST recovers', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
    const logs = captureLogs('info');
    const h = await collectorHarness(sim, logs.logger, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT' });
    try {
      const c = await h.start();
      await waitFor(() => allLive(c), 10_000, 'live');
      await sleep(300);

      // Binance: rate limited twice, then served.
      sim.injectRest('binance', 'rateLimit429', { count: 2, retryAfterSeconds: 1 });
      // OKX: every attempt of the first fill fails (1 + 5 retries), the retry loop fills it later.
      sim.injectRest('okx', 'fail500', { count: 6 });
      for (const ex of ['binance', 'okx'] as const) {
        sim.inject(ex, 'refuse503', { count: 3 });
        sim.inject(ex, 'close1001');
      }
      await waitFor(async () => (await sqlRows(h.url, "select 1 from gaps where exchange = 'okx' and status = 'unfillable' and reason like '%500%'")).length > 0, 30_000, 'okx gap recorded unfillable with the HTTP 500 reason');
      await waitFor(async () => (await sqlRows(h.url, "select 1 from gaps where exchange = 'okx' and status = 'filled' and filled_at is not null and attempts >= 2")).length > 0, 30_000, 'okx gap filled on retry');
      const binanceGaps = await sqlRows<{ status: string }>(h.url, "select status from gaps where exchange = 'binance'");
      assert.ok(binanceGaps.length > 0);
      await waitFor(async () => (await sqlRows(h.url, "select 1 from gaps where exchange = 'binance' and status <> 'filled'")).length === 0, 20_000, 'binance gap filled after the 429s');
      assert.ok(c.backfiller.snapshot().restRateLimited >= 2, 'rate-limit answers counted');
      assert.ok(logs.find((l) => l.msg === 'REST request failed').length >= 2, 'REST failures logged');

      sim.pause();
      sim.step(1);
      for (const [ex, s] of [['binance', 'BTCUSDT'], ['okx', 'BTC-USDT']] as const) {
        await waitFor(async () => (await audit(h.url, sim, ex, s)).missing.length === 0, 20_000, `${ex} complete`);
      }
      await c.stop();
    } finally {
      await h.close();
      await sim.stop();
    }
  });

  test('a range over BACKFILL_MAX_GAP is recorded as unfillable with its reason, never silent', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
    const logs = captureLogs('info');
    const h = await collectorHarness(sim, logs.logger, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: '', BACKFILL_MAX_GAP: '50' });
    try {
      const first = await h.start();
      await waitFor(() => first.connections[0]!.state === 'live', 10_000, 'live');
      await sleep(300);
      await first.stop();
      sim.step(200);
      const second = await h.start();
      await waitFor(async () => (await sqlRows(h.url, "select 1 from gaps where status = 'unfillable' and reason like '%BACKFILL_MAX_GAP%'")).length === 1, 10_000, 'recorded');
      assert.equal(second.backfiller.snapshot().unfillable, 1);
      await second.stop();
    } finally {
      await h.close();
      await sim.stop();
    }
  });

  test('backfill never holds live ticks back: live latency from send to commit stays within a generous bound during a large backfill', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM, tradesPerSecond: 50, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
    const logs = captureLogs('info');
    const h = await collectorHarness(sim, logs.logger, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT' });
    try {
      const first = await h.start();
      await waitFor(() => allLive(first), 10_000, 'live');
      await sleep(300);
      await first.stop();
      sim.step(6_000); // a large hole on both exchanges
      const c = await h.start();
      const latencies: number[] = [];
      let backfilling = true;
      const off = c.storage.onStored((ticks: readonly Tick[]) => {
        const now = Date.now();
        if (!backfilling) return;
        for (const t of ticks) if (t.source === 'live') latencies.push(now - t.tradeTime);
      });
      await waitFor(async () => (await sqlRows(h.url, "select 1 from gaps where status <> 'filled'")).length === 0 && c.backfiller.snapshot().filled >= 2, 90_000, 'both holes filled');
      backfilling = false;
      off();
      latencies.sort((a, b) => a - b);
      const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
      console.log(`live send→commit latency during backfill: n=${latencies.length} p50=${p(0.5)}ms p99=${p(0.99)}ms max=${latencies.at(-1)}ms`);
      assert.ok(latencies.length > 20, 'live ticks were stored while backfilling');
      assert.ok(p(0.99) < 2_000, `p99 ${p(0.99)} ms (batch interval 50 ms; bound generous for a noisy machine)`);
      await c.stop();
    } finally {
      await h.close();
      await sim.stop();
    }
  });
});
