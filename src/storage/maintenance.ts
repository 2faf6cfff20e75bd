/**
 * Partition maintenance on a timer: the partitions of yesterday .. today + AHEAD_DAYS exist (by the injected
 * clock), then retention drops the expired ones. `start()` runs it at once in the background, then every
 * `intervalMs` (default hourly: tomorrow's partition exists at least a day before it is needed). Runs never
 * overlap; `stop()` waits for a running one.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { aheadDays, ensurePartitions } from './partitions.ts';
import { alwaysDrop, applyRetention } from './retention.ts';
import type { CanDrop } from './retention.ts';
import type { Database } from './schema.ts';

export const MAINTENANCE_INTERVAL_MS = 3_600_000;

export interface MaintenanceOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Undefined: keep everything. */
  readonly retentionDays?: number | undefined;
  readonly canDrop?: CanDrop | undefined;
  readonly intervalMs?: number | undefined;
}

export interface MaintenanceResult {
  /** Days whose partitions this run created. */
  readonly created: readonly string[];
  /** Days whose partitions retention dropped. */
  readonly dropped: readonly string[];
}

export class PartitionMaintenance {
  readonly #o: MaintenanceOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<MaintenanceResult> | undefined;
  #stopped = false;

  constructor(opts: MaintenanceOptions) {
    this.#o = opts;
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    const tick = () => {
      this.run().catch((err: unknown) => this.#o.logger.warn({ err }, 'partition maintenance failed; will try again'));
    };
    this.#timer = setInterval(tick, this.#o.intervalMs ?? MAINTENANCE_INTERVAL_MS);
    this.#timer.unref();
    tick();
  }

  /** One run now (or the one already running). */
  run(): Promise<MaintenanceResult> {
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  async #run(): Promise<MaintenanceResult> {
    const { db, clock, logger } = this.#o;
    const created = await ensurePartitions(db, aheadDays(clock));
    if (created.length > 0) logger.info({ days: created }, 'partitions created ahead of time');
    const days = this.#o.retentionDays;
    const dropped = days === undefined || this.#stopped ? [] : await applyRetention({ db, clock, logger, retentionDays: days, canDrop: this.#o.canDrop ?? alwaysDrop });
    return { created, dropped };
  }
}
