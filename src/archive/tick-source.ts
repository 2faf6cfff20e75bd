/**
 * What the archive reads from PostgreSQL, as plain functions over the storage layer's Kysely and pool. It reads the
 * `ticks` relation through its public columns only (exchange, symbol, trade_id, price, qty, side, trade_time,
 * received_at, source), so it works the same on a plain table or a view over partitions.
 */
import { sql } from 'kysely';
import type { Kysely, PostgresPoolClient } from 'kysely';
import type { Database } from '../storage/schema.ts';
import { legacyPresent } from '../storage/legacy.ts';
import { listPartitions } from '../storage/partitions.ts';
import { dayEnd, dayOf, dayStart } from './day.ts';
import type { ManifestGap } from './manifest.ts';

/** The storage layer as the archive uses it: its Kysely instance and its bounded pool (PG_POOL_MAX holds). */
export interface TickSource {
  readonly db: Kysely<Database>;
  /** A client from the same bounded pool, for streaming statements (COPY); the caller releases it. */
  connect(): Promise<PostgresPoolClient>;
}

export interface Instrument {
  readonly exchange: string;
  readonly symbol: string;
}

/** One symbol's ticks on one UTC day, summarised. Ids are decimal strings (bigint). */
export interface DayStats {
  readonly rows: number;
  readonly firstTradeId: string;
  readonly lastTradeId: string;
  readonly firstTradeTime: Date;
  readonly lastTradeTime: Date;
}

export function sameStats(a: DayStats | undefined, b: DayStats | undefined): boolean {
  if (!a || !b) return a === b;
  return a.rows === b.rows && a.firstTradeId === b.firstTradeId && a.lastTradeId === b.lastTradeId;
}

/** Every instrument the storage layer knows (its `instruments` table: one row per exchange and symbol). */
export async function listInstruments(db: Kysely<Database>): Promise<Instrument[]> {
  const r = await sql<Instrument>`select exchange, symbol from instruments order by exchange, symbol`.execute(db);
  return r.rows;
}

/**
 * The first day that may hold ticks of the instrument: the oldest daily partition, or the instrument's oldest row
 * in the pre-partitioning table while that one is still being moved. Cheap: no scan of the ticks themselves.
 */
export async function firstTickDay(db: Kysely<Database>, inst: Instrument): Promise<string | undefined> {
  const days: string[] = [];
  const oldest = (await listPartitions(db))[0];
  if (oldest) days.push(oldest.day);
  if (await legacyPresent(db)) {
    const r = await sql<{ t: Date | null }>`
      select min(trade_time) as t from ticks_legacy where exchange = ${inst.exchange} and symbol = ${inst.symbol}`.execute(db);
    const t = r.rows[0]?.t;
    if (t) days.push(dayOf(t.getTime()));
  }
  return days.sort()[0];
}

export async function dayStats(db: Kysely<Database>, inst: Instrument, day: string): Promise<DayStats | undefined> {
  const r = await sql<{ rows: string; first_id: string | null; last_id: string | null; first_time: Date | null; last_time: Date | null }>`
    select count(*)::text as rows, min(trade_id)::text as first_id, max(trade_id)::text as last_id,
           min(trade_time) as first_time, max(trade_time) as last_time
    from ticks where exchange = ${inst.exchange} and symbol = ${inst.symbol}
      and trade_time >= ${new Date(dayStart(day))} and trade_time < ${new Date(dayEnd(day))}`.execute(db);
  const row = r.rows[0];
  if (!row || row.first_id === null || row.last_id === null || !row.first_time || !row.last_time) return undefined;
  return { rows: Number(row.rows), firstTradeId: row.first_id, lastTradeId: row.last_id, firstTradeTime: row.first_time, lastTradeTime: row.last_time };
}

/** Whether the instrument has any tick on `day` (an index probe). */
export async function hasTicksOn(db: Kysely<Database>, inst: Instrument, day: string): Promise<boolean> {
  const r = await sql<{ found: boolean }>`
    select exists (select 1 from ticks where exchange = ${inst.exchange} and symbol = ${inst.symbol}
      and trade_time >= ${new Date(dayStart(day))} and trade_time < ${new Date(dayEnd(day))}) as found`.execute(db);
  return r.rows[0]?.found === true;
}

/** Of `days`, those on which the instrument still has ticks in the table (one round trip). */
export async function daysWithTicks(db: Kysely<Database>, inst: Instrument, days: readonly string[]): Promise<Set<string>> {
  if (days.length === 0) return new Set();
  const r = await sql<{ day: string }>`
    select d.day from unnest(${days}::text[]) as d(day)
    where exists (select 1 from ticks where exchange = ${inst.exchange} and symbol = ${inst.symbol}
      and trade_time >= (d.day || 'T00:00:00Z')::timestamptz and trade_time < (d.day || 'T00:00:00Z')::timestamptz + interval '1 day')`.execute(db);
  return new Set(r.rows.map((x) => x.day));
}

function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

/**
 * Gaps of the instrument overlapping [firstId, lastId] or touching it (a gap right before the day's first id or
 * right after its last may hold trades of that day), ordered by range.
 */
export async function gapsTouching(db: Kysely<Database>, inst: Instrument, firstId: string, lastId: string): Promise<ManifestGap[]> {
  const r = await sql<{
    id: string; exchange: string; symbol: string; from_id: string; to_id: string; status: string; attempts: number; reason: string | null;
    detected_at: Date; filled_at: Date | null; last_attempt_at: Date | null;
  }>`
    select id::text as id, exchange, symbol, from_id::text as from_id, to_id::text as to_id, status, attempts, reason,
           detected_at, filled_at, last_attempt_at
    from gaps where exchange = ${inst.exchange} and symbol = ${inst.symbol}
      and from_id <= ${lastId}::bigint + 1 and to_id >= ${firstId}::bigint - 1
    order by from_id, to_id, id`.execute(db);
  return r.rows.map((g) => ({ ...g, detected_at: g.detected_at.toISOString(), filled_at: iso(g.filled_at), last_attempt_at: iso(g.last_attempt_at) }));
}
