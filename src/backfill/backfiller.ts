/**
 * Completeness. Every live tick passes `observe()` (synchronous, O(1)): a trade id that is not last+1 opens a gap.
 * Gaps are recorded in `gaps`, fetched over REST in the background (one worker per exchange, sharing that
 * exchange's request budget), and the fetched trades go through the same sink as live ticks (idempotent writes,
 * so overlap is harmless). A gap that cannot be filled now is marked `unfillable` with its reason and retried on a
 * timer; a restart picks up every unfilled row. Live ticks never wait for a backfill.
 */
import type { Kysely } from 'kysely';
import type { BackfillConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { GapsSnapshot } from '../snapshots.ts';
import type { Database } from '../storage/schema.ts';
import type { Exchange, Tick, TickSink } from '../tick.ts';
import { GapTracker } from './gap-tracker.ts';
import type { Gap } from './gap-tracker.ts';
import { holesInTable, lastStoredIds, markGap, recordGap, storedInRange, unfilledGaps } from './gap-store.ts';
import type { RangeFiller } from './range-fill.ts';

export interface BackfillerOptions {
  readonly config: BackfillConfig;
  readonly db: Kysely<Database>;
  /** Where fetched trades go: the same writer as live ticks. */
  readonly sink: TickSink;
  /** Resolves when everything written so far is stored; a gap is marked filled only after it. */
  readonly flush: () => Promise<void>;
  readonly fillers: Partial<Record<Exchange, RangeFiller>>;
  readonly symbols: Readonly<Record<Exchange, readonly string[]>>;
  readonly logger: Logger;
}

/** Gaps waiting in memory per exchange; beyond this they wait in the table for the retry loop. */
const MAX_QUEUED_GAPS = 1_000;
const RETRY_BATCH = 100;
/** At start, the last this-many stored ids of each symbol are checked for holes (bounded cost: an index walk). */
export const STARTUP_SCAN_IDS = 200_000;

interface Job {
  readonly gap: Gap;
  id: number | null;
  /** Counted in `unfillable` (a retry of a row that failed before). */
  unfillable: boolean;
}

export class Backfiller {
  readonly #opts: BackfillerOptions;
  readonly #log: Logger;
  readonly #tracker: GapTracker;
  readonly #queues = new Map<Exchange, Job[]>();
  readonly #queued = new Set<string>();
  /** Gaps that have no row in `gaps` yet (the database was down when they were found): retried from memory. */
  readonly #unrecorded: Job[] = [];
  readonly #wake = new Map<Exchange, () => void>();
  readonly #workers: Promise<void>[] = [];
  readonly #abort = new AbortController();
  #retryTimer: NodeJS.Timeout | null = null;
  #scanning: Promise<void> = Promise.resolve();
  #started = false;
  #stopped: Promise<void> | null = null;
  #inFlight = 0;
  #detected = 0;
  #filled = 0;
  #unfillable = 0;
  #backfilledTicks = 0;

  constructor(opts: BackfillerOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'backfill' });
    this.#tracker = new GapTracker(opts.symbols);
  }

  /** Seeds the last id per symbol from the table and starts the workers and the retry loop. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const seeded: Array<{ exchange: Exchange; symbol: string; last: number }> = [];
    for (const exchange of Object.keys(this.#opts.symbols) as Exchange[]) {
      const last = await lastStoredIds(this.#opts.db, exchange, this.#opts.symbols[exchange]);
      for (const [symbol, id] of last) {
        this.#tracker.seed(exchange, symbol, id);
        seeded.push({ exchange, symbol, last: id });
      }
      if (last.size > 0) this.#log.info({ exchange, lastIds: Object.fromEntries(last) }, 'gap tracking seeded from the database');
    }
    if (!this.#opts.config.enabled) return;
    for (const exchange of Object.keys(this.#opts.fillers) as Exchange[]) {
      this.#queues.set(exchange, []);
      this.#workers.push(this.#work(exchange));
    }
    this.#scanning = this.#scanForHoles(seeded);
    void this.#retryUnfilled();
    this.#retryTimer = setInterval(() => void this.#retryUnfilled(), this.#opts.config.retryIntervalMs);
  }

  /**
   * Wraps a sink so every live tick is observed on its way to storage. A late tick (id at or below the last seen
   * for its symbol) goes to `late` instead, which checks it against the stored row (Storage.late).
   */
  observing(sink: TickSink, late: TickSink = sink): TickSink {
    return {
      write: (tick) => (this.observe(tick) === 'late' ? late.write(tick) : sink.write(tick)),
      onDrain: (listener) => {
        if (late === sink) return sink.onDrain(listener);
        const offSink = sink.onDrain(listener);
        const offLate = late.onDrain(listener);
        return () => {
          offSink();
          offLate();
        };
      },
    };
  }

  /** Observes a live tick (a gap it reveals is admitted); returns how the tracker classified it. */
  observe(tick: Tick): 'next' | 'gap' | 'late' | 'untracked' {
    const o = this.#tracker.observe(tick);
    if (o.kind === 'gap') this.#admit(o.gap, 'trade id gap detected');
    return o.kind;
  }

  /** A gap found (live or in the table at start): counted, logged, then recorded as unfillable or queued. */
  #admit(gap: Gap, message: string): void {
    this.#detected++;
    this.#log.warn({ exchange: gap.exchange, symbol: gap.symbol, fromId: gap.from, toId: gap.to, missing: gap.to - gap.from + 1 }, message);
    if (!this.#opts.config.enabled) {
      void this.#record(gap, 'unfillable', 'backfill disabled (BACKFILL_ENABLED=0)');
      return;
    }
    if (gap.to - gap.from + 1 > this.#opts.config.maxGap) {
      this.#unfillable++;
      void this.#record(gap, 'unfillable', `range of ${gap.to - gap.from + 1} ids exceeds BACKFILL_MAX_GAP=${this.#opts.config.maxGap}`);
      return;
    }
    this.#enqueue({ gap, id: null, unfillable: false });
  }

  snapshot(): GapsSnapshot {
    let open = 0;
    for (const q of this.#queues.values()) open += q.length;
    return {
      detected: this.#detected,
      open: open + this.#inFlight + this.#unrecorded.length,
      filled: this.#filled,
      unfillable: this.#unfillable,
      backfilledTicks: this.#backfilledTicks,
      restRequests: this.#restCounter('requests'),
      restErrors: this.#restCounter('errors'),
      restRateLimited: this.#restCounter('rateLimited'),
    };
  }

  #restCounter(name: 'requests' | 'errors' | 'rateLimited'): number {
    let n = 0;
    for (const f of Object.values(this.#opts.fillers)) n += f?.budget.counters[name] ?? 0;
    return n;
  }

  /** Stops fetching (in-flight fills are aborted; their rows stay unfilled and are picked up at the next start). */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      if (this.#retryTimer) clearInterval(this.#retryTimer);
      this.#retryTimer = null;
      this.#abort.abort(new Error('backfiller stopped'));
      for (const wake of this.#wake.values()) wake();
      await Promise.allSettled([...this.#workers, this.#scanning]);
    })();
    return this.#stopped;
  }

  #key(gap: Gap): string {
    return `${gap.exchange}\u0000${gap.symbol}\u0000${gap.from}\u0000${gap.to}`;
  }

  #enqueue(job: Job): void {
    const queue = this.#queues.get(job.gap.exchange);
    if (!queue) return;
    const key = this.#key(job.gap);
    if (this.#queued.has(key)) return;
    if (queue.length >= MAX_QUEUED_GAPS) {
      // The retry loop comes back for it: from the table if it has a row, from memory if not.
      if (job.id === null) this.#keepUnrecorded(job);
      return;
    }
    this.#queued.add(key);
    queue.push(job);
    this.#wake.get(job.gap.exchange)?.();
  }

  async #record(gap: Gap, status: 'open' | 'unfillable', reason: string | null): Promise<number | null> {
    try {
      return await recordGap(this.#opts.db, gap, status, reason);
    } catch (err) {
      this.#log.error({ err, exchange: gap.exchange, symbol: gap.symbol, fromId: gap.from, toId: gap.to }, 'could not record gap in the gaps table');
      return null;
    }
  }

  async #work(exchange: Exchange): Promise<void> {
    const queue = this.#queues.get(exchange)!;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const job = queue.shift();
      if (!job) {
        await new Promise<void>((resolve) => this.#wake.set(exchange, resolve));
        this.#wake.delete(exchange);
        continue;
      }
      this.#inFlight++;
      try {
        await this.#fill(job, signal);
      } finally {
        this.#inFlight--;
        this.#queued.delete(this.#key(job.gap));
      }
    }
  }

  async #fill(job: Job, signal: AbortSignal): Promise<void> {
    const { gap } = job;
    const filler = this.#opts.fillers[gap.exchange]!;
    const where = { exchange: gap.exchange, symbol: gap.symbol, fromId: gap.from, toId: gap.to };
    job.id ??= await this.#record(gap, 'open', null);
    const started = Date.now();
    try {
      // A redundant collector (or a replayed journal) may already have stored the range: no REST call needed.
      const stored = await storedInRange(this.#opts.db, gap).catch(() => 0); // database down: ask REST anyway
      if (stored === gap.to - gap.from + 1) {
        this.#setUnfillable(job, false);
        await this.#markFilled(job);
        this.#log.info({ ...where }, 'gap already stored (another collector or a replayed journal): filled without REST');
        return;
      }
      const result = await filler.fill(gap.symbol, gap, (ticks) => this.#deliver(ticks, signal), signal);
      await this.#opts.flush();
      this.#backfilledTicks += result.delivered;
      if (result.missing.length === 0) {
        this.#setUnfillable(job, false);
        await this.#markFilled(job);
        this.#log.info({ ...where, delivered: result.delivered, ms: Date.now() - started }, 'gap filled');
      } else {
        const missing = result.missing.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
        const reason = `exchange returned no trades for ids ${missing.slice(0, 300)}`;
        this.#setUnfillable(job, true);
        if (job.id !== null) await markGap(this.#opts.db, job.id, 'unfillable', reason);
        this.#log.warn({ ...where, delivered: result.delivered, reason }, 'gap not fillable now; will retry');
      }
    } catch (err) {
      if (signal.aborted) return;
      const reason = err instanceof Error ? err.message : String(err);
      this.#setUnfillable(job, true);
      this.#log.warn({ ...where, err }, 'gap not fillable now; will retry');
      if (job.id !== null) await markGap(this.#opts.db, job.id, 'unfillable', reason.slice(0, 500)).catch((e: unknown) => this.#log.error({ err: e }, 'could not mark gap'));
    } finally {
      // Without a row the retry loop would never see this gap again: keep it until it is recorded (and, once the
      // database is back, confirmed stored).
      if (job.id === null && !signal.aborted) this.#keepUnrecorded(job);
    }
  }

  /** Counted once, when its row turns filled; a gap without a row yet is counted when it is confirmed later. */
  async #markFilled(job: Job): Promise<void> {
    if (job.id !== null && (await markGap(this.#opts.db, job.id, 'filled', null))) this.#filled++;
  }

  /** Holes a previous run left in the table (it could not record them): found in the background, then filled. */
  async #scanForHoles(seeded: ReadonlyArray<{ exchange: Exchange; symbol: string; last: number }>): Promise<void> {
    for (const { exchange, symbol, last } of seeded) {
      if (this.#abort.signal.aborted || !this.#queues.has(exchange)) continue;
      try {
        for (const gap of await holesInTable(this.#opts.db, exchange, symbol, last, STARTUP_SCAN_IDS)) {
          if (this.#abort.signal.aborted) return;
          this.#admit(gap, 'trade id gap found in the table at start');
        }
      } catch (err) {
        this.#log.warn({ err, exchange, symbol }, 'could not scan the table for holes at start');
      }
    }
  }

  #keepUnrecorded(job: Job): void {
    if (this.#unrecorded.length >= MAX_QUEUED_GAPS) {
      const { gap } = job;
      this.#log.error({ exchange: gap.exchange, symbol: gap.symbol, fromId: gap.from, toId: gap.to }, 'too many gaps waiting for the database: this one is only in the log');
      return;
    }
    this.#unrecorded.push(job);
  }

  #setUnfillable(job: Job, unfillable: boolean): void {
    if (job.unfillable !== unfillable) this.#unfillable += unfillable ? 1 : -1;
    job.unfillable = unfillable;
  }

  /** Hands fetched trades to the writer, waiting politely if it asks for backpressure. */
  async #deliver(ticks: readonly Tick[], signal: AbortSignal): Promise<void> {
    for (const tick of ticks) {
      if (!this.#opts.sink.write(tick)) await this.#drained(signal);
    }
  }

  #drained(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const off = this.#opts.sink.onDrain(() => {
        signal.removeEventListener('abort', onAbort);
        off();
        resolve();
      });
      const onAbort = () => {
        off();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async #retryUnfilled(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    for (const job of this.#unrecorded.splice(0)) this.#enqueue(job);
    try {
      const rows = await unfilledGaps(this.#opts.db, this.#opts.config.maxGap, RETRY_BATCH);
      for (const row of rows) {
        if (this.#abort.signal.aborted) return;
        if (row.status === 'unfillable' && !this.#queued.has(this.#key(row))) this.#unfillable++;
        this.#enqueue({ gap: { exchange: row.exchange, symbol: row.symbol, from: row.from, to: row.to }, id: row.id, unfillable: row.status === 'unfillable' });
      }
    } catch (err) {
      this.#log.warn({ err }, 'could not read unfilled gaps; will try again');
    }
  }
}
