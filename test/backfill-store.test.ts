/**
 * The backfiller against a real PostgreSQL, with a REST filler it controls: gaps are recorded, a range another
 * collector already stored is filled without REST, a failing filler leaves the row unfillable with its reason.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backfiller } from '../src/backfill/backfiller.ts';
import { RateBudget } from '../src/backfill/rate-budget.ts';
import type { RangeFiller } from '../src/backfill/range-fill.ts';
import type { Tick } from '../src/tick.ts';
import { DEFAULTS } from '../src/config.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { Storage } from '../src/storage/storage.ts';
import { sqlRows } from './helpers/collector-harness.ts';
import { createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

let tdb: TestDatabase;
let dir: string;
let storage: Storage;
before(async () => {
  tdb = await createTestDatabase('backfiller');
  dir = await mkdtemp(join(tmpdir(), 'mc-backfiller-'));
  storage = await openStorage({ config: testStorageConfig(join(dir, 'spill'), { batchMaxAgeMs: 20 }), url: tdb.url, logger: captureLogs().logger });
});
after(async () => {
  await storage.close();
  await tdb.drop();
  await rm(dir, { recursive: true, force: true });
});

function failingFiller(calls: { n: number }): RangeFiller {
  return {
    exchange: 'binance',
    budget: new RateBudget({ capacity: 100, windowMs: 1000 }),
    async fill() {
      calls.n++;
      throw new Error('HTTP 500: exchange down');
    },
  };
}

/** A REST history that has every trade: answers the whole range. */
function workingFiller(calls: { n: number }): RangeFiller {
  return {
    exchange: 'binance',
    budget: new RateBudget({ capacity: 100, windowMs: 1000 }),
    async fill(symbol, range, deliver) {
      calls.n++;
      const ticks: Tick[] = [];
      for (let id = range.from; id <= range.to; id++) ticks.push({ ...makeTick(id, { symbol }), source: 'backfill' });
      await deliver(ticks);
      return { delivered: ticks.length, missing: [] };
    },
  };
}

function backfiller(filler: RangeFiller, on: Storage = storage, retryIntervalMs = 3_600_000): Backfiller {
  return new Backfiller({
    config: { enabled: true, maxGap: DEFAULTS.BACKFILL_MAX_GAP, retryIntervalMs, binanceWeightPerMinute: 1000, okxRequestsPer2s: 10 },
    db: on.db,
    sink: on.sink,
    flush: () => on.flush(),
    fillers: { binance: filler },
    symbols: { binance: ['AAAUSDT', 'BBBUSDT', 'CCCUSDT', 'DDDUSDT'], okx: [] },
    logger: captureLogs().logger,
  });
}

