/**
 * How an exact decimal column (PostgreSQL numeric text) is stored in Parquet. Every file uses DECIMAL(38,18) when
 * its values fit (the same type for every day and symbol, so DuckDB, pyarrow or polars can read many files as one
 * table without a silent cast to the first file's scale), and VARCHAR holding the exact text when one does not.
 * The number of decimals each value had goes beside it (`price_decimals`), because numeric keeps it and the query
 * command prints it: '0.00219650' stays '0.00219650', '97000.5' stays '97000.5'.
 */

export const ARCHIVE_DECIMAL = 'DECIMAL(38,18)';
const MAX_SCALE = 18;
const MAX_INTEGER_DIGITS = 20;
/** Values with at most 18 digits in all are parsed through DECIMAL(18,s): DuckDB parses that ~100x faster. */
const FAST_PRECISION = 18;

/** What the staged text values of one column look like. */
export interface DecimalProfile {
  /** Every value is digits with an optional fraction (no sign, exponent, NaN). */
  readonly plain: boolean;
  readonly maxIntegerDigits: number;
  readonly maxScale: number;
}

export interface DecimalColumn {
  readonly type: string;
  /** DuckDB expression over the staged VARCHAR column `col`. */
  readonly expr: string;
}

export function decimalColumn(col: string, p: DecimalProfile): DecimalColumn {
  if (!p.plain || p.maxScale > MAX_SCALE || p.maxIntegerDigits > MAX_INTEGER_DIGITS) return { type: 'VARCHAR', expr: col };
  if (p.maxIntegerDigits + p.maxScale <= FAST_PRECISION) {
    return { type: ARCHIVE_DECIMAL, expr: `${col}::DECIMAL(${FAST_PRECISION},${p.maxScale})::${ARCHIVE_DECIMAL}` };
  }
  return { type: ARCHIVE_DECIMAL, expr: `${col}::${ARCHIVE_DECIMAL}` };
}

/** DuckDB select list that profiles VARCHAR column `col` of the stage (three values: plain, int digits, scale). */
export function profileSql(col: string): string {
  return `bool_and(regexp_full_match(${col}, '[0-9]+([.][0-9]+)?')), max(length(split_part(${col}, '.', 1))), max(length(split_part(${col}, '.', 2)))`;
}

/** Decimals a numeric's text shows ('97000.50' → 2, '5' → 0). */
export function decimalsSql(col: string): string {
  return `length(split_part(${col}, '.', 2))::UTINYINT`;
}

/**
 * The text PostgreSQL prints for a value read back as DECIMAL(38,18) text ('97000.500000000000000000') with the
 * number of decimals it had (1) → '97000.5'. A VARCHAR value is already exact and passes through.
 */
export function renderDecimal(text: string, decimals: number | null): string {
  const dot = text.indexOf('.');
  if (dot < 0 || decimals === null) return text;
  return decimals === 0 ? text.slice(0, dot) : text.slice(0, dot + 1 + decimals);
}
