/** The storage facade the composition root uses: pool + Kysely + writer + journal, opened and closed together. */
import { resolve } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import type { PostgresPoolClient } from 'kysely';
import pRetry from 'p-retry';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import type { StorageConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { PipelineSnapshot, PoolSnapshot } from '../snapshots.ts';
import type { Tick, TickSink } from '../tick.ts';
import { classifyDbError, describeDbError, StorageError } from './errors.ts';
import { Instruments } from './instruments.ts';
import { LateTicks } from './late-ticks.ts';
import { LegacyMover } from './legacy.ts';
import { PartitionMaintenance } from './maintenance.ts';
import type { MaintenanceResult } from './maintenance.ts';
import { migrateToLatest } from './migrate.ts';
import { aheadDays, ensurePartitions } from './partitions.ts';
import { ResettablePool } from './pool.ts';
import type { Database } from './schema.ts';
import { Journal } from './spill.ts';
import type { CanDrop } from './retention.ts';
import { TickWriter } from './tick-writer.ts';

export const DEFAULT_CLOSE_DEADLINE_MS = 8_000;

export interface Storage {
  readonly sink: TickSink;
  /**
   * Where a live tick goes whose id is at or below the last one seen for its symbol: compared with the stored row
   * first (duplicate, conflict, or genuinely new and out of order). See late-ticks.ts.
   */
  readonly late: TickSink;
  /** For other modules' plain functions (gap store); routed through the current pool across resets. */
  readonly db: Kysely<Database>;
  /** Resolves when everything accepted so far is in the table (or in the journal while the database is down). */
  flush(): Promise<void>;
  pipeline(): PipelineSnapshot;
  pool(): PoolSnapshot;
  /** Force a pool reset now; resolves when the old pool has ended. */
  resetPool(): Promise<void>;
  /** A client from the same bounded pool (PG_POOL_MAX holds), for streaming reads such as the archive's COPY; release it. */
  connect(): Promise<PostgresPoolClient>;
  /** Called after each batch commits, with the ticks of that batch. Returns an unsubscribe function. */
  onStored(listener: (ticks: readonly Tick[]) => void): () => void;
  /** Partition maintenance now: partitions ahead of time by the clock, then retention. */
  maintain(): Promise<MaintenanceResult>;
  /** Stop accepting, flush (retrying until the deadline, journaling the rest), end the pools. Never rejects. */
  close(opts?: { deadlineMs?: number }): Promise<void>;
  /** Emergency exit: journal synchronously what is only in memory; returns the ticks written (throws SpillError). */
  emergencyJournal(): number;
}

export interface OpenStorageOptions {
  readonly config: StorageConfig;
  readonly url: string;
  readonly logger: Logger;
  /** Time source for partition maintenance and retention (tests cross a UTC day boundary with their own). */
  readonly clock?: Clock;
  /** Retention asks it before dropping a day (the archive: only once the day's export is verified). */
  readonly canDrop?: CanDrop;
  /** How often partitions are checked and retention runs (default hourly). */
  readonly maintenanceIntervalMs?: number;
  /** Aborts a start still waiting for the database (a signal arrived). */
  readonly signal?: AbortSignal;
}

/** Backoff between start attempts while the database is not there yet. */
const START_RETRY_MIN_MS = 500;
const START_RETRY_MAX_MS = 10_000;

/**
 * At start the database may come up later than we do (compose, systemd): a transient failure (refused, DNS not yet
 * resolvable, "the database system is starting up"...) is retried with backoff, logged at warn each time, until
 * DB_START_TIMEOUT_MS (0: for ever). Anything else (bad password, missing database) fails at once. Either way the
 * error says in one line what failed.
 */
async function waitForDatabase<T>(attempt: () => Promise<T>, timeoutMs: number, log: Logger, signal: AbortSignal | undefined): Promise<T> {
  const started = Date.now();
  try {
    return await pRetry(attempt, {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: START_RETRY_MIN_MS,
      maxTimeout: START_RETRY_MAX_MS,
      ...(timeoutMs > 0 ? { maxRetryTime: timeoutMs } : {}),
      ...(signal ? { signal } : {}),
      shouldRetry: ({ error }) => classifyDbError(error) === 'transient',
      onFailedAttempt: ({ error, attemptNumber }) => {
        if (classifyDbError(error) !== 'transient') return;
        const waited = Date.now() - started;
        log.warn(
          { reason: describeDbError((error as { cause?: unknown }).cause ?? error), attempt: attemptNumber, waitedMs: waited, giveUpAfterMs: timeoutMs > 0 ? timeoutMs : null },
          `waiting for the database (${timeoutMs > 0 ? `giving up after DB_START_TIMEOUT_MS=${timeoutMs}` : 'DB_START_TIMEOUT_MS=0: for ever'})`,
        );
      },
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    const reason = describeDbError((err as { cause?: unknown }).cause ?? err);
    if (classifyDbError(err) !== 'transient') throw new StorageError(`database refused the start: ${reason}`, classifyDbError(err), { cause: err });
    throw new StorageError(`database not reachable within DB_START_TIMEOUT_MS=${timeoutMs} ms: ${reason}`, 'transient', { cause: err });
  }
}

/** Opens the pool, applies migrations (retrying connection errors briefly), opens the journal, starts the writer. */
export async function openStorage(opts: OpenStorageOptions): Promise<Storage> {
  const { config } = opts;
  const log = opts.logger.child({ component: 'storage' });
  const pool = new ResettablePool({
    url: opts.url,
    poolMax: config.poolMax,
    idleTimeoutMs: config.idleTimeoutMs,
    acquireTimeoutMs: config.acquireTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    statementTimeoutMs: config.statementTimeoutMs,
    maxUses: config.maxUses,
    maxLifetimeMs: config.maxLifetimeMs,
    logger: log.child({ part: 'pool' }),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const clock = opts.clock ?? systemClock;
  const maintenance = new PartitionMaintenance({
    db,
    clock,
    logger: log.child({ part: 'partitions' }),
    retentionDays: config.retentionDays,
    canDrop: opts.canDrop,
    intervalMs: opts.maintenanceIntervalMs,
  });
  let instruments: Instruments;
  try {
    const { applied } = await waitForDatabase(() => migrateToLatest(db), config.startTimeoutMs, log, opts.signal);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    // Retention runs later, in the background (a detach may wait for long reads); the partitions ahead, now.
    await ensurePartitions(db, aheadDays(clock)).catch((err: unknown) =>
      log.warn({ err }, 'could not create the partitions ahead at start; inserts create them on demand'));
    instruments = await Instruments.load(db);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const journal = await Journal.open(resolve(config.spillDir), log.child({ part: 'journal' }));
  const writer = new TickWriter({
    db,
    journal,
    logger: log.child({ part: 'writer' }),
    instruments,
    ensurePartitions: (days) => ensurePartitions(db, days),
    batchMaxRows: config.batchMaxRows,
    batchMaxAgeMs: config.batchMaxAgeMs,
    batchMinRows: config.batchMinRows,
    batchLingerMs: config.batchLingerMs,
    maxBufferedTicks: config.maxBufferedTicks,
    batchesInFlight: batchesInFlight(config.poolMax),
  });
  const late = new LateTicks({ db, sink: writer, flush: () => writer.flush(), logger: log.child({ part: 'late' }) });
  const legacy = new LegacyMover(db, log.child({ part: 'legacy' }));
  legacy.start();
  maintenance.start();

  let resetTimer: NodeJS.Timeout | undefined;
  if (config.poolResetIntervalMs > 0) {
    resetTimer = setInterval(() => {
      pool.reset().catch((err: unknown) => log.error({ err }, 'periodic pool reset failed'));
    }, config.poolResetIntervalMs);
    resetTimer.unref();
  }

  let closing: Promise<void> | undefined;
  const close = async (deadlineMs: number): Promise<void> => {
    const started = Date.now();
    clearInterval(resetTimer);
    // Keep a reserve of the deadline for journaling what is left and ending the pools.
    const reserve = Math.min(2_000, Math.floor(deadlineMs / 4));
    // Background jobs stop between steps; late ticks still pending go to the writer, all within a quarter.
    let jobsTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([maintenance.stop(), legacy.stop(), late.close(reserve)]),
      new Promise((r) => (jobsTimer = setTimeout(r, reserve))),
    ]);
    clearTimeout(jobsTimer);
    await writer.close(Math.max(0, deadlineMs - reserve - (Date.now() - started)));
    const left = Math.max(0, deadlineMs - (Date.now() - started));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      pool.end().then(() => false, () => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), left))),
    ]);
    clearTimeout(timer);
    if (timedOut) log.warn({ checkedOut: pool.checkedOut }, 'pool did not end before the close deadline (a statement is still running)');
    log.info({ pipeline: pipeline() }, 'storage closed');
  };

  /** The writer's figures, with the late ticks the writer never saw (duplicates and conflicts kept out of it). */
  const pipeline = (): PipelineSnapshot => {
    const w = writer.snapshot();
    const l = late.snapshot();
    return {
      ...w,
      ticksReceived: w.ticksReceived + l.pending + l.duplicate + l.conflicting,
      ticksDuplicate: w.ticksDuplicate + l.duplicate,
      bufferDepth: w.bufferDepth + l.pending,
      ticksConflicting: l.conflicting,
      ticksOutOfOrder: l.outOfOrder,
    };
  };

  return {
    sink: writer,
    late,
    db,
    flush: async () => {
      await late.drain();
      await writer.flush();
    },
    pipeline,
    maintain: () => maintenance.run(),
    pool: () => pool.snapshot(),
    resetPool: () => pool.reset(),
    connect: () => pool.connect(),
    onStored: (listener) => writer.onStored(listener),
    close: (o) => (closing ??= close(o?.deadlineMs ?? DEFAULT_CLOSE_DEADLINE_MS)),
    emergencyJournal: () => writer.emergencyJournal(),
  };
}

/**
 * Batches the writer sends at once: two when the pool has a connection to spare besides them (the default pool of 3:
 * two batches and the backfill worker or a maintenance job), else one. One statement keeps one backend busy; a
 * second one lets PostgreSQL work on the next batch meanwhile: measured 60,000-66,000 rows/s with one batch of 5,000
 * rows in flight, 112,000 rows/s with two, on an otherwise idle 2-core machine (the sweep in BENCHMARKS.md shows the
 * rate the whole collector sustains).
 */
export function batchesInFlight(poolMax: number): number {
  return poolMax >= 3 ? 2 : 1;
}
