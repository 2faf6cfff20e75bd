/** The tick writer against a real PostgreSQL: batching, idempotency, bad rows, resets, slow DB + journal, close. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { openStorage } from '../src/storage/storage.ts';
import { splitRound } from '../src/storage/tick-writer.ts';
import { InstrumentIndex, TickRows } from '../src/storage/tick-rows.ts';
import type { Tick } from '../src/tick.ts';
import type { Storage } from '../src/storage/storage.ts';
import type { StorageConfig } from '../src/config.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { countTicks, createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

let tdb: TestDatabase;
let spillRoot: string;
before(async () => {
  tdb = await createTestDatabase('writer');
  spillRoot = await mkdtemp(join(tmpdir(), 'mc-spill-'));
});
after(async () => {
  await tdb?.drop();
  await rm(spillRoot, { recursive: true, force: true });
});

async function open(name: string, overrides: Partial<StorageConfig> = {}) {
  const logs = captureLogs('debug');
  const config = testStorageConfig(join(spillRoot, name), overrides);
  const storage = await openStorage({ config, url: tdb.url, logger: logs.logger });
  return { storage, logs, config };
}

/** Holds an ACCESS EXCLUSIVE lock on tick_rows and its partitions (every insert blocks: "Postgres slow") until release(). */
async function lockTicks(): Promise<{ release(): Promise<void> }> {
  const c = new pg.Client({ connectionString: tdb.url, application_name: 'test-locker' });
  c.on('error', () => undefined);
  await c.connect();
  await c.query('begin');
  await c.query('lock table tick_rows in access exclusive mode');
  return { release: async () => { await c.query('commit'); await c.end(); } };
}

async function segments(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith('.ndjson'));
  } catch {
    return [];
  }
}

