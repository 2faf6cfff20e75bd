/**
 * `npm run query -- <mode> [--format table|csv|json]`
 *   --latest N                                        the N most recent ticks (default mode: --latest 20)
 *   --exchange X --symbol Y [--from ISO] [--to ISO] [--limit N]   ticks of one symbol in a time range
 *   --counts                                          per exchange/symbol: count, first and last trade time
 *   --gaps                                            the gaps table (open, filled, unfillable)
 * Uses DATABASE_URL, or the embedded database (reused if running, started and stopped again if not).
 * With ARCHIVE_DIR set, ranges, counts and gaps also cover the archived days (Parquet files and their manifests),
 * each trade once wherever it lives (table, archive or both; the table's row wins).
 * Exit 0 ok, 1 database failure, 2 usage error (unknown flag, bad date, from > to...).
 */
import { existsSync } from 'node:fs';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { archiveCounts, archiveGaps, archiveRange, mergeCounts, mergeGaps } from '../archive/archive-query.ts';
import type { CountRow, GapReportRow } from '../archive/archive-query.ts';
import { compareTicks } from '../archive/archive-reader.ts';
import type { TickRow } from '../archive/archive-reader.ts';
import { loadConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createLogger, redactSecrets } from '../logger.ts';
import { cliDatabase, UsageError } from '../storage/cli-support.ts';
import type { Database } from '../storage/schema.ts';
import { parseFlags } from './args.ts';

type Format = 'table' | 'csv' | 'json';
type Mode =
  | { kind: 'latest'; n: number }
  | { kind: 'range'; exchange: string; symbol: string; from: Date | undefined; to: Date | undefined; limit: number }
  | { kind: 'counts' }
  | { kind: 'gaps' };

const VALUE_FLAGS = new Set(['--latest', '--exchange', '--symbol', '--from', '--to', '--format', '--limit']);
const BOOL_FLAGS = new Set(['--counts', '--gaps', '--help']);
const MAX_ROWS = 1_000_000;

