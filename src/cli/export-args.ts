/** The export command's arguments, exactly: --from, --to, --format, --out, optional --exchange and --symbol. */
import { resolve } from 'node:path';
import { daysBetween, parseDay } from '../archive/day.ts';
import { ARCHIVE_FORMATS } from '../archive/layout.ts';
import type { ArchiveFormat } from '../archive/layout.ts';
import { UsageError } from '../storage/cli-support.ts';
import { EXCHANGES } from '../tick.ts';
import { parseFlags } from './args.ts';

export interface ExportArgs {
  readonly from: string;
  readonly to: string;
  readonly format: ArchiveFormat;
  readonly out: string;
  readonly exchange: string | undefined;
  readonly symbol: string | undefined;
}

export const EXPORT_USAGE = `usage: npm run export -- --from YYYY-MM-DD --to YYYY-MM-DD --format parquet|csv --out DIR [--exchange X] [--symbol S]\n`;

const VALUE_FLAGS = new Set(['--from', '--to', '--format', '--out', '--exchange', '--symbol']);
const BOOL_FLAGS = new Set(['--help']);
/** A range longer than this is almost certainly a typo in a year. */
const MAX_DAYS = 3_660;


function required(values: ReadonlyMap<string, string>, flag: string): string {
  const v = values.get(flag);
  if (v === undefined) throw new UsageError(`${flag} is required`);
  return v;
}

function day(flag: string, v: string): string {
  const d = parseDay(v);
  if (d === undefined) throw new UsageError(`${flag}: expected a UTC date YYYY-MM-DD, got ${JSON.stringify(v)}`);
  return d;
}

export function parseExportArgs(argv: readonly string[]): ExportArgs | 'help' {
  const { values, bools } = parseFlags(argv, VALUE_FLAGS, BOOL_FLAGS);
  if (bools.has('--help')) return 'help';
  const from = day('--from', required(values, '--from'));
  const to = day('--to', required(values, '--to'));
  if (from > to) throw new UsageError(`--from (${from}) is after --to (${to})`);
  if (daysBetween(from, to).length > MAX_DAYS) throw new UsageError(`--from..--to spans more than ${MAX_DAYS} days`);
  const format = required(values, '--format');
  if (!(ARCHIVE_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format: expected parquet or csv, got ${JSON.stringify(format)}`);
  const out = required(values, '--out');
  if (out.trim() === '') throw new UsageError('--out: expected a directory');
  const exchange = values.get('--exchange');
  if (exchange !== undefined && !(EXCHANGES as readonly string[]).includes(exchange)) {
    throw new UsageError(`--exchange: expected ${EXCHANGES.join(' or ')}, got ${JSON.stringify(exchange)}`);
  }
  const symbol = values.get('--symbol');
  if (symbol !== undefined && symbol.trim() === '') throw new UsageError('--symbol: expected a symbol');
  return { from, to, format: format as ArchiveFormat, out: resolve(out), exchange, symbol };
}
