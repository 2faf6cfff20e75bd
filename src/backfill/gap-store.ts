/**
 * The `gaps` table and the last stored id per symbol: plain functions over Kysely. A gap is a missing id range of
 * one symbol; its row says whether it is open (being fetched), filled, or unfillable for now (with the reason).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Exchange } from '../tick.ts';
import { legacyPresent } from '../storage/legacy.ts';
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

/** The instrument id of (exchange, symbol) as a subquery: the planner runs it once, then probes each partition. */
const instrumentId = (exchange: string, symbol: string) =>
  sql`(select instrument_id from instruments where exchange = ${exchange} and symbol = ${symbol})`;

/**
 * The ids of one symbol with trade_id in (lo, hi], across every daily partition (each probed through its unique
 * index on (instrument_id, trade_id)) and, while an old table's rows are being moved, that table's primary key.
 */
async function idSource(db: Kysely<Database>, exchange: Exchange, symbol: string, lo: string, hi: string) {
  const rows = sql`select trade_id from tick_rows where instrument_id = ${instrumentId(exchange, symbol)} and trade_id > ${lo} and trade_id <= ${hi}`;
  if (!(await legacyPresent(db))) return { ids: rows, legacy: false };
  return {
    ids: sql`${rows} union all select trade_id from ticks_legacy where exchange = ${exchange} and symbol = ${symbol} and trade_id > ${lo} and trade_id <= ${hi}`,
    legacy: true,
  };
}

const MAX_ID = '9223372036854775807';

/** The highest trade id stored for each symbol, so a restart finds the hole it left. */
export async function lastStoredIds(db: Kysely<Database>, exchange: Exchange, symbols: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const legacy = await legacyPresent(db);
  for (const symbol of symbols) {
    const newest = sql`(select max(trade_id) from tick_rows where instrument_id = ${instrumentId(exchange, symbol)})`;
    const old = legacy ? sql`(select max(trade_id) from ticks_legacy where exchange = ${exchange} and symbol = ${symbol})` : sql`null::bigint`;
    const r = await sql<{ last: string | null }>`select greatest(${newest}, ${old}) as last`.execute(db);
    const last = r.rows[0]?.last;
    if (last !== null && last !== undefined) out.set(symbol, Number(last));
  }
  return out;
}

/** How many ids of a gap are already in the table (another collector on the same symbols may have stored them). */
export async function storedInRange(db: Kysely<Database>, gap: Gap): Promise<number> {
  const { ids, legacy } = await idSource(db, gap.exchange, gap.symbol, String(gap.from - 1), String(gap.to));
  // While legacy rows exist a trade may be in both tables for a moment: count it once.
  const count = legacy ? sql`count(distinct trade_id)` : sql`count(*)`;
  const r = await sql<{ n: string }>`select ${count} as n from (${ids}) s`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Holes inside the stored ids of one symbol, among its last `window` ids: what a run that ended while its gaps could
 * not be recorded (database down at exit) leaves behind. One ordered walk of each partition's unique index, merged
 * across partitions (a hole that spans a UTC midnight is found like any other).
 */
export async function holesInTable(db: Kysely<Database>, exchange: Exchange, symbol: string, last: number, window: number): Promise<Gap[]> {
  const { ids } = await idSource(db, exchange, symbol, String(last - window), MAX_ID);
  const rows = await sql<{ from_id: string; to_id: string }>`
    select prev + 1 as from_id, trade_id - 1 as to_id
    from (select trade_id, lag(trade_id) over (order by trade_id) as prev from (${ids}) a) t
    where trade_id > prev + 1
    order by trade_id`.execute(db);
  return rows.rows.map((r) => ({ exchange, symbol, from: Number(r.from_id), to: Number(r.to_id) }));
}
