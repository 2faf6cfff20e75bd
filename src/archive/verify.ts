/** Reading an archived file back with DuckDB: what it holds, to compare with what PostgreSQL holds. */
import type { Duck } from './duck.ts';
import { duckString } from './duck.ts';
import type { ArchiveFormat } from './layout.ts';

export interface FileContents {
  readonly rows: number;
  readonly firstTradeId: string | null;
  readonly lastTradeId: string | null;
  readonly minTradeTimeUs: bigint | null;
  readonly maxTradeTimeUs: bigint | null;
}

/** Columns of an archived CSV file, for read_csv (no sniffing: the types are ours). */
export const CSV_COLUMNS =
  `{'exchange': 'VARCHAR', 'symbol': 'VARCHAR', 'trade_id': 'BIGINT', 'price': 'VARCHAR', 'qty': 'VARCHAR', 'side': 'VARCHAR', ` +
  `'trade_time': 'TIMESTAMPTZ', 'received_at': 'TIMESTAMPTZ', 'source': 'VARCHAR'}`;

/** A DuckDB table expression reading one archived file. */
export function readFileSql(path: string, format: ArchiveFormat): string {
  return format === 'parquet'
    ? `read_parquet(${duckString(path)})`
    : `read_csv(${duckString(path)}, header = true, auto_detect = false, compression = 'zstd', columns = ${CSV_COLUMNS})`;
}

export async function readContents(duck: Duck, path: string, format: ArchiveFormat): Promise<FileContents> {
  const r = await duck.rows(
    `select count(*)::BIGINT, min(trade_id)::VARCHAR, max(trade_id)::VARCHAR, epoch_us(min(trade_time)), epoch_us(max(trade_time))
     from ${readFileSql(path, format)}`,
  );
  const [rows, first, last, minUs, maxUs] = r[0]!;
  return {
    rows: Number(rows as bigint),
    firstTradeId: (first as string | null) ?? null,
    lastTradeId: (last as string | null) ?? null,
    minTradeTimeUs: (minUs as bigint | null) ?? null,
    maxTradeTimeUs: (maxUs as bigint | null) ?? null,
  };
}
