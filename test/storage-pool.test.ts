/** The bounded pool against a real PostgreSQL: connection cap, reset, idle expiry, killed backends. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openStorage } from '../src/storage/storage.ts';
import type { Storage } from '../src/storage/storage.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { adminQuery, collectorConnections, countTicks, createTestDatabase, makeTick, sampleConnections, testStorageConfig } from './helpers/db.ts';
import type { TestDatabase } from './helpers/db.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

let tdb: TestDatabase;
let spillRoot: string;
before(async () => {
  tdb = await createTestDatabase('pool');
  spillRoot = await mkdtemp(join(tmpdir(), 'mc-spill-'));
});
after(async () => {
  await tdb?.drop();
  await rm(spillRoot, { recursive: true, force: true });
});

async function open(name: string, overrides = {}): Promise<{ storage: Storage; logs: ReturnType<typeof captureLogs> }> {
  const logs = captureLogs('debug');
  const storage = await openStorage({ config: testStorageConfig(join(spillRoot, name), overrides), url: tdb.url, logger: logs.logger });
  return { storage, logs };
}

async function terminateCollectorBackends(state?: string): Promise<number> {
  const rows = await adminQuery<{ ok: boolean }>(
    `select pg_terminate_backend(pid) as ok from pg_stat_activity
      where application_name = 'market-collector' and datname = $1 ${state ? 'and state = $2' : ''}`,
    state ? [tdb.name, state] : [tdb.name],
  );
  return rows.filter((r) => r.ok).length;
}

describe('storage pool', () => {
  test('never more than PG_POOL_MAX server connections under 50 concurrent flushes and queries', async () => {
    const { storage } = await open('cap', { poolMax: 3 });
    const sampler = sampleConnections(tdb.name);
    try {
      let id = 1_000_000;
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          for (let k = 0; k < 20; k++) storage.sink.write(makeTick(id++, { symbol: 'CAPUSDT' }));
          await storage.flush();
          await sql`select pg_sleep(${0.01 + (i % 5) * 0.01})`.execute(storage.db);
        }),
      );
      await storage.flush();
    } finally {
      const max = await sampler.stop();
      assert.ok(sampler.samples() > 3, 'sampler ran');
      assert.ok(max <= 3, `saw ${max} server connections, cap is 3`);
      assert.ok(max >= 2, `the load used several connections (saw ${max})`);
    }
    assert.equal(await countTicks(tdb.url, "symbol = 'CAPUSDT'"), 1000);
    const p = storage.pool();
    assert.equal(p.max, 3);
    assert.ok(p.total <= 3);
    await storage.close();
  });

  test('never more than PG_POOL_MAX during pool resets under load; nothing fails', async () => {
    const { storage } = await open('reset-cap', { poolMax: 3 });
    const sampler = sampleConnections(tdb.name);
    let failures = 0;
    let running = true;
    const workers = Array.from({ length: 6 }, async () => {
      while (running) {
        await sql`select pg_sleep(0.02)`.execute(storage.db).catch(() => failures++);
      }
    });
    try {
      for (let i = 0; i < 4; i++) {
        await sleep(150);
        await storage.resetPool();
      }
    } finally {
      running = false;
      await Promise.all(workers);
      const max = await sampler.stop();
      assert.ok(max <= 3, `saw ${max} server connections during resets, cap is 3`);
    }
    assert.equal(failures, 0, 'no statement failed across resets');
    assert.equal(storage.pool().resets, 4);
    await storage.close();
    assert.equal(await collectorConnections(tdb.name), 0, 'close ended every connection');
  });

  test('idle connections expire and are counted', async () => {
    const { storage } = await open('idle', { poolMax: 3, idleTimeoutMs: 300 });
    await Promise.all([1, 2, 3].map(() => sql`select pg_sleep(0.05)`.execute(storage.db)));
    assert.equal(storage.pool().total, 3);
    await waitFor(() => storage.pool().total === 0, 10_000, 'idle connections to be closed');
    assert.ok(storage.pool().expired >= 3, `expired counted (${storage.pool().expired})`);
    await waitFor(async () => (await collectorConnections(tdb.name)) === 0, 5_000, 'server-side connections gone');
    await storage.close();
  });

  test('pg_terminate_backend during flushes: retried, every tick stored, no crash', async () => {
    const { storage } = await open('terminate', { batchMaxRows: 100, batchMaxAgeMs: 5 });
    const total = 3000;
    let killed = 0;
    const producer = (async () => {
      for (let i = 0; i < total; i++) {
        storage.sink.write(makeTick(2_000_000 + i, { symbol: 'KILLUSDT' }));
        if (i % 50 === 0) await sleep(5);
      }
    })();
    const killer = (async () => {
      for (let k = 0; k < 8; k++) {
        await sleep(60);
        killed += await terminateCollectorBackends();
      }
    })();
    await Promise.all([producer, killer]);
    await storage.flush();
    assert.ok(killed > 0, 'some backends were terminated');
    assert.equal(await countTicks(tdb.url, "symbol = 'KILLUSDT'"), total);
    assert.equal(storage.pipeline().ticksStored, total);
    assert.ok(storage.pool().errors > 0, 'killed connections are counted');
    await storage.close();
  });

  test('a busy connection killed mid-statement: the batch is retried and stored', async () => {
    const { storage, logs } = await open('busy-kill', { batchMaxRows: 100 });
    const locker = await import('pg').then(({ default: pg }) => new pg.Client({ connectionString: tdb.url, application_name: 'test-locker' }));
    locker.on('error', () => undefined);
    await locker.connect();
    await locker.query('begin; lock table tick_rows in access exclusive mode');
    for (let i = 0; i < 100; i++) storage.sink.write(makeTick(3_000_000 + i, { symbol: 'BUSYUSDT' }));
    const flushed = storage.flush();
    await waitFor(async () => {
      const rows = await adminQuery(
        "select pid from pg_stat_activity where application_name = 'market-collector' and datname = $1 and state = 'active' and query like '%insert into tick_rows%'",
        [tdb.name],
      );
      return rows.length > 0;
    }, 10_000, 'the insert to block on the lock');
    assert.ok((await terminateCollectorBackends('active')) > 0);
    await locker.query('commit');
    await locker.end();
    await flushed;
    assert.equal(await countTicks(tdb.url, "symbol = 'BUSYUSDT'"), 100);
    assert.ok(storage.pipeline().writeErrors > 0);
    assert.ok(logs.find((l) => l.msg === 'batch insert failed; retrying').length > 0);
    await storage.close();
  });

  test('a checked-out connection killed between queries of a transaction does not crash the process', async () => {
    const { storage } = await open('trx-kill');
    const err = await storage.db
      .transaction()
      .execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        await adminQuery('select pg_terminate_backend($1)', [rows[0]!.pid]);
        await sleep(200); // the client's 'error' fires while checked out, with no query in flight
        await sql`select 1`.execute(trx);
      })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof Error, 'the transaction failed instead of the process crashing');
    await waitFor(() => storage.pool().errors > 0, 5_000, 'the error to be counted');
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(storage.db);
    assert.equal(rows[0]?.one, 1, 'the pool recovers');
    await storage.close();
  });
});
