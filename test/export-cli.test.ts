/** `npm run export` as a real child process against a test database. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listArchived } from '../src/archive/archive-index.ts';
import { silentLogger } from '../src/logger.ts';
import { openStorage } from '../src/storage/storage.ts';
import { UsageError } from '../src/storage/cli-support.ts';
import { parseExportArgs } from '../src/cli/export-args.ts';
import { DAY_A, DAY_B, fixtureTicks, seed } from './helpers/archive-fixture.ts';
import { createTestDatabase, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { runCli } from './helpers/run-cli.ts';

let tdb: TestDatabase;
let work: string;
const exportCli = (args: string[]) => runCli('export', args, { DATABASE_URL: tdb.url });

before(async () => {
  tdb = await createTestDatabase('exportcli');
  work = await mkdtemp(join(tmpdir(), 'mc-export-cli-'));
  const storage = await openStorage({ config: testStorageConfig(join(work, 'spill')), url: tdb.url, logger: silentLogger });
  await seed(storage, fixtureTicks());
  await storage.close();
});
after(async () => {
  await tdb?.drop();
  await rm(work, { recursive: true, force: true });
});

describe('export CLI', () => {
  test('writes one verified file per exchange, symbol and day, with manifests', async () => {
    const out = join(work, 'all');
    const r = await exportCli(['--from', DAY_A, '--to', DAY_B, '--format', 'parquet', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /exported 3 files, 100 rows/);
    assert.deepEqual((await listArchived(out)).map((f) => f.path.slice(out.length + 1)), [
      `binance/BTCUSDT/${DAY_A}.parquet`, `binance/BTCUSDT/${DAY_B}.parquet`, `okx/BTC-USDT/${DAY_A}.parquet`,
    ]);
  });

  test('--exchange and --symbol narrow it; csv writes .csv.zst', async () => {
    const out = join(work, 'okx');
    const r = await exportCli(['--from=' + DAY_A, '--to=' + DAY_A, '--format=csv', '--out=' + out, '--exchange=okx', '--symbol=BTC-USDT']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(join(out, 'okx', 'BTC-USDT')), [`${DAY_A}.csv.zst`, `${DAY_A}.csv.zst.manifest.json`]);
    assert.deepEqual(await readdir(out).then((d) => d.filter((n) => !n.startsWith('.'))), ['okx']);
  });

  test('an --out that is a file fails with exit 1 naming it', async () => {
    const file = join(work, 'plain-file');
    await writeFile(file, 'x');
    const r = await exportCli(['--from', DAY_A, '--to', DAY_A, '--format', 'parquet', '--out', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot create --out .*plain-file/);
  });

  test('bad arguments are refused naming the problem', () => {
    const ok = ['--format', 'parquet', '--out', join(work, 'x')];
    const cases: Array<[string[], RegExp]> = [
      [['--from', '2026-02-30', '--to', DAY_A, ...ok], /--from: expected a UTC date YYYY-MM-DD, got "2026-02-30"/],
      [['--from', DAY_A, '--to', '21/11/2026', ...ok], /--to: expected a UTC date/],
      [['--from', DAY_B, '--to', DAY_A, ...ok], /--from \(2026-11-21\) is after --to \(2026-11-20\)/],
      [['--from', DAY_A, '--to', DAY_A, '--format', 'xml', '--out', 'x'], /--format: expected parquet or csv, got "xml"/],
      [['--from', DAY_A, '--to', DAY_A, '--format', 'csv'], /--out is required/],
      [['--to', DAY_A, ...ok], /--from is required/],
      [['--from', '1990-01-01', '--to', DAY_A, ...ok], /spans more than 3660 days/],
      [['--from', DAY_A, '--to', DAY_A, ...ok, '--exchange', 'kraken'], /--exchange: expected binance or okx/],
      [['--from', DAY_A, '--to', DAY_A, ...ok, '--from', DAY_A], /--from given twice/],
      [['--from', DAY_A, '--to', DAY_A, ...ok, '--verbose'], /unknown argument "--verbose"/],
    ];
    for (const [args, re] of cases) assert.throws(() => parseExportArgs(args), (err: unknown) => err instanceof UsageError && re.test(err.message), args.join(' '));
    assert.deepEqual(parseExportArgs(['--from', DAY_A, '--to', DAY_B, '--format', 'csv', '--out', 'rel/dir', '--symbol', 'BTCUSDT']), {
      from: DAY_A, to: DAY_B, format: 'csv', out: join(process.cwd(), 'rel/dir'), exchange: undefined, symbol: 'BTCUSDT',
    });
  });

  test('the command exits 2 with the usage on a bad argument, printing nothing on stdout', async () => {
    const r = await exportCli(['--from', DAY_B, '--to', DAY_A, '--format', 'parquet', '--out', join(work, 'x')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /export: --from \(2026-11-21\) is after --to[^\n]*\nusage: npm run export -- --from YYYY-MM-DD --to YYYY-MM-DD --format parquet\|csv --out DIR/);
    assert.equal(r.stdout, '');
  });
});
