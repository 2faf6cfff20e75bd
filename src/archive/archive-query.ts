/**
 * The archive's side of `npm run query`: archived rows, counts and gaps, shaped like the table's. The caller merges
 * them with the table's answer so that each trade appears once, wherever it lives: a day only in the archive
 * (retention dropped it), only in the table, or in both (archived and not dropped yet, or dropped and partly
 * brought back by a late tick).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.ts';
import { listArchived } from './archive-index.ts';
import type { ArchivedFile } from './archive-index.ts';
import { readTicks } from './archive-reader.ts';
import type { ReadRange, TickRow } from './archive-reader.ts';
import { dayOf } from './day.ts';
import { openDuck } from './duck.ts';
import type { ManifestGap } from './manifest.ts';
import { daysWithTicks } from './tick-source.ts';
import type { Instrument } from './tick-source.ts';

function key(i: Instrument): string {
  return `${i.exchange}\u0000${i.symbol}`;
}

export interface ArchivedDayFilter {
  readonly inst?: Instrument;
  readonly fromDay?: string;
  readonly toDay?: string;
}

/** Archived Parquet days, optionally of one instrument and within [fromDay, toDay]. */
async function archivedDays(root: string, filter: ArchivedDayFilter): Promise<ArchivedFile[]> {
  return (await listArchived(root, { exchange: filter.inst?.exchange, symbol: filter.inst?.symbol, format: 'parquet' })).filter(
    (f) => (filter.fromDay === undefined || f.manifest.day >= filter.fromDay) && (filter.toDay === undefined || f.manifest.day <= filter.toDay),
  );
}

/** Each archived day with whether the table still has ticks of it (one round trip per instrument). */
async function withTablePresence(db: Kysely<Database>, files: readonly ArchivedFile[]): Promise<Array<ArchivedFile & { inTable: boolean }>> {
  const byInstrument = new Map<string, ArchivedFile[]>();
  for (const f of files) byInstrument.set(key(f.manifest), [...(byInstrument.get(key(f.manifest)) ?? []), f]);
  const out: Array<ArchivedFile & { inTable: boolean }> = [];
  for (const group of byInstrument.values()) {
    const inTable = await daysWithTicks(db, group[0]!.manifest, group.map((f) => f.manifest.day));
    out.push(...group.map((f) => ({ ...f, inTable: inTable.has(f.manifest.day) })));
  }
  return out;
}

/** Archived ticks of one instrument in a time range (the caller de-duplicates against the table's). */
export async function archiveRange(root: string, inst: Instrument, range: ReadRange): Promise<TickRow[]> {
  const files = await archivedDays(root, {
    inst,
    fromDay: range.from ? dayOf(range.from.getTime()) : undefined,
    toDay: range.to ? dayOf(range.to.getTime()) : undefined,
  });
  if (files.length === 0) return [];
  const duck = await openDuck();
  try {
    return await readTicks(duck, files.map((f) => f.path), range);
  } finally {
    await duck.close();
  }
}

export interface CountRow {
  exchange: string;
  symbol: string;
  ticks: string;
  first_trade_time: Date;
  last_trade_time: Date;
}

/**
 * One count row per archived day, of the ticks the table does not hold: the whole day when the table has none of
 * it, else the rows the file kept from an earlier archive (manifest rows minus the rows taken from the table).
 */
export async function archiveCounts(db: Kysely<Database>, root: string): Promise<CountRow[]> {
  const rows: CountRow[] = [];
  for (const { manifest: m, inTable } of await withTablePresence(db, await archivedDays(root, {}))) {
    const extra = inTable ? m.rows - m.table.rows : m.rows;
    if (extra <= 0) continue;
    rows.push({ exchange: m.exchange, symbol: m.symbol, ticks: String(extra), first_trade_time: new Date(m.firstTradeTime), last_trade_time: new Date(m.lastTradeTime) });
  }
  return rows;
}

/** Adds archive count rows to the table's (same shape), one row per instrument, ordered by exchange, symbol. */
export function mergeCounts(table: readonly CountRow[], archive: readonly CountRow[]): CountRow[] {
  const merged = new Map<string, CountRow>(table.map((r) => [key(r), { ...r }]));
  for (const a of archive) {
    const t = merged.get(key(a));
    if (!t) merged.set(key(a), { ...a });
    else {
      t.ticks = String(BigInt(t.ticks) + BigInt(a.ticks));
      if (a.first_trade_time < t.first_trade_time) t.first_trade_time = a.first_trade_time;
      if (a.last_trade_time > t.last_trade_time) t.last_trade_time = a.last_trade_time;
    }
  }
  return [...merged.values()].sort((x, y) => (x.exchange === y.exchange ? cmp(x.symbol, y.symbol) : cmp(x.exchange, y.exchange)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface GapReportRow {
  id: string;
  exchange: string;
  symbol: string;
  from_id: string;
  to_id: string;
  status: string;
  attempts: number;
  reason: string | null;
  detected_at: Date;
  filled_at: Date | null;
  last_attempt_at: Date | null;
}

function gapKey(g: { exchange: string; symbol: string; from_id: string; to_id: string }): string {
  return `${key(g)}\u0000${g.from_id}\u0000${g.to_id}`;
}

function date(s: string | null): Date | null {
  return s === null ? null : new Date(s);
}

/** Gaps recorded in every archived day's manifest (Parquet and CSV), one row per range. */
export async function archiveGaps(root: string): Promise<GapReportRow[]> {
  const byRange = new Map<string, GapReportRow>();
  for (const { manifest } of await listArchived(root)) {
    for (const g of manifest.gaps as readonly ManifestGap[]) {
      byRange.set(gapKey(g), {
        ...g,
        detected_at: new Date(g.detected_at),
        filled_at: date(g.filled_at),
        last_attempt_at: date(g.last_attempt_at),
      });
    }
  }
  return [...byRange.values()];
}

/**
 * The table's gaps plus the archived ones it no longer has (same exchange, symbol and range: the table's row wins,
 * it is the current status), newest first like the table report.
 */
export function mergeGaps(table: readonly GapReportRow[], archive: readonly GapReportRow[]): GapReportRow[] {
  const seen = new Set(table.map(gapKey));
  const rows = [...table, ...archive.filter((g) => !seen.has(gapKey(g)))];
  return rows.sort((a, b) => b.detected_at.getTime() - a.detected_at.getTime() || Number(BigInt(b.id) - BigInt(a.id)));
}
