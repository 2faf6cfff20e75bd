/**
 * Issue #11 "done when", end to end: the collector (in-process, real simulator, real PostgreSQL) runs across a
 * simulated UTC day boundary with an injected clock. The next day's partition exists before it is needed; the
 * closed day is archived by the collector itself and reads back equal to the table; retention drops that day only
 * after the archive is verified; `npm run query` then returns the same rows for that day from the archive as it did
 * from the table.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readTicks } from '../src/archive/archive-reader.ts';
import { dayEnd, dayOf, dayStart, nextDay } from '../src/archive/day.ts';
import { openDuck } from '../src/archive/duck.ts';
import { archiveFile, manifestFile } from '../src/archive/layout.ts';
import { readManifest } from '../src/archive/manifest.ts';
import { startCollector } from '../src/collector.ts';
import type { Collector } from '../src/collector.ts';
import { DEFAULTS } from '../src/config.ts';
import { silentLogger } from '../src/logger.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { listPartitions } from '../src/storage/partitions.ts';
import { tableRows } from './helpers/archive-fixture.ts';
import { simConfig } from './helpers/collector-env.ts';
import { createTestDatabase, makeTick } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { runCli } from './helpers/run-cli.ts';
import { TestClock } from './helpers/test-clock.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

const MIN = 60_000;
const INSTRUMENTS = [{ exchange: 'binance', symbol: 'BTCUSDT' }, { exchange: 'okx', symbol: 'BTC-USDT' }];
// The simulator stamps trades with the real time: the day they land in is the real UTC day, and the injected clock
// starts five minutes before that day's end.
let DAY = '';
let NEXT = '';
const clock = new TestClock(0);

describe('storage for months, end to end', () => {
  let sim: ExchangeSimulator;
  let db: TestDatabase;
  let dir: string;
  let archiveDir: string;
  let collector: Collector;
  let fromTable: string;
  const query = (env: Record<string, string>) =>
    runCli('query', ['--exchange', 'binance', '--symbol', 'BTCUSDT', '--from', `${DAY}T00:00:00Z`, '--to', `${NEXT}T23:59:59Z`, '--format', 'json'], { DATABASE_URL: db.url, ...env });

  before(async () => {
    const left = dayEnd(dayOf(Date.now())) - Date.now();
    if (left < 60_000) await sleep(left + 1_000); // never straddle a real midnight
    DAY = dayOf(Date.now());
    NEXT = nextDay(DAY);
    clock.ms = dayEnd(DAY) - 5 * MIN;
    sim = await ExchangeSimulator.start({
      tradesPerSecond: 200, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'],
      binanceHandshakesPer5Min: 100_000, okxHandshakesPerSecond: 1_000, okxSubscribesPerHour: 100_000,
    });
    db = await createTestDatabase('e2e');
    dir = mkdtempSync(join(tmpdir(), 'mc-e2e-'));
    archiveDir = join(dir, 'archive');
    const config = simConfig(sim, {
      DATABASE_URL: db.url, METRICS_PORT: '0', PID_FILE: join(dir, 'collector.pid'), SPILL_DIR: join(dir, 'spill'),
      STATS_INTERVAL_MS: '600000', BATCH_MAX_AGE_MS: '50', BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT',
      ARCHIVE_DIR: archiveDir, ARCHIVE_CHECK_INTERVAL_MS: '200', RETENTION_DAYS: '1',
    });
    collector = await startCollector(config, silentLogger, { clock });
  });
  after(async () => {
    await collector?.stop();
    await sim?.stop();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('at 23:55 the next day\'s partition already exists, and a tick after midnight lands in it', async () => {
    const days = (await listPartitions(collector.storage.db)).map((p) => p.day);
    assert.ok(days.includes(DAY) && days.includes(NEXT), `partitions: ${days.join(', ')}`);
    await waitFor(async () => (await tableRows(db.url, 'binance', 'BTCUSDT', DAY)).length > 200 && (await tableRows(db.url, 'okx', 'BTC-USDT', DAY)).length > 200, 20_000, 'live ticks of the day stored');
    // the exchange goes quiet at midnight; the first trade after it comes through the collector's writer
    sim.setRate(0);
    await sleep(300);
    await collector.storage.flush();
    const last = (await tableRows(db.url, 'binance', 'BTCUSDT', DAY)).at(-1)!;
    clock.ms = dayStart(NEXT) + 1_000;
    collector.storage.sink.write(makeTick(Number(last.trade_id) + 1, { tradeTime: dayStart(NEXT) + 500, receivedAt: dayStart(NEXT) + 510, price: '97000.10000000' }));
    await collector.storage.flush();
    assert.equal((await tableRows(db.url, 'binance', 'BTCUSDT', NEXT)).length, 1);
    assert.deepEqual((await listPartitions(collector.storage.db)).map((p) => p.day), days, 'no partition had to be created on demand');
    fromTable = (await query({ ARCHIVE_DIR: '' })).stdout;
  });

  test('once the day has settled, the collector archives it and the files read back equal to the table', async () => {
    assert.equal(collector.archiver?.snapshot().archived, 0, 'nothing archived before the day ended and settled');
    clock.ms = dayEnd(DAY) + DEFAULTS.ARCHIVE_SETTLE_MS + MIN;
    const paths = INSTRUMENTS.map((i) => archiveFile(archiveDir, i.exchange, i.symbol, DAY, 'parquet'));
    await waitFor(async () => (await Promise.all(paths.map((p) => readManifest(manifestFile(p))))).every(Boolean), 30_000, 'both symbols archived');
    const duck = await openDuck();
    try {
      for (const [n, i] of INSTRUMENTS.entries()) {
        const table = await tableRows(db.url, i.exchange, i.symbol, DAY);
        assert.deepEqual(await readTicks(duck, [paths[n]!], { limit: 1_000_000 }), table, `${i.exchange} ${i.symbol}`);
        assert.equal((await readManifest(manifestFile(paths[n]!)))!.rows, table.length);
      }
    } finally {
      await duck.close();
    }
  });

  test('retention drops the archived day; npm run query returns the same rows for it from the archive', async () => {
    clock.ms = dayStart(nextDay(NEXT)) + 3_600_000; // the day is now older than RETENTION_DAYS=1
    const { dropped } = await collector.storage.maintain();
    assert.ok(dropped.includes(DAY), `dropped: ${dropped.join(', ')}`);
    assert.ok(!(await listPartitions(collector.storage.db)).some((p) => p.day === DAY));
    assert.deepEqual(await tableRows(db.url, 'binance', 'BTCUSDT', DAY), []);
    const [withArchive, tableOnly] = await Promise.all([query({ ARCHIVE_DIR: archiveDir }), query({ ARCHIVE_DIR: '' })]);
    assert.equal(withArchive.code, 0, withArchive.stderr);
    assert.equal(withArchive.stdout, fromTable);
    assert.ok((JSON.parse(fromTable) as unknown[]).length > 200);
    assert.equal((JSON.parse(tableOnly.stdout) as unknown[]).length, 1, 'without the archive only the tick after midnight is left');
  });
});