describe('backfiller over the gaps table', () => {
  test('a range already in the table (another collector stored it) is marked filled without a REST call', async () => {
    const calls = { n: 0 };
    const b = backfiller(failingFiller(calls));
    await b.start(); // nothing stored yet for AAAUSDT: tracking starts at the first tick it sees
    try {
      b.observe(makeTick(99, { symbol: 'AAAUSDT' }));
      for (let id = 100; id < 200; id++) storage.sink.write(makeTick(id, { symbol: 'AAAUSDT' })); // the other collector
      await storage.flush();
      b.observe(makeTick(200, { symbol: 'AAAUSDT' }));
      await waitFor(async () => (await sqlRows(tdb.url, "select 1 from gaps where symbol = 'AAAUSDT' and status = 'filled' and filled_at is not null")).length === 1, 10_000, 'filled');
      assert.equal(calls.n, 0, 'no REST call');
      const rows = await sqlRows<{ from_id: string; to_id: string }>(tdb.url, "select from_id, to_id from gaps where symbol = 'AAAUSDT'");
      assert.deepEqual(rows, [{ from_id: '100', to_id: '199' }]);
      assert.equal(b.snapshot().filled, 1);
    } finally {
      await b.stop();
    }
  });

  test('a partly stored range still goes to REST; a failing REST leaves it unfillable with the reason', async () => {
    const calls = { n: 0 };
    const b = backfiller(failingFiller(calls));
    await b.start();
    try {
      b.observe(makeTick(999, { symbol: 'BBBUSDT' }));
      for (let id = 1000; id < 1050; id++) storage.sink.write(makeTick(id, { symbol: 'BBBUSDT' })); // half the hole
      await storage.flush();
      b.observe(makeTick(1100, { symbol: 'BBBUSDT' }));
      await waitFor(async () => (await sqlRows(tdb.url, "select 1 from gaps where symbol = 'BBBUSDT' and status = 'unfillable' and reason like '%exchange down%'")).length === 1, 10_000, 'unfillable with reason');
      assert.equal(calls.n, 1);
      assert.equal(b.snapshot().unfillable, 1);
      const rows = await sqlRows<{ from_id: string; to_id: string }>(tdb.url, "select from_id, to_id from gaps where symbol = 'BBBUSDT'");
      assert.deepEqual(rows, [{ from_id: '1000', to_id: '1099' }]);
    } finally {
      await b.stop();
    }
  });

  test('a gap found while the database is unreachable is not forgotten: recorded, stored and marked filled once it is back', async () => {
    const u = new URL(tdb.url);
    const proxy = await TcpProxy.start(u.hostname, Number(u.port || 5432));
    const config = testStorageConfig(join(dir, 'spill-outage'), { batchMaxAgeMs: 20, acquireTimeoutMs: 300, connectTimeoutMs: 300 });
    const viaProxy = await openStorage({ config, url: proxy.url(tdb.url), logger: captureLogs().logger });
    await sqlRows(tdb.url, 'delete from gaps'); // this instance's retry loop would pick up the earlier tests' rows
    const calls = { n: 0 };
    const b = backfiller(workingFiller(calls), viaProxy, 300);
    try {
      await b.start();
      b.observe(makeTick(1, { symbol: 'CCCUSDT' }));
      proxy.cut();
      b.observe(makeTick(50, { symbol: 'CCCUSDT' })); // gap 2..49 while nothing can reach the database
      await waitFor(() => calls.n >= 1, 10_000, 'fetched over REST while the database is down');
      await sleep(1_000);
      proxy.restore();
      await waitFor(async () => (await sqlRows(tdb.url, "select 1 from gaps where symbol = 'CCCUSDT' and from_id = 2 and to_id = 49 and status = 'filled'")).length === 1, 20_000, 'gap recorded and filled');
      const rows = await sqlRows<{ n: string }>(tdb.url, "select count(*) as n from ticks where symbol = 'CCCUSDT' and trade_id between 2 and 49");
      assert.equal(Number(rows[0]!.n), 48, 'every id of the gap stored');
      assert.equal(b.snapshot().filled, 1, 'counted once');
      assert.equal(b.snapshot().open, 0);
    } finally {
      await b.stop();
      await viaProxy.close();
      await proxy.stop();
    }
  });

  test('a hole a previous run left in the table (below the last stored id) is found at start and filled', async () => {
    for (let id = 1; id <= 100; id++) if (id < 40 || id > 49) storage.sink.write(makeTick(id, { symbol: 'DDDUSDT' }));
    await storage.flush();
    await sqlRows(tdb.url, 'delete from gaps');
    const calls = { n: 0 };
    const b = backfiller(workingFiller(calls));
    try {
      await b.start();
      await waitFor(async () => (await sqlRows(tdb.url, "select 1 from gaps where symbol = 'DDDUSDT' and from_id = 40 and to_id = 49 and status = 'filled'")).length === 1, 10_000, 'hole recorded and filled');
      const rows = await sqlRows<{ n: string }>(tdb.url, "select count(*) as n from ticks where symbol = 'DDDUSDT'");
      assert.equal(Number(rows[0]!.n), 100);
      assert.equal(calls.n, 1, 'one REST fill, for the hole only');
    } finally {
      await b.stop();
    }
  });
});
