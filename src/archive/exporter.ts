/**
 * Exports one symbol's ticks of one UTC day into one file (Parquet, or zstd CSV) with its manifest.
 *
 * 1. The day's count and trade id range are read from PostgreSQL.
 * 2. The rows are copied out in trade id order, in chunks of `chunkRows` (each chunk one short COPY on a pool client,
 *    released between chunks), each chunk appended to a DuckDB stage and then deleted: memory (DuckDB's cap, past
 *    which it spills to the staging dir) and staging disk stay bounded whatever the day's size.
 * 3. DuckDB writes the file to a temp name beside its final one; it is synced and read back (count, first and last
 *    trade id must equal PostgreSQL's, every trade time inside the day); the day's figures are read again from
 *    PostgreSQL (a late tick during the export makes them differ: the export fails and is retried later).
 * If the root already holds a Parquet archive of that day (retention dropped the day, then a late or backfilled tick
 * brought some of it back), its rows are kept: the new file is the union, the table's row winning for a trade id, so
 * an export never replaces an archive with less.
 * 4. Publish: the old manifest (if any) is deleted, the file renamed into place, then the new manifest written
 *    (temp + rename, directories synced). A crash at any step leaves either no manifest or a manifest that matches
 *    its file; temp files of a dead writer are removed by the next export.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { ArchiveError } from './archive-error.ts';
import { CHUNK_COLUMNS, copyChunkToFile } from './copy-out.ts';
import { dayEnd, dayStart } from './day.ts';
import { decimalColumn, decimalsSql, profileSql } from './decimal-column.ts';
import type { DecimalProfile } from './decimal-column.ts';
import { ISO_US_FORMAT, duckString, openDuck } from './duck.ts';
import type { Duck, DuckFactory } from './duck.ts';
import { fsyncDir, fsyncFile, removeDurably, removeOrphanTemps, sha256File, tempPathFor } from './files.ts';
import { STAGING_DIR, archiveFile, manifestFile } from './layout.ts';
import type { ArchiveFormat } from './layout.ts';
import { MANIFEST_VERSION, readManifest, writeManifest } from './manifest.ts';
import type { Manifest } from './manifest.ts';
import { dayStats, gapsTouching, sameStats } from './tick-source.ts';
import type { DayStats, Instrument, TickSource } from './tick-source.ts';
import { readContents, readFileSql } from './verify.ts';

/** Rows per COPY chunk: about 15 MB of CSV, well inside the statement timeout. */
export const DEFAULT_CHUNK_ROWS = 200_000;

export interface ExportDayOptions {
  readonly source: TickSource;
  readonly root: string;
  readonly inst: Instrument;
  readonly day: string;
  readonly format: ArchiveFormat;
  readonly logger: Logger;
  readonly chunkRows?: number;
  readonly clock?: Clock;
  /** Checked between chunks: an aborted export stops and leaves nothing that looks archived. */
  readonly signal?: AbortSignal;
  /**
   * After each chunk, pause this many times as long as the chunk took (0: none). The collector's archiver uses it
   * to keep PostgreSQL and the CPU mostly for live writes; the export CLI runs flat out.
   */
  readonly pauseRatio?: number;
  /** Where DuckDB runs: in this process (the default) or in a child (duck-remote.ts, the collector's archiver). */
  readonly duck?: DuckFactory;
  /**
   * Asked before each chunk: true while live work is behind (the collector: its writer's buffer holds more than a
   * batch). The export then waits, checking every YIELD_CHECK_MS, at most MAX_YIELD_MS per chunk, so that on a
   * machine too small for both, live writes go first and the export still ends.
   */
  readonly liveBehind?: () => boolean;
}

/** How often a yielding export checks whether live work has caught up. */
export const YIELD_CHECK_MS = 50;
/** The longest an export yields before one chunk: a writer that never catches up does not stop archiving. */
export const MAX_YIELD_MS = 10_000;

export type ExportOutcome =
  | { readonly kind: 'empty' }
  | { readonly kind: 'archived'; readonly path: string; readonly manifest: Manifest };

