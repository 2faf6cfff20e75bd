/**
 * Daily partitions of tick_rows against a real PostgreSQL (issue #11 points 1, 2, 4, 7): created ahead by an
 * injected clock across a UTC midnight, created on demand for a trade of a day without one, each trade stored once,
 * the compact row exact, retention (only whole expired days, only when canDrop agrees, never blocking inserts), and
 * the completeness queries index-driven across partition boundaries.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { holesInTable, lastStoredIds, storedInRange } from '../src/backfill/gap-store.ts';
import type { StorageConfig } from '../src/config.ts';
import { migrateToLatest } from '../src/storage/migrate.ts';
import { DAY_MS, ensurePartitions, listPartitions } from '../src/storage/partitions.ts';
import type { Database } from '../src/storage/schema.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { OpenStorageOptions } from '../src/storage/storage.ts';
import { sqlRows } from './helpers/collector-harness.ts';
import { countTicks, createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { TestClock } from './helpers/test-clock.ts';
import { waitFor } from './helpers/wait-for.ts';

let tdb: TestDatabase;
let spillRoot: string;
before(async () => {
  tdb = await createTestDatabase('partitions');
  spillRoot = await mkdtemp(join(tmpdir(), 'mc-partitions-'));
});
after(async () => {
  await tdb?.drop();
  await rm(spillRoot, { recursive: true, force: true });
});

async function open(name: string, extra: Partial<OpenStorageOptions> = {}, overrides: Partial<StorageConfig> = {}, url = tdb.url) {
  const logs = captureLogs('debug');
  const config = testStorageConfig(join(spillRoot, name), overrides);
  const storage = await openStorage({ config, url, logger: logs.logger, ...extra });
  return { storage, logs };
}

const at = (iso: string) => Date.parse(iso);
async function partitionDays(url = tdb.url): Promise<string[]> {
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
  try {
    return (await listPartitions(db)).map((p) => p.day);
  } finally {
    await db.destroy();
  }
}

/** Where each stored trade of a symbol lives: trade id -> partition. */
async function placement(symbol: string, url = tdb.url): Promise<Record<string, string>> {
  const rows = await sqlRows<{ trade_id: string; part: string }>(url,
    `select t.trade_id, t.tableoid::regclass::text as part from tick_rows t join instruments i using (instrument_id)
     where i.symbol = $1 order by t.trade_id`, [symbol]);
  return Object.fromEntries(rows.map((r) => [r.trade_id, r.part]));
}

