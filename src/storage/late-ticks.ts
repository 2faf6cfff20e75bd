/**
 * Late live ticks (issue #14 d): a live trade whose id is at or below the last id seen for its symbol. Only these
 * come here (the gap tracker sends them); in-order ticks go straight to the writer and pay nothing.
 *
 * Each late tick is compared with the stored row of the same (exchange, symbol, trade id), looked up once the
 * writer has committed everything received before it, in batches:
 * - same price, qty, side and trade time: a **duplicate** (counted in ticksDuplicate, as the writer counts them);
 * - stored with other values: a **conflict**: counted (`ticks_conflicting_total`), logged with both versions
 *   (rate-limited), and not written: the stored row stays as first written. Not writing matters: a conflicting
 *   version with another trade time could land in another day's partition, where no unique index would stop it;
 * - not stored anywhere: **genuinely new**, written through the writer and counted as out of order.
 *
 * The lookup probes the partitions within a day either side of the late tick's own trade time (run-time partition
 * pruning: at most three unique-index probes per tick, however many days are kept; 2,000 ticks in about 20 ms on
 * 33 partitions, against 160 ms probing every partition), and the legacy table while one exists. A stored version
 * whose time is more than a day away from the late one's is not seen; the late tick is then taken as new. If it keeps failing (database down), or at close, the ticks are written unchecked (the writer's
 * `on conflict do nothing` still stores a same-time copy once) and counted as such: nothing is ever dropped. The
 * queue is bounded; past `maxPending` write() asks the producer to pause, as the writer does.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Logger } from '../logger.ts';
import type { Tick, TickSink } from '../tick.ts';
import { legacyPresent } from './legacy.ts';
import { FLAG_SELL } from './schema.ts';
import type { Database } from './schema.ts';

export interface LateTicksOptions {
  readonly db: Kysely<Database>;
  /** The writer: genuinely new late ticks go there. */
  readonly sink: TickSink;
  /** Resolves when everything the writer accepted so far is stored (the writer's flush). */
  readonly flush: () => Promise<void>;
  readonly logger: Logger;
  readonly maxPending?: number;
  readonly batchSize?: number;
}

export interface LateTicksSnapshot {
  /** Waiting for (or in) a lookup. */
  readonly pending: number;
  readonly duplicate: number;
  readonly conflicting: number;
  readonly outOfOrder: number;
  /** Written without a lookup (the database did not answer, or at close). */
  readonly unchecked: number;
}

interface StoredVersion {
  readonly price: string;
  readonly qty: string;
  readonly side: 'buy' | 'sell';
  readonly tradeTime: number;
}

const MAX_PENDING = 20_000;
/** How far from a late tick's trade time its stored version is looked for. */
const LOOKUP_WINDOW_MS = 86_400_000;
const BATCH = 2_000;
const LOOKUP_ATTEMPTS = 3;
const LOG_WINDOW_MS = 10_000;
const LOGS_PER_WINDOW = 5;

/** Equal as decimals: "42219.90" and "42219.9" are the same price (the exchange may format them differently). */
export function sameDecimal(a: string, b: string): boolean {
  return normalizeDecimal(a) === normalizeDecimal(b);
}

function normalizeDecimal(s: string): string {
  const dot = s.indexOf('.');
  const int = (dot < 0 ? s : s.slice(0, dot)).replace(/^0+(?=\d)/, '');
  const frac = dot < 0 ? '' : s.slice(dot + 1).replace(/0+$/, '');
  return frac ? `${int}.${frac}` : int;
}

function sameTrade(stored: StoredVersion, t: Tick): boolean {
  return stored.side === t.side && stored.tradeTime === t.tradeTime && sameDecimal(stored.price, t.price) && sameDecimal(stored.qty, t.qty);
}

const short = (s: unknown) => {
  const v = String(s);
  return v.length > 64 ? `${v.slice(0, 64)}...` : v;
};

