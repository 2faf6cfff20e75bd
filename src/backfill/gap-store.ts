/**
 * The `gaps` table and the last stored id per symbol: plain functions over Kysely. A gap is a missing id range of
 * one symbol; its row says whether it is open (being fetched), filled, or unfillable for now (with the reason).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Exchange } from '../tick.ts';
import type { Database } from '../storage/schema.ts';
import type { Gap } from './gap-tracker.ts';

export type GapStatus = 'open' | 'filled' | 'unfillable';

export interface GapRow extends Gap {
  readonly id: number;
  readonly status: GapStatus;
  readonly reason: string | null;
  readonly attempts: number;
  readonly detectedAt: Date;
  readonly filledAt: Date | null;
}

/** Records a gap (or finds the row of the same range) and returns its id. */
export async function recordGap(db: Kysely<Database>, gap: Gap, status: GapStatus, reason: string | null): Promise<number> {
  const row = await db
    .insertInto('gaps')
    .values({
      exchange: gap.exchange,
      symbol: gap.symbol,
      from_id: String(gap.from),
      to_id: String(gap.to),
      detected_at: new Date(),
      status,
      reason,
      attempts: 0,
    })
    .onConflict((oc) => oc.columns(['exchange', 'symbol', 'from_id', 'to_id']).doUpdateSet({ status: sql`gaps.status` }))
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/**
 * Notes the outcome of one fill attempt. A filled row is final (a late attempt never downgrades it); returns whether
 * the row changed, so a gap is counted filled once however many attempts raced to fill it.
 */
export async function markGap(db: Kysely<Database>, id: number, status: GapStatus, reason: string | null): Promise<boolean> {
  const result = await db
    .updateTable('gaps')
    .set({
      status,
      reason,
      attempts: sql`attempts + 1`,
      last_attempt_at: new Date(),
      filled_at: status === 'filled' ? new Date() : null,
    })
    .where('id', '=', String(id))
    .where('status', '<>', 'filled')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Gaps not yet filled, oldest first: the retry loop's work. Ranges over the configured maximum are left alone. */
export async function unfilledGaps(db: Kysely<Database>, maxGap: number, limit: number): Promise<GapRow[]> {
  const rows = await db
    .selectFrom('gaps')
    .selectAll()
    .where('status', '<>', 'filled')
    .where(sql<boolean>`to_id - from_id + 1 <= ${maxGap}`)
    .orderBy('detected_at')
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: Number(r.id),
    exchange: r.exchange as Exchange,
    symbol: r.symbol,
    from: Number(r.from_id),
    to: Number(r.to_id),
    status: r.status as GapStatus,
    reason: r.reason,
    attempts: r.attempts,
    detectedAt: r.detected_at,
    filledAt: r.filled_at,
  }));
}

/** The highest trade id stored for each symbol, so a restart finds the hole it left. */
export async function lastStoredIds(db: Kysely<Database>, exchange: Exchange, symbols: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const symbol of symbols) {
    const row = await db
      .selectFrom('ticks')
      .select((eb) => eb.fn.max('trade_id').as('last'))
      .where('exchange', '=', exchange)
      .where('symbol', '=', symbol)
      .executeTakeFirst();
    if (row?.last !== null && row?.last !== undefined) out.set(symbol, Number(row.last));
  }
  return out;
}

/** How many ids of a gap are already in the table (another collector on the same symbols may have stored them). */
export async function storedInRange(db: Kysely<Database>, gap: Gap): Promise<number> {
  const row = await db
    .selectFrom('ticks')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('exchange', '=', gap.exchange)
    .where('symbol', '=', gap.symbol)
    .where('trade_id', '>=', String(gap.from))
    .where('trade_id', '<=', String(gap.to))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Holes inside the stored ids of one symbol, among its last `window` ids: what a run that ended while its gaps could
 * not be recorded (database down at exit) leaves behind. An index-only walk of the primary key.
 */
export async function holesInTable(db: Kysely<Database>, exchange: Exchange, symbol: string, last: number, window: number): Promise<Gap[]> {
  const rows = await sql<{ from_id: string; to_id: string }>`
    select prev + 1 as from_id, trade_id - 1 as to_id
    from (select trade_id, lag(trade_id) over (order by trade_id) as prev
          from ticks where exchange = ${exchange} and symbol = ${symbol} and trade_id > ${String(last - window)}) t
    where trade_id > prev + 1
    order by trade_id`.execute(db);
  return rows.rows.map((r) => ({ exchange, symbol, from: Number(r.from_id), to: Number(r.to_id) }));
}
