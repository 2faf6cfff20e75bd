/**
 * The composition root: database (embedded or DATABASE_URL) → storage → backfiller → exchange connections →
 * monitor. `stop()` closes them in the reverse order of the data path: sockets first (no new ticks), then the
 * backfill, then storage flushes (or journals) what it holds and ends its pool, then the monitor and the database.
 */
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { redactSecrets } from './logger.ts';
import { Backfiller } from './backfill/backfiller.ts';
import { createBinanceHistory } from './backfill/binance-history.ts';
import { createOkxHistory } from './backfill/okx-history.ts';
import { RateBudget } from './backfill/rate-budget.ts';
import type { RangeFiller } from './backfill/range-fill.ts';
import type { Connection } from './connection/connection.ts';
import type { CollectorError } from './errors.ts';
import { createConnections, createInstrumentLookups, startupChecks } from './exchanges/connections.ts';
import { checkSymbolsAtStart } from './exchanges/instruments.ts';
import { startMonitor } from './monitor/monitor.ts';
import type { Monitor } from './monitor/monitor.ts';
import { Archiver } from './archive/archiver.ts';
import { systemClock } from './clock.ts';
import { psqlCommand, startEmbeddedPostgres } from './storage/embedded.ts';
import { openStorage } from './storage/storage.ts';
import type { Storage } from './storage/storage.ts';
import type { Exchange } from './tick.ts';

export interface Collector {
  readonly storage: Storage;
  readonly connections: readonly Connection[];
  readonly backfiller: Backfiller;
  readonly monitor: Monitor;
  readonly databaseUrl: string;
  /** Settles if the collector finds its configuration unworkable while running (every symbol refused): stop, exit 2. */
  readonly fatal: Promise<CollectorError>;
  /** Automatic archiving; undefined when ARCHIVE_DIR is unset. Its canDrop(day) guards retention. */
  readonly archiver: Archiver | undefined;
  /** Graceful stop; idempotent. Resolves when every socket, timer, pool client and child process is gone. */
  stop(): Promise<void>;
}

/** Storage gets this long to flush or journal what it holds, so the process exits within 10 s of a signal. */
const STORAGE_CLOSE_DEADLINE_MS = 6_000;

/** What a caller or a test may inject. */
export interface CollectorDeps {
  /** Time source for partition maintenance, retention and archiving (default: the system clock). */
  readonly clock?: Clock;
  /** Cancels a start that is still waiting (for the database): the promise rejects, nothing is left running. */
  readonly signal?: AbortSignal;
}