/** At most LOGS_PER_WINDOW lines per window; the next line says how many were left out. */
class Throttle {
  #windowStart = 0;
  #inWindow = 0;
  #suppressed = 0;
  take(now: number): number | null {
    if (now - this.#windowStart >= LOG_WINDOW_MS) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= LOGS_PER_WINDOW) {
      this.#suppressed++;
      return null;
    }
    this.#inWindow++;
    const s = this.#suppressed;
    this.#suppressed = 0;
    return s;
  }
}

/** The stored version of each (exchange, symbol, trade id) of a batch, by its index in the batch. */
async function lookupStored(db: Kysely<Database>, batch: readonly Tick[]): Promise<Map<number, StoredVersion>> {
  const k = batch.map((_t, i) => i);
  const e = batch.map((t) => t.exchange);
  const s = batch.map((t) => t.symbol);
  const id = batch.map((t) => t.tradeId);
  const time = batch.map((t) => t.tradeTime);
  const keys = sql`unnest(${k}::int4[], ${e}::text[], ${s}::text[], ${id}::int8[], ${time}::int8[]) as u(k, e, s, id, t)`;
  const legacy = (await legacyPresent(db))
    ? sql`union all
          select u.k, l.price::text, l.qty::text, case l.side when 'sell' then ${FLAG_SELL} else 0 end, extract(epoch from l.trade_time) * 1000
          from ${keys} join ticks_legacy l on l.exchange = u.e and l.symbol = u.s and l.trade_id = u.id`
    : sql``;
  const r = await sql<{ k: number; price: string; qty: string; flags: number; time_ms: string }>`
    select u.k, t.price::text as price, t.qty::text as qty, t.flags, extract(epoch from t.trade_time) * 1000 as time_ms
    from ${keys}
    join instruments i on i.exchange = u.e and i.symbol = u.s
    join tick_rows t on t.instrument_id = i.instrument_id and t.trade_id = u.id
      and t.trade_time >= timestamptz 'epoch' + (u.t - ${LOOKUP_WINDOW_MS}::int8) * interval '1 millisecond'
      and t.trade_time < timestamptz 'epoch' + (u.t + ${LOOKUP_WINDOW_MS}::int8) * interval '1 millisecond'
    ${legacy}`.execute(db);
  const out = new Map<number, StoredVersion>();
  for (const row of r.rows) {
    if (out.has(row.k)) continue;
    out.set(row.k, { price: row.price, qty: row.qty, side: (row.flags & FLAG_SELL) === FLAG_SELL ? 'sell' : 'buy', tradeTime: Number(row.time_ms) });
  }
  return out;
}

export class LateTicks implements TickSink {
  readonly #o: LateTicksOptions;
  readonly #max: number;
  readonly #batch: number;
  #queue: Tick[] = [];
  /** The batch being looked up; whoever takes it (the loop, or close) owns it. */
  #inflight: Tick[] | null = null;
  #submitted = 0;
  #processed = 0;
  #duplicate = 0;
  #conflicting = 0;
  #outOfOrder = 0;
  #unchecked = 0;
  #full = false;
  #closing = false;
  #wake: (() => void) | undefined;
  readonly #loop: Promise<void>;
  readonly #drainListeners = new Set<() => void>();
  readonly #waiters: Array<{ upTo: number; resolve: () => void }> = [];
  readonly #conflictLog = new Throttle();
  readonly #orderLog = new Throttle();

  constructor(opts: LateTicksOptions) {
    this.#o = opts;
    this.#max = opts.maxPending ?? MAX_PENDING;
    this.#batch = opts.batchSize ?? BATCH;
    this.#loop = this.#run();
  }

