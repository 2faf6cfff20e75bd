/**
 * Daily partitions of `tick_rows`: one per UTC day, named `tick_rows_YYYYMMDD`, created by the SQL function
 * `tick_rows_ensure_partition(day)` (migrations/20261122T0001_partitioned_ticks.ts).
 *
 * Two ways a partition comes to exist, so that no tick is ever refused for lack of one:
 * - ahead of time: at start and every hour (and by `npm run migrate`), yesterday, today and the next AHEAD_DAYS
 *   days by the injected clock;
 * - on demand: an insert that finds no partition for a row (a backfilled trade from days ago, a clock that jumped)
 *   creates the partitions of the days in its batch and is retried (TickWriter).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Database } from './schema.ts';

export const DAY_MS = 86_400_000;
/** Days after today whose partitions exist before they are needed. */
export const AHEAD_DAYS = 2;
/** On-demand partitions only for trade times in this window; a row outside it is bad data (rejected, logged). */
export const FIRST_DAY = '2000-01-01';
export const LAST_DAY = '2099-12-31';
const FIRST_DAY_NUMBER = Date.parse(`${FIRST_DAY}T00:00:00Z`) / DAY_MS;
const LAST_DAY_NUMBER = Date.parse(`${LAST_DAY}T00:00:00Z`) / DAY_MS;

const PARTITION_RE = /^tick_rows_(\d{4})(\d{2})(\d{2})$/;

/** Whole UTC days since the epoch. */
export function dayNumber(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/** `YYYY-MM-DD` of a day number. */
export function dayString(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export function partitionName(day: string): string {
  return `tick_rows_${day.replaceAll('-', '')}`;
}

/** The day (`YYYY-MM-DD`) a partition name stands for, or null for any other table. */
export function partitionDay(name: string): string | null {
  const m = PARTITION_RE.exec(name);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : null;
}

/** True for days an on-demand partition may be created for. */
export function creatableDay(day: number): boolean {
  return Number.isSafeInteger(day) && day >= FIRST_DAY_NUMBER && day <= LAST_DAY_NUMBER;
}

/** Distinct days of a set of trade times (ms), creatable ones only, ascending. */
export function daysOf(times: Iterable<number>): number[] {
  const days = new Set<number>();
  for (const t of times) {
    const d = dayNumber(t);
    if (creatableDay(d)) days.add(d);
  }
  return [...days].sort((a, b) => a - b);
}

/**
 * Creates the missing partitions of these days (in one transaction, giving up on a lock after 5 s so that a
 * conflicting DDL statement never holds a writer for long). Returns the days it created.
 */
export async function ensurePartitions(db: Kysely<Database>, days: readonly number[]): Promise<string[]> {
  if (days.length === 0) return [];
  return db.transaction().execute(async (trx) => {
    await sql`set local lock_timeout = '5s'`.execute(trx);
    const created: string[] = [];
    for (const day of days) {
      const r = await sql<{ created: boolean }>`select tick_rows_ensure_partition(${dayString(day)}::date) as created`.execute(trx);
      if (r.rows[0]?.created) created.push(dayString(day));
    }
    return created;
  });
}

/** The days around `clock`'s today whose partitions should exist: yesterday .. today + AHEAD_DAYS. */
export function aheadDays(clock: Clock, ahead = AHEAD_DAYS): number[] {
  const today = dayNumber(clock.now());
  const days: number[] = [];
  for (let d = today - 1; d <= today + ahead; d++) days.push(d);
  return days;
}

export interface PartitionInfo {
  readonly name: string;
  readonly day: string;
  /** Being detached (DETACH ... CONCURRENTLY interrupted): retention finishes and drops it. */
  readonly detachPending: boolean;
}

/** The daily partitions attached to tick_rows, oldest first. */
export async function listPartitions(db: Kysely<Database>): Promise<PartitionInfo[]> {
  const r = await sql<{ name: string; pending: boolean }>`
    select c.relname as name, i.inhdetachpending as pending
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'tick_rows'::regclass`.execute(db);
  const out: PartitionInfo[] = [];
  for (const row of r.rows) {
    const day = partitionDay(row.name);
    if (day) out.push({ name: row.name, day, detachPending: row.pending });
  }
  return out.sort((a, b) => a.day.localeCompare(b.day));
}
