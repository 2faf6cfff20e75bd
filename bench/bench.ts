/**
 * `npm run bench [-- --quick] [--rates 400,4000,20000,50000] [--clients floor,tardis,collector] [--repeat N]
 *   [--seconds S] [--warmup S] [--idle S] [--sweep 50000,60000,...] [--sweep-seconds S] [--only idle,curve,sweep,storage,layout,export]
 *   [--collector-flags "--max-semi-space-size=2"] [--collector-env "BATCH_MAX_AGE_MS=250"] [--profile DIR] [--out FILE]`
 *
 * One run on one machine, every client against the same simulator feed (4 symbols, two exchanges), one after another:
 *  1. idle: the collector with no trades, heartbeats only (CPU, RSS);
 *  2. the cost curve at each rate (bench/lib/curve.ts): the bare-client floor, tardis-dev's normalized stream (a peer
 *     that does not store; installed at bench time, bench/lib/peers.ts) and the collector, CPU per tick of each
 *     process and its own max RSS; send → commit latency of the collector's windows;
 *  3. the rate sweep: the highest rate the collector sustains (bench/lib/sweep.ts);
 *  4. the storage floors: COPY of the same rows, and the one-INSERT-per-tick pattern (bench/lib/store-floors.ts).
 * Prints the report and writes BENCHMARKS.md with its chart next to it (docs/bench-curve.svg); not in --quick mode
 * unless --out is given. The database is an embedded PostgreSQL in a temp dir, or a fresh database on DATABASE_URL.
 *
 * A new section: run it in main() after the others and push its markdown onto `sections`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createLogger } from '../src/logger.ts';
import type { ExchangeSimulator } from '../src/simulator/index.ts';
import { PROJECT_ROOT } from '../test/helpers/child-collector.ts';
import { listArg, numberArg, parseArgs } from './lib/args.ts';
import { buildCollector } from './lib/collector-proc.ts';
import { runCurve, runIdle, summarize } from './lib/curve.ts';
import type { ClientKind, ClientRun, CurveOptions, IdleRun } from './lib/curve.ts';
import { openBenchDatabase, sql } from './lib/database.ts';
import type { BenchDatabase } from './lib/database.ts';
import { startBenchSimulator } from './lib/feed-setup.ts';
import { commitTimestampsEnabled } from './lib/latency.ts';
import { installPeer, TARDIS_DEV } from './lib/peers.ts';
import type { PeerInstall } from './lib/peers.ts';
import { curveMarkdown, curveSvg, describeMachine, detailMarkdown, methodMarkdown, storageMarkdown, sweepMarkdown } from './lib/report.ts';
import type { Machine } from './lib/report.ts';
import { copyFloor, insertPattern, windowCsv } from './lib/store-floors.ts';
import type { CopyResult, InsertResult } from './lib/store-floors.ts';
import { runSweep } from './lib/sweep.ts';
import { runExportBench } from './export-bench.ts';
import { storageBenchSection } from './storage-bench.ts';
import type { SweepResult } from './lib/sweep.ts';

const args = parseArgs(process.argv.slice(2), ['quick']);
const quick = args.flags.has('quick');
const RATES = listArg(args, 'rates', [400, 4_000, 20_000, 50_000]);
const CLIENTS = (args.values.get('clients') ?? 'floor,tardis,collector').split(',').map((s) => s.trim()) as ClientKind[];
const REPEAT = numberArg(args, 'repeat', 1);
const FIXED_WARMUP = args.values.has('warmup') ? numberArg(args, 'warmup', 0) : null;
/**
 * Warm-up before each window: what a client needs for V8 to finish optimising its hot code, so the windows measure
 * the steady state a months-long service runs in. That takes a number of calls, not seconds: a collector at 400
 * ticks/s was still compiling 36 functions in its 30th-40th second (--trace-opt) and its CPU fell from 35 to 24
 * ms/s between its first and its third 30 s; so 24,000 trades' worth, 8 to 60 s.
 */