function parseCount(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_ROWS) throw new UsageError(`${flag}: expected an integer from 1 to ${MAX_ROWS}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function parseDate(flag: string, v: string): Date {
  // ISO 8601 date or date-time; a date-time without a zone is rejected (ambiguous).
  const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(v);
  const d = new Date(v);
  if (!ok || Number.isNaN(d.getTime())) throw new UsageError(`${flag}: expected an ISO date such as 2026-11-21T10:00:00Z, got ${JSON.stringify(v)}`);
  return d;
}

export function parseArgs(argv: readonly string[]): { mode: Mode; format: Format } | 'help' {
  const { values, bools } = parseFlags(argv, VALUE_FLAGS, BOOL_FLAGS);
  if (bools.has('--help')) return 'help';
  const format = values.get('--format') ?? 'table';
  if (format !== 'table' && format !== 'csv' && format !== 'json') throw new UsageError(`--format: expected table, csv or json, got ${JSON.stringify(format)}`);

  const modes = [values.has('--latest') && '--latest', (values.has('--exchange') || values.has('--symbol')) && '--exchange/--symbol',
    bools.has('--counts') && '--counts', bools.has('--gaps') && '--gaps'].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`choose one of --latest, --exchange/--symbol, --counts, --gaps (got ${modes.join(' and ')})`);
  const rangeOnly = ['--from', '--to', '--limit'].filter((f) => values.has(f));
  if (rangeOnly.length > 0 && !values.has('--exchange') && !values.has('--symbol')) {
    throw new UsageError(`${rangeOnly.join(', ')} can only be used with --exchange and --symbol`);
  }
  let mode: Mode;
  if (bools.has('--counts')) mode = { kind: 'counts' };
  else if (bools.has('--gaps')) mode = { kind: 'gaps' };
  else if (values.has('--exchange') || values.has('--symbol')) {
    const exchange = values.get('--exchange');
    const symbol = values.get('--symbol');
    if (!exchange) throw new UsageError('--exchange is required with --symbol');
    if (!symbol) throw new UsageError('--symbol is required with --exchange');
    if (exchange !== 'binance' && exchange !== 'okx') throw new UsageError(`--exchange: expected binance or okx, got ${JSON.stringify(exchange)}`);
    const from = values.has('--from') ? parseDate('--from', values.get('--from')!) : undefined;
    const to = values.has('--to') ? parseDate('--to', values.get('--to')!) : undefined;
    if (from && to && from.getTime() > to.getTime()) throw new UsageError(`--from (${from.toISOString()}) is after --to (${to.toISOString()})`);
    const limit = values.has('--limit') ? parseCount('--limit', values.get('--limit')!) : 10_000;
    mode = { kind: 'range', exchange, symbol, from, to, limit };
  } else mode = { kind: 'latest', n: values.has('--latest') ? parseCount('--latest', values.get('--latest')!) : 20 };
  return { mode, format };
}

const TICK_COLUMNS = `exchange, symbol, trade_id::text as trade_id, price::text as price, qty::text as qty, side, trade_time, received_at, source`;

function statement(mode: Mode): { text: string; values: unknown[] } {
  switch (mode.kind) {
    case 'latest':
      return { text: `select ${TICK_COLUMNS} from ticks order by received_at desc, trade_time desc limit $1`, values: [mode.n] };
    case 'range':
      return {
        text: `select ${TICK_COLUMNS} from ticks where exchange = $1 and symbol = $2
               and ($3::timestamptz is null or trade_time >= $3) and ($4::timestamptz is null or trade_time <= $4)
               order by trade_time, trade_id limit $5`,
        values: [mode.exchange, mode.symbol, mode.from ?? null, mode.to ?? null, mode.limit],
      };
    case 'counts':
      return {
        text: `select exchange, symbol, count(*)::text as ticks, min(trade_time) as first_trade_time, max(trade_time) as last_trade_time
               from ticks group by exchange, symbol order by exchange, symbol`,
        values: [],
      };
    case 'gaps':
      return {
        text: `select id::text as id, exchange, symbol, from_id::text as from_id, to_id::text as to_id, status, attempts, reason,
                      detected_at, filled_at, last_attempt_at
               from gaps order by detected_at desc, id desc`,
        values: [],
      };
  }
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

function csvCell(v: unknown): string {
  const s = cell(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function render(fields: readonly string[], rows: ReadonlyArray<Record<string, unknown>>, format: Format): string {
  if (format === 'json') {
    return JSON.stringify(rows.map((r) => Object.fromEntries(fields.map((f) => [f, r[f] instanceof Date ? (r[f] as Date).toISOString() : (r[f] ?? null)]))), null, 2) + '\n';
  }
  if (format === 'csv') return [fields.join(','), ...rows.map((r) => fields.map((f) => csvCell(r[f])).join(','))].join('\n') + '\n';
  const widths = fields.map((f) => Math.max(f.length, ...rows.map((r) => cell(r[f]).length)));
  const line = (vals: readonly string[]): string => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(fields), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(fields.map((f) => cell(r[f]))))];
  out.push(`(${rows.length} row${rows.length === 1 ? '' : 's'})`);
  return out.join('\n') + '\n';
}

const USAGE = `usage: npm run query -- [--latest N | --exchange X --symbol Y [--from ISO] [--to ISO] [--limit N] | --counts | --gaps] [--format table|csv|json]\n`;

/** Table rows and archive rows of one symbol, in query order, each trade once (the table's row wins), at most `limit`. */
export function mergeTicks(table: readonly TickRow[], archive: readonly TickRow[], limit: number): TickRow[] {
  const all = [...table, ...archive].sort(compareTicks); // stable: a table row stays before its archived copy
  const out: TickRow[] = [];
  for (const r of all) {
    const prev = out.at(-1);
    if (prev && prev.trade_id === r.trade_id && prev.trade_time.getTime() === r.trade_time.getTime()) continue;
    out.push(r);
    if (out.length === limit) break;
  }
  return out;
}

/** Adds what the archive holds to the table's answer; `--latest` reads the table only (the newest ticks live there). */
async function withArchive(mode: Mode, rows: Array<Record<string, unknown>>, db: Kysely<Database>, root: string): Promise<Array<Record<string, unknown>>> {
  switch (mode.kind) {
    case 'latest':
      return rows;
    case 'range': {
      const archived = await archiveRange(root, mode, { from: mode.from, to: mode.to, limit: mode.limit });
      return archived.length === 0 ? rows : mergeTicks(rows as unknown as TickRow[], archived, mode.limit) as unknown as Array<Record<string, unknown>>;
    }
    case 'counts':
      return mergeCounts(rows as unknown as CountRow[], await archiveCounts(db, root)) as unknown as Array<Record<string, unknown>>;
    case 'gaps':
      return mergeGaps(rows as unknown as GapReportRow[], await archiveGaps(root)) as unknown as Array<Record<string, unknown>>;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  let config;
  try {
    parsed = parseArgs(argv);
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`query: ${err.message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const archiveDir = config.archive.dir;
  if (archiveDir !== undefined && !existsSync(archiveDir)) {
    process.stderr.write(`query: ARCHIVE_DIR ${archiveDir} does not exist (yet): answering from the database only\n`);
  }
  const logger = createLogger({ level: 'warn', destination: process.stderr as never });
  const target = await cliDatabase(config.storage, logger);
  // One connection for everything: the table's statements and the archive's look-ups (which days the table holds).
  const pool = new pg.Pool({
    connectionString: target.url,
    max: 1,
    application_name: 'market-collector-query',
    connectionTimeoutMillis: config.storage.connectTimeoutMs,
    statement_timeout: Math.max(config.storage.statementTimeoutMs, 60_000),
  });
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    const { text, values } = statement(parsed.mode);
    const result = await pool.query(text, values);
    let rows = result.rows as Array<Record<string, unknown>>;
    if (archiveDir !== undefined && existsSync(archiveDir)) rows = await withArchive(parsed.mode, rows, db, archiveDir);
    process.stdout.write(render(result.fields.map((f) => f.name), rows, parsed.format));
    return 0;
  } finally {
    await db.destroy().catch(() => undefined);
    await target.release();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`query: ${redactSecrets(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(1);
  },
);