describe('daily partitions', () => {
  test('created ahead by the clock: ticks on both sides of a UTC midnight land in their day, none created on demand', async () => {
    const midnight = at('2031-03-15T00:00:00Z');
    const clock = new TestClock(midnight - 1_000); // 23:59:59 on the 14th
    const { storage, logs } = await open('midnight', { clock, maintenanceIntervalMs: 50 });
    try {
      const before = await partitionDays();
      for (const d of ['2031-03-13', '2031-03-14', '2031-03-15', '2031-03-16']) assert.ok(before.includes(d), `partition of ${d} exists before it is needed (${before.join(' ')})`);
      assert.ok(!before.includes('2031-03-17'));
      storage.sink.write(makeTick(1, { symbol: 'MIDUSDT', tradeTime: midnight - 100, receivedAt: midnight - 90 }));
      storage.sink.write(makeTick(2, { symbol: 'MIDUSDT', tradeTime: midnight + 100, receivedAt: midnight + 110 }));
      await storage.flush();
      assert.deepEqual(await placement('MIDUSDT'), { '1': 'tick_rows_20310314', '2': 'tick_rows_20310315' });
      clock.ms = midnight + 1_000; // the clock crosses midnight: the next maintenance run looks a day further
      await waitFor(async () => (await partitionDays()).includes('2031-03-17'), 10_000, 'the partition two days ahead of the new day');
      assert.equal(logs.find((l) => l.msg === 'partitions created on demand for trades of days that had none').length, 0);
      assert.equal(storage.pipeline().ticksRejected, 0);
    } finally {
      await storage.close();
    }
  });

  test('a trade of a day without a partition (backfill from days ago, a clock that jumped) is stored: the partition is made on demand', async () => {
    const clock = new TestClock(at('2031-04-20T12:00:00Z'));
    const { storage, logs } = await open('demand', { clock });
    try {
      const old = at('2031-04-02T08:00:00Z'); // 18 days ago, as a backfill would bring
      const ahead = at('2031-06-01T08:00:00Z'); // an exchange clock (or ours) far off
      storage.sink.write({ ...makeTick(10, { symbol: 'DEMANDUSDT', tradeTime: old, receivedAt: clock.now() }), source: 'backfill' });
      storage.sink.write(makeTick(11, { symbol: 'DEMANDUSDT', tradeTime: ahead, receivedAt: ahead + 3 }));
      storage.sink.write(makeTick(12, { symbol: 'DEMANDUSDT', tradeTime: clock.now(), receivedAt: clock.now() + 3 }));
      storage.sink.write(makeTick(13, { symbol: 'DEMANDUSDT', tradeTime: -86_400_000 * 400, receivedAt: 0 })); // 1968: not a trade time
      await storage.flush();
      assert.deepEqual(await placement('DEMANDUSDT'), { '10': 'tick_rows_20310402', '11': 'tick_rows_20310601', '12': 'tick_rows_20310420' });
      const created = logs.find((l) => l.msg === 'partitions created on demand for trades of days that had none');
      assert.deepEqual(created.flatMap((l) => l.days as string[]).sort(), ['2031-04-02', '2031-06-01']);
      assert.equal(storage.pipeline().ticksRejected, 1, 'only the 1968 trade time is refused, as bad data');
      const rejected = logs.find((l) => l.msg === 'tick rejected by the database; the rest of its batch is stored');
      assert.match(String(rejected[0]?.reason), /no partition of relation/);
    } finally {
      await storage.close();
    }
  });

  test('a trade sent again, in another batch, is stored once (the partition-local unique index, without trade_time)', async () => {
    const { storage } = await open('once');
    try {
      const t = makeTick(5, { symbol: 'ONCEUSDT' });
      storage.sink.write(t);
      await storage.flush();
      storage.sink.write(t);
      storage.sink.write(makeTick(6, { symbol: 'ONCEUSDT' }));
      await storage.flush();
      assert.equal(await countTicks(tdb.url, "symbol = 'ONCEUSDT'"), 2);
      assert.equal(storage.pipeline().ticksDuplicate, 1);
    } finally {
      await storage.close();
    }
  });

  test('the compact row is exact: ids near 2^53, trailing zeros, 12 decimals, receive delays small, negative and 40 days', async () => {
    const { storage } = await open('exact');
    const now = Date.now();
    try {
      storage.sink.write(makeTick(9_007_199_254_740_991, { symbol: 'EXACTUSDT', price: '42219.90000000', qty: '0.00219650', side: 'sell', tradeTime: now, receivedAt: now + 5 }));
      storage.sink.write(makeTick(9_007_199_254_740_990, { symbol: 'EXACTUSDT', price: '0.000000012345', qty: '1000', side: 'buy', tradeTime: now, receivedAt: now - 5 }));
      storage.sink.write({ ...makeTick(9_007_199_254_740_989, { symbol: 'EXACTUSDT', price: '1.10', qty: '2.000', side: 'sell', tradeTime: now - 40 * DAY_MS, receivedAt: now }), source: 'backfill' });
      await storage.flush();
      const raw = await sqlRows<Record<string, string | null>>(tdb.url,
        `select trade_id::text, received_delay_ms::text as delay, received_at is not null as full_received, flags::text from tick_rows t
         join instruments using (instrument_id) where symbol = 'EXACTUSDT' order by trade_id`);
      assert.deepEqual(raw, [
        { trade_id: '9007199254740989', delay: null, full_received: true, flags: '3' },
        { trade_id: '9007199254740990', delay: '-5', full_received: false, flags: '0' },
        { trade_id: '9007199254740991', delay: '5', full_received: false, flags: '1' },
      ]);
      const view = await sqlRows<Record<string, string>>(tdb.url,
        `select trade_id::text, price::text, qty::text, side, source, (extract(epoch from received_at) * 1000)::bigint::text as received,
                (extract(epoch from trade_time) * 1000)::bigint::text as traded from ticks where symbol = 'EXACTUSDT' order by trade_id`);
      assert.deepEqual(view, [
        { trade_id: '9007199254740989', price: '1.10', qty: '2.000', side: 'sell', source: 'backfill', received: String(now), traded: String(now - 40 * DAY_MS) },
        { trade_id: '9007199254740990', price: '0.000000012345', qty: '1000', side: 'buy', source: 'live', received: String(now - 5), traded: String(now) },
        { trade_id: '9007199254740991', price: '42219.90000000', qty: '0.00219650', side: 'sell', source: 'live', received: String(now + 5), traded: String(now) },
      ]);
    } finally {
      await storage.close();
    }
  });

  test('retention drops whole days past RETENTION_DAYS, only when canDrop agrees, without ever blocking inserts', async () => {
    const clock = new TestClock(at('2031-06-20T12:00:00Z'));
    const allowed = new Set<string>();
    const asked: string[] = [];
    const canDrop = async (day: string) => (asked.push(day), allowed.has(day));
    const own = await createTestDatabase('retention'); // its own days: no other test's partitions in the way
    const { storage } = await open('retention', { clock, canDrop }, { retentionDays: 2 }, own.url);
    try {
      for (const [id, iso] of [[1, '2031-06-14T10:00:00Z'], [2, '2031-06-17T10:00:00Z'], [3, '2031-06-18T10:00:00Z'], [4, '2031-06-20T10:00:00Z']] as const) {
        storage.sink.write(makeTick(id, { symbol: 'RETUSDT', tradeTime: at(iso), receivedAt: at(iso) + 2 }));
      }
      await storage.flush();
      assert.deepEqual((await storage.maintain()).dropped, [], 'nothing cleared yet');
      assert.deepEqual([...new Set(asked)].sort(), ['2031-06-14', '2031-06-17'], 'asked only for days older than today - 2');
      allowed.add('2031-06-17');
      assert.deepEqual((await storage.maintain()).dropped, ['2031-06-17']);

      // A long read holds the partitions (an export): the detach waits for it, inserts do not.
      allowed.add('2031-06-14');
      const reader = new pg.Client({ connectionString: own.url });
      await reader.connect();
      await reader.query('begin');
      await reader.query("select count(*) from ticks where symbol = 'RETUSDT'");
      const dropping = storage.maintain();
      storage.sink.write(makeTick(5, { symbol: 'RETUSDT', tradeTime: clock.now(), receivedAt: clock.now() + 1 }));
      const started = Date.now();
      await storage.flush();
      assert.ok(Date.now() - started < 5_000, 'an insert is not held by the pending detach');
      await reader.query('commit');
      await reader.end();
      assert.deepEqual((await dropping).dropped, ['2031-06-14']);

      const left = await partitionDays(own.url);
      assert.deepEqual(left, ['2031-06-18', '2031-06-19', '2031-06-20', '2031-06-21', '2031-06-22'], 'today - 2 and later are kept');
      assert.deepEqual(Object.keys(await placement('RETUSDT', own.url)), ['3', '4', '5']);
    } finally {
      await storage.close();
      await own.drop();
    }
  });

  test('completeness queries work across partition boundaries and stay index-driven (EXPLAIN)', async () => {
    const own = await createTestDatabase('explain'); // only partitions with realistic contents (a 1-page table is seq-scanned)
    const captured: Array<{ sql: string; parameters: readonly unknown[] }> = [];
    const pool = new pg.Pool({ connectionString: own.url, max: 2 });
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool }),
      log: (e) => {
        if (e.level === 'query' && /tick_rows/.test(e.query.sql)) captured.push({ sql: e.query.sql, parameters: e.query.parameters });
      },
    });
    try {
      await migrateToLatest(db);
      // 4 symbols x 3 days x 15,000 ids; GAPUSDT misses 14,990..15,010 (across the first midnight) and 30,001.
      const first = Math.floor(at('2031-08-01T00:00:00Z') / DAY_MS);
      await ensurePartitions(db, [first, first + 1, first + 2]);
      await sqlRows(own.url, "insert into instruments (exchange, symbol) values ('binance', 'GAPUSDT'), ('binance', 'G2USDT'), ('binance', 'G3USDT'), ('binance', 'G4USDT') on conflict do nothing");
      await sqlRows(own.url, `
        insert into tick_rows (trade_time, trade_id, received_delay_ms, instrument_id, flags, price, qty)
        select timestamptz '2031-08-01' + (id - 1) * (interval '1 day' / 15000), id, 3, i.instrument_id, 0, 42000.5, 0.001
        from generate_series(1, 45000) id, instruments i
        where i.symbol in ('GAPUSDT', 'G2USDT', 'G3USDT', 'G4USDT')
          and not (i.symbol = 'GAPUSDT' and (id between 14990 and 15010 or id = 30001))`);
      await sqlRows(own.url, 'vacuum analyze tick_rows');
      captured.length = 0;

      assert.deepEqual(await lastStoredIds(db, 'binance', ['GAPUSDT']), new Map([['GAPUSDT', 45_000]]));
      assert.deepEqual(await holesInTable(db, 'binance', 'GAPUSDT', 45_000, 200_000), [
        { exchange: 'binance', symbol: 'GAPUSDT', from: 14_990, to: 15_010 },
        { exchange: 'binance', symbol: 'GAPUSDT', from: 30_001, to: 30_001 },
      ]);
      assert.equal(await storedInRange(db, { exchange: 'binance', symbol: 'GAPUSDT', from: 14_980, to: 15_020 }), 41 - 21);
      const split = await sqlRows<{ part: string }>(own.url, `select distinct tableoid::regclass::text as part from tick_rows
        where instrument_id = (select instrument_id from instruments where symbol = 'GAPUSDT') and trade_id in (14989, 15011)`);
      assert.equal(split.length, 2, 'the first hole spans two partitions');

      assert.equal(captured.length, 3);
      for (const q of captured) {
        const { rows } = await pool.query<{ 'QUERY PLAN': unknown }>(`explain (format json) ${q.sql}`, q.parameters as unknown[]);
        const nodes: Array<{ type: string; relation?: string }> = [];
        const walk = (n: Record<string, unknown>) => {
          nodes.push({ type: String(n['Node Type']), relation: n['Relation Name'] as string | undefined });
          for (const c of (n.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(c);
        };
        walk((rows[0]!['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>)[0]!.Plan);
        const onTicks = nodes.filter((n) => n.relation?.startsWith('tick_rows_'));
        assert.ok(onTicks.length > 0, `the plan reads the partitions: ${q.sql}`);
        assert.deepEqual(onTicks.filter((n) => !n.type.startsWith('Index')), [], `every partition is read through its index: ${q.sql} -> ${JSON.stringify(nodes)}`);
      }
    } finally {
      await db.destroy();
      await own.drop();
    }
  });
});
