/**
 * Moving the rows of a pre-partitioning `ticks` table (renamed `ticks_legacy` by the migration) into `tick_rows`,
 * in the background, while new ticks already go to `tick_rows`.
 *
 * One chunk = one statement = one transaction: the rows of a range of heap blocks are deleted from ticks_legacy and
 * inserted into tick_rows (`on conflict do nothing`: a trade already stored there is kept once). A row is therefore
 * always in exactly one of the two tables, and the `ticks` view shows it once in between. A failed chunk rolls back
 * as a whole. Block ranges (a TID range scan) keep every chunk's cost proportional to its size, whatever was
 * deleted before it. When a pass finds the table empty, `ticks_legacy_finish()` switches the view to its final form
 * and drops the old table. The collector runs this at start; `npm run migrate` runs it to the end in the foreground.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Logger } from '../logger.ts';
import type { Database } from './schema.ts';

/** About 20,000 rows of the old layout per chunk. */
export const BLOCKS_PER_CHUNK = 256;

export async function legacyPresent(db: Kysely<Database>): Promise<boolean> {
  const r = await sql<{ present: boolean }>`select to_regclass('ticks_legacy') is not null as present`.execute(db);
  return r.rows[0]?.present === true;
}

export interface MoveProgress {
  readonly moved: number;
  /** Rows new to tick_rows (moved minus trades already stored there). */
  readonly inserted: number;
  /** The old table is gone: the move is complete. */
  readonly finished: boolean;
}

export interface MoveOptions {
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** Pause between chunks, to leave the database to live writes. */
  readonly pauseMs?: number;
  readonly blocksPerChunk?: number;
  readonly onProgress?: (p: MoveProgress & { readonly block: number; readonly blocks: number }) => void;
}

const tid = (block: number) => `(${block},0)`;

async function moveChunk(db: Kysely<Database>, lo: number, hi: number): Promise<{ moved: number; inserted: number }> {
  const r = await sql<{ moved: string; inserted: string }>`
    with moved as (
      delete from ticks_legacy where ctid >= ${tid(lo)}::tid and ctid < ${tid(hi)}::tid
      returning exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source
    ), ins as (
      insert into tick_rows (trade_time, trade_id, received_at, received_delay_ms, instrument_id, flags, price, qty)
      select m.trade_time, m.trade_id, case when d.ms is null then m.received_at end, d.ms, i.instrument_id,
             case m.side when 'buy' then 0 when 'sell' then 1 else -8 end
               + case m.source when 'live' then 0 when 'backfill' then 2 else -8 end,
             m.price, m.qty
      from moved m
      left join instruments i on i.exchange = m.exchange and i.symbol = m.symbol
      cross join lateral (select tick_rows_delay_ms(m.trade_time, m.received_at) as ms) d
      on conflict do nothing
      returning 1
    )
    select (select count(*) from moved) as moved, (select count(*) from ins) as inserted`.execute(db);
  return { moved: Number(r.rows[0]?.moved ?? 0), inserted: Number(r.rows[0]?.inserted ?? 0) };
}

/** What a chunk needs before it can move: its instruments registered and its days' partitions attached. */
async function prepareChunk(db: Kysely<Database>, lo: number, hi: number): Promise<void> {
  const range = sql`ctid >= ${tid(lo)}::tid and ctid < ${tid(hi)}::tid`;
  await sql`insert into instruments (exchange, symbol)
            select distinct exchange, symbol from ticks_legacy where ${range} on conflict do nothing`.execute(db);
  await sql`select tick_rows_ensure_partition(d)
            from (select distinct (trade_time at time zone 'UTC')::date as d from ticks_legacy where ${range}) s`.execute(db);
}

async function blocks(db: Kysely<Database>): Promise<number> {
  const r = await sql<{ n: string }>`select pg_relation_size('ticks_legacy') / current_setting('block_size')::int as n`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

async function finish(db: Kysely<Database>): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await sql`set local lock_timeout = '5s'`.execute(trx);
    const r = await sql<{ done: boolean }>`select ticks_legacy_finish() as done`.execute(trx);
    return r.rows[0]?.done === true;
  });
}

/** Moves every legacy row (until `signal` aborts); resolves with what it moved and whether the move is complete. */
export async function moveLegacyRows(db: Kysely<Database>, o: MoveOptions): Promise<MoveProgress> {
  const per = o.blocksPerChunk ?? BLOCKS_PER_CHUNK;
  let moved = 0;
  let inserted = 0;
  while (!o.signal?.aborted) {
    if (!(await legacyPresent(db))) return { moved, inserted, finished: true };
    const total = await blocks(db);
    for (let lo = 0; lo < total && !o.signal?.aborted; lo += per) {
      const hi = lo + per;
      let chunk;
      try {
        chunk = await moveChunk(db, lo, hi);
      } catch {
        // A day without its partition yet, or an instrument not registered: prepare the range and move it again.
        await prepareChunk(db, lo, hi);
        chunk = await moveChunk(db, lo, hi);
      }
      moved += chunk.moved;
      inserted += chunk.inserted;
      o.onProgress?.({ moved, inserted, finished: false, block: Math.min(hi, total), blocks: total });
      if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
    }
    if (o.signal?.aborted) break;
    if (await finish(db)) {
      o.logger.info({ moved, inserted }, 'legacy ticks moved into tick_rows; ticks_legacy dropped');
      return { moved, inserted, finished: true };
    }
  }
  return { moved, inserted, finished: false };
}

/** The collector's background mover: retries after an error, stops between chunks. */
export class LegacyMover {
  readonly #db: Kysely<Database>;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;

  constructor(db: Kysely<Database>, logger: Logger) {
    this.#db = db;
    this.#log = logger;
  }

  start(opts: { pauseMs?: number; retryMs?: number } = {}): void {
    this.#running ??= this.#loop(opts.pauseMs ?? 20, opts.retryMs ?? 30_000);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  async #loop(pauseMs: number, retryMs: number): Promise<void> {
    const signal = this.#abort.signal;
    let lastLog = 0;
    while (!signal.aborted) {
      try {
        if (!(await legacyPresent(this.#db))) return;
        this.#log.info('moving the rows of the old ticks table into tick_rows in the background (the ticks view shows both meanwhile)');
        const done = await moveLegacyRows(this.#db, {
          logger: this.#log,
          signal,
          pauseMs,
          onProgress: (p) => {
            if (Date.now() - lastLog < 10_000) return;
            lastLog = Date.now();
            this.#log.info({ moved: p.moved, block: p.block, blocks: p.blocks }, 'moving legacy ticks');
          },
        });
        if (done.finished) return;
      } catch (err) {
        if (signal.aborted) return;
        this.#log.warn({ err }, 'moving legacy ticks failed; will try again');
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, retryMs);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }
}
