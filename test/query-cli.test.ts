/** `npm run query` as a real child process against a test database. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { silentLogger } from '../src/logger.ts';
import { openStorage } from '../src/storage/storage.ts';
import { countTicks, createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { runCli } from './helpers/run-cli.ts';
import type { CliResult } from './helpers/run-cli.ts';
import { exportDay } from '../src/archive/exporter.ts';
import { deleteTicks, sqlExec } from './helpers/archive-fixture.ts';

let tdb: TestDatabase;
let spillDir: string;

function runQuery(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli('query', args, { DATABASE_URL: tdb.url, ARCHIVE_DIR: '', ...env });
}

before(async () => {
  tdb = await createTestDatabase('querycli');
  spillDir = await mkdtemp(join(tmpdir(), 'mc-spill-q-'));
  const storage = await openStorage({ config: testStorageConfig(spillDir), url: tdb.url, logger: silentLogger });
  const base = Date.parse('2026-11-21T10:00:00Z');
  for (let i = 1; i <= 10; i++) storage.sink.write(makeTick(i, { tradeTime: base + i * 60_000, receivedAt: base + i * 60_000 + 5, price: '97000.5' }));
  for (let i = 1; i <= 4; i++) storage.sink.write(makeTick(i, { exchange: 'okx', symbol: 'BTC-USDT', tradeTime: base + i * 1000, receivedAt: base + i * 1000 }));
  await storage.flush();
  await storage.close();
  const c = new pg.Client({ connectionString: tdb.url });
  await c.connect();
  await c.query("insert into gaps (exchange, symbol, from_id, to_id, status) values ('binance','BTCUSDT',100,120,'open'), ('okx','BTC-USDT',5,6,'filled')");
  await c.end();
});
after(async () => {
  await tdb?.drop();
  await rm(spillDir, { recursive: true, force: true });
});

describe('query CLI', () => {
  test('--latest prints a table', async () => {
    const r = await runQuery(['--latest', '3']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^exchange\s+symbol\s+trade_id\s+price/);
    assert.equal(lines.at(-1), '(3 rows)');
    assert.match(r.stdout, /97000\.5/);
  });

  test('a time range of one symbol as csv', async () => {
    const r = await runQuery(['--exchange', 'binance', '--symbol', 'BTCUSDT', '--from', '2026-11-21T10:02:00Z', '--to', '2026-11-21T10:05:00Z', '--format', 'csv']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'exchange,symbol,trade_id,price,qty,side,trade_time,received_at,source');
    assert.deepEqual(lines.slice(1).map((l) => l.split(',')[2]), ['2', '3', '4', '5']);
    assert.match(lines[1]!, /2026-11-21T10:02:00\.000Z/);
  });

  test('--counts as json', async () => {
    const r = await runQuery(['--counts', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<Record<string, string>>;
    assert.deepEqual(rows.map((x) => [x.exchange, x.symbol, x.ticks]), [['binance', 'BTCUSDT', '10'], ['okx', 'BTC-USDT', '4']]);
    assert.equal(rows[0]!.first_trade_time, '2026-11-21T10:01:00.000Z');
    assert.equal(rows[0]!.last_trade_time, '2026-11-21T10:10:00.000Z');
  });

  test('--gaps lists open and filled gaps', async () => {
    const r = await runQuery(['--gaps', '--format=json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<Record<string, string>>;
    assert.deepEqual(rows.map((x) => x.status).sort(), ['filled', 'open']);
  });

  test('bad input exits 2 naming the problem', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus'], /unknown argument "--bogus"/],
      [['--exchange', 'binance', '--symbol', 'BTCUSDT', '--from', 'yesterday'], /--from: expected an ISO date/],
      [['--exchange', 'binance', '--symbol', 'BTCUSDT', '--from', '2026-11-21T11:00:00Z', '--to', '2026-11-21T10:00:00Z'], /--from .* is after --to/],
      [['--latest', 'ten'], /--latest: expected an integer/],
      [['--counts', '--format', 'xml'], /--format: expected table, csv or json/],
      [['--counts', '--gaps'], /choose one of/],
    ];
    for (const [args, re] of cases) {
      const r = await runQuery(args);
      assert.equal(r.code, 2, `${args.join(' ')} -> ${r.code} ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, '');
    }
  });
});

describe('query CLI over the archive (ARCHIVE_DIR)', () => {
  const eth = ['--exchange', 'binance', '--symbol', 'ETHUSDT', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T23:59:59Z'];
  const views: Array<[string, string[]]> = [
    ['range table', eth],
    ['range csv', [...eth, '--format', 'csv']],
    ['range json', [...eth, '--format', 'json']],
    ['counts', ['--counts', '--format', 'json']],
    ['gaps', ['--gaps', '--format', 'csv']],
  ];
  let archiveDir: string;
  const all = (env: NodeJS.ProcessEnv = {}) => Promise.all(views.map(([, args]) => runQuery(args, env)));

  test('a day read from the archive prints exactly what the table printed; a range spanning both is one answer', async () => {
    archiveDir = join(spillDir, 'archive');
    const storage = await openStorage({ config: testStorageConfig(join(spillDir, 'a')), url: tdb.url, logger: silentLogger });
    try {
      const d20 = Date.parse('2026-11-20T20:00:00Z');
      const d21 = Date.parse('2026-11-21T01:00:00Z');
      const prices = ['3000.10000000', '0.00219650', '3001.00000000', '2999.99000000', '3000.00000000'];
      for (let i = 1; i <= 10; i++) {
        const t = i <= 5 ? d20 + i * 1_000 : d21 + i * 1_000;
        storage.sink.write(makeTick(i, { symbol: 'ETHUSDT', tradeTime: t, receivedAt: t + 9, price: prices[(i - 1) % 5], qty: '1.25000000' }));
      }
      await storage.flush();
      await sqlExec(tdb.url, `insert into gaps (exchange, symbol, from_id, to_id, status, attempts, reason) values ('binance', 'ETHUSDT', 3, 3, 'unfillable', 2, 'history, too old')`);
      const fromTable = await all();
      for (const [i, r] of fromTable.entries()) assert.equal(r.code, 0, `${views[i]![0]}: ${r.stderr}`);
      assert.match(fromTable[0]!.stdout, /\(10 rows\)/);

      const r = await exportDay({ source: storage, root: archiveDir, inst: { exchange: 'binance', symbol: 'ETHUSDT' }, day: '2026-11-20', format: 'parquet', logger: silentLogger });
      assert.equal(r.kind, 'archived');
      // archived and still in the table: each trade once
      const both = await runQuery(views[2]![1], { ARCHIVE_DIR: archiveDir });
      assert.equal(both.stdout, fromTable[2]!.stdout, 'range with the day in table and archive: each trade once');

      // retention dropped the day (and the gap rows went with it): the archive answers for it
      await deleteTicks(tdb.url, `symbol = 'ETHUSDT' and trade_time < '2026-11-21T00:00:00Z'`);
      await sqlExec(tdb.url, `delete from gaps where symbol = 'ETHUSDT'`);
      const fromArchive = await all({ ARCHIVE_DIR: archiveDir });
      for (const [i, x] of fromArchive.entries()) {
        assert.equal(x.code, 0, x.stderr);
        assert.equal(x.stdout, fromTable[i]!.stdout, `${views[i]![0]} with the day only in the archive`);
      }
      assert.match(fromArchive[4]!.stdout, /binance,ETHUSDT,3,3,unfillable,2,"history, too old"/);
      assert.equal(await countTicks(tdb.url, "symbol = 'ETHUSDT'"), 5, 'the table alone holds only day 21 now');
    } finally {
      await storage.close();
    }
  });
});
