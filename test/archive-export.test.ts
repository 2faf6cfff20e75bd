/** Export of symbol-days to Parquet/CSV with manifests, read back with DuckDB, against a real PostgreSQL. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { readTicks } from '../src/archive/archive-reader.ts';
import { ArchiveError } from '../src/archive/archive-error.ts';
import { listArchived } from '../src/archive/archive-index.ts';
import { openDuck } from '../src/archive/duck.ts';
import { exportDay } from '../src/archive/exporter.ts';
import { sha256File } from '../src/archive/files.ts';
import { archiveFile, manifestFile } from '../src/archive/layout.ts';
import { readManifest } from '../src/archive/manifest.ts';
import type { TickSource } from '../src/archive/tick-source.ts';
import { readContents, readFileSql } from '../src/archive/verify.ts';
import { silentLogger } from '../src/logger.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { Storage } from '../src/storage/storage.ts';
import { BINANCE_FIRST_ID, DAY_A, DAY_B, fixtureTicks, seed, deleteTicks, sqlExec, tableRows } from './helpers/archive-fixture.ts';
import { createTestDatabase, makeTick, sampleConnections, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';

let tdb: TestDatabase;
let storage: Storage;
let work: string;
const binance = { exchange: 'binance', symbol: 'BTCUSDT' };
const okx = { exchange: 'okx', symbol: 'BTC-USDT' };

before(async () => {
  tdb = await createTestDatabase('archexp');
  work = await mkdtemp(join(tmpdir(), 'mc-archive-'));
  storage = await openStorage({ config: testStorageConfig(join(work, 'spill'), { poolMax: 2 }), url: tdb.url, logger: silentLogger });
  await seed(storage, fixtureTicks());
  // Values the writer cannot produce but the table can hold: an id past 2^53, decimals past DECIMAL(38,18).
  await sqlExec(tdb.url, `insert into ticks (exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source) values
    ('binance', 'PEPEUSDT', 9007199254740993, 0.000000000000000000001, 123456789012345678901.5, 'buy', '${DAY_A}T12:00:00.123456Z', '${DAY_A}T12:00:00.2Z', 'live'),
    ('binance', 'PEPEUSDT', 9007199254740994, 0.00001234, 1, 'sell', '${DAY_A}T12:00:01Z', '${DAY_A}T12:00:01Z', 'live')`);
  const lastA = BINANCE_FIRST_ID + 49;
  await sqlExec(tdb.url, `insert into gaps (exchange, symbol, from_id, to_id, status, reason) values
    ('binance', 'BTCUSDT', ${BINANCE_FIRST_ID + 10}, ${BINANCE_FIRST_ID + 10}, 'filled', null),
    ('binance', 'BTCUSDT', ${lastA + 1}, ${lastA + 1}, 'open', 'edge of the day'),
    ('binance', 'BTCUSDT', 1, 5, 'unfillable', 'far away'),
    ('okx', 'BTC-USDT', 5005, 5006, 'open', null)`);
});
after(async () => {
  await storage?.close();
  await tdb?.drop();
  await rm(work, { recursive: true, force: true });
});

function root(name: string): string {
  return join(work, name);
}

describe('archive export', () => {
  test('a Parquet day reads back equal to the table, with a manifest that matches the file', async () => {
    const out = root('p1');
    const r = await exportDay({ source: storage, root: out, inst: binance, day: DAY_A, format: 'parquet', logger: silentLogger, chunkRows: 7 });
    assert.equal(r.kind, 'archived');
    const path = archiveFile(out, 'binance', 'BTCUSDT', DAY_A, 'parquet');
    assert.equal(path, join(out, 'binance', 'BTCUSDT', `${DAY_A}.parquet`));
    const m = (await readManifest(manifestFile(path)))!;
    assert.equal(m.rows, 50);
    assert.equal(m.firstTradeId, String(BINANCE_FIRST_ID));
    assert.equal(m.lastTradeId, String(BINANCE_FIRST_ID + 49));
    assert.equal(m.lastTradeTime, `${DAY_A}T23:59:59.999000Z`);
    assert.equal(m.sha256, await sha256File(path));
    assert.deepEqual(m.columns, { price: 'DECIMAL(38,18)', qty: 'DECIMAL(38,18)' });
    // the gap inside the day and the one touching its last id; not the far one
    assert.deepEqual(m.gaps.map((g) => [g.from_id, g.status]), [[String(BINANCE_FIRST_ID + 10), 'filled'], [String(BINANCE_FIRST_ID + 50), 'open']]);

    const duck = await openDuck();
    try {
      assert.deepEqual(await readTicks(duck, [path], { limit: 1000 }), await tableRows(tdb.url, 'binance', 'BTCUSDT', DAY_A));
      const types = await duck.rows(`select column_name, column_type from (describe select * from ${readFileSql(path, 'parquet')})`);
      assert.deepEqual(Object.fromEntries(types), {
        exchange: 'VARCHAR', symbol: 'VARCHAR', trade_id: 'BIGINT', price: 'DECIMAL(38,18)', qty: 'DECIMAL(38,18)', side: 'VARCHAR',
        trade_time: 'TIMESTAMP WITH TIME ZONE', received_at: 'TIMESTAMP WITH TIME ZONE', source: 'VARCHAR', price_decimals: 'UTINYINT', qty_decimals: 'UTINYINT',
      });
      const zstd = (await duck.rows(`select distinct compression from parquet_metadata('${path}')`)).map((x) => x[0]);
      assert.deepEqual(zstd, ['ZSTD']);
      // exact decimal values, not just text: 0.00219650 is that number in the file
      const n = (await duck.rows(`select count(*)::INT from read_parquet('${path}') where price = 0.00219650`))[0]![0];
      assert.equal(n, 13);
    } finally {
      await duck.close();
    }
  });

  test('mixed decimal scales (OKX) and values past DECIMAL(38,18) keep their exact text', async () => {
    const out = root('p2');
    await exportDay({ source: storage, root: out, inst: okx, day: DAY_A, format: 'parquet', logger: silentLogger });
    await exportDay({ source: storage, root: out, inst: { exchange: 'binance', symbol: 'PEPEUSDT' }, day: DAY_A, format: 'parquet', logger: silentLogger });
    const files = await listArchived(out);
    assert.deepEqual(files.map((f) => [f.manifest.symbol, f.manifest.columns.price, f.manifest.columns.qty]), [
      ['PEPEUSDT', 'VARCHAR', 'VARCHAR'],
      ['BTC-USDT', 'DECIMAL(38,18)', 'DECIMAL(38,18)'],
    ]);
    const duck = await openDuck();
    try {
      const okxRows = await readTicks(duck, [files.find((f) => f.manifest.symbol === 'BTC-USDT')!.path], { limit: 100 });
      assert.deepEqual(okxRows, await tableRows(tdb.url, 'okx', 'BTC-USDT', DAY_A));
      assert.deepEqual(okxRows.slice(0, 4).map((r) => [r.price, r.qty]), [['97000.5', '0.0013'], ['97001', '12.5'], ['96999.25', '3'], ['0.000123', '0.00000001']]);
      // one read over files of different column types (union by name), as the query command does
      const all = await readTicks(duck, files.map((f) => f.path), { limit: 100 });
      const pepe = all.filter((r) => r.symbol === 'PEPEUSDT');
      assert.deepEqual(pepe, await tableRows(tdb.url, 'binance', 'PEPEUSDT', DAY_A));
      assert.equal(pepe[0]!.trade_id, '9007199254740993');
      assert.equal(pepe[0]!.price, '0.000000000000000000001');
      assert.equal(pepe[0]!.qty, '123456789012345678901.5');
    } finally {
      await duck.close();
    }
  });

  // pyarrow is not an npm or Debian package here: the test runs where `python3` (or PYARROW_PYTHON) can import it.
  const python = process.env.PYARROW_PYTHON ?? 'python3';
  const pyarrow = spawnSync(python, ['-c', 'import pyarrow; print(pyarrow.__version__)'], { encoding: 'utf8' });
  const pyarrowSkip = pyarrow.status === 0 ? false : `pyarrow is not importable by ${python} (set PYARROW_PYTHON to a python that has it)`;
  test(`pyarrow${pyarrow.status === 0 ? ` ${pyarrow.stdout.trim()}` : ''} reads the Parquet files: same rows, exact decimals, ids past 2^53`, { skip: pyarrowSkip }, async () => {
    const out = root('pa');
    for (const inst of [binance, okx, { exchange: 'binance', symbol: 'PEPEUSDT' }]) {
      assert.equal((await exportDay({ source: storage, root: out, inst, day: DAY_A, format: 'parquet', logger: silentLogger })).kind, 'archived');
    }
    const files = (await listArchived(out)).map((f) => f.path);
    assert.equal(files.length, 3);
    const script = fileURLToPath(new URL('./fixtures/read-parquet-pyarrow.py', import.meta.url));
    const run = spawnSync(python, [script, ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(run.status, 0, run.stderr);
    const read = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; schema: Record<string, string>; rows: Array<Record<string, unknown>> });
    for (const f of read) {
      const [exchange, symbol] = f.path.split('/').slice(-3, -1) as [string, string];
      const table = (await sqlExec(tdb.url,
        `select exchange, symbol, trade_id::text, price::text, qty::text, side, (extract(epoch from trade_time) * 1000000)::int8::text as us, source
         from ticks where exchange = $1 and symbol = $2 and trade_time >= ($3 || 'T00:00:00Z')::timestamptz and trade_time < ($3 || 'T00:00:00Z')::timestamptz + interval '1 day'
         order by trade_time, trade_id`,
        [exchange, symbol, DAY_A])).rows.map((t) => Object.values(t));
      assert.ok(table.length > 0);
      assert.deepEqual(
        f.rows.map((r) => [r.exchange, r.symbol, r.trade_id, r.price, r.qty, r.side, r.trade_time_us, r.source])
          .sort((a, b) => cmpBig(a[6], b[6]) || cmpBig(a[2], b[2])),
        table,
        `${f.path} read by pyarrow equals the table`,
      );
      assert.equal(f.schema.trade_id, 'int64');
    }
    const pepe = read.find((f) => f.path.includes('PEPEUSDT'))!;
    assert.equal(pepe.rows[0]!.trade_id, '9007199254740993');
    assert.equal(pepe.schema.price, 'string', 'values past DECIMAL(38,18) are strings');
    assert.match(read.find((f) => f.path.includes('BTCUSDT'))!.schema.price!, /^decimal128\(38, 18\)$/);
  });

  test('CSV export: zstd CSV with exact text and microsecond UTC times, verified by DuckDB', async () => {
    const out = root('c1');
    const r = await exportDay({ source: storage, root: out, inst: { exchange: 'binance', symbol: 'PEPEUSDT' }, day: DAY_A, format: 'csv', logger: silentLogger });
    assert.equal(r.kind, 'archived');
    const path = join(out, 'binance', 'PEPEUSDT', `${DAY_A}.csv.zst`);
    const m = (await readManifest(manifestFile(path)))!;
    assert.equal(m.format, 'csv');
    assert.equal(m.firstTradeTime, `${DAY_A}T12:00:00.123456Z`);
    const duck = await openDuck();
    try {
      const rows = await duck.rows(`select * from read_csv('${path}', header = true, all_varchar = true)`);
      assert.deepEqual(rows[0], [
        'binance', 'PEPEUSDT', '9007199254740993', '0.000000000000000000001', '123456789012345678901.5', 'buy', `${DAY_A}T12:00:00.123456Z`, `${DAY_A}T12:00:00.200000Z`, 'live',
      ]);
      assert.deepEqual(await readContents(duck, path, 'csv'), {
        rows: 2, firstTradeId: '9007199254740993', lastTradeId: '9007199254740994',
        minTradeTimeUs: BigInt(Date.parse(`${DAY_A}T12:00:00.123Z`)) * 1000n + 456n, maxTradeTimeUs: BigInt(Date.parse(`${DAY_A}T12:00:01Z`)) * 1000n,
      });
    } finally {
      await duck.close();
    }
  });

  test('a malformed manifest is refused by name, not read as another day', async () => {
    const out = root('m1');
    await exportDay({ source: storage, root: out, inst: okx, day: DAY_A, format: 'parquet', logger: silentLogger });
    const mPath = manifestFile(archiveFile(out, 'okx', 'BTC-USDT', DAY_A, 'parquet'));
    const m = JSON.parse(await readFile(mPath, 'utf8')) as Record<string, unknown>;
    await writeFile(mPath, JSON.stringify({ ...m, lastTradeId: 12.5 }));
    await assert.rejects(listArchived(out), (err: unknown) => err instanceof ArchiveError && err.message.includes(mPath) && /lastTradeId/.test(err.message));
    await writeFile(mPath, JSON.stringify({ ...m, symbol: 'ETH-USDT' }));
    await assert.rejects(listArchived(out), /describes okx\/ETH-USDT\/.*it is not in its place/);
  });

  test('a day without ticks writes nothing', async () => {
    const out = root('e1');
    assert.deepEqual(await exportDay({ source: storage, root: out, inst: okx, day: DAY_B, format: 'parquet', logger: silentLogger }), { kind: 'empty' });
    assert.deepEqual(await listArchived(out), []);
  });

  test('a tick arriving during the export fails it and leaves the previous archive intact, with no temp files', async () => {
    const out = root('r1');
    await exportDay({ source: storage, root: out, inst: binance, day: DAY_B, format: 'parquet', logger: silentLogger });
    const path = archiveFile(out, 'binance', 'BTCUSDT', DAY_B, 'parquet');
    const before = await readFile(manifestFile(path), 'utf8');
    let calls = 0;
    const lateTick: TickSource = {
      db: storage.db,
      connect: async () => {
        if (++calls === 2) await seed(storage, [makeTick(BINANCE_FIRST_ID + 60, { tradeTime: Date.parse(`${DAY_B}T00:00:30Z`), price: '1.5', source: 'backfill' })]);
        return storage.connect();
      },
    };
    await deleteTicks(tdb.url, `exchange = 'binance' and symbol = 'BTCUSDT' and trade_id = $1`, [BINANCE_FIRST_ID + 60]);
    await assert.rejects(
      exportDay({ source: lateTick, root: out, inst: binance, day: DAY_B, format: 'parquet', logger: silentLogger, chunkRows: 10 }),
      (err: unknown) => err instanceof ArchiveError && /changed while it was exported|does not read back|staged \d+ rows, the table holds/.test(err.message),
    );
    assert.equal(await readFile(manifestFile(path), 'utf8'), before, 'the old manifest still describes the old file');
    assert.equal(JSON.parse(before).sha256, await sha256File(path));
    assert.deepEqual((await readdir(join(out, 'binance', 'BTCUSDT'))).sort(), [`${DAY_B}.parquet`, `${DAY_B}.parquet.manifest.json`]);
    assert.deepEqual(await readdir(join(out, '.staging')), []);
    // the next export picks the late tick up
    await exportDay({ source: storage, root: out, inst: binance, day: DAY_B, format: 'parquet', logger: silentLogger });
    assert.equal((await readManifest(manifestFile(path)))!.rows, 30);
  });

  test('re-exporting a dropped day that got a late tick keeps the archived rows (union, never less)', async () => {
    const out = root('u1');
    const inst = { exchange: 'binance', symbol: 'PEPEUSDT' };
    await exportDay({ source: storage, root: out, inst, day: DAY_A, format: 'parquet', logger: silentLogger });
    const archived = await tableRows(tdb.url, 'binance', 'PEPEUSDT', DAY_A);
    // retention dropped the day; then a backfill brought one trade of it back
    await deleteTicks(tdb.url, `symbol = 'PEPEUSDT'`);
    await sqlExec(tdb.url, `insert into ticks (exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source)
      values ('binance', 'PEPEUSDT', 9007199254740992, 0.00001230, 7, 'buy', '${DAY_A}T12:00:00.5Z', now(), 'backfill')`);
    const late = await tableRows(tdb.url, 'binance', 'PEPEUSDT', DAY_A);
    const r = await exportDay({ source: storage, root: out, inst, day: DAY_A, format: 'parquet', logger: silentLogger });
    assert.ok(r.kind === 'archived');
    assert.deepEqual([r.manifest.rows, r.manifest.firstTradeId, r.manifest.lastTradeId], [3, '9007199254740992', '9007199254740994']);
    assert.deepEqual(r.manifest.table, { rows: 1, firstTradeId: '9007199254740992', lastTradeId: '9007199254740992' });
    const duck = await openDuck();
    try {
      const expected = [archived[0]!, late[0]!, archived[1]!];
      assert.deepEqual(await readTicks(duck, [r.path], { limit: 10 }), expected);
    } finally {
      await duck.close();
    }
    // put the fixture back for the other tests
    await deleteTicks(tdb.url, `symbol = 'PEPEUSDT' and trade_id = 9007199254740992`);
    for (const t of archived) {
      await sqlExec(tdb.url, `insert into ticks (exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source) values ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
        [t.exchange, t.symbol, t.trade_id, t.price, t.qty, t.side, t.trade_time, t.received_at, t.source]);
    }
  });

  test("a crashed writer's temp file never looks archived and is removed by the next export", async () => {
    const out = root('t1');
    const dir = join(out, 'binance', 'BTCUSDT');
    await exportDay({ source: storage, root: out, inst: binance, day: DAY_A, format: 'parquet', logger: silentLogger });
    // a dead pid (far above pid_max) wrote half a file and a manifest temp, then died
    await writeFile(join(dir, `.${DAY_B}.parquet.tmp-99999999-abcd1234`), 'PAR1 half a file');
    await writeFile(join(dir, `.${DAY_B}.parquet.manifest.json.tmp-99999999-abcd1234`), '{');
    assert.deepEqual((await listArchived(out)).map((f) => f.manifest.day), [DAY_A]);
    await exportDay({ source: storage, root: out, inst: binance, day: DAY_A, format: 'parquet', logger: silentLogger });
    assert.deepEqual((await readdir(dir)).sort(), [`${DAY_A}.parquet`, `${DAY_A}.parquet.manifest.json`]);
  });

  test('export streams through the storage pool: PG_POOL_MAX holds in pg_stat_activity while ticks are written', async () => {
    const base = Date.parse(`${DAY_B}T06:00:00Z`);
    const many = Array.from({ length: 20_000 }, (_, i) => makeTick(1_000_000 + i, { exchange: 'okx', symbol: 'ETH-USDT', tradeTime: base + i, price: '3000.1' }));
    await seed(storage, many);
    const sampler = sampleConnections(tdb.name, 5);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        storage.sink.write(makeTick(2_000_000 + i, { exchange: 'okx', symbol: 'SOL-USDT', tradeTime: Date.now() }));
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
      }
    })();
    try {
      const r = await exportDay({ source: storage, root: root('cap'), inst: { exchange: 'okx', symbol: 'ETH-USDT' }, day: DAY_B, format: 'parquet', logger: silentLogger, chunkRows: 1_000 });
      assert.equal(r.kind === 'archived' && r.manifest.rows, 20_000);
    } finally {
      writing = false;
      await writer;
      await storage.flush();
    }
    const max = await sampler.stop();
    assert.ok(sampler.samples() > 3, 'sampled during the export');
    assert.ok(max <= 2 && max >= 1, `collector connections seen: ${max} (PG_POOL_MAX=2)`);
  });

  test('an export asks before every chunk whether live writes are behind, and waits while they are', async () => {
    // 50 rows in chunks of 7 ids: 8 chunks. Behind for the first 3 checks: the first chunk waits 3 times.
    const answers: boolean[] = [];
    const liveBehind = (): boolean => {
      const behind = answers.length < 3;
      answers.push(behind);
      return behind;
    };
    const r = await exportDay({ source: storage, root: root('yield'), inst: binance, day: DAY_A, format: 'parquet', logger: silentLogger, chunkRows: 7, liveBehind });
    assert.equal(r.kind === 'archived' && r.manifest.rows, 50, 'the day is archived whole');
    assert.deepEqual(answers, [true, true, true, ...Array<boolean>(8).fill(false)], 'asked 3 times before the first chunk, once before each other');
  });

  test('an export waiting for live writes stops when it is cancelled', { timeout: 5_000 }, async () => {
    // Always behind: without the signal it would wait MAX_YIELD_MS (10 s) before each of its 8 chunks.
    const abort = new AbortController();
    let asked = 0;
    const liveBehind = (): boolean => {
      if (++asked === 2) abort.abort();
      return true;
    };
    await assert.rejects(
      exportDay({ source: storage, root: root('yield-cancel'), inst: binance, day: DAY_A, format: 'parquet', logger: silentLogger, chunkRows: 7, liveBehind, signal: abort.signal }),
      (err: unknown) => err instanceof ArchiveError && /cancelled/.test(err.message),
    );
    assert.deepEqual((await listArchived(root('yield-cancel'))).length, 0, 'nothing looks archived');
  });
});


function cmpBig(a: unknown, b: unknown): number {
  const x = BigInt(String(a));
  const y = BigInt(String(b));
  return x < y ? -1 : x > y ? 1 : 0;
}
