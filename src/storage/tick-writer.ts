/**
 * The one writer: bounded in-memory buffer -> batches (by size or age) -> one `insert ... select from unnest(...)
 * on conflict do nothing` round trip per batch, up to `batchesInFlight` batches at once (each on its own pool
 * connection: PostgreSQL works on them in parallel, so one slow statement no longer caps the rate; rows are
 * idempotent, so the order in which batches commit does not matter). Overflow beyond the bound goes to the spill
 * journal; the journal is replayed when the database keeps up again. A data error splits the batch to isolate the bad row. Nothing received
 * is ever dropped: if even the journal fails, write() returns false (backpressure) and ticks wait in memory.
 *
 * The buffer and the batches being written hold ticks as columns outside the JS heap (tick-rows.ts), not as objects.
 *
 * Every received tick is in exactly one place: `#buffer` (waiting), `#inflight` (the batches being written),
 * `#overflow` (waiting for the journal), `#spilling` (being appended), the journal, or the table (or rejected).
 */
import pRetry, { AbortError } from 'p-retry';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Logger } from '../logger.ts';
import type { PipelineSnapshot } from '../snapshots.ts';
import type { Tick, TickSink } from '../tick.ts';
import { classifyDbError, describeDbError, SpillError } from './errors.ts';
import { MAX_INSTRUMENTS } from './instruments.ts';
import type { Instruments } from './instruments.ts';
import { daysOf } from './partitions.ts';
import type { Database } from './schema.ts';
import { InstrumentIndex, TickRows } from './tick-rows.ts';
import type { Journal, Segment } from './spill.ts';

