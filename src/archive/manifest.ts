/**
 * The manifest beside each archived file: what the file holds (rows, trade id range, time range, column types),
 * the gaps known in that range when it was written, and the file's sha256. A file counts as archived only when its
 * manifest exists: the manifest is written last, after the file was verified by reading it back.
 * Trade ids are decimal strings (bigint in PostgreSQL: exact beyond 2^53).
 */
import { readFile } from 'node:fs/promises';
import { ArchiveError } from './archive-error.ts';
import { parseDay } from './day.ts';
import { writeFileAtomic } from './files.ts';
import { ARCHIVE_FORMATS } from './layout.ts';
import type { ArchiveFormat } from './layout.ts';

export const MANIFEST_VERSION = 1;

/** A row of the `gaps` table as `npm run query -- --gaps` prints it (timestamps as ISO strings). */
export interface ManifestGap {
  readonly id: string;
  readonly exchange: string;
  readonly symbol: string;
  readonly from_id: string;
  readonly to_id: string;
  readonly status: string;
  readonly attempts: number;
  readonly reason: string | null;
  readonly detected_at: string;
  readonly filled_at: string | null;
  readonly last_attempt_at: string | null;
}

export interface Manifest {
  readonly version: number;
  readonly exchange: string;
  readonly symbol: string;
  /** The UTC day the file covers (trade_time in [day, day + 1)). */
  readonly day: string;
  readonly format: ArchiveFormat;
  /** The data file's name, in the manifest's directory. */
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly rows: number;
  readonly firstTradeId: string;
  readonly lastTradeId: string;
  readonly firstTradeTime: string;
  readonly lastTradeTime: string;
  /** What the table held of the day at export (the file may hold more: rows kept from a previous archive). */
  readonly table: { readonly rows: number; readonly firstTradeId: string; readonly lastTradeId: string };
  /** Column types in the file for price and qty: 'DECIMAL(38,18)' normally, 'VARCHAR' when a value does not fit. */
  readonly columns: { readonly price: string; readonly qty: string };
  /** Gaps of this symbol overlapping or touching [firstTradeId, lastTradeId], as recorded at export. */
  readonly gaps: readonly ManifestGap[];
  readonly exportedAt: string;
  readonly verifiedAt: string;
  readonly writer: string;
}

export function manifestJson(m: Manifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}

export async function writeManifest(path: string, m: Manifest): Promise<void> {
  await writeFileAtomic(path, manifestJson(m));
}

const ID_RE = /^-?\d{1,19}$/;
const SHA_RE = /^[0-9a-f]{64}$/;

function fail(path: string, what: string): never {
  throw new ArchiveError(`manifest ${path}: ${what}`);
}

function str(path: string, o: Record<string, unknown>, k: string, re?: RegExp): string {
  const v = o[k];
  if (typeof v !== 'string' || (re && !re.test(v))) fail(path, `field ${k} is missing or malformed`);
  return v;
}

function count(path: string, o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(path, `field ${k} must be a non-negative integer`);
  return v;
}

function time(path: string, o: Record<string, unknown>, k: string): string {
  const v = str(path, o, k);
  if (Number.isNaN(Date.parse(v))) fail(path, `field ${k} is not a timestamp`);
  return v;
}

function nullableString(path: string, o: Record<string, unknown>, k: string): string | null {
  const v = o[k];
  if (v !== null && typeof v !== 'string') fail(path, `field ${k} must be a string or null`);
  return v;
}

function parseGap(path: string, g: unknown): ManifestGap {
  if (!g || typeof g !== 'object' || Array.isArray(g)) fail(path, 'gaps must hold objects');
  const o = g as Record<string, unknown>;
  return {
    id: str(path, o, 'id', ID_RE),
    exchange: str(path, o, 'exchange'),
    symbol: str(path, o, 'symbol'),
    from_id: str(path, o, 'from_id', ID_RE),
    to_id: str(path, o, 'to_id', ID_RE),
    status: str(path, o, 'status'),
    attempts: count(path, o, 'attempts'),
    reason: nullableString(path, o, 'reason'),
    detected_at: time(path, o, 'detected_at'),
    filled_at: nullableString(path, o, 'filled_at'),
    last_attempt_at: nullableString(path, o, 'last_attempt_at'),
  };
}

function parseTable(path: string, t: unknown): Manifest['table'] {
  if (!t || typeof t !== 'object' || Array.isArray(t)) fail(path, 'field table is missing');
  const o = t as Record<string, unknown>;
  return { rows: count(path, o, 'rows'), firstTradeId: str(path, o, 'firstTradeId', ID_RE), lastTradeId: str(path, o, 'lastTradeId', ID_RE) };
}

/** Validates a parsed manifest; throws ArchiveError naming the file and the bad field. */
export function parseManifest(path: string, value: unknown): Manifest {
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail(path, 'not a JSON object');
  const o = value as Record<string, unknown>;
  if (o.version !== MANIFEST_VERSION) fail(path, `unsupported version ${JSON.stringify(o.version)} (expected ${MANIFEST_VERSION})`);
  const day = str(path, o, 'day');
  if (parseDay(day) === undefined) fail(path, `field day is not a YYYY-MM-DD date`);
  const format = str(path, o, 'format') as ArchiveFormat;
  if (!ARCHIVE_FORMATS.includes(format)) fail(path, `field format must be one of ${ARCHIVE_FORMATS.join(', ')}`);
  const columns = o.columns as Record<string, unknown> | undefined;
  if (!columns || typeof columns !== 'object') fail(path, 'field columns is missing');
  if (!Array.isArray(o.gaps)) fail(path, 'field gaps must be an array');
  const file = str(path, o, 'file');
  if (file.includes('/') || file.startsWith('.')) fail(path, 'field file must be a plain file name');
  return {
    version: MANIFEST_VERSION,
    exchange: str(path, o, 'exchange'),
    symbol: str(path, o, 'symbol'),
    day,
    format,
    file,
    bytes: count(path, o, 'bytes'),
    sha256: str(path, o, 'sha256', SHA_RE),
    rows: count(path, o, 'rows'),
    firstTradeId: str(path, o, 'firstTradeId', ID_RE),
    lastTradeId: str(path, o, 'lastTradeId', ID_RE),
    firstTradeTime: time(path, o, 'firstTradeTime'),
    lastTradeTime: time(path, o, 'lastTradeTime'),
    table: parseTable(path, o.table),
    columns: { price: str(path, columns, 'price'), qty: str(path, columns, 'qty') },
    gaps: o.gaps.map((g) => parseGap(path, g)),
    exportedAt: time(path, o, 'exportedAt'),
    verifiedAt: time(path, o, 'verifiedAt'),
    writer: str(path, o, 'writer'),
  };
}

/** The manifest at `path`, or undefined when there is none. A present but unreadable manifest throws. */
export async function readManifest(path: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ArchiveError(`manifest ${path}: cannot be read`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ArchiveError(`manifest ${path}: not valid JSON`, { cause: err });
  }
  return parseManifest(path, value);
}
