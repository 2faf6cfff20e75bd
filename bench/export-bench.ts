/**
 * `npm run bench:export [-- --quick] [--ticks 5000000] [--rate 20000] [--seconds 20] [--write]`
 *
 * The archive export, measured (issue #11): one symbol-day of `--ticks` realistic ticks is written into the table,
 *  1. exported alone (no other load): export throughput in ticks/s, Parquet bytes per tick;
 *  2. the collector (compiled child, as `npm start` runs it) stores a live stream at `--rate` ticks/s: baseline
 *     send → commit latency over `--seconds`;
 *  3. the same collector with ARCHIVE_DIR set archives that day while it stores the same live stream: send → commit
 *     latency over the export (target: p99 < 250 ms), the export's throughput under load, the collector's RSS.
 * Prints its BENCHMARKS.md section; `--write` puts it into BENCHMARKS.md (replacing its previous section).
 * `runExportBench()` returns the section for `npm run bench`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { openCliSource } from '../src/archive/cli-source.ts';
import { dayOf } from '../src/archive/day.ts';
import { DUCKDB_MEMORY_LIMIT } from '../src/archive/duck.ts';
import { exportDay } from '../src/archive/exporter.ts';
import { ARCHIVER_CHUNK_ROWS } from '../src/archive/archiver.ts';
import { DEFAULTS, loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import type { Logger } from '../src/logger.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { migrateToLatest } from '../src/storage/migrate.ts';
import { PROJECT_ROOT } from '../test/helpers/child-collector.ts';
import { sleep } from '../test/helpers/wait-for.ts';
import { numberArg, parseArgs } from './lib/args.ts';
import { startCollectorProcess } from './lib/collector-proc.ts';
import type { CollectorProcess } from './lib/collector-proc.ts';
import { openBenchDatabase, sql } from './lib/database.ts';
import { commitLatency, commitTimestampsEnabled } from './lib/latency.ts';
import type { LatencyResult } from './lib/latency.ts';
import { rssBytes } from './lib/proc.ts';
import { fmtInt, mb, round } from './lib/stats.ts';

export interface ExportBenchOptions {
  readonly quick?: boolean;
  readonly ticks?: number;
  readonly rate?: number;
  readonly seconds?: number;
  readonly logger?: Logger;
}

const SECTION = '## Archive export';
/** The archived symbol is not in the live stream, so the two never share trade ids or gap tracking. */
const ARCHIVED = { exchange: 'binance', symbol: 'SOLUSDT' };
const LIVE = { binance: ['BTCUSDT', 'ETHUSDT'], okx: ['BTC-USDT', 'ETH-USDT'] };
const FILL_STEP = 1_000_000;

