/**
 * Retention (`RETENTION_DAYS`): whole daily partitions older than today minus N days are dropped; unset keeps
 * everything. With RETENTION_DAYS=7 on 2026-11-21 (UTC) the partitions of 2026-11-14 .. 2026-11-21 stay.
 *
 * A partition is dropped only when `canDrop(day)` agrees (the archive says the day is exported and verified; without
 * archiving it always agrees). It is first detached CONCURRENTLY (SHARE UPDATE EXCLUSIVE: inserts and reads go on,
 * it waits for readers that still see it), then dropped: no statement of the collector ever waits on a retention.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { dayNumber, listPartitions } from './partitions.ts';
import type { PartitionInfo } from './partitions.ts';
import type { Database } from './schema.ts';

/** Says whether a day (`YYYY-MM-DD`, UTC) may be dropped now, e.g. only once its archive has been verified. */
export type CanDrop = (day: string) => Promise<boolean>;

export const alwaysDrop: CanDrop = async () => true;

/** The partitions retention would drop today (older than today - retentionDays). */
export function expiredPartitions(partitions: readonly PartitionInfo[], now: number, retentionDays: number): PartitionInfo[] {
  const keepFrom = dayNumber(now) - retentionDays;
  return partitions.filter((p) => dayNumber(Date.parse(`${p.day}T00:00:00Z`)) < keepFrom);
}

export interface RetentionOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly retentionDays: number;
  readonly canDrop: CanDrop;
  readonly logger: Logger;
}

/** Drops every expired partition `canDrop` allows; returns the days dropped. Errors are per partition (logged). */
export async function applyRetention(o: RetentionOptions): Promise<string[]> {
  const dropped: string[] = [];
  for (const p of expiredPartitions(await listPartitions(o.db), o.clock.now(), o.retentionDays)) {
    let allowed: boolean;
    try {
      allowed = await o.canDrop(p.day);
    } catch (err) {
      o.logger.warn({ err, day: p.day }, 'retention: could not tell whether the day may be dropped; keeping it for now');
      continue;
    }
    if (!allowed) {
      o.logger.info({ day: p.day, partition: p.name }, 'retention: day is past RETENTION_DAYS but not cleared for dropping yet (archive not verified); kept');
      continue;
    }
    try {
      await dropPartition(o.db, p);
      dropped.push(p.day);
      o.logger.info({ day: p.day, partition: p.name, retentionDays: o.retentionDays }, 'retention: partition dropped');
    } catch (err) {
      o.logger.warn({ err, day: p.day, partition: p.name }, 'retention: could not drop the partition; will try again');
    }
  }
  return dropped;
}

/**
 * Detach concurrently (or finish a detach an earlier run started), then drop. Outside any transaction. The detach
 * waits for queries that still see the partition; if that outlasts PG_STATEMENT_TIMEOUT_MS it is cancelled, the
 * partition stays "detach pending" (no longer receiving rows) and the next run finalizes it.
 */
async function dropPartition(db: Kysely<Database>, p: PartitionInfo): Promise<void> {
  const mode = p.detachPending ? sql`finalize` : sql`concurrently`;
  await sql`alter table tick_rows detach partition ${sql.id(p.name)} ${mode}`.execute(db);
  await sql`drop table if exists ${sql.id(p.name)}`.execute(db);
}
