/** Kysely table types. Column names are the SQL names (snake_case); see migrations/ for the DDL. */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/**
 * `ticks`: the view with the original columns over `tick_rows` + `instruments` (and `ticks_legacy` while an old
 * table's rows are being moved). Read it; the collector writes `tick_rows`.
 */
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

/** The compact, partitioned table (one partition per UTC day, `tick_rows_YYYYMMDD`). */
export interface TickRowsTable {
  trade_time: ColumnType<Date, Date | string, never>;
  trade_id: ColumnType<string, string | number | bigint, never>;
  /** Set only when received_delay_ms cannot hold the delay (not whole ms, or beyond +-32.767 s). */
  received_at: ColumnType<Date | null, Date | string | null, never>;
  /** received_at - trade_time in ms, when it fits a smallint. */
  received_delay_ms: ColumnType<number | null, number | null, never>;
  instrument_id: ColumnType<number, number, never>;
  /** Bit 0 (1): the taker sold; bit 1 (2): backfilled over REST. */
  flags: ColumnType<number, number, never>;
  price: ColumnType<string, string, never>;
  qty: ColumnType<string, string, never>;
}

export const FLAG_SELL = 1;
export const FLAG_BACKFILL = 2;

export interface InstrumentsTable {
  instrument_id: Generated<number>;
  exchange: string;
  symbol: string;
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
  tick_rows: TickRowsTable;
  instruments: InstrumentsTable;
  gaps: GapsTable;
}

export type TickRow = Selectable<TicksTable>;
export type NewTickRow = Insertable<TicksTable>;
export type GapRow = Selectable<GapsTable>;
export type NewGapRow = Insertable<GapsTable>;