const say = (msg: string) => process.stderr.write(`[bench:export ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/**
 * One UTC day of `n` ticks, evenly spread, Binance-shaped values (8 decimals, prices walking around 150), written
 * straight into the storage layer's rows (`ticks` is a view over them; its insert trigger goes row by row).
 */
async function fillDay(url: string, day: string, n: number): Promise<number> {
  const t0 = Date.now();
  await sql(url, `insert into instruments (exchange, symbol) values ($1, $2) on conflict do nothing`, [ARCHIVED.exchange, ARCHIVED.symbol]);
  await sql(url, `select tick_rows_ensure_partition($1::date)`, [day]);
  for (let from = 0; from < n; from += FILL_STEP) {
    const to = Math.min(n, from + FILL_STEP) - 1;
    await sql(
      url,
      `insert into tick_rows (trade_time, trade_id, received_at, received_delay_ms, instrument_id, flags, price, qty)
       select $3::timestamptz + (g * (86400000.0 / $4)) * interval '1 millisecond', 3000000000 + g, null, (5 + g % 40)::smallint,
              (select instrument_id from instruments where exchange = $1 and symbol = $2),
              case when (g * 31 % 7) < 4 then 0 else 1 end,
              round((150 + 4 * sin(g / 40000.0) + (g * 7919 % 1000) / 1000.0)::numeric, 2)::numeric(18, 8),
              ((1 + (g * 104729 % 99991)) / 10000.0)::numeric(18, 8)
         from generate_series($5::bigint, $6::bigint) g`,
      [ARCHIVED.exchange, ARCHIVED.symbol, `${day}T00:00:00Z`, n, from, to],
    );
  }
  await sql(url, 'vacuum analyze tick_rows');
  return Date.now() - t0;
}

async function migrate(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}

interface LiveWindow {
  readonly latency: LatencyResult;
  readonly rssMaxMb: number;
  readonly batchP99MaxMs: number;
  readonly loopP99MaxMs: number;
}

/** Samples the collector's RSS and stats every second until `done` resolves. */
async function watch(col: CollectorProcess, done: Promise<unknown>): Promise<Omit<LiveWindow, 'latency'>> {
  let rss = 0;
  let batch = 0;
  let loop = 0;
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    await Promise.race([sleep(1000), done]);
    rss = Math.max(rss, rssBytes(col.pid));
    const st = col.stats();
    batch = Math.max(batch, st?.pipeline?.batchLatencyMs.p99 ?? 0);
    loop = Math.max(loop, st?.process.eventLoopDelayP99Ms ?? 0);
  }
  return { rssMaxMb: mb(rss), batchP99MaxMs: batch, loopP99MaxMs: loop };
}

function collectorEnv(sim: ExchangeSimulator, url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    BINANCE_WS_URL: sim.binanceWsUrl,
    OKX_WS_URL: sim.okxWsUrl,
    BINANCE_REST_URL: sim.binanceRestUrl,
    OKX_REST_URL: sim.okxRestUrl,
    BINANCE_SYMBOLS: LIVE.binance.join(','),
    OKX_SYMBOLS: LIVE.okx.join(','),
    DATABASE_URL: url,
    BACKFILL_ENABLED: '0',
    ...extra,
  };
}

export async function runExportBench(o: ExportBenchOptions = {}): Promise<string> {
  const quick = o.quick ?? false;
  const ticks = o.ticks ?? (quick ? 500_000 : 5_000_000);
  const rate = o.rate ?? 20_000;
  const seconds = o.seconds ?? (quick ? 8 : 20);
  const log = o.logger ?? createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
  const scratch = mkdtempSync(join(tmpdir(), 'mc-bench-export-'));
  const day = dayOf(Date.now() - 3 * 86_400_000);
  const db = await openBenchDatabase('export', log);
  let sim: ExchangeSimulator | undefined;
  let col: CollectorProcess | undefined;
  try {
    if (!(await commitTimestampsEnabled(db.url)) && db.restart) {
      await sql(db.url, 'alter system set track_commit_timestamp = on');
      await db.restart(0);
    }
    if (!(await commitTimestampsEnabled(db.url))) throw new Error('track_commit_timestamp is off on this server: the latency figures need it');
    await migrate(db.url);
    say(`filling ${day} with ${fmtInt(ticks)} ticks of ${ARCHIVED.exchange} ${ARCHIVED.symbol}`);
    const fillMs = await fillDay(db.url, day, ticks);

    say('1. export alone');
    const source = openCliSource(db.url, loadConfig({}).storage, log);
    const t0 = Date.now();
    const idle = await exportDay({ source, root: join(scratch, 'idle'), inst: ARCHIVED, day, format: 'parquet', logger: log });
    const idleMs = Date.now() - t0;
    await source.close();
    if (idle.kind !== 'archived') throw new Error('the filled day exported nothing');
    say(`   ${fmtInt(ticks / (idleMs / 1000))} ticks/s, ${fmtInt(idle.manifest.bytes)} bytes`);

    sim = await ExchangeSimulator.start({
      tradesPerSecond: rate / 4, binanceSymbols: LIVE.binance, okxSymbols: LIVE.okx, seed: 7,
      binanceHandshakesPer5Min: 100_000, okxHandshakesPerSecond: 1_000, okxSubscribesPerHour: 100_000,
    });

    say(`2. baseline: live ${fmtInt(rate)} ticks/s for ${seconds} s, no export`);
    col = await startCollectorProcess(join(scratch, 'c1'), collectorEnv(sim, db.url));
    await sleep(5_000);
    const b0 = Date.now();
    const baseWatch = watch(col, sleep(seconds * 1000));
    const baseStats = await baseWatch;
    const b1 = Date.now();
    await sleep(1_500);
    await col.stop();
    col = undefined;
    const baseline: LiveWindow = { ...baseStats, latency: await commitLatency(db.url, b0, b1) };
    say(`   p99 ${round(baseline.latency.p99Ms, 0)} ms`);

    say(`3. live ${fmtInt(rate)} ticks/s while the collector archives the day (ARCHIVE_DIR)`);
    const archiveDir = join(scratch, 'live');
    col = await startCollectorProcess(join(scratch, 'c2'), collectorEnv(sim, db.url, { ARCHIVE_DIR: archiveDir, ARCHIVE_CHECK_INTERVAL_MS: '10000' }));
    const running = col;
    const archived = running.child.waitForLog((l) => l.msg === 'day archived', 60 * 60_000, 'day archived');
    const liveStats = await watch(running, archived);
    const line = await archived;
    const e1 = typeof line.time === 'number' ? line.time : Date.parse(String(line.time ?? '')) || Date.now();
    const exportMs = Number(line.ms);
    const e0 = e1 - exportMs;
    await sleep(1_500);
    await running.stop();
    col = undefined;
    const during: LiveWindow = { ...liveStats, latency: await commitLatency(db.url, e0, e1) };
    say(`   export ${fmtInt(ticks / (exportMs / 1000))} ticks/s; live p99 ${round(during.latency.p99Ms, 0)} ms`);
    const pgVersion = (await sql<{ server_version: string }>(db.url, 'show server_version'))[0]!.server_version;
    return render({ ticks, rate, seconds, day, fillMs, idleMs, exportMs, bytes: idle.manifest.bytes, baseline, during, pgVersion, quick, dbKind: db.kind });
  } finally {
    if (col) await col.stop().catch(() => undefined);
    if (sim) await sim.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}

interface Figures {
  ticks: number;
  rate: number;
  seconds: number;
  day: string;
  fillMs: number;
  idleMs: number;
  exportMs: number;
  bytes: number;
  baseline: LiveWindow;
  during: LiveWindow;
  pgVersion: string;
  quick: boolean;
  dbKind: string;
}

function render(f: Figures): string {
  const lat = (l: LatencyResult) => `${round(l.p50Ms, 0)} / ${round(l.p99Ms, 0)} / ${round(l.maxMs, 0)} ms (${fmtInt(l.rows)} rows)`;
  const p99 = f.during.latency.p99Ms;
  const L: string[] = [];
  L.push(SECTION, '');
  L.push(`Measured by \`npm run bench:export${f.quick ? ' -- --quick' : ''}\` (also run by \`npm run bench\`) on ${new Date().toISOString().slice(0, 10)}: one day of ${fmtInt(f.ticks)} ticks of one symbol (${ARCHIVED.exchange} ${ARCHIVED.symbol}, ${f.day}), PostgreSQL ${f.pgVersion} (${f.dbKind}), written into its partition in ${round(f.fillMs / 1000, 0)} s by \`insert ... select from generate_series\`.`, '');
  L.push('| measure | figure |', '|---|---|');
  L.push(`| export throughput, nothing else running (\`exportDay\`, one pool connection) | ${fmtInt(f.ticks / (f.idleMs / 1000))} ticks/s (${round(f.idleMs / 1000, 1)} s for the day) |`);
  L.push(`| export throughput inside the collector while it stores ${fmtInt(f.rate)} ticks/s | ${fmtInt(f.ticks / (f.exportMs / 1000))} ticks/s (${round(f.exportMs / 1000, 1)} s) |`);
  L.push(`| Parquet file (zstd, DECIMAL(38,18) price and qty + their decimals) | ${fmtInt(f.bytes)} bytes, ${round(f.bytes / f.ticks, 2)} bytes per tick |`);
  L.push(`| live send → commit, no export, ${f.seconds} s (p50 / p99 / max) | ${lat(f.baseline.latency)} |`);
  L.push(`| live send → commit during the export (p50 / p99 / max) | ${lat(f.during.latency)} |`);
  L.push(`| target: live p99 < 250 ms while a ${fmtInt(f.ticks)}-tick day is exported | ${round(p99, 0)} ms: ${p99 < 250 ? '**met**' : '**not met**'} |`);
  L.push(`| collector RSS, max (no export / exporting) | ${f.baseline.rssMaxMb} / ${f.during.rssMaxMb} MB |`);
  L.push(`| collector's worst second: batch write p99, event-loop delay p99 (no export / exporting) | ${round(f.baseline.batchP99MaxMs, 0)} / ${round(f.during.batchP99MaxMs, 0)} ms, ${round(f.baseline.loopP99MaxMs, 0)} / ${round(f.during.loopP99MaxMs, 0)} ms |`);
  L.push('');
  L.push(`Method: the collector is the compiled child process (\`node dist/src/main.js\`), defaults except the simulator's URLs, \`BACKFILL_ENABLED=0\`, \`STATS_INTERVAL_MS=1000\` and, in step 3, \`ARCHIVE_DIR\` (PG_POOL_MAX ${DEFAULTS.PG_POOL_MAX}: the export shares the writer's pool). Its automatic archiver (first pass 10 s after start: \`ARCHIVE_CHECK_INTERVAL_MS=10000\`) found the day closed (older than \`ARCHIVE_GRACE_MS\`) and exported it: ${fmtInt(ARCHIVER_CHUNK_ROWS)}-row \`COPY ... TO STDOUT\` chunks into a DuckDB stage (1 thread, ${DUCKDB_MEMORY_LIMIT}), then zstd Parquet, read back and checked. The export window is the one the collector logged (\`day archived\`, with its duration); latency is \`pg_xact_commit_timestamp(xmin) - trade_time\` of every live row sent in that window (\`track_commit_timestamp = on\`). Simulator, collector, DuckDB and PostgreSQL share the machine's cores.`);
  L.push('');
  return L.join('\n');
}

/** Replaces this section in BENCHMARKS.md (up to the next `## ` heading), or appends it. */
export function writeSection(file: string, section: string): void {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // no file yet
  }
  const start = text.indexOf(`${SECTION}\n`);
  if (start < 0) text = `${text.trimEnd()}${text ? '\n\n' : ''}${section}`;
  else {
    const next = text.indexOf('\n## ', start + SECTION.length);
    text = text.slice(0, start) + section + (next < 0 ? '' : text.slice(next + 1));
  }
  writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = parseArgs(process.argv.slice(2), ['quick', 'write']);
  const quick = args.flags.has('quick');
  runExportBench({
    quick,
    ticks: args.values.has('ticks') ? numberArg(args, 'ticks', 0) : undefined,
    rate: args.values.has('rate') ? numberArg(args, 'rate', 0) : undefined,
    seconds: args.values.has('seconds') ? numberArg(args, 'seconds', 0) : undefined,
  }).then(
    (md) => {
      process.stdout.write(`\n${md}\n`);
      if (args.flags.has('write')) writeSection(join(PROJECT_ROOT, 'BENCHMARKS.md'), md);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`bench:export failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
