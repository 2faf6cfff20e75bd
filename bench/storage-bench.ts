/**
 * `npm run bench:storage [-- --quick] [--ticks 1000000] [--fill-rows 10200000] [--insert-ticks 500000] [--out FILE]`
 *
 * The PostgreSQL side of issue #11, measured on its own embedded server (a temp dir, free port):
 *  1. bytes per tick: `--ticks` realistic ticks (bench/lib/realistic-ticks.ts) written through the collector's own
 *     writer (openStorage → TickWriter), then every partition's table + indexes (pg_partition_tree), the
 *     instruments table included; the same rows copied into a table of the old, unpartitioned layout for comparison;
 *  2. insert throughput through the writer into today's partition, on a database whose 30 previous daily
 *     partitions hold `--fill-rows` rows (generated with generate_series), against a database with no other rows;
 *  3. the late-tick check (#14 d): duplicates and conflicting versions of stored trades handed to Storage.late, on
 *     the database with 30 full partitions.
 * Run alone it prints its section and puts it into BENCHMARKS.md (between its markers); `npm run bench` appends
 * the same section through `storageBenchSection()`. Figures are printed, never asserted.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import type { Logger } from '../src/logger.ts';
import { AHEAD_DAYS, DAY_MS, dayNumber, ensurePartitions } from '../src/storage/partitions.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { Storage } from '../src/storage/storage.ts';
import type { Tick } from '../src/tick.ts';
import { numberArg, parseArgs } from './lib/args.ts';
import { openBenchDatabase, sql } from './lib/database.ts';
import { MARKETS, realisticTicks } from './lib/realistic-ticks.ts';
import { fmtInt, round } from './lib/stats.ts';

export interface StorageBenchOptions {
  readonly ticks?: number;
  readonly fillRows?: number;
  readonly fillDays?: number;
  readonly insertTicks?: number;
  readonly lateTicks?: number;
  readonly log?: (msg: string) => void;
}

const BLOCK = 50_000;
/** Throughput rounds, alternating the two databases; the median is reported. */
const ROUNDS = 3;
const MARKER_START = '<!-- storage-bench:start -->';
const MARKER_END = '<!-- storage-bench:end -->';

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  await sql(serverUrl, `drop database if exists ${name} with (force)`);
  await sql(serverUrl, `create database ${name}`);
  return withDatabase(serverUrl, name);
}

async function open(url: string, spill: string, logger: Logger): Promise<Storage> {
  const config = { ...loadConfig({ SPILL_DIR: spill, PG_POOL_RESET_INTERVAL_MS: '0' }).storage };
  return openStorage({ config, url, logger });
}

/** Writes ticks through the writer in blocks (never past its buffer); resolves with ticks/s. */
async function writeAll(storage: Storage, source: { next(n: number): Tick[] }, n: number): Promise<number> {
  const t0 = performance.now();
  for (let done = 0; done < n; done += BLOCK) {
    for (const t of source.next(Math.min(BLOCK, n - done))) storage.sink.write(t);
    await storage.flush();
  }
  return n / ((performance.now() - t0) / 1000);
}

interface Sizes {
  rows: number;
  heap: number;
  uniqueIndex: number;
  brin: number;
  instruments: number;
  partitions: number;
  total: number;
}

async function sizes(url: string): Promise<Sizes> {
  const [r] = await sql<Record<string, string>>(url, `
    with parts as (select relid from pg_partition_tree('tick_rows') where isleaf)
    select (select count(*) from tick_rows) as rows,
           (select coalesce(sum(pg_table_size(relid)), 0) from parts) as heap,
           (select coalesce(sum(pg_relation_size(i.indexrelid)), 0) from pg_index i join parts p on p.relid = i.indrelid where i.indisunique) as unique_index,
           (select coalesce(sum(pg_indexes_size(relid)), 0) from parts) as indexes,
           pg_total_relation_size('instruments') as instruments,
           (select count(*) from parts) as partitions`);
  const heap = Number(r!.heap);
  const indexes = Number(r!.indexes);
  const instruments = Number(r!.instruments);
  return {
    rows: Number(r!.rows),
    heap,
    uniqueIndex: Number(r!.unique_index),
    brin: indexes - Number(r!.unique_index),
    instruments,
    partitions: Number(r!.partitions),
    total: heap + indexes + instruments,
  };
}

