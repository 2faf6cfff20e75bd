/**
 * Where archived files live: ROOT/<exchange>/<symbol>/<YYYY-MM-DD>.<ext>, with the manifest beside the file as
 * <file>.manifest.json. Names that come from the database are checked before they become path components.
 */
import { join } from 'node:path';
import { ArchiveError } from './archive-error.ts';

export type ArchiveFormat = 'parquet' | 'csv';
export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['parquet', 'csv'];

/** File name endings: Parquet is zstd inside; CSV is a zstd-compressed stream. */
const EXTENSIONS: Readonly<Record<ArchiveFormat, string>> = { parquet: '.parquet', csv: '.csv.zst' };
export const MANIFEST_SUFFIX = '.manifest.json';
/** Export work areas (chunks, DuckDB stage) under the root; never read as archive content. */
export const STAGING_DIR = '.staging';

const SAFE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Rejects a name that would not be one plain path component (slashes, '..', hidden files, control characters). */
export function safeName(kind: string, name: string): string {
  if (!SAFE_NAME_RE.test(name)) throw new ArchiveError(`${kind} ${JSON.stringify(name)} cannot be an archive path component`);
  return name;
}

export function fileName(day: string, format: ArchiveFormat): string {
  return `${day}${EXTENSIONS[format]}`;
}

export function instrumentDir(root: string, exchange: string, symbol: string): string {
  return join(root, safeName('exchange', exchange), safeName('symbol', symbol));
}

export function archiveFile(root: string, exchange: string, symbol: string, day: string, format: ArchiveFormat): string {
  return join(instrumentDir(root, exchange, symbol), fileName(day, format));
}

export function manifestFile(dataFile: string): string {
  return dataFile + MANIFEST_SUFFIX;
}
