/** `npm run query` as a real child process against a test database. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { silentLogger } from '../src/logger.ts';
import { openStorage } from '../src/storage/storage.ts';
import { createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';

let tdb: TestDatabase;
let spillDir: string;

function runQuery(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/query.ts', ...args], {
      env: { ...process.env, DATABASE_URL: tdb.url, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
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