  write(tick: Tick): boolean {
    this.#submitted++;
    if (this.#closing) {
      this.#forward([tick], true);
      return true;
    }
    this.#queue.push(tick);
    this.#wake?.();
    if (this.#queue.length >= this.#max) this.#full = true;
    return !this.#full;
  }

  onDrain(listener: () => void): () => void {
    this.#drainListeners.add(listener);
    return () => this.#drainListeners.delete(listener);
  }

  snapshot(): LateTicksSnapshot {
    return {
      pending: this.#queue.length + (this.#inflight?.length ?? 0),
      duplicate: this.#duplicate,
      conflicting: this.#conflicting,
      outOfOrder: this.#outOfOrder,
      unchecked: this.#unchecked,
    };
  }

  /** Resolves when every late tick written so far has been classified (and, if new, handed to the writer). */
  drain(): Promise<void> {
    const upTo = this.#submitted;
    if (this.#processed >= upTo) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ upTo, resolve }));
  }

  /** Stops looking up; whatever is still pending goes to the writer unchecked (within `deadlineMs`). */
  async close(deadlineMs = 2_000): Promise<void> {
    this.#closing = true;
    this.#wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
    clearTimeout(timer);
    const left = [...(this.#inflight ?? []), ...this.#queue];
    this.#inflight = null;
    this.#queue = [];
    this.#forward(left, true);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      if (this.#queue.length === 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const batch = this.#queue.splice(0, this.#batch);
      this.#inflight = batch;
      try {
        await this.#o.flush();
        const stored = await lookupStored(this.#o.db, batch);
        if (this.#inflight !== batch) return; // close took it
        this.#classify(batch, stored);
        failures = 0;
      } catch (err) {
        if (this.#inflight !== batch) return;
        failures++;
        if (failures < LOOKUP_ATTEMPTS && !this.#closing) {
          this.#inflight = null;
          this.#queue.unshift(...batch);
          await new Promise((r) => setTimeout(r, 200 * failures));
          continue;
        }
        this.#o.logger.warn({ err, ticks: batch.length }, 'late ticks could not be checked against the stored rows; written unchecked');
        this.#forward(batch, true);
        failures = 0;
      }
      this.#inflight = null;
      this.#settle();
    }
  }

  #classify(batch: readonly Tick[], stored: Map<number, StoredVersion>): void {
    const fresh = new Map<string, StoredVersion>();
    const news: Tick[] = [];
    batch.forEach((t, i) => {
      const key = `${t.exchange}\u0000${t.symbol}\u0000${t.tradeId}`;
      const prior = stored.get(i) ?? fresh.get(key);
      if (!prior) {
        fresh.set(key, t);
        news.push(t);
        this.#outOfOrder++;
        const suppressed = this.#orderLog.take(Date.now());
        if (suppressed !== null) {
          this.#o.logger.warn({ exchange: t.exchange, symbol: short(t.symbol), tradeId: t.tradeId, suppressedSinceLast: suppressed },
            'out-of-order trade: id at or below the last one seen, not stored before; stored now');
        }
      } else if (sameTrade(prior, t)) {
        this.#duplicate++;
      } else {
        this.#conflicting++;
        this.#logConflict(prior, t);
      }
    });
    this.#processed += batch.length - news.length;
    this.#forward(news, false);
  }

  #logConflict(stored: StoredVersion, t: Tick): void {
    const suppressed = this.#conflictLog.take(Date.now());
    if (suppressed === null) return;
    this.#o.logger.warn(
      {
        exchange: t.exchange,
        symbol: short(t.symbol),
        tradeId: t.tradeId,
        stored: { price: stored.price, qty: stored.qty, side: stored.side, tradeTime: new Date(stored.tradeTime).toISOString() },
        received: { price: short(t.price), qty: short(t.qty), side: short(t.side), tradeTime: Number.isFinite(t.tradeTime) ? new Date(t.tradeTime).toISOString() : short(t.tradeTime), source: t.source },
        suppressedSinceLast: suppressed,
      },
      'conflicting trade: the exchange sent another version of a stored trade id; the stored row is kept',
    );
  }

  #forward(ticks: readonly Tick[], unchecked: boolean): void {
    if (unchecked) this.#unchecked += ticks.length;
    for (const t of ticks) this.#o.sink.write(t);
    this.#processed += ticks.length;
    this.#settle();
  }

  #settle(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#processed >= this.#waiters[i]!.upTo) this.#waiters.splice(i, 1)[0]!.resolve();
    }
    if (this.#full && this.#queue.length < this.#max / 2) {
      this.#full = false;
      for (const l of [...this.#drainListeners]) {
        try {
          l();
        } catch (err) {
          this.#o.logger.error({ err }, 'onDrain listener threw');
        }
      }
    }
  }
}
