/**
 * Out-of-order and conflicting trades (issue #14 d) against a real PostgreSQL, through the path live ticks take
 * (Backfiller.observing → Storage.sink / Storage.late): a late id is a duplicate, a conflict (counted, logged with both
 * versions, rate-limited, stored row unchanged, never stored again in another day's partition), or genuinely new
 * (stored, counted out of order).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backfiller } from '../src/backfill/backfiller.ts';
import { DEFAULTS } from '../src/config.ts';
import { LateTicks, sameDecimal } from '../src/storage/late-ticks.ts';
import { DAY_MS } from '../src/storage/partitions.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { Storage } from '../src/storage/storage.ts';
import type { Tick } from '../src/tick.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { sqlRows } from './helpers/collector-harness.ts';
import { createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { captureLogs } from './helpers/log-capture.ts';
import type { LogCapture } from './helpers/log-capture.ts';

let tdb: TestDatabase;
let dir: string;
let storage: Storage;
let logs: LogCapture;
before(async () => {
  tdb = await createTestDatabase('late');
  dir = await mkdtemp(join(tmpdir(), 'mc-late-'));
  logs = captureLogs('debug');
  storage = await openStorage({ config: testStorageConfig(join(dir, 'spill')), url: tdb.url, logger: logs.logger });
});
after(async () => {
  await storage?.close();
  await tdb?.drop();
  await rm(dir, { recursive: true, force: true });
});

async function live(symbol: string): Promise<{ sink: { write(t: Tick): boolean }; stop(): Promise<void> }> {
  const b = new Backfiller({
    config: { enabled: false, maxGap: DEFAULTS.BACKFILL_MAX_GAP, retryIntervalMs: 3_600_000, binanceWeightPerMinute: 1000, okxRequestsPer2s: 10 },
    db: storage.db,
    sink: storage.sink,
    flush: () => storage.flush(),
    fillers: {},
    symbols: { binance: [symbol], okx: [] },
    logger: captureLogs().logger,
  });
  await b.start();
  return { sink: b.observing(storage.sink, storage.late), stop: () => b.stop() };
}

const stored = (symbol: string) =>
  sqlRows<{ trade_id: string; price: string; qty: string; side: string; time: string; part: string }>(tdb.url,
    `select t.trade_id::text, t.price::text, t.qty::text, case when t.flags & 1 = 1 then 'sell' else 'buy' end as side,
            (extract(epoch from t.trade_time) * 1000)::bigint::text as time, t.tableoid::regclass::text as part
     from tick_rows t join instruments i using (instrument_id) where i.symbol = $1 order by t.trade_id, t.trade_time`, [symbol]);

describe('late live ticks', () => {
  test('a late id is a duplicate, a conflict (stored row kept, not stored again elsewhere) or genuinely new (stored, out of order)', async () => {
    const { sink, stop } = await live('LATEUSDT');
    try {
      const base = Math.floor(Date.now() / DAY_MS) * DAY_MS - 30 * 60_000; // yesterday 23:30 UTC
      const nextDay = base + 70 + 3_600_000; // 00:30 today: another partition
      const tick = (id: number, o: Partial<Record<keyof Tick, unknown>> = {}) => makeTick(id, { symbol: 'LATEUSDT', tradeTime: base + id, receivedAt: base + id + 3, ...o });
      for (let id = 1; id <= 100; id++) sink.write(tick(id));
      await storage.flush();
      const before = storage.pipeline();

      sink.write(tick(50)); // the same trade again
      sink.write(tick(51, { price: '97000.1200' })); // same price, other formatting: still a duplicate
      sink.write(tick(60, { price: '96999.99' })); // another price
      sink.write(tick(61, { qty: '0.002' })); // another qty
      sink.write(tick(62, { side: tick(62).side === 'buy' ? 'sell' : 'buy' })); // another side
      sink.write(tick(70, { tradeTime: nextDay })); // another time, after midnight: another day's partition
      sink.write(tick(105)); // a gap: 101..104 missing
      sink.write(tick(103)); // late but never stored: genuinely new
      sink.write(tick(103)); // and again, in the same batch: a duplicate of the one just accepted
      sink.write(tick(102, { price: '1.5' })); // new
      await storage.flush();

      const after = storage.pipeline();
      assert.equal(after.ticksDuplicate - before.ticksDuplicate, 3, 'duplicates: 50, 51, the second 103');
      assert.equal((after.ticksConflicting ?? 0) - (before.ticksConflicting ?? 0), 4, 'conflicts: 60 (price), 61 (qty), 62 (side), 70 (time)');
      assert.equal((after.ticksOutOfOrder ?? 0) - (before.ticksOutOfOrder ?? 0), 2, 'out of order: 103, 102');
      assert.equal(after.ticksReceived - before.ticksReceived, 10, 'every tick handed in is counted received');

      const rows = await stored('LATEUSDT');
      assert.deepEqual(rows.map((r) => r.trade_id), [...Array.from({ length: 100 }, (_v, i) => String(i + 1)), '102', '103', '105'], 'each id once; 70 not stored a second time in another partition');
      const byId = new Map(rows.map((r) => [r.trade_id, r]));
      assert.equal(byId.get('60')!.price, '97000.12', 'the stored row stays as first written');
      assert.equal(byId.get('61')!.qty, '0.00150000');
      assert.equal(byId.get('62')!.side, tick(62).side);
      assert.equal(byId.get('70')!.time, String(base + 70));
      assert.equal(byId.get('102')!.price, '1.5');
      assert.equal(new Set(rows.map((r) => r.part)).size, 1, 'all in one day');

      const conflict = logs.find((l) => String(l.msg).startsWith('conflicting trade') && l.tradeId === 60)[0];
      assert.ok(conflict, 'the conflict is logged');
      assert.deepEqual(conflict.stored, { price: '97000.12', qty: '0.00150000', side: tick(60).side, tradeTime: new Date(base + 60).toISOString() });
      assert.deepEqual(conflict.received, { price: '96999.99', qty: '0.00150000', side: tick(60).side, tradeTime: new Date(base + 60).toISOString(), source: 'live' });
      assert.ok(logs.find((l) => String(l.msg).startsWith('out-of-order trade') && l.tradeId === 103).length === 1);
    } finally {
      await stop();
    }
  });

  test('conflict logs are rate-limited; every conflict is counted', async () => {
    const { sink, stop } = await live('FLOODUSDT');
    try {
      const base = Date.now() - 60_000;
      for (let id = 1; id <= 300; id++) sink.write(makeTick(id, { symbol: 'FLOODUSDT', tradeTime: base + id }));
      await storage.flush();
      const before = storage.pipeline().ticksConflicting ?? 0;
      const logged = logs.find((l) => String(l.msg).startsWith('conflicting trade')).length;
      for (let id = 1; id <= 300; id++) sink.write(makeTick(id, { symbol: 'FLOODUSDT', tradeTime: base + id, price: '1.0' }));
      await storage.flush();
      assert.equal((storage.pipeline().ticksConflicting ?? 0) - before, 300);
      const lines = logs.find((l) => String(l.msg).startsWith('conflicting trade')).length - logged;
      assert.ok(lines >= 1 && lines <= 5, `${lines} log lines for 300 conflicts`);
      assert.equal((await stored('FLOODUSDT')).filter((r) => r.price === '1.0').length, 0);
    } finally {
      await stop();
    }
  });

  test('the late queue is bounded (backpressure, then drain) and hands everything on at close', async () => {
    const sink = new CollectingSink();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const late = new LateTicks({ db: storage.db, sink, flush: () => held, logger: captureLogs().logger, maxPending: 10, batchSize: 4 });
    let drained = 0;
    late.onDrain(() => drained++);
    const accepted = Array.from({ length: 20 }, (_v, i) => late.write(makeTick(i + 1, { symbol: 'BOUNDUSDT' })));
    assert.equal(accepted.slice(0, 9).every(Boolean), true);
    assert.equal(accepted[accepted.length - 1], false, 'past maxPending the producer is asked to pause');
    release();
    await late.drain();
    assert.ok(drained > 0, 'onDrain once the queue went down');
    assert.equal(sink.ticks.length, 20, 'none stored before: all genuinely new, handed to the writer');
    assert.equal(late.snapshot().outOfOrder, 20);

    const stuck = new LateTicks({ db: storage.db, sink, flush: () => new Promise(() => undefined), logger: captureLogs().logger });
    for (let i = 0; i < 5; i++) stuck.write(makeTick(1000 + i, { symbol: 'BOUNDUSDT' }));
    await stuck.close(100);
    assert.equal(sink.ticks.length, 25, 'at close, what could not be checked is written unchecked, never dropped');
    assert.equal(stuck.snapshot().unchecked, 5);
  });

  test('decimals compare by value, not by spelling', () => {
    assert.ok(sameDecimal('42219.90000000', '42219.9'));
    assert.ok(sameDecimal('0.10', '0.1'));
    assert.ok(sameDecimal('007', '7.000'));
    assert.ok(!sameDecimal('1.01', '1.1'));
    assert.ok(!sameDecimal('10', '1'));
  });
});