/** The pre-#11 layout (migration 20261121T0001) holding the same rows, for comparison. */
async function oldLayoutBytes(url: string): Promise<number> {
  await sql(url, `create table old_ticks (exchange text not null, symbol text not null, trade_id bigint not null, price numeric not null,
    qty numeric not null, side text not null check (side in ('buy', 'sell')), trade_time timestamptz not null, received_at timestamptz not null,
    source text not null default 'live' check (source in ('live', 'backfill')), primary key (exchange, symbol, trade_id))`);
  await sql(url, 'create index on old_ticks (exchange, symbol, trade_time)');
  await sql(url, 'insert into old_ticks select * from ticks order by trade_time, exchange, symbol');
  const [r] = await sql<{ b: string }>(url, "select pg_total_relation_size('old_ticks') as b");
  await sql(url, 'drop table old_ticks');
  return Number(r!.b);
}

/** `days` daily partitions before today holding `rows` rows in all, generated in the database. */
async function fill(url: string, storage: Storage, rows: number, days: number, log: (m: string) => void): Promise<void> {
  const today = dayNumber(Date.now());
  const first = today - days;
  await ensurePartitions(storage.db, Array.from({ length: days }, (_v, i) => first + i));
  await sql(url, `insert into instruments (exchange, symbol) select * from unnest($1::text[], $2::text[]) on conflict do nothing`,
    [MARKETS.map((m) => m.exchange), MARKETS.map((m) => m.symbol)]);
  const perDay = Math.ceil(rows / days);
  const client = new pg.Client({ connectionString: url, application_name: 'mc-bench-fill' });
  await client.connect();
  try {
    for (let d = 0; d < days; d++) {
      await client.query(
        `insert into tick_rows (trade_time, trade_id, received_delay_ms, instrument_id, flags, price, qty)
         select $1::timestamptz + (g::float8 * $2) * interval '1 millisecond', $3::int8 + g / 6, 1 + g % 40,
                (select min(instrument_id) from instruments) + (g % 6), g % 2,
                round((42000 + (g % 5000) * 0.1)::numeric, 2), round((0.00001 + (g % 99991) * 0.00001)::numeric, 5)
         from generate_series(0, $4::int - 1) g`,
        [new Date((first + d) * DAY_MS).toISOString(), DAY_MS / perDay, d * perDay, perDay],
      );
      if (d % 5 === 4) log(`  filled ${d + 1} of ${days} days`);
    }
    log('  vacuum analyze (as autovacuum would have by then)');
    await client.query('vacuum analyze tick_rows');
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

interface LateResult {
  ticks: number;
  perSec: number;
  duplicate: number;
  conflicting: number;
}

/** Half duplicates, half conflicting versions of trades `source` produced before (re-created from its seed). */
async function lateCheck(storage: Storage, sourceAgain: { next(n: number): Tick[] }, n: number): Promise<LateResult> {
  const before = storage.pipeline();
  const ticks = sourceAgain.next(n).map((t, i) => (i % 2 === 0 ? t : { ...t, price: `${t.price}1` }));
  const t0 = performance.now();
  for (const t of ticks) storage.late.write(t);
  await storage.flush();
  const s = (performance.now() - t0) / 1000;
  const after = storage.pipeline();
  return {
    ticks: n,
    perSec: n / s,
    duplicate: after.ticksDuplicate - before.ticksDuplicate,
    conflicting: (after.ticksConflicting ?? 0) - (before.ticksConflicting ?? 0),
  };
}

/** Runs the storage benchmarks and returns the BENCHMARKS.md section. */
export async function storageBenchSection(o: StorageBenchOptions = {}): Promise<string> {
  const n = o.ticks ?? 1_000_000;
  const fillRows = o.fillRows ?? 10_200_000;
  const fillDays = o.fillDays ?? 30;
  const insertTicks = o.insertTicks ?? 500_000;
  const lateTicks = o.lateTicks ?? 20_000;
  const say = o.log ?? ((m: string) => process.stderr.write(`[storage-bench] ${m}\n`));
  const logger = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
  const scratch = mkdtempSync(join(tmpdir(), 'mc-storage-bench-'));
  const server = await openBenchDatabase('storagebench', logger);
  const opened: Storage[] = [];
  const openTracked = async (url: string, name: string) => {
    const s = await open(url, join(scratch, name), logger);
    opened.push(s);
    return s;
  };
  try {
    const dayStart = dayNumber(Date.now()) * DAY_MS;

    say(`bytes per tick: ${fmtInt(n)} realistic ticks through the writer`);
    const bytesUrl = await freshDatabase(server.url, 'mc_bytes');
    const bytesStorage = await openTracked(bytesUrl, 'bytes');
    const emptyRate = await writeAll(bytesStorage, realisticTicks({ seed: 1, fromMs: dayStart, stepMs: DAY_MS / n }), n);
    await bytesStorage.close();
    await sql(bytesUrl, 'checkpoint');
    const size = await sizes(bytesUrl);
    const [check] = await sql<{ n: string }>(bytesUrl, 'select count(*) as n from ticks');
    say(`  ${round(size.total / size.rows, 1)} bytes/tick; old layout...`);
    const oldBytes = await oldLayoutBytes(bytesUrl);

    say(`insert throughput: empty database vs ${fillDays} daily partitions holding ${fmtInt(fillRows)} rows`);
    const emptyUrl = await freshDatabase(server.url, 'mc_empty');
    const empty = await openTracked(emptyUrl, 'empty');
    const fullUrl = await freshDatabase(server.url, 'mc_full');
    const full = await openTracked(fullUrl, 'full');
    const t0 = performance.now();
    await fill(fullUrl, full, fillRows, fillDays, say);
    const fillSeconds = (performance.now() - t0) / 1000;
    await sql(emptyUrl, 'vacuum analyze tick_rows');
    await sql(emptyUrl, 'checkpoint');
    const runs: Array<{ db: 'empty' | 'full'; perSec: number }> = [];
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      for (const [name, storage] of [['empty', empty], ['full', full]] as const) {
        const src = realisticTicks({ seed: 10 + round_, fromMs: dayStart + round_ * 1000, stepMs: 1, firstIdOffset: 100_000_000 * (round_ + 1) });
        const perSec = await writeAll(storage, src, insertTicks);
        runs.push({ db: name, perSec });
        say(`  ${name}: ${fmtInt(perSec)} ticks/s`);
      }
    }
    const [fullCount] = await sql<{ n: string; p: string }>(fullUrl, "select count(*) as n, (select count(*) from pg_partition_tree('tick_rows') where isleaf) as p from tick_rows");

    say(`late-tick check: ${fmtInt(lateTicks)} duplicates and conflicting versions on the full database`);
    const late = await lateCheck(full, realisticTicks({ seed: 10 + ROUNDS - 1, fromMs: dayStart + (ROUNDS - 1) * 1000, stepMs: 1, firstIdOffset: 100_000_000 * ROUNDS }), lateTicks);
    await empty.close();
    await full.close();

    const v = await sql<{ v: string }>(server.url, "select current_setting('server_version') as v");
    const avg = (db: 'empty' | 'full') => runs.filter((r) => r.db === db).map((r) => r.perSec).sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
    const perTick = (b: number) => round(b / size.rows, 1);
    const L: string[] = [];
    L.push(MARKER_START, '## Storage (PostgreSQL)', '');
    L.push(`Measured by \`npm run bench:storage\` (also part of \`npm run bench\`) on an embedded PostgreSQL ${v[0]!.v} of its own. Figures are printed, not asserted.`, '');
    L.push('| measure | result |', '|---|---|');
    L.push(`| bytes per tick, ${fmtInt(size.rows)} realistic ticks (tables + indexes + ${size.partitions} partitions + instruments) | **${perTick(size.total)}** (heap ${perTick(size.heap)}, unique index ${perTick(size.uniqueIndex)}, BRIN ${round(size.brin / size.rows, 2)}, instruments ${round(size.instruments / size.rows, 3)}) |`);
    L.push(`| the same rows in the old unpartitioned layout | ${perTick(oldBytes)} bytes per tick |`);
    L.push(`| insert through the writer, empty database (${MARKETS.length} symbols, batches of 5,000) | ${fmtInt(avg('empty'))} ticks/s median (runs: ${runs.filter((r) => r.db === 'empty').map((r) => fmtInt(r.perSec)).join(', ')}) |`);
    L.push(`| insert through the writer, ${fillDays} earlier daily partitions holding ${fmtInt(Number(fullCount!.n) - ROUNDS * insertTicks)} rows | ${fmtInt(avg('full'))} ticks/s median (runs: ${runs.filter((r) => r.db === 'full').map((r) => fmtInt(r.perSec)).join(', ')}); ${round(avg('full') / avg('empty'), 2)} × the empty database |`);
    L.push(`| late-tick check (#14 d) on that database (${fullCount!.p} partitions) | ${fmtInt(late.perSec)} late ticks/s (${fmtInt(late.duplicate)} duplicates, ${fmtInt(late.conflicting)} conflicts found of ${fmtInt(late.ticks)}) |`);
    L.push('');
    L.push('Method:', '');
    L.push(`- Ticks: ${MARKETS.map((m) => `${m.exchange} ${m.symbol} ${Math.round(m.weight * 100)}%`).join(', ')}, interleaved at random, contiguous ids from real-sized bases (~3.3e9), prices on each market's tick (Binance padded to 8 decimals as it sends them: "42219.91000000"; OKX trimmed: "42219.9"), quantities log-normal around each market's median trade on its lot size (BTC 0.002, 5 decimals on Binance, 8 on OKX), 1-40 ms receive delays (bench/lib/realistic-ticks.ts). ${fmtInt(Number(check!.n))} rows read back through the \`ticks\` view.`);
    L.push(`- Bytes: after the writer's last batch and a CHECKPOINT, no VACUUM: \`pg_table_size\` (heap, free-space and visibility maps) and \`pg_indexes_size\` of every leaf of \`pg_partition_tree('tick_rows')\` (yesterday's, today's and the ${AHEAD_DAYS} created ahead) plus \`pg_total_relation_size('instruments')\`. The old layout: a table with the original DDL and both its indexes, filled with \`insert ... select * from ticks order by trade_time\`.`);
    L.push(`- Throughput: two fresh databases on the same server, each opened by the collector's openStorage (default settings: BATCH_MAX_ROWS 5000, PG_POOL_MAX 3). The full one got ${fmtInt(fillRows)} rows in ${fillDays} daily partitions before today by \`insert ... select from generate_series\` (${round(fillSeconds, 0)} s), then VACUUM ANALYZE and CHECKPOINT. Then, alternating empty/full ${ROUNDS} times (median reported), ${fmtInt(insertTicks)} realistic ticks of today written through the writer in blocks of ${fmtInt(BLOCK)} (each block flushed before the next, so the writer's buffer never spills). Only today's partition and its index are touched, whatever the older partitions hold.`);
    L.push(`- Late-tick check: ${fmtInt(lateTicks)} ticks with ids already stored (the previous run's), every other one with a changed price, written to \`Storage.late\` at once; the time until \`flush()\` resolved (each batch of up to 2,000 waits for the writer, then one lookup probing the partitions within a day of each tick's time).`);
    L.push('', 'Reproduce: `npm run bench:storage` (about 3 minutes here), `npm run bench:storage -- --quick` for a smoke run.', MARKER_END, '');
    return L.join('\n');
  } finally {
    for (const s of opened) await s.close().catch(() => undefined);
    await server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Replaces (or appends) this section in a BENCHMARKS.md. */
export function putSection(file: string, section: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const a = text.indexOf(MARKER_START);
  const b = text.indexOf(MARKER_END);
  const next = a >= 0 && b > a ? text.slice(0, a) + section.trimEnd() + text.slice(b + MARKER_END.length) : `${text.trimEnd()}\n\n${section}`;
  writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = parseArgs(process.argv.slice(2), ['quick']);
  const quick = args.flags.has('quick');
  const section = await storageBenchSection({
    ticks: numberArg(args, 'ticks', quick ? 200_000 : 1_000_000),
    fillRows: numberArg(args, 'fill-rows', quick ? 600_000 : 10_200_000),
    insertTicks: numberArg(args, 'insert-ticks', quick ? 100_000 : 500_000),
  });
  process.stdout.write(`\n${section}\n`);
  const out = args.values.get('out') ?? (quick ? null : join(fileURLToPath(new URL('..', import.meta.url)), 'BENCHMARKS.md'));
  if (out) putSection(out, section);
  process.exit(0);
}