export async function startCollector(config: Config, logger: Logger, deps: CollectorDeps = {}): Promise<Collector> {
  const clock = deps.clock ?? systemClock;
  const cleanups: Array<() => Promise<void>> = [];
  const unwind = async () => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => logger.error({ err }, 'cleanup failed'));
  };
  // The symbols are checked against the exchanges' lists while the database starts; a bounded wait, see below.
  const instruments = createInstrumentLookups(config, logger);
  const symbolCheck = config.symbolCheckTimeoutMs > 0
    ? checkSymbolsAtStart(startupChecks(config, instruments), config.symbolCheckTimeoutMs, logger).then(() => null, (err: unknown) => err)
    : Promise.resolve(null);
  try {
    let databaseUrl = config.storage.databaseUrl;
    if (databaseUrl === undefined) {
      const embedded = await startEmbeddedPostgres({ dir: config.storage.embeddedDir, port: config.storage.embeddedPort, runtimeDir: config.storage.embeddedRuntimeDir, logger });
      cleanups.push(() => embedded.stop());
      databaseUrl = embedded.url;
      logger.info(
        {
          databaseUrl: redactSecrets(databaseUrl),
          dataDir: embedded.dataDir,
          binDir: embedded.binDir,
          ...(embedded.moved ? { movedAsRoot: embedded.moved } : {}),
          passwordFile: embedded.passwordFile,
          psql: psqlCommand(embedded),
        },
        'embedded PostgreSQL running (set DATABASE_URL to use your own server)',
      );
    } else {
      logger.info({ databaseUrl: redactSecrets(databaseUrl) }, 'using DATABASE_URL');
    }

    const databaseCleanups = cleanups.length;
    // With archiving on, retention drops a day only once its archive is verified (false until the archiver runs).
    let archiver: Archiver | undefined;
    const canDrop = config.archive.dir === undefined ? undefined : (day: string) => (archiver ? archiver.canDrop(day) : Promise.resolve(false));
    const storage = await openStorage({ config: config.storage, url: databaseUrl, logger, clock, canDrop, ...(deps.signal ? { signal: deps.signal } : {}) });
    cleanups.push(() => storage.close({ deadlineMs: STORAGE_CLOSE_DEADLINE_MS }));

    const fillers: Partial<Record<Exchange, RangeFiller>> = {};
    if (config.binanceSymbols.length > 0) {
      const budget = new RateBudget({ capacity: config.backfill.binanceWeightPerMinute, windowMs: 60_000 });
      fillers.binance = createBinanceHistory({ restBaseUrl: config.binanceRestUrl, budget, logger });
    }
    if (config.okxSymbols.length > 0) {
      const budget = new RateBudget({ capacity: config.backfill.okxRequestsPer2s, windowMs: 2_000 });
      fillers.okx = createOkxHistory({ restBaseUrl: config.okxRestUrl, budget, logger });
    }
    const backfiller = new Backfiller({
      config: config.backfill,
      db: storage.db,
      sink: storage.sink,
      flush: () => storage.flush(),
      fillers,
      symbols: { binance: config.binanceSymbols, okx: config.okxSymbols },
      logger,
    });
    await backfiller.start();
    cleanups.push(() => backfiller.stop());

    if (config.archive.dir !== undefined) {
      // Live writes first: the export waits while the writer's buffer holds more than one batch.
      const liveBehind = (): boolean => storage.pipeline().bufferDepth > config.storage.batchMaxRows;
      archiver = new Archiver({ source: storage, config: { ...config.archive, dir: config.archive.dir }, clock, logger, liveBehind });
      archiver.start();
      const started = archiver;
      cleanups.push(() => started.stop());
    }

    const unknownSymbols = await symbolCheck;
    if (unknownSymbols) throw unknownSymbols;
    let onFatal!: (err: CollectorError) => void;
    const fatal = new Promise<CollectorError>((resolve) => (onFatal = resolve));
    const connections = createConnections(config, backfiller.observing(storage.sink, storage.late), logger, { instruments, onFatal });
    cleanups.push(async () => {
      await Promise.all(connections.map((c) => c.stop()));
    });

    const monitor = await startMonitor({
      config,
      logger,
      providers: {
        connections: () => connections.map((c) => c.snapshot()),
        pipeline: () => storage.pipeline(),
        pool: () => storage.pool(),
        gaps: () => backfiller.snapshot(),
      },
    });
    // The monitor stops after storage (its last stats still describe the flush) and before the database.
    cleanups.splice(databaseCleanups, 0, () => monitor.stop());

    for (const c of connections) c.start();
    logger.info(
      {
        binance: config.binanceSymbols,
        okx: config.okxSymbols,
        connections: connections.map((c) => c.connId),
        endpoints: {
          ...(config.binanceSymbols.length > 0 ? { binance: { ws: config.binanceWsUrl, rest: config.binanceRestUrl } } : {}),
          ...(config.okxSymbols.length > 0 ? { okx: { ws: config.okxWsUrl, rest: config.okxRestUrl } } : {}),
        },
        metricsPort: monitor.port,
      },
      'collector started',
    );

    let stopping: Promise<void> | null = null;
    return {
      storage,
      connections,
      backfiller,
      monitor,
      databaseUrl,
      fatal,
      archiver,
      stop() {
        stopping ??= (async () => {
          logger.info('collector stopping');
          await unwind();
          logger.info(monitor.summary(), 'collector stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
