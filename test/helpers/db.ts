/**
 * Test databases on the server named by TEST_DATABASE_URL (the embedded one started by scripts/run-tests.ts, or an
 * external one). Each test file creates its own uniquely named database, so files are isolated.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { DEFAULTS } from '../../src/config.ts';
import type { StorageConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { runPgBinary } from '../../src/storage/embedded.ts';

export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run tests through `npm test` (it starts an embedded PostgreSQL)');
  return url;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** One admin query on the server's `postgres` database, on a short-lived client. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl(), 'postgres'), application_name: 'test-admin', connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 't'): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`create database "${name}"`);
  return {
    name,
    url: withDatabase(serverUrl(), name),
    drop: async () => {
      await adminQuery(`drop database if exists "${name}" with (force)`);
    },
  };
}

/** Server connections our pool holds on `database` (application_name = market-collector). */
export async function collectorConnections(database: string): Promise<number> {
  const rows = await adminQuery<{ n: string }>(
    "select count(*) as n from pg_stat_activity where application_name = 'market-collector' and datname = $1",
    [database],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Polls collectorConnections until stop() is called; max() is the largest count seen. */
export function sampleConnections(database: string, everyMs = 15): { stop(): Promise<number>; max(): number; samples(): number } {
  let max = 0;
  let samples = 0;
  let running = true;
  const client = new pg.Client({ connectionString: withDatabase(serverUrl(), 'postgres'), application_name: 'test-sampler' });
  client.on('error', () => undefined);
  const loop = (async () => {
    await client.connect();
    while (running) {
      const r = await client.query<{ n: string }>(
        "select count(*) as n from pg_stat_activity where application_name = 'market-collector' and datname = $1",
        [database],
      );
      max = Math.max(max, Number(r.rows[0]?.n ?? 0));
      samples++;
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop.catch(() => undefined);
      await client.end().catch(() => undefined);
      return max;
    },
    max: () => max,
    samples: () => samples,
  };
}

export function testStorageConfig(spillDir: string, overrides: Partial<StorageConfig> = {}): StorageConfig {
  return {
    databaseUrl: undefined,
    poolMax: DEFAULTS.PG_POOL_MAX,
    idleTimeoutMs: DEFAULTS.PG_IDLE_TIMEOUT_MS,
    acquireTimeoutMs: DEFAULTS.PG_ACQUIRE_TIMEOUT_MS,
    connectTimeoutMs: DEFAULTS.PG_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: DEFAULTS.PG_STATEMENT_TIMEOUT_MS,
    maxUses: DEFAULTS.PG_MAX_USES,
    maxLifetimeMs: DEFAULTS.PG_MAX_LIFETIME_MS,
    poolResetIntervalMs: 0,
    batchMaxRows: 500,
    batchMaxAgeMs: 20,
    // Tests write a few ticks and wait for them: no lingering for more rows (test/storage-writer.test.ts covers it).
    batchMinRows: 0,
    batchLingerMs: DEFAULTS.BATCH_LINGER_MS,
    maxBufferedTicks: 10_000,
    spillDir,
    embeddedDir: DEFAULTS.EMBEDDED_PG_DIR,
    embeddedPort: DEFAULTS.EMBEDDED_PG_PORT,
    startTimeoutMs: 30_000,
    embeddedRuntimeDir: DEFAULTS.EMBEDDED_PG_RUNTIME_DIR,
    ...overrides,
  };
}

export interface ServerControl {
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Stop/start control of the test server, available only for the embedded server the runner started
 * (TEST_PG_DATA_DIR + TEST_PG_BIN). Returns a skip reason otherwise.
 */
export function serverControl(): ServerControl | { skip: string } {
  const dataDir = process.env.TEST_PG_DATA_DIR;
  const binDir = process.env.TEST_PG_BIN;
  if (!dataDir || !binDir) {
    return { skip: 'TEST_DATABASE_URL points at an external server (no TEST_PG_DATA_DIR/TEST_PG_BIN): the outage test needs to stop and start the server, skipped' };
  }
  const port = new URL(serverUrl()).port;
  const owner = statSync(dataDir);
  const runAs = process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {};
  const pgCtl = join(binDir, 'pg_ctl');
  return {
    stop: async () => {
      await runPgBinary(pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], runAs, silentLogger);
    },
    start: async () => {
      await runPgBinary(pgCtl, ['start', '-D', dataDir, '-w', '-t', '60', '-l', join(dataDir, 'startup.log'), '-o', `-p ${port}`], runAs, silentLogger);
    },
  };
}

import type { Tick } from '../../src/tick.ts';

/** A valid tick with trade id `id` (BTCUSDT on binance unless overridden). */
export function makeTick(id: number, overrides: Partial<Record<keyof Tick, unknown>> = {}): Tick {
  const now = Date.now();
  return {
    exchange: 'binance',
    symbol: 'BTCUSDT',
    tradeId: id,
    price: '97000.12',
    qty: '0.00150000',
    side: id % 2 === 0 ? 'buy' : 'sell',
    tradeTime: now - 5,
    receivedAt: now,
    source: 'live',
    ...overrides,
  } as Tick;
}

export async function countTicks(url: string, where = 'true'): Promise<number> {
  const client = new pg.Client({ connectionString: url, application_name: 'test-admin' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const r = await client.query<{ n: string }>(`select count(*) as n from ticks where ${where}`);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await client.end().catch(() => undefined);
  }
}
