/**
 * Migration of an existing database (issue #11 point 3): a `ticks` table of the original shape holding rows (ids
 * near 2^53, trailing zeros, 8+ decimals, microsecond times, far and negative receive delays) becomes the view over
 * tick_rows; the rows move in the background, every row once and exact, while new ticks already go to tick_rows;
 * `npm run migrate` does the same to the end, as a real child process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { migrations } from '../migrations/index.ts';
import { legacyPresent, moveLegacyRows } from '../src/storage/legacy.ts';
import type { Database } from '../src/storage/schema.ts';
import { openStorage } from '../src/storage/storage.ts';
import { sqlRows } from './helpers/collector-harness.ts';
import { createTestDatabase, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait-for.ts';

let spillRoot: string;
const dbs: TestDatabase[] = [];
before(async () => {
  spillRoot = await mkdtemp(join(tmpdir(), 'mc-migration-'));
});
after(async () => {
  for (const d of dbs) await d.drop();
  await rm(spillRoot, { recursive: true, force: true });
});

const EDGE_ROWS = `
  insert into ticks (exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source) values
  ('binance', 'BTCUSDT', 9007199254740991, '42219.90000000', '0.00219650', 'buy', '2026-11-20 23:59:59.999+00', '2026-11-21 00:00:00.004+00', 'live'),
  ('binance', 'BTCUSDT', 9007199254740990, '0.000000012345678900', '12.50000000', 'sell', '2026-11-20 12:00:00+00', '2026-12-30 12:00:00.001+00', 'backfill'),
  ('okx', 'BTC-USDT', 9007199254740000, '1.10', '0.00000001', 'sell', '2026-11-21 10:00:00.123456+00', '2026-11-21 10:00:00.123999+00', 'live'),
  ('okx', 'ETH-USDT', 1, '3012.4500', '100', 'buy', '2026-11-22 08:00:00.010+00', '2026-11-22 08:00:00.008+00', 'live')`;

/** 4 symbols x 3,000 contiguous ids, spread over three days. */
const BULK_ROWS = `
  insert into ticks (exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source)
  select s.e, s.s, 1000 + g, (42000 + g * 0.01)::numeric(12, 2), ('0.' || lpad((g * 7919 % 100000000)::text, 8, '0'))::numeric,
         case when g % 2 = 0 then 'buy' else 'sell' end,
         timestamptz '2026-11-20' + g * interval '86 seconds', timestamptz '2026-11-20' + g * interval '86 seconds' + interval '3 ms', 'live'
  from generate_series(1, 3000) g,
       (values ('binance', 'ETHUSDT'), ('binance', 'SOLUSDT'), ('okx', 'SOL-USDT'), ('okx', 'BTC-USDT')) as s(e, s)`;

/** Every row of the view, in text with microseconds: what a user reads (compared as sorted sets: see rowsOf). */
const SNAPSHOT = `
  select exchange, symbol, trade_id::text, price::text, qty::text, side, source,
         to_char(trade_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as trade_time,
         to_char(received_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as received_at
  from ticks`;

async function rowsOf(url: string): Promise<string[]> {
  return (await sqlRows<Record<string, string>>(url, SNAPSHOT)).map((r) => JSON.stringify(r)).sort();
}

async function oldShapeDatabase(prefix: string): Promise<{ tdb: TestDatabase; db: Kysely<Database>; migrator: Migrator }> {
  const tdb = await createTestDatabase(prefix);
  dbs.push(tdb);
  const pool = new pg.Pool({ connectionString: tdb.url, max: 2 });
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const migrator = new Migrator({ db, provider: { getMigrations: async () => ({ ...migrations }) } });
  const r = await migrator.migrateTo('20261121T0002_create_gaps');
  assert.equal(r.error, undefined);
  await sqlRows(tdb.url, EDGE_ROWS);
  await sqlRows(tdb.url, BULK_ROWS);
  return { tdb, db, migrator };
}

