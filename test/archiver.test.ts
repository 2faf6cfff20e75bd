/** Automatic archiving (ARCHIVE_DIR) with an injected clock, and the retention guard canDrop, on a real PostgreSQL. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listArchived } from '../src/archive/archive-index.ts';
import { Archiver } from '../src/archive/archiver.ts';
import { dayEnd } from '../src/archive/day.ts';
import { openDuck } from '../src/archive/duck.ts';
import { sha256File } from '../src/archive/files.ts';
import { archiveFile, manifestFile } from '../src/archive/layout.ts';
import { readManifest } from '../src/archive/manifest.ts';
import { DEFAULTS, loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { silentLogger } from '../src/logger.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { Storage } from '../src/storage/storage.ts';
import { BINANCE_FIRST_ID, DAY_A, DAY_B, fixtureTicks, seed, deleteTicks, sqlExec } from './helpers/archive-fixture.ts';
import { createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { waitFor } from './helpers/wait-for.ts';

const MIN = 60_000;
let tdb: TestDatabase;
let storage: Storage;
let work: string;
let now = 0;
const clock = { now: () => now };
const config = (dir: string) => ({ dir, settleMs: DEFAULTS.ARCHIVE_SETTLE_MS, graceMs: DEFAULTS.ARCHIVE_GRACE_MS, checkIntervalMs: 50 });
const days = async (dir: string) => (await listArchived(dir)).map((f) => `${f.manifest.exchange}/${f.manifest.symbol}/${f.manifest.day}`);

before(async () => {
  tdb = await createTestDatabase('archiver');
  work = await mkdtemp(join(tmpdir(), 'mc-archiver-'));
  storage = await openStorage({ config: testStorageConfig(join(work, 'spill')), url: tdb.url, logger: silentLogger });
  await seed(storage, fixtureTicks());
  // an open gap right after day A's last Binance id: day A is not closed while it is open
  await sqlExec(tdb.url, `insert into gaps (exchange, symbol, from_id, to_id, status) values ('binance', 'BTCUSDT', ${BINANCE_FIRST_ID + 50}, ${BINANCE_FIRST_ID + 50}, 'open')`);
});
after(async () => {
  await storage?.close();
  await tdb?.drop();
  await rm(work, { recursive: true, force: true });
});

describe('automatic archiver', () => {
  const dir = () => join(work, 'archive');
  let archiver: Archiver;

  test('a day is archived once it has ended (plus the settle time) and no unfilled gap touches it', async () => {
    archiver = new Archiver({ source: storage, config: config(dir()), clock, logger: silentLogger, chunkRows: 16, duck: openDuck });
    now = dayEnd(DAY_A) + 5 * MIN; // ended, not settled
    assert.equal(await archiver.runOnce(), 0);
    now = dayEnd(DAY_A) + 11 * MIN;
    assert.equal(await archiver.runOnce(), 1);
    assert.deepEqual(await days(dir()), [`okx/BTC-USDT/${DAY_A}`], 'binance day A waits for its open gap');
    assert.equal(await archiver.runOnce(), 0, 'one export per pass, nothing else is closed');
    await sqlExec(tdb.url, `update gaps set status = 'filled', filled_at = now() where symbol = 'BTCUSDT'`);
    assert.equal(await archiver.runOnce(), 1);
    assert.deepEqual(await days(dir()), [`binance/BTCUSDT/${DAY_A}`, `okx/BTC-USDT/${DAY_A}`]);
    const m = (await readManifest(manifestFile(archiveFile(dir(), 'binance', 'BTCUSDT', DAY_A, 'parquet'))))!;
    assert.equal(m.rows, 50);
    assert.deepEqual(m.gaps.map((g) => g.status), ['filled']);
    assert.equal(m.exportedAt, new Date(now).toISOString(), 'the injected clock stamps the manifest');
  });

  test('after the grace period a day is archived with its open gap listed', async () => {
    await sqlExec(tdb.url, `insert into gaps (exchange, symbol, from_id, to_id, status, reason) values ('binance', 'BTCUSDT', ${BINANCE_FIRST_ID + 60}, ${BINANCE_FIRST_ID + 60}, 'unfillable', 'REST said no')`);
    await deleteTicks(tdb.url, `symbol = 'BTCUSDT' and trade_id = ${BINANCE_FIRST_ID + 60}`);
    now = dayEnd(DAY_B) + 11 * MIN;
    assert.equal(await archiver.runOnce(), 0);
    now = dayEnd(DAY_B) + DEFAULTS.ARCHIVE_GRACE_MS;
    assert.equal(await archiver.runOnce(), 1);
    const m = (await readManifest(manifestFile(archiveFile(dir(), 'binance', 'BTCUSDT', DAY_B, 'parquet'))))!;
    assert.equal(m.rows, 29);
    assert.deepEqual(m.gaps.map((g) => [g.from_id, g.status, g.reason]), [
      [String(BINANCE_FIRST_ID + 50), 'filled', null],
      [String(BINANCE_FIRST_ID + 60), 'unfillable', 'REST said no'],
    ]);
  });

  test('canDrop: true for a verified archive; a stale or corrupt one is exported again first', async () => {
    assert.equal(await archiver.canDrop(DAY_A), true);
    assert.equal(await archiver.canDrop('2026-11-19'), true, 'nothing to keep on a day without ticks');
    // a backfilled tick landed in day A after it was archived: the archive no longer holds the table's day
    await seed(storage, [makeTick(BINANCE_FIRST_ID + 60, { tradeTime: Date.parse(`${DAY_B}T00:00:10Z`), source: 'backfill' })]);
    const okxPath = archiveFile(dir(), 'okx', 'BTC-USDT', DAY_A, 'parquet');
    const bytes = await readFile(okxPath);
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(okxPath, bytes);
    assert.notEqual(await sha256File(okxPath), (await readManifest(manifestFile(okxPath)))!.sha256);
    assert.equal(await archiver.canDrop(DAY_A), true);
    assert.equal(await sha256File(okxPath), (await readManifest(manifestFile(okxPath)))!.sha256, 'the corrupt file was written again');
    assert.equal(await archiver.canDrop(DAY_B), true);
    assert.equal((await readManifest(manifestFile(archiveFile(dir(), 'binance', 'BTCUSDT', DAY_B, 'parquet'))))!.rows, 30, 're-exported with the late tick');
  });

  test('an unreadable manifest makes the day be exported again; the old file is kept aside, never deleted', async () => {
    const path = archiveFile(dir(), 'okx', 'BTC-USDT', DAY_A, 'parquet');
    const aside = async () => (await readdir(join(dir(), 'okx', 'BTC-USDT'))).filter((n) => n.startsWith(`${DAY_A}.parquet.unverified-`)).length;
    const asideBefore = await aside(); // the corrupt file of the canDrop test is already kept aside
    await writeFile(manifestFile(path), '{"version": 1, "rows": "many"}');
    // a restarted collector (no watermark yet) walks its days again and finds it
    const restarted = new Archiver({ source: storage, config: config(dir()), clock, logger: silentLogger, duck: openDuck });
    assert.equal(await restarted.runOnce(), 1);
    await restarted.stop();
    assert.equal((await readManifest(manifestFile(path)))!.rows, 20);
    assert.equal(await aside(), asideBefore + 1);
  });

  test('canDrop is false when the archive cannot be written', async () => {
    const blocked = join(work, 'blocked');
    await writeFile(blocked, 'a file where the archive directory should be');
    const a = new Archiver({ source: storage, config: config(blocked), clock, logger: silentLogger, duck: openDuck });
    assert.equal(await a.canDrop(DAY_A), false);
    await a.stop();
  });

  test('start() runs passes on its timer until stop()', async () => {
    const d = join(work, 'timed');
    const a = new Archiver({ source: storage, config: config(d), clock, logger: silentLogger });
    now = dayEnd(DAY_B) + DEFAULTS.ARCHIVE_GRACE_MS;
    a.start();
    try {
      await waitFor(async () => (await days(d)).length === 3, 20_000, 'three days archived by the timer');
    } finally {
      await a.stop();
    }
    assert.equal(a.snapshot().archived, 3);
    await archiver.stop();
  });
});

describe('archive configuration', () => {
  test('off by default; settings are validated and named', () => {
    assert.equal(loadConfig({}).archive.dir, undefined);
    assert.deepEqual(loadConfig({ ARCHIVE_DIR: '/data/archive', ARCHIVE_GRACE_MS: '0' }).archive, {
      dir: '/data/archive', settleMs: DEFAULTS.ARCHIVE_SETTLE_MS, graceMs: 0, checkIntervalMs: DEFAULTS.ARCHIVE_CHECK_INTERVAL_MS,
    });
    for (const [name, value] of [['ARCHIVE_GRACE_MS', '6h'], ['ARCHIVE_SETTLE_MS', '-1'], ['ARCHIVE_CHECK_INTERVAL_MS', '10']] as const) {
      assert.throws(() => loadConfig({ [name]: value }), (err: unknown) => err instanceof ConfigError && err.variable === name);
    }
  });
});