describe('tick writer', () => {
  test('one round trip per batch, never one per tick', async () => {
    const { storage } = await open('batch', { batchMaxRows: 5000, batchMaxAgeMs: 50 });
    for (let i = 0; i < 1000; i++) storage.sink.write(makeTick(i, { symbol: 'BATCHUSDT' }));
    await storage.flush();
    assert.equal(storage.pipeline().batches, 1);
    assert.equal(storage.pipeline().ticksStored, 1000);
    assert.equal(await countTicks(tdb.url, "symbol = 'BATCHUSDT'"), 1000);
    await storage.close();
  });

  test('a batch below BATCH_MIN_ROWS waits for more rows up to BATCH_LINGER_MS; one that reaches it goes at BATCH_MAX_AGE_MS', async () => {
    const { storage } = await open('linger', { batchMaxRows: 5000, batchMaxAgeMs: 50, batchMinRows: 100, batchLingerMs: 3_000 });
    try {
      const t0 = Date.now();
      for (let i = 0; i < 10; i++) storage.sink.write(makeTick(20_000 + i, { symbol: 'LINGERUSDT' }));
      await sleep(800);
      // Well past BATCH_MAX_AGE_MS and below BATCH_MIN_ROWS: still waiting for rows.
      assert.equal(await countTicks(tdb.url, "symbol = 'LINGERUSDT'"), 0);
      assert.equal(storage.pipeline().batches, 0);
      await waitFor(async () => (await countTicks(tdb.url, "symbol = 'LINGERUSDT'")) === 10, 10_000, 'the small batch written at BATCH_LINGER_MS');
      assert.ok(Date.now() - t0 >= 2_900, `written after ${Date.now() - t0} ms, before BATCH_LINGER_MS`);
      assert.equal(storage.pipeline().batches, 1);

      // A batch that grows past BATCH_MIN_ROWS while it lingers goes at once.
      for (let i = 0; i < 10; i++) storage.sink.write(makeTick(21_000 + i, { symbol: 'GROWUSDT' }));
      await sleep(300);
      const t1 = Date.now();
      for (let i = 10; i < 100; i++) storage.sink.write(makeTick(21_000 + i, { symbol: 'GROWUSDT' }));
      await waitFor(async () => (await countTicks(tdb.url, "symbol = 'GROWUSDT'")) === 100, 10_000, 'the grown batch');
      assert.ok(Date.now() - t1 < 2_500, `the grown batch waited ${Date.now() - t1} ms, as if it still lingered`);
      assert.equal(storage.pipeline().batches, 2);

      // A flush does not wait for the linger.
      for (let i = 0; i < 5; i++) storage.sink.write(makeTick(22_000 + i, { symbol: 'FLUSHUSDT' }));
      const t2 = Date.now();
      await storage.flush();
      assert.ok(Date.now() - t2 < 2_500, `flush waited ${Date.now() - t2} ms`);
      assert.equal(await countTicks(tdb.url, "symbol = 'FLUSHUSDT'"), 5);
    } finally {
      await storage.close();
    }
  });

  test('with BATCH_MIN_ROWS 0 a small batch goes at BATCH_MAX_AGE_MS', async () => {
    const { storage } = await open('no-linger', { batchMaxRows: 5000, batchMaxAgeMs: 50, batchMinRows: 0, batchLingerMs: 10_000 });
    try {
      const t0 = Date.now();
      for (let i = 0; i < 10; i++) storage.sink.write(makeTick(23_000 + i, { symbol: 'NOLINGERUSDT' }));
      await waitFor(async () => (await countTicks(tdb.url, "symbol = 'NOLINGERUSDT'")) === 10, 10_000, 'the small batch');
      assert.ok(Date.now() - t0 < 5_000, `written after ${Date.now() - t0} ms`);
    } finally {
      await storage.close();
    }
  });

  test('values that are special inside an array literal are stored exactly, each in its own row', async () => {
    const { storage } = await open('literal', { batchMaxRows: 5000, batchMaxAgeMs: 50 });
    const symbols = ['Q"UOTE', 'BACK\\SLASH', 'CO,MMA', '{BRACE}', 'NULL', ' SPACE ', ''];
    symbols.forEach((symbol, i) => storage.sink.write(makeTick(9_000 + i, { symbol })));
    await storage.flush();
    assert.equal(storage.pipeline().ticksStored, symbols.length);
    const c = new pg.Client({ connectionString: tdb.url });
    await c.connect();
    try {
      const rows = (await c.query<{ symbol: string | null; trade_id: string }>('select symbol, trade_id from ticks where trade_id between 9000 and 9099 order by trade_id')).rows;
      assert.deepEqual(rows.map((r) => r.symbol), symbols);
      // A batch with no quote or backslash anywhere takes the one-join path for its text columns.
      const plain = ['CO,MMA', '{BRACE}', 'NULL', ' SPACE ', '', 'a}b{c'];
      plain.forEach((symbol, i) => storage.sink.write(makeTick(9_100 + i, { symbol })));
      await storage.flush();
      const again = (await c.query<{ symbol: string | null }>('select symbol from ticks where trade_id between 9100 and 9199 order by trade_id')).rows;
      assert.deepEqual(again.map((r) => r.symbol), plain);
    } finally {
      await c.end();
    }
    await storage.close();
  });

  test('price and qty are stored exactly as PostgreSQL reads their text, scale kept, whether sent in binary or as text', async () => {
    const { storage } = await open('decimals', { batchMaxRows: 1000 });
    const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
    const plain = fc.oneof(
      digits(1, 40),
      fc.tuple(digits(1, 40), digits(1, 40)).map(([a, b]) => `${a}.${b}`),
      fc.constantFrom('0', '0.0', '0.00000000', '00000', '10000', '9999.9999', '0.0001', '1.00010000', '100000000.00000001'),
    );
    // Batches of plain decimals go in binary; one value that is not (a sign, an exponent) sends its column as text.
    const samples = fc.sample(plain, 400);
    const odd = ['-1.5', '1e3', ' 7 '];
    const values = [...samples, ...odd];
    const c = new pg.Client(tdb.url);
    await c.connect();
    try {
      // The samples in one batch (all plain: binary), then the odd ones in a batch of their own (their price as text).
      const write = (from: number, to: number) => {
        for (let i = from; i < to; i++) storage.sink.write(makeTick(20_000 + i, { symbol: 'DECUSDT', price: values[i], qty: samples[(i * 7) % samples.length] }));
      };
      write(0, samples.length);
      await storage.flush();
      write(samples.length, values.length);
      await storage.flush();
      const stored = (await c.query<{ id: string; price: string; qty: string }>(
        "select trade_id::text as id, price::text as price, qty::text as qty from ticks where symbol = 'DECUSDT' order by trade_id")).rows;
      const expected = (await c.query<{ v: string }>('select v::numeric::text as v from unnest($1::text[]) with ordinality as u(v, n) order by n', [values])).rows.map((r) => r.v);
      const expectedQty = (await c.query<{ v: string }>('select v::numeric::text as v from unnest($1::text[]) with ordinality as u(v, n) order by n', [values.map((_v, i) => samples[(i * 7) % samples.length])])).rows.map((r) => r.v);
      assert.equal(stored.length, values.length);
      assert.deepEqual(stored.map((r) => r.price), expected);
      assert.deepEqual(stored.map((r) => r.qty), expectedQty);
      assert.equal(storage.pipeline().ticksRejected, 0);
      // Which way each column went: binary (a Buffer) only when every value is plain.
      const rows = new TickRows(new InstrumentIndex(10));
      samples.forEach((v, i) => rows.push(makeTick(i, { price: v }), i + 1));
      const [, , , , , , p1, q1] = rows.params(() => 1);
      assert.ok(Buffer.isBuffer(p1) && Buffer.isBuffer(q1));
      rows.push(makeTick(999, { price: '-1.5' }), 999);
      const [, , , , , , p2, q2] = rows.params(() => 1);
      assert.equal(typeof p2, 'string');
      assert.ok(Buffer.isBuffer(q2));
    } finally {
      await c.end();
    }
    await storage.close();
  });

  test('a journal on disk with hostile lines (a 10,000-deep array for a price, an object for a symbol): the good ticks are stored, the others rejected and counted', async () => {
    const dir = join(spillRoot, 'hostile-journal');
    await mkdir(dir, { recursive: true });
    let deep: unknown = '1';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const good = Array.from({ length: 50 }, (_v, i) => makeTick(30_000 + i, { symbol: 'HOSTILEUSDT' }));
    const lines = [
      ...good.slice(0, 25).map((t) => JSON.stringify(t)),
      // JSON.stringify of a 10,000-deep array overflows the stack: the line is written by hand
      JSON.stringify(makeTick(30_100, { symbol: 'HOSTILEUSDT' })).replace('"price":"97000.12"', `"price":${'['.repeat(10_000)}1${']'.repeat(10_000)}`),
      JSON.stringify(makeTick(30_101, { symbol: { $gt: '' } })),
      JSON.stringify(makeTick(30_102, { symbol: 'HOSTILEUSDT', tradeId: '30102', qty: null })),
      ...good.slice(25).map((t) => JSON.stringify(t)),
    ];
    await writeFile(join(dir, 'segment-000000000001.ndjson'), lines.join('\n') + '\n');
    const { storage } = await open('hostile-journal');
    await waitFor(async () => (await segments(dir)).length === 0, 10_000, 'the journal replayed and removed');
    await storage.flush();
    assert.equal(await countTicks(tdb.url, "symbol = 'HOSTILEUSDT'"), 50);
    assert.equal(storage.pipeline().ticksRejected, 3);
    await storage.close();
  });

  test('duplicate ticks are stored once', async () => {
    const { storage } = await open('dup');
    for (let round = 0; round < 2; round++) for (let i = 0; i < 300; i++) storage.sink.write(makeTick(i, { symbol: 'DUPUSDT' }));
    storage.sink.write(makeTick(5, { symbol: 'DUPUSDT' }));
    await storage.flush();
    assert.equal(await countTicks(tdb.url, "symbol = 'DUPUSDT'"), 300);
    const p = storage.pipeline();
    assert.equal(p.ticksStored, 300);
    assert.equal(p.ticksDuplicate, 301);
    await storage.close();
  });

  test('a bad row does not lose its batch: the rest is stored, the bad rows logged and counted', async () => {
    const { storage, logs } = await open('bad', { batchMaxRows: 1000 });
    for (let i = 0; i < 200; i++) {
      if (i === 17) storage.sink.write(makeTick(i, { symbol: 'BADUSDT', side: 'hold' }));
      else if (i === 150) storage.sink.write(makeTick(i, { symbol: 'BADUSDT', price: 'not-a-number' }));
      else storage.sink.write(makeTick(i, { symbol: 'BADUSDT' }));
    }
    await storage.flush();
    assert.equal(await countTicks(tdb.url, "symbol = 'BADUSDT'"), 198);
    assert.equal(storage.pipeline().ticksRejected, 2);
    const rejected = logs.find((l) => l.msg === 'tick rejected by the database; the rest of its batch is stored');
    assert.equal(rejected.length, 2);
    assert.ok(rejected.some((l) => String(l.reason).startsWith('23514')), 'check violation reported with its reason');
    assert.ok(rejected.some((l) => String(l.reason).startsWith('22P02')), 'invalid numeric reported with its reason');
    await storage.close();
  });

  test('a pool reset in the middle of a steady tick stream: every tick stored, no error', async () => {
    const { storage } = await open('reset-stream', { batchMaxRows: 50, batchMaxAgeMs: 5 });
    const total = 2000;
    const producer = (async () => {
      for (let i = 0; i < total; i++) {
        storage.sink.write(makeTick(i, { symbol: 'RESETUSDT' }));
        if (i % 20 === 0) await sleep(2);
      }
    })();
    for (let k = 0; k < 3; k++) {
      await sleep(100);
      await storage.resetPool();
    }
    await producer;
    await storage.flush();
    assert.equal(await countTicks(tdb.url, "symbol = 'RESETUSDT'"), total);
    const p = storage.pipeline();
    assert.equal(p.ticksStored, total);
    assert.equal(p.writeErrors, 0);
    assert.equal(storage.pool().resets, 3);
    await storage.close();
  });

  test('database slow: buffer stays bounded, overflow is journaled, then replayed and removed', async () => {
    const { storage, config } = await open('slow', { maxBufferedTicks: 200, batchMaxRows: 50, statementTimeoutMs: 500 });
    const lock = await lockTicks();
    let maxDepth = 0;
    for (let i = 0; i < 1500; i++) {
      storage.sink.write(makeTick(i, { symbol: 'SLOWUSDT' }));
      maxDepth = Math.max(maxDepth, storage.pipeline().bufferDepth);
      if (i % 100 === 0) await sleep(10);
    }
    await waitFor(() => storage.pipeline().journalTicks > 0, 10_000, 'overflow to reach the journal');
    assert.ok((await segments(config.spillDir)).length > 0, 'journal file on disk');
    assert.ok(maxDepth <= 200, `buffer depth ${maxDepth} stayed within 200`);
    await lock.release();
    await storage.flush();
    assert.equal(await countTicks(tdb.url, "symbol = 'SLOWUSDT'"), 1500);
    await waitFor(async () => (await segments(config.spillDir)).length === 0, 10_000, 'journal removed');
    assert.equal(storage.pipeline().journalTicks, 0);
    await storage.close();
  });

  test('a round of batches written at once groups ticks by instrument: one instrument cut per batch boundary, arrival order kept', () => {
    const symbols = ['A', 'B', 'C', 'D'];
    const rowsOf = (ticks: readonly Tick[]) => {
      const rows = new TickRows(new InstrumentIndex(10));
      ticks.forEach((t, i) => assert.ok(rows.push(t, i + 1)));
      return rows;
    };
    const ticks = Array.from({ length: 1000 }, (_v, i) => makeTick(i, { symbol: symbols[i % 4]! }));
    const batches = splitRound(rowsOf(ticks), 500).map((b) => b.ticks());
    assert.equal(batches.length, 2);
    assert.deepEqual(batches.map((b) => b.length), [500, 500]);
    // every instrument lives in a single batch (here they fit exactly); within each batch, ids increase
    const owners = (bs: Tick[][]) => symbols.map((sym) => bs.filter((b) => b.some((t) => t.symbol === sym)).length);
    assert.deepEqual(owners(batches), [1, 1, 1, 1]);
    // 3 instruments in 2 batches: one instrument is cut at the boundary, the others stay whole
    const three = splitRound(rowsOf(ticks.filter((t) => t.symbol !== 'D').slice(0, 700)), 500).map((b) => b.ticks());
    assert.deepEqual(three.map((b) => b.length), [500, 200]);
    assert.deepEqual(owners(three).sort(), [0, 1, 1, 2]);
    for (const b of batches) for (const sym of symbols) {
      const ids = b.filter((t) => t.symbol === sym).map((t) => t.tradeId);
      assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
    }
    // every tick comes out as it went in, whole
    assert.deepEqual(batches.flat().sort((x, y) => x.tradeId - y.tradeId), ticks);
    const one = splitRound(rowsOf(ticks.slice(0, 300)), 500);
    assert.equal(one.length, 1, 'one batch: unchanged');
    assert.deepEqual(one[0]!.ticks(), ticks.slice(0, 300));
    assert.deepEqual(splitRound(rowsOf([]), 500), []);
  });

  for (const [poolMax, expected] of [[3, 2], [2, 1]] as const) {
    test(`PG_POOL_MAX ${poolMax}: ${expected} batch${expected > 1 ? 'es' : ''} written at once, never more; all stored once the database answers`, async () => {
      const { storage, logs } = await open(`inflight-${poolMax}`, { poolMax, maxBufferedTicks: 10_000, batchMaxRows: 100, batchMaxAgeMs: 20 });
      const lock = await lockTicks();
      let released = false;
      const watcher = new pg.Client({ connectionString: tdb.url });
      await watcher.connect();
      const waitingInserts = async () =>
        Number((await watcher.query<{ n: string }>(
          `select count(*) as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and state = 'active' and query like '%insert into tick_rows%'`,
        )).rows[0]!.n);
      try {
        // Three instruments interleaved, each tick its own price: the rounds are grouped by instrument and cut.
        const symbolOf = (i: number) => `INFLIGHT${poolMax}${'ABC'[i % 3]}USDT`;
        for (let i = 0; i < 500; i++) storage.sink.write(makeTick(20_000 + i, { symbol: symbolOf(i), price: `${i}.25` }));
        await waitFor(async () => (await waitingInserts()) === expected, 10_000, `${expected} inserts waiting on the lock`).catch(async (err) => {
          console.error((await watcher.query(`select state, wait_event_type, left(query, 60) as q from pg_stat_activity where datname = current_database()`)).rows, storage.pipeline(), logs.lines.filter((l) => Number(l.level) >= 40));
          throw err;
        });
        // Five batches are ready; give the writer time to (wrongly) start more than its bound.
        await sleep(300);
        assert.equal(await waitingInserts(), expected);
        assert.equal(storage.pipeline().bufferDepth, 500, 'the batches in flight still count as buffered');
        await lock.release().then(() => (released = true));
        await storage.flush();
        const stored = (await watcher.query<{ symbol: string; trade_id: string; price: string }>(
          `select symbol, trade_id, price::text as price from ticks where symbol like 'INFLIGHT${poolMax}%' order by trade_id`)).rows;
        assert.deepEqual(stored.map((r) => [r.symbol, Number(r.trade_id), r.price]),
          Array.from({ length: 500 }, (_v, i) => [symbolOf(i), 20_000 + i, `${i}.25`]));
        assert.equal(storage.pipeline().ticksStored, 500);
        assert.equal(storage.pipeline().bufferDepth, 0);
      } finally {
        if (!released) await lock.release();
        await watcher.end();
        await storage.close();
      }
    });
  }

  test('journal unwritable while the database is slow: backpressure, never a drop; drain when it recovers', async () => {
    const { storage, logs, config } = await open('unwritable', { maxBufferedTicks: 100, batchMaxRows: 50, statementTimeoutMs: 500 });
    const lock = await lockTicks();
    await rm(config.spillDir, { recursive: true, force: true });
    await writeFile(config.spillDir, 'not a directory'); // even root cannot create files under a regular file
    let drained = 0;
    storage.sink.onDrain(() => drained++);
    let sawFalse = false;
    for (let i = 0; i < 400; i++) {
      if (!storage.sink.write(makeTick(i, { symbol: 'BPUSDT' }))) sawFalse = true;
      if (i % 50 === 0) await sleep(20);
    }
    await waitFor(() => storage.pipeline().backpressure, 10_000, 'backpressure');
    assert.ok(logs.find((l) => String(l.msg).startsWith('SPILL JOURNAL UNWRITABLE')).length > 0, 'clear error logged');
    assert.equal(storage.sink.write(makeTick(400, { symbol: 'BPUSDT' })), false, 'write asks the producer to pause');
    assert.ok(sawFalse || storage.pipeline().backpressure);
    await rm(config.spillDir, { force: true });
    await mkdir(config.spillDir, { recursive: true });
    await lock.release();
    await waitFor(() => drained > 0, 15_000, 'onDrain');
    assert.equal(storage.pipeline().backpressure, false);
    await storage.flush();
    assert.equal(await countTicks(tdb.url, "symbol = 'BPUSDT'"), 401, 'no tick dropped');
    await storage.close();
  });

  test('close with the database unreachable journals the rest within the deadline; the next open replays it', async () => {
    const first = await open('close', { statementTimeoutMs: 500 });
    const lock = await lockTicks();
    for (let i = 0; i < 300; i++) first.storage.sink.write(makeTick(i, { symbol: 'CLOSEUSDT' }));
    const started = Date.now();
    await first.storage.close({ deadlineMs: 1500 });
    assert.ok(Date.now() - started < 15_000, 'close returned (bounded by its deadline)');
    assert.ok((await segments(first.config.spillDir)).length > 0, 'the rest is journaled');
    await lock.release();
    const second = await open('close');
    await second.storage.flush();
    assert.equal(await countTicks(tdb.url, "symbol = 'CLOSEUSDT'"), 300);
    await waitFor(async () => (await segments(first.config.spillDir)).length === 0, 10_000, 'journal removed after replay');
    await second.storage.close();
  });

  test('onStored reports committed batches', async () => {
    const { storage } = await open('stored');
    const seen: number[] = [];
    const off = storage.onStored((ticks) => seen.push(ticks.length));
    for (let i = 0; i < 120; i++) storage.sink.write(makeTick(i, { symbol: 'STOREDUSDT' }));
    await storage.flush();
    off();
    assert.equal(seen.reduce((a, b) => a + b, 0), 120);
    await storage.close();
  });
});