const STAGE_TABLE = `create table stage (trade_id BIGINT, price VARCHAR, qty VARCHAR, side VARCHAR, trade_time_us BIGINT, received_at_us BIGINT, source VARCHAR)`;
const CHUNK_CSV_COLUMNS = `{${CHUNK_COLUMNS.map((c) => `'${c}': '${c === 'trade_id' || c.endsWith('_us') ? 'BIGINT' : 'VARCHAR'}'`).join(', ')}}`;

export async function exportDay(o: ExportDayOptions): Promise<ExportOutcome> {
  const before = await dayStats(o.source.db, o.inst, o.day);
  if (!before) return { kind: 'empty' };
  const finalPath = archiveFile(o.root, o.inst.exchange, o.inst.symbol, o.day, o.format);
  await mkdir(dirname(finalPath), { recursive: true });
  const stagingRoot = join(o.root, STAGING_DIR);
  await mkdir(stagingRoot, { recursive: true });
  await Promise.all([removeOrphanTemps(dirname(finalPath)), removeOrphanTemps(stagingRoot)]);
  const staging = tempPathFor(join(stagingRoot, 'export'));
  await mkdir(staging);
  const tmpFile = tempPathFor(finalPath);
  const started = Date.now();
  let duck: Duck | undefined;
  try {
    // In memory (capped; past the cap DuckDB spills to the staging dir): nothing to checkpoint when it closes.
    duck = await (o.duck ?? openDuck)({ tempDir: join(staging, 'spill') });
    await stageDay(o, duck, before, staging);
    const staged = await stageStats(duck);
    if (staged.rows !== before.rows) throw new ArchiveError(`${where(o)}: staged ${staged.rows} rows, the table holds ${before.rows}`);
    const merged = o.format === 'parquet' ? await mergePrevious(o, duck, finalPath) : 0;
    const total = merged > 0 ? await stageStats(duck) : staged;
    const columns = await writeFile(o, duck, tmpFile, merged > 0);
    const writer = await duckVersion(duck);
    await fsyncFile(tmpFile);
    await verifyAgainst(o, duck, tmpFile, total);
    await duck.close();
    duck = undefined;
    const after = await dayStats(o.source.db, o.inst, o.day);
    if (!sameStats(before, after)) {
      throw new ArchiveError(`${where(o)} changed while it was exported (late or backfilled ticks); it will be exported again`);
    }
    const manifest: Manifest = {
      version: MANIFEST_VERSION,
      exchange: o.inst.exchange,
      symbol: o.inst.symbol,
      day: o.day,
      format: o.format,
      file: basename(finalPath),
      bytes: (await stat(tmpFile)).size,
      sha256: await sha256File(tmpFile),
      rows: total.rows,
      firstTradeId: total.firstTradeId,
      lastTradeId: total.lastTradeId,
      firstTradeTime: total.firstTradeTime,
      lastTradeTime: total.lastTradeTime,
      table: { rows: before.rows, firstTradeId: before.firstTradeId, lastTradeId: before.lastTradeId },
      columns,
      gaps: await gapsTouching(o.source.db, o.inst, total.firstTradeId, total.lastTradeId),
      exportedAt: new Date((o.clock ?? systemClock).now()).toISOString(),
      verifiedAt: new Date((o.clock ?? systemClock).now()).toISOString(),
      writer,
    };
    await publish(tmpFile, finalPath, manifest);
    o.logger.info(
      { exchange: o.inst.exchange, symbol: o.inst.symbol, day: o.day, format: o.format, rows: manifest.rows, keptFromArchive: merged, bytes: manifest.bytes, ms: Date.now() - started },
      'day archived',
    );
    return { kind: 'archived', path: finalPath, manifest };
  } finally {
    await duck?.close();
    await rm(tmpFile, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** Copies the day out of PostgreSQL chunk by chunk into the DuckDB stage. */
async function stageDay(o: ExportDayOptions, duck: Duck, stats: DayStats, staging: string): Promise<void> {
  await duck.run(STAGE_TABLE);
  const target = BigInt(o.chunkRows ?? DEFAULT_CHUNK_ROWS);
  const lastId = BigInt(stats.lastTradeId);
  // Ids are contiguous per symbol, so a span of `target` ids holds about `target` rows; where ids are sparse the
  // span doubles, where a chunk came back over twice the target it halves (a chunk never holds more rows than ids).
  let span = target;
  let fromId = BigInt(stats.firstTradeId);
  for (let n = 0; fromId <= lastId; n++) {
    if (o.liveBehind) await yieldToLive(o.liveBehind, o.signal);
    if (o.signal?.aborted) throw new ArchiveError(`export of ${o.inst.exchange} ${o.inst.symbol} ${o.day} cancelled`);
    const chunkStarted = Date.now();
    const chunk = join(staging, `chunk-${n}.csv`);
    const toId = fromId + span - 1n < lastId ? fromId + span - 1n : lastId;
    const { rows } = await copyChunkToFile(o.source, { inst: o.inst, day: o.day, fromId, toId }, chunk);
    if (rows > 0) {
      await duck.run(
        `insert into stage select * from read_csv(${duckString(chunk)}, header = false, auto_detect = false, quote = '"', escape = '"', columns = ${CHUNK_CSV_COLUMNS})`,
      );
    }
    await rm(chunk, { force: true });
    fromId = toId + 1n;
    if (BigInt(rows) * 2n < target && span < 1n << 40n) span *= 2n;
    else if (BigInt(rows) > target * 2n && span > target) span /= 2n;
    if (o.pauseRatio && fromId <= lastId) await pause((Date.now() - chunkStarted) * o.pauseRatio, o.signal);
  }
}

/** Waits while `liveBehind()` holds, up to MAX_YIELD_MS (or until aborted). */
async function yieldToLive(liveBehind: () => boolean, signal: AbortSignal | undefined): Promise<void> {
  const until = Date.now() + MAX_YIELD_MS;
  while (liveBehind() && !signal?.aborted && Date.now() < until) await pause(YIELD_CHECK_MS, signal);
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function profile(duck: Duck, col: string): Promise<DecimalProfile> {
  const [plain, intDigits, scale] = (await duck.rows(`select ${profileSql(col)} from stage`))[0]!;
  return { plain: plain === true, maxIntegerDigits: Number(intDigits ?? 0), maxScale: Number(scale ?? 0) };
}

/** Writes the staged day to `tmpFile` in the requested format; returns the price and qty column types. */
async function writeFile(o: ExportDayOptions, duck: Duck, tmpFile: string, reorder: boolean): Promise<Manifest['columns']> {
  // The stage is in trade id order (keyset chunks) unless archived rows were merged in after it.
  const order = reorder ? ' order by trade_id' : '';
  const exchange = duckString(o.inst.exchange);
  const symbol = duckString(o.inst.symbol);
  if (o.format === 'csv') {
    const ts = (c: string): string => `strftime(make_timestamp(${c}), '${ISO_US_FORMAT}')`;
    await duck.run(
      `COPY (select ${exchange} as exchange, ${symbol} as symbol, trade_id, price, qty, side, ${ts('trade_time_us')} as trade_time,
         ${ts('received_at_us')} as received_at, source from stage${order}) TO ${duckString(tmpFile)} (FORMAT csv, HEADER, COMPRESSION zstd)`,
    );
    return { price: 'VARCHAR', qty: 'VARCHAR' };
  }
  const price = decimalColumn('price', await profile(duck, 'price'));
  const qty = decimalColumn('qty', await profile(duck, 'qty'));
  await duck.run(
    `COPY (select ${exchange} as exchange, ${symbol} as symbol, trade_id, ${price.expr} as price, ${qty.expr} as qty, side,
       make_timestamp(trade_time_us)::TIMESTAMPTZ as trade_time, make_timestamp(received_at_us)::TIMESTAMPTZ as received_at, source,
       ${decimalsSql('price')} as price_decimals, ${decimalsSql('qty')} as qty_decimals from stage${order})
     TO ${duckString(tmpFile)} (FORMAT parquet, COMPRESSION zstd)`,
  );
  return { price: price.type, qty: qty.type };
}

interface StagedStats {
  readonly rows: number;
  readonly firstTradeId: string;
  readonly lastTradeId: string;
  readonly firstTradeTime: string;
  readonly lastTradeTime: string;
}

async function stageStats(duck: Duck): Promise<StagedStats> {
  const [rows, first, last, firstTime, lastTime] = (
    await duck.rows(
      `select count(*)::BIGINT, min(trade_id)::VARCHAR, max(trade_id)::VARCHAR,
              strftime(make_timestamp(min(trade_time_us)), '${ISO_US_FORMAT}'), strftime(make_timestamp(max(trade_time_us)), '${ISO_US_FORMAT}') from stage`,
    )
  )[0]!;
  return { rows: Number(rows as bigint), firstTradeId: String(first), lastTradeId: String(last), firstTradeTime: String(firstTime), lastTradeTime: String(lastTime) };
}

/** Text of an archived decimal column as the table printed it (DECIMAL(38,18) text cut to its decimals). */
function archivedText(col: string): string {
  return `CASE WHEN ${col}_decimals = 0 THEN split_part(${col}::VARCHAR, '.', 1) ELSE substr(${col}::VARCHAR, 1, strpos(${col}::VARCHAR, '.') + ${col}_decimals) END`;
}

/** Adds the rows of the day's existing Parquet archive that the table no longer has; returns how many. */
async function mergePrevious(o: ExportDayOptions, duck: Duck, finalPath: string): Promise<number> {
  const previous = await readManifest(manifestFile(finalPath)).catch((err: unknown) => err as Error);
  if (previous === undefined) return 0;
  if (previous instanceof Error || (await sha256File(finalPath).catch(() => undefined)) !== previous.sha256) {
    // Not trustworthy as archived: keep it aside (never deleted by us) and export what the table holds.
    const aside = `${finalPath}.unverified-${Date.now()}`;
    await rename(finalPath, aside).catch(() => undefined);
    o.logger.error(
      { path: finalPath, keptAs: aside, reason: previous instanceof Error ? previous.message : 'sha256 differs from the manifest' },
      'previous archive of this day cannot be verified: kept aside, replaced by what the table holds',
    );
    return 0;
  }
  return duck.run(
    `insert into stage select trade_id, ${archivedText('price')}, ${archivedText('qty')}, side, epoch_us(trade_time), epoch_us(received_at), source
     from ${readFileSql(finalPath, 'parquet')} where trade_id not in (select trade_id from stage)`,
  );
}

function where(o: ExportDayOptions): string {
  return `${o.inst.exchange} ${o.inst.symbol} ${o.day}`;
}

/** The read-back from disk (the synced file, not the stage): count and id range as staged, every time inside the day. */
async function verifyAgainst(o: ExportDayOptions, duck: Duck, file: string, stats: StagedStats): Promise<void> {
  const got = await readContents(duck, file, o.format);
  if (got.rows !== stats.rows || got.firstTradeId !== stats.firstTradeId || got.lastTradeId !== stats.lastTradeId) {
    throw new ArchiveError(
      `${where(o)}: the written file does not read back as what was staged (file: ${got.rows} rows, ids ${got.firstTradeId}..${got.lastTradeId}; ` +
        `staged: ${stats.rows} rows, ids ${stats.firstTradeId}..${stats.lastTradeId})`,
    );
  }
  const lo = BigInt(dayStart(o.day)) * 1000n;
  const hi = BigInt(dayEnd(o.day)) * 1000n;
  if (got.minTradeTimeUs === null || got.maxTradeTimeUs === null || got.minTradeTimeUs < lo || got.maxTradeTimeUs >= hi) {
    throw new ArchiveError(`${where(o)}: the written file holds trade times outside the day`);
  }
}

async function publish(tmpFile: string, finalPath: string, manifest: Manifest): Promise<void> {
  const mPath = manifestFile(finalPath);
  await removeDurably(mPath);
  await rename(tmpFile, finalPath);
  await fsyncDir(dirname(finalPath));
  await writeManifest(mPath, manifest);
}

async function duckVersion(duck: Duck): Promise<string> {
  return `duckdb ${String((await duck.rows('select version()'))[0]![0])}`;
}