export interface WriterOptions {
  readonly batchMaxRows: number;
  /** A batch with at least batchMinRows rows is written once its first row is this old. */
  readonly batchMaxAgeMs: number;
  /**
   * Below this many rows at batchMaxAgeMs, a batch waits for more, up to batchLingerMs from its first row (default 0:
   * never waits). Each batch costs a round trip whatever its size (~1 ms of the collector's CPU on a 2-core VM), so
   * at low rates this is most of the cost per tick; at high rates batches fill past it and nothing changes.
   */
  readonly batchMinRows?: number;
  readonly batchLingerMs?: number;
  readonly maxBufferedTicks: number;
  /** Batches written at once, each on its own pool connection (default 1). */
  readonly batchesInFlight?: number;
  /** Retry backoff bounds for a failing batch. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/** A batch being written; `journaled` once a copy of it is in the journal (replayed chunks are, from the start). */
interface Slot {
  readonly rows: TickRows;
  journaled: boolean;
}

interface Entry {
  readonly t: Tick;
  /** Writer sequence number (1, 2, ...); 0 for ticks replayed from the journal. */
  readonly s: number;
}

/** FIFO with O(1) push/shift and cheap bulk take. */
class Queue<T> {
  #items: T[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(v: T): void {
    this.#items.push(v);
  }
  unshiftAll(vs: readonly T[]): void {
    this.#items = [...vs, ...this.#items.slice(this.#head)];
    this.#head = 0;
  }
  peek(): T | undefined {
    return this.#items[this.#head];
  }
  take(n: number): T[] {
    const out = this.#items.slice(this.#head, this.#head + n);
    this.#head += out.length;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }
}

const LATENCY_WINDOW = 1024;
const SPILL_RETRY_MIN_MS = 200;
/** The database counts as down (flush() then settles for the journal) after this many failures over this long. */
const DOWN_AFTER_FAILURES = 3;
const DOWN_AFTER_MS = 1_000;
const SPILL_RETRY_MAX_MS = 5_000;
/** While the journal stays unwritable, say again this often how many ticks are held in memory. */
const SPILL_FAIL_LOG_EVERY_MS = 10_000;

/**
 * One statement per batch into the compact partitioned table (migrations/20261122T0001_partitioned_ticks.ts): eight
 * parallel arrays, `on conflict do nothing` (each partition's unique index on (instrument_id, trade_id)). The six
 * integer arrays are binary (Buffers: pg sends them in binary format), price and qty binary numerics when every
 * value of the column is a plain decimal, else text literals (TickRows.params).
 */
const INSERT_SQL = (cols: readonly unknown[]) => sql`
  insert into tick_rows (trade_time, trade_id, received_at, received_delay_ms, instrument_id, flags, price, qty)
  select timestamptz 'epoch' + t * interval '1 millisecond', id,
         timestamptz 'epoch' + r * interval '1 millisecond', d, i, f, p, q
  from unnest(${cols[0]}::int8[], ${cols[1]}::int8[], ${cols[2]}::int8[], ${cols[3]}::int2[], ${cols[4]}::int2[],
              ${cols[5]}::int2[], ${cols[6]}::numeric[], ${cols[7]}::numeric[])
       as u(t, id, r, d, i, f, p, q)
  on conflict do nothing`;

/** PostgreSQL's routing failure: no partition covers a row's trade_time (SQLSTATE 23514, like a check violation). */
function isMissingPartition(err: unknown): boolean {
  return err instanceof Error && /no partition of relation .* found for row/.test(err.message);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export class TickWriter implements TickSink {
  readonly #db: Kysely<Database>;
  readonly #instruments: Instruments;
  readonly #ensurePartitions: (days: readonly number[]) => Promise<readonly string[]>;
  readonly #journal: Journal;
  readonly #log: Logger;
  readonly #o: Required<WriterOptions>;

  /** Instruments of the rows in memory, by a small index (bounded like the instruments table). */
  readonly #index = new InstrumentIndex(MAX_INSTRUMENTS);
  readonly #buffer = new TickRows(this.#index);
  #inflight: Slot[] = [];
  /** Batch writes running (a batch aborted by close stays in #inflight after its write ended). */
  #running = 0;
  /** A batch write failed with something other than close's abort (not expected: failures are retried). */
  #failure: { err: unknown } | undefined;
  readonly #overflow = new Queue<Entry>();
  #spilling: Entry[] = [];

  #seq = 0;
  #stored = 0;
  #duplicate = 0;
  #rejected = 0;
  #batches = 0;
  #writeErrors = 0;
  #lastWriteOkAt: number | null = null;
  readonly #latencies: number[] = [];
  #dbDown = false;
  #failuresSinceOk = 0;
  #firstFailureAt: number | undefined;
  #backpressure = false;
  #spillFailing = false;

  readonly #drainListeners = new Set<() => void>();
  readonly #storedListeners = new Set<(ticks: readonly Tick[]) => void>();
  readonly #flushWaiters: Array<{ upTo: number; resolve: () => void }> = [];

  #wakeLoop: (() => void) | undefined;
  /** Armed while the batch being gathered is not due yet. */
  #ageTimer: NodeJS.Timeout | undefined;
  /** The buffered rows are due: written as soon as no batch is in flight. */
  #due = false;
  /** performance.now() when the batch being gathered got its first row. */
  #gatherStartedAt = 0;
  /** The batch is past batchMaxAgeMs below batchMinRows rows: due at batchMinRows rows or at batchLingerMs. */
  #lingering = false;
  #spillTimer: NodeJS.Timeout | undefined;
  #spillRunning = false;
  #spillDelayMs = SPILL_RETRY_MIN_MS;
  #spillFailLoggedAt = 0;
  #replay: { seg: Segment; it: AsyncGenerator<Tick[]> } | undefined;
  #loop: Promise<void>;
  #closing = false;
  #closed = false;
  readonly #abort = new AbortController();

  constructor(opts: {
    db: Kysely<Database>;
    journal: Journal;
    logger: Logger;
    instruments: Instruments;
    /** Creates the missing partitions of these days (days since the epoch, UTC); resolves with the days created. */
    ensurePartitions: (days: readonly number[]) => Promise<readonly string[]>;
  } & WriterOptions) {
    this.#db = opts.db;
    this.#instruments = opts.instruments;
    this.#ensurePartitions = opts.ensurePartitions;
    this.#journal = opts.journal;
    this.#log = opts.logger;
    this.#o = {
      batchMaxRows: opts.batchMaxRows,
      batchMaxAgeMs: opts.batchMaxAgeMs,
      batchMinRows: Math.max(0, Math.floor(opts.batchMinRows ?? 0)),
      batchLingerMs: opts.batchLingerMs ?? opts.batchMaxAgeMs,
      maxBufferedTicks: opts.maxBufferedTicks,
      batchesInFlight: Math.max(1, Math.floor(opts.batchesInFlight ?? 1)),
      retryMinMs: opts.retryMinMs ?? 100,
      retryMaxMs: opts.retryMaxMs ?? 5_000,
    };
    this.#loop = this.#run().catch((err: unknown) => {
      // Not expected (the loop only ends on close); ticks still in memory are journaled by close().
      this.#log.fatal({ err }, 'tick writer loop failed; ticks are kept in memory until close journals them');
    });
  }

  // ---- TickSink ----

  write(tick: Tick): boolean {
    const seq = ++this.#seq;
    if (this.#closed) {
      this.#writeAfterClose({ t: tick, s: seq });
      return false;
    }
    if (this.#overflow.length === 0 && this.#spilling.length === 0 && this.#depth() < this.#o.maxBufferedTicks) {
      if (!this.#buffer.push(tick, seq)) this.#refuse(tick);
      else if (this.#buffer.length >= this.#o.batchMaxRows) this.#wake();
      else if (this.#lingering) {
        if (this.#buffer.length >= this.#o.batchMinRows) this.#batchDue();
      } else if (!this.#ageTimer && !this.#due) {
        this.#gatherStartedAt = performance.now();
        this.#ageTimer = setTimeout(() => this.#onAge(), this.#o.batchMaxAgeMs);
      }
    } else {
      this.#overflow.push({ t: tick, s: seq });
      if (this.#overflow.length >= this.#overflowCap()) this.#setBackpressure(true, 'spill journal is not keeping up');
      this.#scheduleSpill(0);
    }
    return !this.#backpressure;
  }

  /** The age timer: the batch is due, or (below batchMinRows rows) lingers for more until batchLingerMs. */
  #onAge(): void {
    const rest = this.#o.batchLingerMs - (performance.now() - this.#gatherStartedAt);
    if (this.#buffer.length < this.#o.batchMinRows && rest >= 1) {
      this.#lingering = true;
      this.#ageTimer = setTimeout(() => this.#onAge(), rest);
      return;
    }
    this.#batchDue();
  }

  #batchDue(): void {
    this.#endGathering(true);
    this.#wake();
  }

  /** The batch being gathered stops waiting: due now, or (`due` false: taken whole) the next write starts a new one. */
  #endGathering(due: boolean): void {
    clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
    this.#lingering = false;
    this.#due = due;
  }

  onDrain(listener: () => void): () => void {
    this.#drainListeners.add(listener);
    return () => this.#drainListeners.delete(listener);
  }

  // ---- API used by Storage ----

  onStored(listener: (ticks: readonly Tick[]) => void): () => void {
    this.#storedListeners.add(listener);
    return () => this.#storedListeners.delete(listener);
  }

  flush(): Promise<void> {
    const upTo = this.#seq;
    return new Promise<void>((resolve) => {
      this.#flushWaiters.push({ upTo, resolve });
      if (this.#dbDown) this.#journalEverything();
      this.#wake();
      this.#checkFlushWaiters();
    });
  }

  snapshot(): PipelineSnapshot {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    return {
      ticksReceived: this.#seq,
      ticksStored: this.#stored,
      ticksDuplicate: this.#duplicate,
      ticksRejected: this.#rejected,
      bufferDepth: this.#depth(),
      bufferMax: this.#o.maxBufferedTicks,
      journalBytes: this.#journal.bytes,
      journalTicks: this.#journal.ticks,
      batches: this.#batches,
      batchLatencyMsP50: percentile(sorted, 0.5),
      batchLatencyMsP99: percentile(sorted, 0.99),
      batchLatencyMsMax: sorted.length ? sorted[sorted.length - 1]! : 0,
      lastWriteOkAt: this.#lastWriteOkAt,
      writeErrors: this.#writeErrors,
      backpressure: this.#backpressure,
      ...this.#held(),
    };
  }

  /** Ticks only in memory (not yet in the journal or the table), and of those the ones waiting for the journal. */
  #held(): { ticksInMemory: number; ticksAwaitingJournal: number } {
    const awaiting = this.#overflow.length + this.#spilling.length;
    const inflight = this.#unjournaledInflight().length;
    return { ticksInMemory: this.#buffer.length + inflight + awaiting, ticksAwaitingJournal: awaiting };
  }

  /** Where the ticks are, for the log lines about the journal: how many are held in memory, and what is on disk. */
  #whereTicksAre(): Record<string, unknown> {
    const { ticksInMemory, ticksAwaitingJournal } = this.#held();
    return {
      heldInMemory: ticksInMemory,
      awaitingJournal: ticksAwaitingJournal,
      buffered: this.#buffer.length,
      journal: { dir: this.#journal.dir, ticks: this.#journal.ticks, bytes: this.#journal.bytes },
    };
  }

  /**
   * Stop accepting new work into the database path, write what is buffered (retrying) until `drainDeadline`, then
   * journal whatever is still in memory. Never rejects.
   */
  #closePromise: Promise<void> | undefined;

  close(drainMs: number): Promise<void> {
    this.#closePromise ??= this.#close(drainMs);
    return this.#closePromise;
  }

  async #close(drainMs: number): Promise<void> {
    this.#closing = true;
    const timer = setTimeout(() => this.#abort.abort(new Error('storage close deadline reached')), Math.max(0, drainMs));
    this.#wake();
    try {
      await this.#loop;
      // Let a spill append that is already running finish, bounded by the same deadline.
      while ((this.#spillRunning || this.#overflow.length > 0) && !this.#abort.signal.aborted && !this.#spillFailing) {
        this.#scheduleSpill(0);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      clearTimeout(timer);
    }
    this.#closed = true;
    clearTimeout(this.#ageTimer);
    clearTimeout(this.#spillTimer);
    await this.#replay?.it.return(undefined).catch(() => undefined);
    this.#replay = undefined;
    const left = [...this.#unjournaledInflight(), ...this.#buffer.take(Infinity).entries(), ...this.#overflow.take(Infinity)];
    if (!this.#spillRunning) left.push(...this.#spilling);
    this.#inflight = [];
    if (left.length > 0) {
      try {
        this.#journal.appendSync(left.map((e) => e.t), minSeq(left));
        this.#log.warn({ ticks: left.length, dir: this.#journal.dir }, 'database not reachable before the close deadline; ticks journaled for the next run');
      } catch (err) {
        this.#log.fatal({ err, ticks: left.length, dir: this.#journal.dir }, `cannot journal ${left.length} ticks at shutdown: they are lost`);
      }
    }
    for (const w of this.#flushWaiters.splice(0)) w.resolve();
  }

  /**
   * The emergency exit (the process must leave now, a graceful close is not possible): journal synchronously every
   * tick that is only in memory, and from then on journal each write at once. Returns the ticks written; throws
   * SpillError if the journal cannot take them. A batch in flight or an append under way may be journaled twice:
   * harmless, the primary key keeps one row.
   */
  emergencyJournal(): number {
    this.#closed = true;
    const left = [...this.#unjournaledInflight(), ...this.#buffer.take(Infinity).entries(), ...this.#overflow.take(Infinity), ...this.#spilling];
    if (left.length === 0) return 0;
    this.#journal.appendSync(left.map((e) => e.t), minSeq(left));
    for (const slot of this.#inflight) slot.journaled = true;
    return left.length;
  }

  // ---- the loop ----

  #depth(): number {
    let n = this.#buffer.length;
    for (const slot of this.#inflight) n += slot.rows.length;
    return n;
  }

  /** The ticks of the batches being written that the journal does not hold. */
  #unjournaledInflight(): Entry[] {
    const out: Entry[] = [];
    for (const slot of this.#inflight) if (!slot.journaled) out.push(...slot.rows.entries());
    return out;
  }

  #overflowCap(): number {
    return Math.max(this.#o.batchMaxRows * 4, Math.ceil(this.#o.maxBufferedTicks / 2));
  }

  #wake(): void {
    const w = this.#wakeLoop;
    this.#wakeLoop = undefined;
    w?.();
  }

  async #run(): Promise<void> {
    for (;;) {
      if (this.#failure) throw this.#failure.err;
      if (this.#abort.signal.aborted) {
        // Closing past its deadline: the batches being written give up (they stay in #inflight for close()).
        if (this.#running === 0) return;
        await this.#nextWake();
        continue;
      }
      this.#refillFromOverflow();
      const flushing = this.#closing || this.#flushWaiters.length > 0;
      if (this.#buffer.length > 0 && this.#running === 0 && (flushing || this.#buffer.length >= this.#o.batchMaxRows || this.#due)) {
        // One round: one batch, or (when more than a batch waits) up to batchesInFlight batches at once, each
        // holding whole instruments where it can (see splitRound), and the next round once they are all written.
        for (const batch of splitRound(this.#buffer.take(this.#o.batchMaxRows * this.#o.batchesInFlight), this.#o.batchMaxRows)) this.#launch(batch);
        // Taken whole: the next write starts a new batch with its own age. Rows left over stay due if they were.
        if (this.#buffer.length === 0) this.#endGathering(false);
        continue;
      }
      if (this.#running === 0) {
        // Closing: the buffer is written; what is still in overflow goes to the journal (close() waits for that).
        if (this.#closing) return;
        if (!this.#journal.isEmpty && (await this.#replayChunk())) continue;
        this.#checkFlushWaiters();
      }
      await this.#nextWake();
    }
  }

  /** Resolves at the next #wake() (a write, a batch done, the age timer, close); every 50 ms while the journal waits. */
  #nextWake(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wakeLoop = resolve;
      // Re-check journal replay periodically (a segment may have become readable).
      if (this.#running === 0 && !this.#journal.isEmpty) setTimeout(() => this.#wake(), 50).unref();
    });
  }

  /** Starts writing one batch taken from the buffer; the loop goes on (up to batchesInFlight at once). */
  #launch(batch: TickRows): void {
    const slot: Slot = { rows: batch, journaled: false };
    this.#inflight.push(slot);
    this.#running++;
    this.#store(batch).then(
      () => {
        this.#dropSlot(slot);
        this.#buffer.recycle(batch);
        this.#checkFlushWaiters();
      },
      (err: unknown) => {
        // Aborted by close: the batch stays in #inflight, close() journals it.
        if (!this.#abort.signal.aborted) this.#failure ??= { err };
      },
    ).finally(() => {
      this.#running--;
      this.#wake();
    });
  }

  /** Forgets a written batch (close may have emptied #inflight already). */
  #dropSlot(slot: Slot): void {
    const i = this.#inflight.indexOf(slot);
    if (i >= 0) this.#inflight.splice(i, 1);
  }

  /** Moves ticks that never reached the journal back into the buffer when there is room. */
  #refillFromOverflow(): void {
    if (this.#spillRunning) return;
    const room = this.#o.maxBufferedTicks - this.#depth();
    if (room > 0 && this.#overflow.length > 0) {
      for (const e of this.#overflow.take(room)) if (!this.#buffer.push(e.t, e.s)) this.#refuse(e.t);
      this.#due = true; // rows that waited for the journal are old already
      this.#afterOverflowShrunk();
    }
  }

  /** Replays one chunk of the oldest journal segment; false if nothing could be read now. */
  async #replayChunk(): Promise<boolean> {
    if (this.#dbDown) return false;
    if (!this.#replay) {
      const seg = this.#journal.nextForReplay();
      if (!seg) return false;
      this.#replay = { seg, it: this.#journal.read(seg, this.#o.batchMaxRows) };
      this.#log.info({ segment: seg.path, ticks: seg.ticks }, 'replaying spill journal segment');
    }
    const { seg, it } = this.#replay;
    let next: IteratorResult<Tick[]>;
    try {
      next = await it.next();
    } catch (err) {
      this.#replay = undefined;
      this.#log.error({ err, segment: seg.path }, 'cannot read spill journal segment; will retry');
      return false;
    }
    if (next.done) {
      this.#replay = undefined;
      await this.#journal.remove(seg).catch((err: unknown) => this.#log.error({ err, segment: seg.path }, 'cannot remove replayed journal segment'));
      this.#log.info({ segment: seg.path }, 'spill journal segment replayed and removed');
      this.#checkFlushWaiters();
      return true;
    }
    const rows = new TickRows(this.#index, next.value.length);
    for (const t of next.value) if (!rows.push(t, 0)) this.#refuse(t);
    const slot: Slot = { rows, journaled: true }; // already on disk
    this.#inflight.push(slot);
    try {
      await this.#store(rows);
    } catch (err) {
      if (this.#abort.signal.aborted) return false;
      throw err;
    } finally {
      this.#dropSlot(slot);
    }
    return true;
  }

  /** Stores entries: retries transient failures, splits on data errors. Rejects only when close aborts. */
  async #store(rows: TickRows): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.#insertWithRetry(rows);
    } catch (err) {
      if (this.#abort.signal.aborted || classifyDbError(err) !== 'data') throw err;
      if (rows.length === 1) {
        this.#reject(rows.tick(0), err);
        return;
      }
      const mid = Math.ceil(rows.length / 2);
      await this.#store(rows.slice(0, mid));
      await this.#store(rows.slice(mid, rows.length));
    }
  }

  async #insertWithRetry(rows: TickRows): Promise<void> {
    const started = performance.now();
    const inserted = await pRetry(() => this.#insert(rows), {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: this.#o.retryMinMs,
      maxTimeout: this.#o.retryMaxMs,
      factor: 2,
      randomize: true,
      signal: this.#abort.signal,
      shouldRetry: ({ error }) => classifyDbError(error) !== 'data',
      onFailedAttempt: ({ error, attemptNumber }) => {
        const kind = classifyDbError(error);
        if (kind === 'data') return;
        this.#writeErrors++;
        this.#failuresSinceOk++;
        this.#firstFailureAt ??= Date.now();
        // One killed connection is not an outage: "down" means failing repeatedly for a while.
        if (this.#failuresSinceOk >= DOWN_AFTER_FAILURES && Date.now() - this.#firstFailureAt >= DOWN_AFTER_MS) this.#setDbDown(true);
        const fields = { reason: describeDbError(error), attempt: attemptNumber, rows: rows.length };
        if (kind === 'other') this.#log.error(fields, 'batch insert failed; retrying (not a connection error: check the schema)');
        else if (attemptNumber === 1 || attemptNumber % 10 === 0) this.#log.warn(fields, 'batch insert failed; retrying');
        if (this.#flushWaiters.length > 0) this.#journalEverything();
      },
    });
    const elapsed = performance.now() - started;
    this.#failuresSinceOk = 0;
    this.#firstFailureAt = undefined;
    this.#setDbDown(false);
    this.#batches++;
    this.#stored += inserted;
    this.#duplicate += rows.length - inserted;
    this.#lastWriteOkAt = Date.now();
    this.#latencies.push(elapsed);
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift();
    if (this.#storedListeners.size === 0) return;
    const ticks = rows.ticks();
    for (const l of this.#storedListeners) {
      try {
        l(ticks);
      } catch (err) {
        this.#log.error({ err }, 'onStored listener threw');
      }
    }
  }

  async #insert(rows: TickRows): Promise<number> {
    if (this.#abort.signal.aborted) throw new AbortError(this.#abort.signal.reason as Error);
    const keys = rows.instruments();
    if (keys.some((k) => this.#instruments.id(k.exchange, k.symbol) === undefined)) await this.#instruments.register(keys);
    try {
      return await this.#execute(rows);
    } catch (err) {
      if (!isMissingPartition(err)) throw err;
      // A trade from a day without a partition (a backfill from days ago, a clock that jumped): create it, retry.
      const created = await this.#ensurePartitions(daysOf(rows.tradeTimes()));
      if (created.length > 0) this.#log.warn({ days: created }, 'partitions created on demand for trades of days that had none');
      return await this.#execute(rows);
    }
  }

  async #execute(rows: TickRows): Promise<number> {
    const result = await INSERT_SQL(rows.params((k) => this.#instruments.id(k.exchange, k.symbol))).execute(this.#db);
    return Number(result.numAffectedRows ?? 0n);
  }

  #reject(tick: Tick, err: unknown): void {
    this.#rejected++;
    this.#log.warn({ tick, reason: describeDbError(err) }, 'tick rejected by the database; the rest of its batch is stored');
  }

  /** A tick of one instrument more than the writer holds (MAX_INSTRUMENTS): the table could not register it either. */
  #refuse(tick: Tick): void {
    this.#rejected++;
    this.#log.warn({ tick, max: MAX_INSTRUMENTS }, `tick rejected: the writer already holds ticks of its maximum of ${MAX_INSTRUMENTS} instruments`);
  }

  #setDbDown(down: boolean): void {
    if (down === this.#dbDown) return;
    this.#dbDown = down;
    if (down) this.#log.warn('database unavailable; buffering (and journaling beyond the buffer bound)');
    else {
      this.#log.info('database writes succeed again');
      this.#wake();
    }
  }

  // ---- spill ----

  /** While the database is down and someone waits for flush(): put everything in memory on disk. */
  #journalEverything(): void {
    if (this.#closed) return;
    const buffered = this.#buffer.take(Infinity).entries();
    if (buffered.length > 0) this.#overflow.unshiftAll(buffered);
    for (const slot of this.#inflight) {
      if (slot.journaled) continue;
      // A copy: the retrying batch stays in memory and will still be written; the replay is idempotent.
      this.#overflow.unshiftAll(slot.rows.entries());
      slot.journaled = true;
    }
    this.#scheduleSpill(0);
  }

  #scheduleSpill(delayMs: number): void {
    if (this.#spillRunning || this.#spillTimer || this.#closed) return;
    this.#spillTimer = setTimeout(() => {
      this.#spillTimer = undefined;
      void this.#spill();
    }, delayMs);
  }

  async #spill(): Promise<void> {
    if (this.#spillRunning) return;
    this.#spillRunning = true;
    try {
      while (this.#overflow.length > 0 && !this.#closed) {
        this.#spilling = this.#overflow.take(Math.max(this.#o.batchMaxRows, 1000));
        try {
          await this.#journal.append(this.#spilling.map((e) => e.t), minSeq(this.#spilling));
        } catch (err) {
          this.#overflow.unshiftAll(this.#spilling);
          this.#spilling = [];
          const now = Date.now();
          if (!this.#spillFailing || now - this.#spillFailLoggedAt >= SPILL_FAIL_LOG_EVERY_MS) {
            this.#spillFailLoggedAt = now;
            this.#log.error({ err: err instanceof SpillError ? { message: err.message, code: err.code } : err, ...this.#whereTicksAre() },
              this.#spillFailing
                ? 'spill journal still unwritable: ticks held in memory under backpressure'
                : 'SPILL JOURNAL UNWRITABLE: ticks are held in memory and producers are asked to pause (backpressure)');
          }
          this.#spillFailing = true;
          this.#setBackpressure(true, 'spill journal unwritable');
          this.#spillDelayMs = Math.min(SPILL_RETRY_MAX_MS, this.#spillDelayMs * 2);
          return;
        }
        this.#spilling = [];
        if (this.#spillFailing) this.#log.info(this.#whereTicksAre(), 'spill journal writable again');
        this.#spillFailing = false;
        this.#spillDelayMs = SPILL_RETRY_MIN_MS;
        this.#afterOverflowShrunk();
        this.#checkFlushWaiters();
      }
    } finally {
      this.#spillRunning = false;
      if (this.#overflow.length > 0 && !this.#closed) this.#scheduleSpill(this.#spillFailing ? this.#spillDelayMs : 0);
      this.#wake();
    }
  }

  #afterOverflowShrunk(): void {
    if (!this.#backpressure) return;
    const calm = this.#overflow.length === 0 || (!this.#spillFailing && this.#overflow.length < this.#overflowCap() / 2);
    if (calm) this.#setBackpressure(false, this.#spillFailing ? 'memory drained into the database' : 'spill journal keeps up');
    this.#checkFlushWaiters();
  }

  #setBackpressure(on: boolean, why: string): void {
    if (on === this.#backpressure) return;
    this.#backpressure = on;
    if (on) this.#log.error({ why, ...this.#whereTicksAre() }, 'backpressure ON: producers should pause');
    else {
      this.#log.info({ why }, 'backpressure OFF');
      for (const l of [...this.#drainListeners]) {
        try {
          l();
        } catch (err) {
          this.#log.error({ err }, 'onDrain listener threw');
        }
      }
    }
  }

  #writeAfterClose(entry: Entry): void {
    try {
      this.#journal.appendSync([entry.t], entry.s);
      this.#log.warn({ exchange: entry.t.exchange, symbol: entry.t.symbol, tradeId: entry.t.tradeId }, 'tick written after storage close; journaled for the next run');
    } catch (err) {
      this.#log.fatal({ err, tick: entry.t }, 'tick written after storage close and the journal is unwritable: tick lost');
    }
  }

  // ---- flush bookkeeping ----

  /** True when no tick with sequence <= upTo is still only in memory (or only in the journal while the DB is up). */
  #settled(upTo: number): boolean {
    if (this.#buffer.firstSeq() <= upTo) return false;
    const over = this.#overflow.peek();
    if (over && over.s <= upTo) return false;
    if (this.#spilling.length > 0 && minSeq(this.#spilling) <= upTo) return false;
    for (const slot of this.#inflight) if (!(this.#dbDown && slot.journaled) && slot.rows.minSeq() <= upTo) return false;
    if (!this.#dbDown && this.#journal.minSeq <= upTo) return false;
    return true;
  }

  #checkFlushWaiters(): void {
    if (this.#flushWaiters.length === 0) return;
    for (let i = this.#flushWaiters.length - 1; i >= 0; i--) {
      const w = this.#flushWaiters[i]!;
      if (this.#settled(w.upTo)) {
        this.#flushWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }
}

/**
 * Splits a round's entries into ceil(n / maxRows) batches of at most `maxRows`, grouped by instrument: batches
 * written at once must not interleave their keys. Two batches holding the same instruments' consecutive trade ids,
 * inserted concurrently, put one's keys between the other's in the unique index, and the page splits that follow
 * leave leaf pages half full (measured on 1M ticks: 97.2 -> 102.4 bytes per tick). Grouped, each batch holds whole
 * instruments except one cut at each batch boundary (its lower ids in one batch, its higher in the next), so each
 * instrument's ids still reach the index in increasing runs. Within an instrument, ticks keep their arrival order.
 */
export function splitRound(rows: TickRows, maxRows: number): TickRows[] {
  if (rows.length <= maxRows) return rows.length > 0 ? [rows] : [];
  const grouped = rows.groupedByInstrument();
  const batches: TickRows[] = [];
  for (let i = 0; i < grouped.length; i += maxRows) batches.push(grouped.slice(i, i + maxRows));
  return batches;
}

function minSeq(entries: readonly Entry[]): number {
  let m = Number.POSITIVE_INFINITY;
  for (const e of entries) if (e.s < m) m = e.s;
  return m;
}
