/**
 * Ticks read back from archived Parquet files with DuckDB, shaped and rendered exactly like the rows `npm run query`
 * gets from PostgreSQL: trade_id, price and qty as the text PostgreSQL prints, timestamps as Dates (ms, truncated
 * like the pg driver does).
 */
import { renderDecimal } from './decimal-column.ts';
import type { Duck } from './duck.ts';
import { duckString } from './duck.ts';

export interface TickRow {
  exchange: string;
  symbol: string;
  trade_id: string;
  price: string;
  qty: string;
  side: string;
  trade_time: Date;
  received_at: Date;
  source: string;
}

export interface ReadRange {
  /** Inclusive bounds on trade_time. */
  readonly from?: Date;
  readonly to?: Date;
  readonly limit: number;
}

function usToDate(us: bigint): Date {
  return new Date(Number(us / 1000n));
}

function tsLiteral(d: Date): string {
  return `make_timestamp(${BigInt(d.getTime()) * 1000n})::TIMESTAMPTZ`;
}

/** Rows of `files` (Parquet) in trade_time then trade_id order, at most `limit`. */
export async function readTicks(duck: Duck, files: readonly string[], range: ReadRange): Promise<TickRow[]> {
  if (files.length === 0) return [];
  const where = [range.from && `trade_time >= ${tsLiteral(range.from)}`, range.to && `trade_time <= ${tsLiteral(range.to)}`].filter(Boolean);
  const rows = await duck.rows(
    `select exchange, symbol, trade_id::VARCHAR, price::VARCHAR, price_decimals, qty::VARCHAR, qty_decimals, side,
            epoch_us(trade_time), epoch_us(received_at), source
     from read_parquet([${files.map(duckString).join(', ')}], union_by_name = true)
     ${where.length > 0 ? `where ${where.join(' and ')}` : ''}
     order by trade_time, trade_id limit ${Math.trunc(range.limit)}`,
  );
  return rows.map((v) => ({
    exchange: v[0] as string,
    symbol: v[1] as string,
    trade_id: v[2] as string,
    price: renderDecimal(v[3] as string, v[4] as number | null),
    qty: renderDecimal(v[5] as string, v[6] as number | null),
    side: v[7] as string,
    trade_time: usToDate(v[8] as bigint),
    received_at: usToDate(v[9] as bigint),
    source: v[10] as string,
  }));
}

/** Orders ticks as the query command does: trade_time, then trade_id (numerically). */
export function compareTicks(a: TickRow, b: TickRow): number {
  const t = a.trade_time.getTime() - b.trade_time.getTime();
  if (t !== 0) return t;
  const x = BigInt(a.trade_id);
  const y = BigInt(b.trade_id);
  return x < y ? -1 : x > y ? 1 : 0;
}
