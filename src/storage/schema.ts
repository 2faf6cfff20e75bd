/** Kysely table types. Column names are the SQL names (snake_case); see migrations/ for the DDL. */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

export interface TicksTable {
  exchange: string;
  symbol: string;
  /** bigint: pg returns it as a string; we insert numbers or strings. */
  trade_id: ColumnType<string, string | number | bigint, never>;
  /** numeric: exact decimal string. */
  price: ColumnType<string, string, never>;
  qty: ColumnType<string, string, never>;
  side: 'buy' | 'sell';
  trade_time: ColumnType<Date, Date | string, never>;
  received_at: ColumnType<Date, Date | string, never>;
  source: ColumnType<'live' | 'backfill', 'live' | 'backfill' | undefined, never>;
}

export type GapStatus = 'open' | 'filled' | 'unfillable';

export interface GapsTable {
  id: Generated<string>;
  exchange: string;
  symbol: string;
  from_id: ColumnType<string, string | number | bigint, string | number | bigint>;
  to_id: ColumnType<string, string | number | bigint, string | number | bigint>;
  detected_at: ColumnType<Date, Date | string | undefined, Date | string>;
  status: GapStatus;
  reason: string | null;
  filled_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  attempts: ColumnType<number, number | undefined, number>;
  last_attempt_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface Database {
  ticks: TicksTable;
  gaps: GapsTable;
}

export type TickRow = Selectable<TicksTable>;
export type NewTickRow = Insertable<TicksTable>;
export type GapRow = Selectable<GapsTable>;
export type NewGapRow = Insertable<GapsTable>;