const warmupSeconds = (rate: number) => FIXED_WARMUP ?? (quick ? 3 : Math.round(Math.min(60, Math.max(8, 24_000 / Math.max(rate, 1)))));
const FIXED_SECONDS = args.values.has('seconds') ? numberArg(args, 'seconds', 0) : null;
/** Low rates get longer windows: the CPU clock counts in 10 ms steps and a 400 ticks/s client uses a few % of a core. */
const windowSeconds = (rate: number) => FIXED_SECONDS ?? (quick ? 5 : rate <= 4_000 ? 30 : 20);
const IDLE_SECONDS = numberArg(args, 'idle', quick ? 10 : 60);
const SWEEP = listArg(args, 'sweep', quick ? [50_000] : [50_000, 60_000, 70_000, 80_000, 100_000, 120_000]);
const SWEEP_SECONDS = numberArg(args, 'sweep-seconds', quick ? 6 : 20);
const ONLY = new Set((args.values.get('only') ?? 'idle,curve,sweep,storage,layout,export').split(',').map((s) => s.trim()));
const COLLECTOR_FLAGS = (args.values.get('collector-flags') ?? '').split(' ').filter((s) => s !== '');
/** `--collector-env "BATCH_MAX_AGE_MS=250 STATS_INTERVAL_MS=1000"`: settings to try (A/B runs write no BENCHMARKS.md). */
const COLLECTOR_ENV = Object.fromEntries(
  (args.values.get('collector-env') ?? '').split(' ').filter((s) => s !== '').map((kv) => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--collector-env: "${kv}" is not NAME=value`);
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  }),
);
const PROFILE_DIR = args.values.get('profile') ?? null;
const OUT = args.values.get('out') ?? (quick || ONLY.size < 4 || COLLECTOR_FLAGS.length > 0 || Object.keys(COLLECTOR_ENV).length > 0 ? null : join(PROJECT_ROOT, 'BENCHMARKS.md'));
/** The rate whose collector window gives the latency and the COPY floor's rows. */
const REFERENCE_RATE = RATES.includes(20_000) ? 20_000 : RATES[RATES.length - 1]!;

const log = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
const say = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** The embedded server records commit timestamps, so send → commit latency is exact per row (bench/lib/latency.ts). */
async function enableCommitTimestamps(db: BenchDatabase): Promise<boolean> {
  if (await commitTimestampsEnabled(db.url)) return true;
  if (!db.restart) return false;
  await sql(db.url, 'alter system set track_commit_timestamp = on');
  await db.restart(0);
  return commitTimestampsEnabled(db.url);
}

/** Compiles the collector and the bench's own clients to plain JS, so every measured process runs without tsx. */
function buildAll(): void {
  buildCollector();
  execFileSync(process.execPath, [join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'bench/tsconfig.clients.json'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
}

function gitCommit(): string {
  try {
    let commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim() !== '') commit += ' + uncommitted changes';
    return commit;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'mc-bench-'));
  let db: BenchDatabase | null = null;
  let sim: ExchangeSimulator | null = null;
  const interrupt = () => {
    say('interrupted: cleaning up');
    void (async () => {
      await sim?.stop().catch(() => {});
      await db?.close().catch(() => {});
      rmSync(scratch, { recursive: true, force: true });
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupt).once('SIGTERM', interrupt);
  const started = Date.now();
  const load0 = loadavg()[0]!;
  try {
    buildAll();
    const tardis: PeerInstall | null = CLIENTS.includes('tardis') ? installPeer(TARDIS_DEV, say) : null;
    if (tardis?.error) say(`tardis-dev column left out: ${tardis.error}`);
    say('starting the database');
    db = await openBenchDatabase('bench', log);
    const commitTs = await enableCommitTimestamps(db);
    sim = await startBenchSimulator(0);
    if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
    const curveOpts: CurveOptions = {
      sim,
      db,
      scratch,
      rates: RATES,
      clients: CLIENTS,
      repeat: REPEAT,
      warmupSeconds,
      windowSeconds,
      collectorFlags: COLLECTOR_FLAGS,
      collectorEnv: COLLECTOR_ENV,
      profileDir: PROFILE_DIR,
      tardisDir: tardis?.dir ?? null,
      commitTimestamps: commitTs,
      say,
    };
    const sections: string[] = [];

    const idle: IdleRun | null = ONLY.has('idle') ? await runIdle(curveOpts, IDLE_SECONDS) : null;
    if (idle) say(`  idle: ${(idle.cores * 100).toFixed(2)}% of a core, RSS ${idle.rssMaxMb} MB`);

    let csv: ReturnType<typeof windowCsv> | null = null;
    let runs: ClientRun[] = [];
    if (ONLY.has('curve')) {
      runs = await runCurve({
        ...curveOpts,
        onRun: (r) => {
          if (ONLY.has('storage') && r.client === 'collector' && r.rate === REFERENCE_RATE && r.window && !csv) csv = windowCsv(sim!, r.window);
        },
      });
      const points = summarize(runs);
      sections.push(curveMarkdown({ points, runs, idle, tardis, referenceRate: REFERENCE_RATE, chart: OUT ? 'docs/bench-curve.svg' : null }));
      if (OUT) {
        const svgPath = join(dirname(OUT), 'docs', 'bench-curve.svg');
        mkdirSync(dirname(svgPath), { recursive: true });
        writeFileSync(svgPath, await curveSvg(points, tardis));
        say(`wrote ${relative(PROJECT_ROOT, svgPath)}`);
      }
    }

    let sweep: SweepResult | null = null;
    if (ONLY.has('sweep') && SWEEP.length > 0) {
      sweep = await runSweep({ sim, databaseUrl: db.url, scratch, steps: SWEEP, seconds: SWEEP_SECONDS, say });
      sections.push(sweepMarkdown(sweep, SWEEP_SECONDS));
    }

    let copy: CopyResult | null = null;
    let insert: InsertResult | null = null;
    if (ONLY.has('storage')) {
      sim.setRate(0);
      if (csv) copy = await copyFloor(db.url, csv, say);
      insert = await insertPattern(sim, db.url, REFERENCE_RATE, warmupSeconds(REFERENCE_RATE), windowSeconds(REFERENCE_RATE), say);
      sections.push(storageMarkdown({ copy, insert, sweep, points: summarize(runs) }));
    }

    // Further sections go here: run, then sections.push(markdown).
    if (ONLY.has('layout')) {
      say('storage layout (bench/storage-bench.ts)');
      sections.push(await storageBenchSection(quick ? { ticks: 200_000, fillRows: 600_000, insertTicks: 100_000, log: say } : { log: say }));
    }
    if (ONLY.has('export')) {
      say('archive export (bench/export-bench.ts)');
      sections.push(await runExportBench({ quick, logger: log }));
    }

    const machine: Machine = await describeMachine(db, gitCommit(), {
      minutes: (Date.now() - started) / 60_000,
      load: [load0, loadavg()[0]!],
      argv: process.argv.slice(2).join(' '),
    });
    sections.push(methodMarkdown({ quick, warmupSeconds, windowSeconds, idleSeconds: IDLE_SECONDS, collectorFlags: COLLECTOR_FLAGS, commitTs, tardis }));
    if (runs.length > 0) sections.push(detailMarkdown(runs));
    const md = [machine.markdown, ...sections].join('\n');
    process.stdout.write(`\n${md}\n`);
    if (OUT) {
      writeFileSync(OUT, md);
      say(`wrote ${OUT}`);
    }
  } finally {
    await sim?.stop().catch(() => {});
    await db?.close().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
