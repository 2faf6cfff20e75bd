/**
 * Automatic archiving (ARCHIVE_DIR): exports each closed symbol-day to ARCHIVE_DIR/<exchange>/<symbol>/<day>.parquet
 * from inside the collector, and tells retention whether a day may be dropped.
 *
 * Closed: the day ended at least ARCHIVE_SETTLE_MS ago (late ticks, in-flight batches, a journal replay) and no
 * unfilled gap (open or unfillable) overlaps or touches its trade id range; or it ended more than ARCHIVE_GRACE_MS
 * ago whatever its gaps (the manifest lists them).
 *
 * Bounded work: one pass every ARCHIVE_CHECK_INTERVAL_MS exports at most one symbol-day (a pass that exported one
 * is followed by the next a second later, to catch up); exports run one at a time, in chunks on the storage pool
 * (one connection at a time), paced (after each chunk a pause three times its length; before each, a wait while the
 * live writer is behind), DuckDB on one thread in a child process (its memory is given back after each export). Memory: one watermark per instrument, a bounded failure map.
 */
import type { Clock } from '../clock.ts';
import type { ArchiveConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import { dayEnd, nextDay } from './day.ts';
import { openRemoteDuck } from './duck-remote.ts';
import type { DuckFactory } from './duck.ts';
import { exportDay } from './exporter.ts';
import type { ExportOutcome } from './exporter.ts';
import { sha256File } from './files.ts';
import { archiveFile, manifestFile } from './layout.ts';
import { readManifest } from './manifest.ts';
import type { Manifest } from './manifest.ts';
import { dayStats, firstTickDay, gapsTouching, hasTicksOn, listInstruments } from './tick-source.ts';
import type { DayStats, Instrument, TickSource } from './tick-source.ts';
import { readContents } from './verify.ts';

/** Smaller chunks than the CLI's: shorter COPY bursts between the live writer's batches. */
export const ARCHIVER_CHUNK_ROWS = 20_000;
/** After each chunk the archiver waits three times as long as the chunk took: at most a quarter of the time exporting. */
export const ARCHIVER_PAUSE_RATIO = 3;
/** The first pass waits this long (or one check interval if shorter): start-up (hole walk, journal replay) first. */
const START_DELAY_MS = 30_000;
/** Pause after a pass that exported a day, before the next one. */
const CATCH_UP_DELAY_MS = 1_000;
/** A day whose export failed is not tried again for this many check intervals. */
const FAILURE_BACKOFF_INTERVALS = 5;
const MAX_REMEMBERED_FAILURES = 1_000;

export interface ArchiverOptions {
  readonly source: TickSource;
  readonly config: ArchiveConfig & { readonly dir: string };
  readonly clock: Clock;
  readonly logger: Logger;
  readonly chunkRows?: number;
  /** Where DuckDB runs; default a child process per export (openRemoteDuck). */
  readonly duck?: DuckFactory;
  /** True while live writes are behind: the export waits before its next chunk (ExportDayOptions.liveBehind). */
  readonly liveBehind?: () => boolean;
}

export interface ArchiverSnapshot {
  readonly archived: number;
  readonly failed: number;
  readonly lastArchivedDay: string | undefined;
}

function key(i: Instrument): string {
  return `${i.exchange}/${i.symbol}`;
}

/** The table still holds exactly what the archive took from it. */
function tableMatches(m: Manifest, stats: DayStats): boolean {
  return m.table.rows === stats.rows && m.table.firstTradeId === stats.firstTradeId && m.table.lastTradeId === stats.lastTradeId;
}

export class Archiver {
  readonly #o: ArchiverOptions;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  /** Per instrument: every day before this one is archived or has no ticks. */
  readonly #watermark = new Map<string, string>();
  /** `instrument/day` → clock time before which it is not tried again. */
  readonly #failedUntil = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;
  #archived = 0;
  #failed = 0;
  #lastArchivedDay: string | undefined;

  constructor(o: ArchiverOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'archiver' });
  }

  start(): void {
    this.#log.info({ dir: this.#o.config.dir, settleMs: this.#o.config.settleMs, graceMs: this.#o.config.graceMs }, 'automatic archiving on');
    this.#schedule(Math.min(START_DELAY_MS, this.#o.config.checkIntervalMs));
  }

  /** Stops the timer, cancels an export in progress (between chunks) and waits for it to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#running.catch(() => undefined);
  }

  snapshot(): ArchiverSnapshot {
    return { archived: this.#archived, failed: this.#failed, lastArchivedDay: this.#lastArchivedDay };
  }

  /** One pass: exports at most one closed, not yet archived symbol-day. Resolves with how many it exported (0 or 1). */
  runOnce(): Promise<number> {
    return this.#exclusive(() => this.#pass());
  }

  /**
   * Retention's guard: true only when every symbol with ticks on `day` has a Parquet archive of that day that holds
   * what the table holds and reads back as its manifest says (sha256, count, id range). A missing or stale archive
   * is exported (and verified) first; false if that fails.
   */
  canDrop(day: string): Promise<boolean> {
    return this.#exclusive(async () => {
      for (const inst of await listInstruments(this.#o.source.db)) {
        const stats = await dayStats(this.#o.source.db, inst, day);
        if (!stats) continue;
        if (await this.#verified(inst, day, stats)) continue;
        const outcome = await this.#export(inst, day);
        if (outcome?.kind !== 'archived' || !tableMatches(outcome.manifest, stats) || !(await this.#verified(inst, day, stats))) {
          this.#log.warn({ exchange: inst.exchange, symbol: inst.symbol, day }, 'day kept: its archive could not be made or verified');
          return false;
        }
      }
      return true;
    });
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#running.catch(() => undefined).then(fn);
    this.#running = run;
    return run;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.runOnce().then(
        (n) => this.#schedule(n > 0 ? CATCH_UP_DELAY_MS : this.#o.config.checkIntervalMs),
        (err: unknown) => {
          if (!this.#stopped) this.#log.warn({ err }, 'archive pass failed; trying again later');
          this.#schedule(this.#o.config.checkIntervalMs);
        },
      );
    }, ms);
    this.#timer.unref();
  }

  async #pass(): Promise<number> {
    const now = this.#o.clock.now();
    const instruments = await listInstruments(this.#o.source.db);
    const known = new Set(instruments.map(key));
    for (const k of this.#watermark.keys()) if (!known.has(k)) this.#watermark.delete(k);
    for (const inst of instruments) {
      if (this.#stopped) return 0;
      if (await this.#archiveNextDay(inst, now)) return 1;
    }
    return 0;
  }

  /** Walks the instrument's ended days from its watermark; exports the first closed, unarchived one. */
  async #archiveNextDay(inst: Instrument, now: number): Promise<boolean> {
    const { settleMs } = this.#o.config;
    let day = this.#watermark.get(key(inst));
    if (day === undefined) {
      day = await firstTickDay(this.#o.source.db, inst);
      if (day === undefined) return false;
    }
    let contiguous = true;
    for (; dayEnd(day) + settleMs <= now; day = nextDay(day)) {
      const done = await this.#hasManifest(inst, day);
      if (!done && (await hasTicksOn(this.#o.source.db, inst, day))) {
        const failedUntil = this.#failedUntil.get(`${key(inst)}/${day}`);
        if ((failedUntil === undefined || now >= failedUntil) && (await this.#closed(inst, day, now))) {
          const outcome = await this.#export(inst, day);
          if (outcome?.kind === 'archived') return true;
        }
        contiguous = false;
      }
      if (contiguous) this.#watermark.set(key(inst), nextDay(day));
    }
    return false;
  }

  /** An unreadable manifest counts as missing: the day is exported again (the exporter keeps the old file aside). */
  async #hasManifest(inst: Instrument, day: string): Promise<boolean> {
    const path = manifestFile(archiveFile(this.#o.config.dir, inst.exchange, inst.symbol, day, 'parquet'));
    try {
      return (await readManifest(path)) !== undefined;
    } catch (err) {
      this.#log.warn({ err, path }, 'archived manifest unreadable; the day will be exported again');
      return false;
    }
  }

  async #closed(inst: Instrument, day: string, now: number): Promise<boolean> {
    if (now >= dayEnd(day) + this.#o.config.graceMs) return true;
    const stats = await dayStats(this.#o.source.db, inst, day);
    if (!stats) return false;
    const gaps = await gapsTouching(this.#o.source.db, inst, stats.firstTradeId, stats.lastTradeId);
    return gaps.every((g) => g.status === 'filled');
  }

  async #export(inst: Instrument, day: string): Promise<ExportOutcome | undefined> {
    const tag = `${key(inst)}/${day}`;
    try {
      const outcome = await exportDay({
        source: this.#o.source,
        root: this.#o.config.dir,
        inst,
        day,
        format: 'parquet',
        logger: this.#log,
        clock: this.#o.clock,
        chunkRows: this.#o.chunkRows ?? ARCHIVER_CHUNK_ROWS,
        pauseRatio: ARCHIVER_PAUSE_RATIO,
        duck: this.#o.duck ?? openRemoteDuck,
        signal: this.#abort.signal,
        ...(this.#o.liveBehind ? { liveBehind: this.#o.liveBehind } : {}),
      });
      this.#failedUntil.delete(tag);
      if (outcome.kind === 'archived') {
        this.#archived++;
        this.#lastArchivedDay = day;
      }
      return outcome;
    } catch (err) {
      if (this.#stopped) return undefined;
      this.#failed++;
      if (this.#failedUntil.size >= MAX_REMEMBERED_FAILURES) this.#failedUntil.delete(this.#failedUntil.keys().next().value!);
      this.#failedUntil.set(tag, this.#o.clock.now() + FAILURE_BACKOFF_INTERVALS * this.#o.config.checkIntervalMs);
      this.#log.warn({ err, exchange: inst.exchange, symbol: inst.symbol, day }, 'archiving a day failed; it will be tried again');
      return undefined;
    }
  }

  /** The day's archive exists, holds what the table holds, and reads back as its manifest says. */
  async #verified(inst: Instrument, day: string, stats: DayStats): Promise<boolean> {
    const path = archiveFile(this.#o.config.dir, inst.exchange, inst.symbol, day, 'parquet');
    const m = await readManifest(manifestFile(path)).catch(() => undefined);
    if (!m || !tableMatches(m, stats)) return false;
    try {
      if ((await sha256File(path)) !== m.sha256) return false;
      const duck = await (this.#o.duck ?? openRemoteDuck)();
      try {
        const got = await readContents(duck, path, 'parquet');
        return got.rows === m.rows && got.firstTradeId === m.firstTradeId && got.lastTradeId === m.lastTradeId;
      } finally {
        await duck.close();
      }
    } catch (err) {
      this.#log.warn({ err, path }, 'archived file cannot be verified');
      return false;
    }
  }
}