describe('migrating an existing ticks table', () => {
  test('rows move into tick_rows in the background: every row once and exact, before, during and after, with new ticks arriving', async () => {
    const { tdb, db, migrator } = await oldShapeDatabase('legacy');
    try {
      const before = await rowsOf(tdb.url);
      assert.equal(before.length, 4 + 12_000);
      assert.equal((await migrator.migrateToLatest()).error, undefined);
      assert.equal(await legacyPresent(db), true);
      assert.deepEqual(await rowsOf(tdb.url), before, 'right after the migration the view shows the old rows as they were');

      // One chunk moves, then the move is interrupted: half moved, the view still shows every row once.
      const stop = new AbortController();
      await moveLegacyRows(db, { logger: captureLogs().logger, blocksPerChunk: 16, signal: stop.signal, onProgress: () => stop.abort() });
      const [split] = await sqlRows<{ moved: string; left: string }>(tdb.url, 'select (select count(*) from tick_rows) as moved, (select count(*) from ticks_legacy) as left');
      assert.ok(Number(split!.moved) > 0 && Number(split!.left) > 0, `part moved (${split!.moved} moved, ${split!.left} left)`);
      assert.deepEqual(await rowsOf(tdb.url), before, 'mid-move: every row once');

      // Meanwhile a trade already in the old table arrives again (a replayed journal), and a new one: through
      // `insert into ticks`, the compatibility trigger an old script would use.
      const [last] = await sqlRows<Record<string, string>>(tdb.url, `${SNAPSHOT.replace('from ticks', 'from ticks_legacy')} order by ctid desc limit 1`);
      const [notYetMoved] = await sqlRows<{ n: string }>(tdb.url, 'select count(*) as n from tick_rows where trade_id = $1', [last!.trade_id]);
      assert.equal(notYetMoved!.n, '0', 'the replayed trade is still only in the old table');
      await sqlRows(tdb.url, `insert into ticks (exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source)
        values ($1, $2, $3::bigint, $4::numeric, $5::numeric, $6, ($7 || '+00')::timestamptz, ($8 || '+00')::timestamptz, $9), ('okx', 'BTC-USDT', 20000, '42000.1', '0.5', 'buy', '2026-11-23 01:00:00+00', '2026-11-23 01:00:00.002+00', 'live')`,
      [last!.exchange, last!.symbol, last!.trade_id, last!.price, last!.qty, last!.side, last!.trade_time, last!.received_at, last!.source]);
      const added = { exchange: 'okx', symbol: 'BTC-USDT', trade_id: '20000', price: '42000.1', qty: '0.5', side: 'buy', source: 'live', trade_time: '2026-11-23 01:00:00.000000', received_at: '2026-11-23 01:00:00.002000' };
      const expected = [...before, JSON.stringify(added)].sort();
      assert.deepEqual(await rowsOf(tdb.url), expected, 'the trade stored in both tables is shown once');

      // The collector opens the database: its background mover finishes, the old table goes.
      const storage = await openStorage({ config: testStorageConfig(join(spillRoot, 'legacy')), url: tdb.url, logger: captureLogs().logger });
      try {
        await waitFor(() => legacyPresent(db).then((p) => !p), 20_000, 'the old table moved and dropped');
      } finally {
        await storage.close();
      }
      assert.deepEqual(await rowsOf(tdb.url), expected, 'after the move: every row once, exact');
      const [counts] = await sqlRows<{ n: string; d: string }>(tdb.url, 'select count(*) as n, count(distinct (instrument_id, trade_id)) as d from tick_rows');
      assert.equal(counts!.n, counts!.d, 'no trade stored twice');
      const [view] = await sqlRows<{ def: string }>(tdb.url, "select pg_get_viewdef('ticks') as def");
      assert.doesNotMatch(view!.def, /ticks_legacy/, 'the view is in its final form');
      const late = await sqlRows<{ delay: string | null; full: boolean }>(tdb.url,
        "select received_delay_ms::text as delay, received_at is not null as full from tick_rows where trade_id in (9007199254740990, 9007199254740000, 1) order by trade_id");
      assert.deepEqual(late, [{ delay: '-2', full: false }, { delay: null, full: true }, { delay: null, full: true }],
        'a negative delay fits the small column; 40 days, or a delay that is not whole milliseconds, keep the exact time');
    } finally {
      await db.destroy();
    }
  });

  test('`npm run migrate` moves an old table to the end and creates the partitions ahead', async () => {
    const { tdb, db } = await oldShapeDatabase('legacycli');
    await db.destroy();
    const before = await rowsOf(tdb.url);
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts'], { env: { ...process.env, DATABASE_URL: tdb.url }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /applied: 20261122T0001_partitioned_ticks/);
    assert.match(run.stdout, /partitions created: /);
    assert.match(run.stdout, /moved 12004 rows \(0 were already in tick_rows\); old table dropped/);
    assert.deepEqual(await rowsOf(tdb.url), before);
    const [gone] = await sqlRows<{ r: string | null }>(tdb.url, "select to_regclass('ticks_legacy')::text as r");
    assert.equal(gone!.r, null);
  });
});
