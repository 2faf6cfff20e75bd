/**
 * `npm run bench [-- --quick] [--seconds 30] [--rate 20000] [--sweep 5000,10000,...] [--warmup 10] [--out FILE]`
 *
 * One run on one machine, side by side:
 *  1. the collector end to end - simulator (this process) → collector (child process `node dist/src/main.js`, the compiled build `npm start` runs)
 *     → PostgreSQL - at a fixed rate (default 20,000 ticks/s in total): CPU time of the collector per stored tick,
 *     RSS, send → commit latency (p50/p99/max);
 *  2. a rate sweep: the highest total rate held for `--seconds` with the collector's buffer not growing;
 *  3. floor (1): a bare `ws` client that only JSON.parses the same stream (CPU µs per message, same rate);
 *  4. floor (2): COPY of the rows stored in step 1 straight into the same table (rows/s);
 *  5. the pattern it replaces: one INSERT per tick through a default pg pool, same stream (rows/s).
 * Prints a table and writes BENCHMARKS.md (not in --quick mode unless --out is given).
 *
 * The database is an embedded PostgreSQL in a temp dir, or a fresh database on the server DATABASE_URL names.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createLogger } from '../src/logger.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import type { SimExchange } from '../src/simulator/index.ts';
import { spawnCollector, PROJECT_ROOT } from '../test/helpers/child-collector.ts';
import type { ChildCollector } from '../test/helpers/child-collector.ts';
import { sleep, waitFor } from '../test/helpers/wait-for.ts';
import { listArg, numberArg, parseArgs } from './lib/args.ts';
import { startCollectorProcess } from './lib/collector-proc.ts';
import type { CollectorProcess } from './lib/collector-proc.ts';
import { copyIn } from './lib/copy-in.ts';
import { openBenchDatabase, sql } from './lib/database.ts';
import type { BenchDatabase } from './lib/database.ts';
import { commitLatency, commitTimestampsEnabled, startPoller } from './lib/latency.ts';
import type { LatencyResult } from './lib/latency.ts';
import { cpuMicros, rssBytes, treeCpuMicros } from './lib/proc.ts';
import { fmtInt, mb, round, slope } from './lib/stats.ts';
import { runExportBench } from './export-bench.ts';
import { storageBenchSection } from './storage-bench.ts';

const BINANCE_SYMBOLS = ['BTCUSDT', 'ETHUSDT'];
const OKX_SYMBOLS = ['BTC-USDT', 'ETH-USDT'];
const SYMBOLS: ReadonlyArray<{ exchange: SimExchange; symbol: string }> = [
  ...BINANCE_SYMBOLS.map((symbol) => ({ exchange: 'binance' as const, symbol })),
  ...OKX_SYMBOLS.map((symbol) => ({ exchange: 'okx' as const, symbol })),
];

/** A sweep step counts as sustained when the collector stored at least this share of what was emitted ... */
const SUSTAIN_STORED_RATIO = 0.97;
/** ... and its buffer grew by less than this share of the rate per second (least-squares slope over the hold). */
const SUSTAIN_BUFFER_SLOPE = 0.02;

const args = parseArgs(process.argv.slice(2), ['quick']);
const quick = args.flags.has('quick');
const SECONDS = numberArg(args, 'seconds', quick ? 6 : 30);
const WARMUP = numberArg(args, 'warmup', quick ? 3 : 10);
const RATE = numberArg(args, 'rate', 20_000);
const SWEEP = listArg(args, 'sweep', quick ? [5_000, 20_000] : [5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000, 100_000, 120_000]);
const OUT = args.values.get('out') ?? (quick ? null : join(PROJECT_ROOT, 'BENCHMARKS.md'));

const log = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
const say = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** The simulator's rate is per symbol; the benchmark speaks of the total across symbols. */
const perSymbol = (total: number) => total / SYMBOLS.length;

function emittedTotal(sim: ExchangeSimulator): number {
  let n = 0;
  for (const s of SYMBOLS) n += sim.tapeRange(s.exchange, s.symbol)?.last ?? 0;
  return n;
}

function lastIds(sim: ExchangeSimulator): Map<string, number> {
  return new Map(SYMBOLS.map((s) => [`${s.exchange}:${s.symbol}`, sim.tapeRange(s.exchange, s.symbol)?.last ?? 0]));
}

function collectorEnv(sim: ExchangeSimulator, url: string): Record<string, string> {
  return {
    BINANCE_WS_URL: sim.binanceWsUrl,
    OKX_WS_URL: sim.okxWsUrl,
    BINANCE_REST_URL: sim.binanceRestUrl,
    OKX_REST_URL: sim.okxRestUrl,
    BINANCE_SYMBOLS: BINANCE_SYMBOLS.join(','),
    OKX_SYMBOLS: OKX_SYMBOLS.join(','),
    DATABASE_URL: url,
    BACKFILL_ENABLED: '0',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. fixed rate

interface FixedResult {
  rate: number;
  emittedPerSec: number;
  stored: number;
  cpuUsPerTick: number;
  cpuCores: number;
  rssMaxMb: number;
  rssEndMb: number;
  rssIdleMb: number;
  /** Cores the collector used idling (simulator at rate 0): timers, the per-second stats census. */
  idleCores: number;
  latency: LatencyResult;
  /** Cores used during the window by the collector, the simulator (this process) and PostgreSQL (embedded only). */
  cores: { collector: number; simulator: number; postgres: number | null };
  /** Worst per-second values the collector's stats reported in the window. */
  batchLatencyP99MaxMs: number;
  batchLatencyMaxMs: number;
  eventLoopDelayP99MaxMs: number;
  bufferMax: number;
  window: { from: number; to: number; firstIds: Map<string, number>; lastIds: Map<string, number> };
}

async function fixedRate(sim: ExchangeSimulator, db: BenchDatabase, col: CollectorProcess, useCommitTs: boolean): Promise<FixedResult> {
  sim.setRate(0);
  await sleep(1000);
  const idleCpu0 = cpuMicros(col.pid);
  const idleT0 = Date.now();
  await sleep(3000);
  const idleCores = (cpuMicros(col.pid) - idleCpu0) / 1e6 / ((Date.now() - idleT0) / 1000);
  const rssIdleMb = mb(rssBytes(col.pid));
  sim.setRate(perSymbol(RATE));
  say(`fixed rate ${fmtInt(RATE)} ticks/s: warm-up ${WARMUP} s`);
  await sleep(WARMUP * 1000);
  const first = lastIds(sim);
  const from = Date.now();
  const poller = useCommitTs ? null : await startPoller(db.url, sim, SYMBOLS, from, from + SECONDS * 1000);
  const pgPid = db.serverPid?.() ?? null;
  const cpu0 = cpuMicros(col.pid);
  const self0 = process.cpuUsage();
  const pg0 = pgPid === null ? null : treeCpuMicros(pgPid);
  const e0 = emittedTotal(sim);
  const rss: number[] = [];
  let batchP99 = 0;
  let batchMax = 0;
  let loopP99 = 0;
  let bufferMax = 0;
  say(`fixed rate: measuring ${SECONDS} s`);
  for (let i = 0; i < SECONDS; i++) {
    await sleep(1000);
    rss.push(rssBytes(col.pid));
    const st = col.stats();
    batchP99 = Math.max(batchP99, st?.pipeline?.batchLatencyMs.p99 ?? 0);
    batchMax = Math.max(batchMax, st?.pipeline?.batchLatencyMs.max ?? 0);
    loopP99 = Math.max(loopP99, st?.process.eventLoopDelayP99Ms ?? 0);
    bufferMax = Math.max(bufferMax, st?.pipeline?.bufferDepth ?? 0);
  }
  const cpu1 = cpuMicros(col.pid);
  const self = process.cpuUsage(self0);
  const pg1 = pgPid === null ? null : treeCpuMicros(pgPid);
  const to = Date.now();
  const e1 = emittedTotal(sim);
  const last = lastIds(sim);
  // Let the window's last batches commit.
  await waitFor(() => (col.stats()?.pipeline?.bufferDepth ?? 1) === 0, 15_000, 'buffer drained').catch(() => {});
  await sleep(1500);
  const latency = poller ? await poller.stop() : await commitLatency(db.url, from, to);
  const rows = await sql<{ n: string }>(db.url, 'select count(*) as n from ticks where trade_time >= to_timestamp($1::double precision / 1000) and trade_time < to_timestamp($2::double precision / 1000)', [from, to]);
  const stored = Number(rows[0]!.n);
  const seconds = (to - from) / 1000;
  return {
    rate: RATE,
    emittedPerSec: (e1 - e0) / seconds,
    stored,
    cpuUsPerTick: (cpu1 - cpu0) / stored,
    cpuCores: (cpu1 - cpu0) / 1e6 / seconds,
    rssMaxMb: mb(Math.max(...rss)),
    rssEndMb: mb(rss[rss.length - 1]!),
    rssIdleMb,
    idleCores,
    latency,
    cores: {
      collector: (cpu1 - cpu0) / 1e6 / seconds,
      simulator: (self.user + self.system) / 1e6 / seconds,
      postgres: pg0 === null || pg1 === null ? null : (pg1 - pg0) / 1e6 / seconds,
    },
    batchLatencyP99MaxMs: batchP99,
    batchLatencyMaxMs: batchMax,
    eventLoopDelayP99MaxMs: loopP99,
    bufferMax,
    window: { from, to, firstIds: first, lastIds: last },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 2. sweep

interface SweepStep {
  rate: number;
  emittedPerSec: number;
  storedPerSec: number;
  bufferEnd: number;
  bufferMax: number;
  bufferSlopePerSec: number;
  journalTicks: number;
  sustained: boolean;
}

async function sweepStep(sim: ExchangeSimulator, col: CollectorProcess, rate: number): Promise<SweepStep> {
  sim.setRate(perSymbol(rate));
  const settle = Math.min(5, Math.max(1, SECONDS / 6));
  await sleep(settle * 1000);
  const t0 = Date.now();
  const e0 = emittedTotal(sim);
  const s0 = col.stats();
  const xs: number[] = [];
  const depth: number[] = [];
  let journal = 0;
  for (let i = 0; i < SECONDS; i++) {
    await sleep(1000);
    const st = col.stats();
    xs.push((Date.now() - t0) / 1000);
    depth.push(st?.pipeline?.bufferDepth ?? 0);
    journal = Math.max(journal, st?.pipeline?.journalTicks ?? 0);
  }
  const t1 = Date.now();
  const e1 = emittedTotal(sim);
  const s1 = col.stats();
  const emittedPerSec = (e1 - e0) / ((t1 - t0) / 1000);
  const storedSpanS = s0 && s1 ? (Date.parse(s1.at) - Date.parse(s0.at)) / 1000 : NaN;
  const storedPerSec = s0 && s1 ? ((s1.pipeline?.ticksStored ?? 0) - (s0.pipeline?.ticksStored ?? 0)) / storedSpanS : 0;
  const bufferSlopePerSec = slope(xs, depth);
  const sustained =
    storedPerSec >= SUSTAIN_STORED_RATIO * emittedPerSec && bufferSlopePerSec < SUSTAIN_BUFFER_SLOPE * emittedPerSec && journal === 0;
  return {
    rate,
    emittedPerSec,
    storedPerSec,
    bufferEnd: depth[depth.length - 1] ?? 0,
    bufferMax: Math.max(0, ...depth),
    bufferSlopePerSec,
    journalTicks: journal,
    sustained,
  };
}

async function runStep(sim: ExchangeSimulator, col: CollectorProcess, rate: number): Promise<SweepStep> {
  say(`sweep: ${fmtInt(rate)} ticks/s for ${SECONDS} s`);
  const step = await sweepStep(sim, col, rate);
  say(`  emitted ${fmtInt(step.emittedPerSec)}/s stored ${fmtInt(step.storedPerSec)}/s buffer end ${fmtInt(step.bufferEnd)} slope ${round(step.bufferSlopePerSec)}/s → ${step.sustained ? 'sustained' : 'NOT sustained'}`);
  return step;
}

/** Let the collector catch up after a step it could not sustain (its backlog would spoil the next one). */
async function drain(sim: ExchangeSimulator, col: CollectorProcess): Promise<void> {
  const rate = SWEEP[0]!;
  sim.setRate(perSymbol(rate));
  await sleep(3000);
  // Drained: the buffer is small and the collector stores no faster than the stream (no backlog left in the sockets).
  let calm = 0;
  await waitFor(() => {
    const p = col.stats()?.pipeline;
    calm = p && p.bufferDepth < 1000 && p.ticksStoredPerSec <= 1.1 * rate ? calm + 1 : 0;
    return calm >= 3;
  }, 60_000, 'backlog drained', 1000).catch(() => say('  backlog not drained within 60 s'));
}

/** Steps up until one is not sustained, then tries once halfway between the last sustained step and that one. */
async function sweep(sim: ExchangeSimulator, col: CollectorProcess): Promise<SweepStep[]> {
  const steps: SweepStep[] = [];
  let lastOk = 0;
  for (const rate of SWEEP) {
    const step = await runStep(sim, col, rate);
    steps.push(step);
    if (step.sustained) {
      lastOk = rate;
      continue;
    }
    const mid = Math.round((lastOk + rate) / 2 / 1000) * 1000;
    if (lastOk > 0 && mid > lastOk && mid < rate && (rate - lastOk) / lastOk > 0.15) {
      await drain(sim, col);
      steps.push(await runStep(sim, col, mid));
    }
    break;
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. floor (1): bare ws client

interface ChildReport {
  [k: string]: number;
}

function lastReport(child: ChildCollector): ChildReport | null {
  const l = child.lines[child.lines.length - 1];
  return l && !l.unparsed ? (l as unknown as ChildReport) : null;
}

async function childWindow(child: ChildCollector, key: string): Promise<{ cpuUs: number; count: number; seconds: number; end: ChildReport }> {
  const pid = child.proc.pid!;
  await waitFor(() => (lastReport(child)?.[key] ?? 0) > 0, 20_000, `${key} flowing`);
  await sleep(WARMUP * 1000);
  const c0 = cpuMicros(pid);
  const n0 = lastReport(child)![key]!;
  const t0 = Date.now();
  await sleep(SECONDS * 1000);
  const c1 = cpuMicros(pid);
  const end = lastReport(child)!;
  return { cpuUs: c1 - c0, count: end[key]! - n0, seconds: (Date.now() - t0) / 1000, end };
}

interface BareResult {
  messagesPerSec: number;
  cpuUsPerMessage: number;
  tradesPerMessage: number;
  /** Messages per second one core could parse at that cost. */
  capacityPerSec: number;
}

async function bareClient(sim: ExchangeSimulator): Promise<BareResult> {
  sim.setRate(perSymbol(RATE));
  say(`floor 1: bare ws client + JSON.parse at ${fmtInt(RATE)} ticks/s`);
  const child = spawnCollector({ ...collectorEnv(sim, '') }, 'bench/bare-client.ts');
  try {
    const w = await childWindow(child, 'frames');
    const first = w.end;
    const cpuUsPerMessage = w.cpuUs / w.count;
    return { messagesPerSec: w.count / w.seconds, cpuUsPerMessage, tradesPerMessage: first.trades! / first.frames!, capacityPerSec: 1e6 / cpuUsPerMessage };
  } finally {
    child.proc.kill('SIGTERM');
    await child.exited;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 4. floor (2): COPY

/**
 * CSV of the rows the fixed-rate window emitted, from the tape, in tick_rows' layout (the instrument ids the
 * collector registered); built right after it (the tape is a ring).
 */
function windowCsv(sim: ExchangeSimulator, fixed: FixedResult, instruments: Map<string, string>): { chunks: Buffer[]; rows: number } {
  const chunks: Buffer[] = [];
  let parts: string[] = [];
  let size = 0;
  let rows = 0;
  for (const s of SYMBOLS) {
    const key = `${s.exchange}:${s.symbol}`;
    const lo = fixed.window.firstIds.get(key)! + 1;
    const hi = fixed.window.lastIds.get(key)!;
    for (let id = lo; id <= hi; id++) {
      const t = sim.trade(s.exchange, s.symbol, id);
      if (!t) continue;
      const line = `${new Date(t.time).toISOString()},${id},,1,${instruments.get(key)},${t.side === 'sell' ? 1 : 0},${t.price},${t.qty}\n`;
      parts.push(line);
      size += line.length;
      rows++;
      if (size > 1 << 20) {
        chunks.push(Buffer.from(parts.join('')));
        parts = [];
        size = 0;
      }
    }
  }
  if (parts.length > 0) chunks.push(Buffer.from(parts.join('')));
  return { chunks, rows };
}

interface CopyResult {
  rows: number;
  rowsPerSec: number;
  runs: number[];
}

async function copyFloor(url: string, csv: { chunks: Buffer[]; rows: number }): Promise<CopyResult> {
  say(`floor 2: COPY of ${fmtInt(csv.rows)} rows into ticks`);
  const client = new pg.Client({ connectionString: url, application_name: 'mc-bench-copy' });
  client.on('error', () => {});
  await client.connect();
  const runs: number[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      await client.query('truncate tick_rows');
      await client.query('checkpoint').catch(() => {}); // start each run from the same state (superuser only)
      const t0 = process.hrtime.bigint();
      const n = await copyIn(client, 'copy tick_rows (trade_time, trade_id, received_at, received_delay_ms, instrument_id, flags, price, qty) from stdin with (format csv)', csv.chunks);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      runs.push(n / s);
    }
    await client.query('truncate tick_rows');
  } finally {
    await client.end().catch(() => {});
  }
  return { rows: csv.rows, rowsPerSec: Math.max(...runs), runs };
}

// ---------------------------------------------------------------------------------------------------------------
// 5. the pattern it replaces: one INSERT per tick

interface InsertResult {
  rowsPerSec: number;
  dropped: number;
  backlog: number;
}

async function insertPattern(sim: ExchangeSimulator, url: string): Promise<InsertResult> {
  await sql(url, 'truncate tick_rows');
  sim.setRate(perSymbol(RATE));
  say(`pattern: one INSERT per tick through a default pg pool, same stream at ${fmtInt(RATE)} ticks/s`);
  const child = spawnCollector({ ...collectorEnv(sim, url) }, 'bench/insert-client.ts');
  try {
    await waitFor(() => (lastReport(child)?.inserted ?? 0) > 0, 20_000, 'inserts flowing');
    await sleep(Math.min(WARMUP, 5) * 1000);
    const count = async () => Number((await sql<{ n: string }>(url, 'select count(*) as n from ticks'))[0]!.n);
    const n0 = await count();
    const t0 = Date.now();
    await sleep(SECONDS * 1000);
    const n1 = await count();
    const t1 = Date.now();
    const end = lastReport(child)!;
    return { rowsPerSec: (n1 - n0) / ((t1 - t0) / 1000), dropped: end.dropped ?? 0, backlog: end.waiting ?? 0 };
  } finally {
    child.proc.kill('SIGTERM');
    await child.exited;
    sim.setRate(0);
    await sql(url, 'truncate tick_rows').catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------------
// report

/** RSS of an idle Node process, plain and under tsx (for reference: the collector runs compiled, without tsx). */
function runtimeRss(): { nodeMb: number; tsxMb: number } {
  const run = (argv: string[]) => Number(execFileSync(process.execPath, argv, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim());
  const script = 'setTimeout(()=>{const m=/^VmRSS:\\s+(\\d+)/m.exec(require("fs").readFileSync("/proc/self/status","utf8"));console.log(Number(m[1])*1024)},1000)';
  return { nodeMb: mb(run(['-e', script])), tsxMb: mb(run(['--import', 'tsx', 'bench/idle-rss.ts'])) };
}

interface Machine {
  runtime: { nodeMb: number; tsxMb: number };
  cores: number;
  cpu: string;
  memGb: number;
  node: string;
  postgres: string;
  date: string;
  commit: string;
  database: string;
}

async function machine(db: BenchDatabase): Promise<Machine> {
  const v = await sql<{ v: string }>(db.url, "select current_setting('server_version') as v");
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim() !== '';
    if (dirty) commit += ' + uncommitted changes in src/';
  } catch {
    /* not a git checkout */
  }
  return {
    runtime: runtimeRss(),
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: v[0]!.v,
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    commit,
    database: db.kind === 'embedded' ? 'embedded PostgreSQL (temp dir, same machine)' : 'DATABASE_URL server (fresh database)',
  };
}

interface Results {
  machine: Machine;
  fixed: FixedResult;
  steps: SweepStep[];
  bare: BareResult;
  copy: CopyResult;
  insert: InsertResult;
  collectorExit: string;
}

function verdict(ok: boolean): string {
  return ok ? '**met**' : '**not met**';
}

function render(r: Results): string {
  const { fixed, steps, bare, copy, insert } = r;
  const best = [...steps].filter((s) => s.sustained).sort((a, b) => a.emittedPerSec - b.emittedPerSec).pop();
  const sustained = best?.emittedPerSec ?? 0;
  const topped = steps.length > 0 && steps.every((s) => s.sustained);
  const lowerFloor = Math.min(bare.capacityPerSec, copy.rowsPerSec);
  const cpuRatio = fixed.cpuUsPerTick / bare.cpuUsPerMessage;
  const insertRatio = sustained / insert.rowsPerSec;
  const lat = fixed.latency;
  const L: string[] = [];
  L.push('# Benchmarks', '');
  L.push(`Measured by \`npm run bench\` on ${r.machine.date}. One run, one machine; every figure below comes from that run.`, '');
  L.push('| machine | |', '|---|---|');
  L.push(`| CPU cores | ${r.machine.cores} (${r.machine.cpu}) |`);
  L.push(`| memory | ${r.machine.memGb} GB |`);
  L.push(`| Node | ${r.machine.node} |`);
  L.push(`| PostgreSQL | ${r.machine.postgres} - ${r.machine.database} |`);
  L.push(`| commit | ${r.machine.commit} |`);
  L.push(`| run | \`--seconds ${SECONDS} --warmup ${WARMUP} --rate ${RATE}\`${quick ? ' --quick' : ''} |`, '');
  L.push('Everything (simulator, collector, PostgreSQL, the floor clients) shares these cores, so each figure includes the others\' load.', '');

  L.push('## Results', '');
  L.push('| measure | collector (end to end) | floor / pattern | ratio |', '|---|---|---|---|');
  L.push(`| highest sustained rate, ${SECONDS} s, buffer not growing | ${topped ? '≥ ' : ''}${fmtInt(sustained)} ticks/s | bare client ${fmtInt(bare.capacityPerSec)} msg/s (one core) · COPY ${fmtInt(copy.rowsPerSec)} rows/s | ${round(sustained / lowerFloor, 2)} × the lower floor |`);
  L.push(`| CPU per stored tick at ${fmtInt(RATE)} ticks/s | ${round(fixed.cpuUsPerTick, 2)} µs (${round(fixed.cpuCores * 100, 0)}% of a core; idle: ${round(fixed.idleCores * 100, 1)}%) | bare client: ${round(bare.cpuUsPerMessage, 2)} µs per message | ${round(cpuRatio, 2)} × |`);
  L.push(`| RSS at ${fmtInt(RATE)} ticks/s (max / end of window) | ${fixed.rssMaxMb} / ${fixed.rssEndMb} MB | the same process idle (rate 0), before: ${fixed.rssIdleMb} MB | |`);
  L.push(`| send → commit latency at ${fmtInt(RATE)} ticks/s (p50 / p99 / max) | ${round(lat.p50Ms, 0)} / ${round(lat.p99Ms, 0)} / ${round(lat.maxMs, 0)} ms (${fmtInt(lat.rows)} rows, ${lat.method === 'commit_ts' ? 'commit timestamps' : 'max(trade_id) polling'}) | | |`);
  L.push(`| rows/s into PostgreSQL | ${fmtInt(sustained)} (sustained rate) | one INSERT per tick, default pg pool: ${fmtInt(insert.rowsPerSec)} | ${round(insertRatio, 1)} × |`);
  L.push('');

  L.push(`Where the time went during the ${fmtInt(RATE)} ticks/s window (of ${r.machine.cores} cores): collector ${round(fixed.cores.collector, 2)} core, simulator (bench process) ${round(fixed.cores.simulator, 2)}, PostgreSQL ${fixed.cores.postgres === null ? 'n/a (not the embedded server)' : `${round(fixed.cores.postgres, 2)} (postmaster and backends)`}. The collector's own stats in that window, worst second: batch write p99 ${round(fixed.batchLatencyP99MaxMs, 0)} ms, max ${round(fixed.batchLatencyMaxMs, 0)} ms; event-loop delay p99 ${round(fixed.eventLoopDelayP99MaxMs, 0)} ms; buffer depth up to ${fmtInt(fixed.bufferMax)} ticks.`);
  L.push('');
  L.push('## Targets', '');
  L.push('| target | measured | |', '|---|---|---|');
  L.push(`| sustained rate ≥ ½ of the lower floor (${fmtInt(lowerFloor / 2)} ticks/s) | ${fmtInt(sustained)} ticks/s | ${verdict(sustained >= lowerFloor / 2)} |`);
  L.push(`| CPU per stored tick ≤ 2 × bare client (${round(2 * bare.cpuUsPerMessage, 2)} µs) | ${round(fixed.cpuUsPerTick, 2)} µs | ${verdict(cpuRatio <= 2)} |`);
  L.push(`| p99 send → commit < 250 ms at ${fmtInt(RATE)} ticks/s | ${round(lat.p99Ms, 0)} ms | ${verdict(lat.p99Ms < 250)} |`);
  L.push(`| RSS < 150 MB | ${fixed.rssMaxMb} MB | ${verdict(fixed.rssMaxMb < 150)} |`);
  L.push(`| ≥ 20 × the per-row-INSERT pattern | ${round(insertRatio, 1)} × | ${verdict(insertRatio >= 20)} |`);
  L.push('');

  L.push('Notes on the targets:', '');
  L.push(`- The floors are single-process figures (the bare client's rate is what one core could parse at its measured cost); the collector shares the machine's ${r.machine.cores} cores with the simulator and PostgreSQL while it runs (see above).`);
  L.push(`- RSS: before the window the collector idled at ${fixed.rssIdleMb} MB. It runs compiled (\`npm run build\`, plain \`node\`): an idle \`node\` is ${r.machine.runtime.nodeMb} MB here (for reference, \`node --import tsx\`, which runs from source, is ${r.machine.runtime.tsxMb} MB before any of our modules load); the collector's modules come on top. Under load it grew by ${round(fixed.rssMaxMb - fixed.rssIdleMb, 1)} MB.`);
  L.push(`- Latency: rows wait up to BATCH_MAX_AGE_MS (100 ms) in the buffer, then for their batch's write (the batch write figures above); p99 and max follow the slowest writes and event-loop stalls.`);
  L.push(`- 20 × the per-row-INSERT pattern would be ${fmtInt(20 * insert.rowsPerSec)} rows/s, ${round((20 * insert.rowsPerSec * 100) / copy.rowsPerSec, 0)}% of what COPY alone reached on this machine.`);
  L.push('');

  L.push('## Rate sweep', '');
  L.push(`Each step holds the rate for ${SECONDS} s after a short settle. Sustained = stored ≥ ${SUSTAIN_STORED_RATIO * 100}% of emitted, buffer slope < ${SUSTAIN_BUFFER_SLOPE * 100}% of the rate per second, nothing journaled. The sweep stops at the first step not sustained, after one more step halfway between it and the last sustained one. The stored-vs-emitted test matters: past its limit the collector's buffer stays bounded while the backlog piles up in front of it, in the sockets.`, '');
  L.push('| target rate | emitted/s | stored/s | buffer end | buffer max | buffer slope (/s) | journal | sustained |', '|---|---|---|---|---|---|---|---|');
  for (const s of steps) {
    L.push(`| ${fmtInt(s.rate)} | ${fmtInt(s.emittedPerSec)} | ${fmtInt(s.storedPerSec)} | ${fmtInt(s.bufferEnd)} | ${fmtInt(s.bufferMax)} | ${round(s.bufferSlopePerSec)} | ${fmtInt(s.journalTicks)} | ${s.sustained ? 'yes' : 'no'} |`);
  }
  if (topped) L.push('', 'Every step was sustained: the collector\'s ceiling is above the last step (raise `--sweep`); the figure above is a lower bound.');
  L.push('');

  L.push('## Method', '');
  L.push(`- **Setup.** The simulator runs in the bench process with ${SYMBOLS.length} symbols (${SYMBOLS.map((s) => s.symbol).join(', ')}); rates are totals across them, one trade per WebSocket frame. The collector is a child process running the compiled build as \`npm start\` does (\`node dist/src/main.js\`) configured by env: the simulator's URLs, \`DATABASE_URL\`, \`BACKFILL_ENABLED=0\`, \`STATS_INTERVAL_MS=1000\`, every other setting at its default (PG_POOL_MAX 3, BATCH_MAX_ROWS 5000, BATCH_MAX_AGE_MS 100).`);
  L.push(`- **CPU per stored tick.** utime + stime of the collector process from \`/proc/<pid>/stat\` over the ${SECONDS} s window after a ${WARMUP} s warm-up, divided by the rows whose send time falls in the window (${fmtInt(fixed.stored)} rows; the simulator emitted ${fmtInt(fixed.emittedPerSec)}/s). It includes the collector's fixed costs (timers, the once-a-second stats line and /proc census the bench asks for with STATS_INTERVAL_MS=1000), measured separately over 3 s with the simulator at rate 0 just before the warm-up.`);
  L.push(`- **RSS.** VmRSS from \`/proc/<pid>/status\` sampled every second of the window. The idle figure is taken with the simulator at rate 0 just before the window.`);
  L.push(
    lat.method === 'commit_ts'
      ? '- **Latency.** The trade time on the wire is the simulator\'s send time. With `track_commit_timestamp = on` (set by the bench on its own server), `pg_xact_commit_timestamp(xmin) - trade_time` is the exact send → commit latency of every row of the window; computed in one query after the window.'
      : '- **Latency.** The trade time on the wire is the simulator\'s send time. `track_commit_timestamp` is off on this server, so a poller read `max(trade_id)` per symbol every 10 ms and charged each newly visible id `poll time - send time` (an over-estimate by up to one poll interval plus the query).',
  );
  L.push(`- **Floor (1), bare client.** A child process (\`bench/bare-client.ts\`) with one \`ws\` socket per exchange (same URLs and subscriptions as the collector, \`perMessageDeflate: false\`) that only \`JSON.parse\`s each frame; CPU from /proc over ${SECONDS} s at ${fmtInt(RATE)} ticks/s: ${round(bare.cpuUsPerMessage, 2)} µs per message (${round(bare.tradesPerMessage, 2)} trade(s) per message), i.e. ${fmtInt(bare.capacityPerSec)} messages/s for one core - the rate compared with the sustained rate.`);
  L.push(`- **Floor (2), COPY.** The ${fmtInt(copy.rows)} rows of the fixed-rate window, rebuilt from the simulator's tape as CSV in memory, sent with \`COPY tick_rows (...) FROM STDIN (FORMAT csv)\` over one pg connection (a small CopyIn submittable, \`bench/lib/copy-in.ts\`) into the emptied \`tick_rows\` (the day's partition with its unique index and BRIN); best of 2 runs (${copy.runs.map((x) => fmtInt(x)).join(', ')} rows/s).`);
  L.push(`- **Per-row INSERT pattern.** A child process (\`bench/insert-client.ts\`) on the same stream issuing \`INSERT ... ON CONFLICT DO NOTHING\` for each trade as it arrives through \`new pg.Pool()\` (default max 10); rows/s = growth of \`count(*)\` over ${SECONDS} s. Its only departure from the naive pattern is a cap of 10,000 queries waiting for a client (past it, trades are dropped and counted, so the run cannot exhaust memory): at the end ${fmtInt(insert.backlog)} were waiting${insert.dropped > 0 ? ` and ${fmtInt(insert.dropped)} trades had been dropped` : ''}. The pattern cannot keep up with the stream at all.`);
  L.push(`- **Sweep.** Emitted/s from the simulator's tape; stored/s and buffer depth from the collector's stats file (\`<PID_FILE>.stats.json\`, written every second).`);
  L.push(`- The collector exited with ${r.collectorExit} on SIGTERM at the end of its runs.`);
  L.push('', 'Reproduce: `npm run bench` (about 8 minutes), or `npm run bench -- --quick` for a smoke run; `DATABASE_URL=postgres://... npm run bench` to use another server (a fresh database is created and dropped).', '');
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'mc-bench-'));
  let db: BenchDatabase | null = null;
  let sim: ExchangeSimulator | null = null;
  let col: CollectorProcess | null = null;
  // Ctrl-C: do not leave the collector or the embedded server running.
  const interrupt = () => {
    say('interrupted: cleaning up');
    void (async () => {
      if (col) await col.stop(3_000).catch(() => {});
      if (db) await db.close().catch(() => {});
      rmSync(scratch, { recursive: true, force: true });
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupt).once('SIGTERM', interrupt);
  try {
    say('starting the database');
    db = await openBenchDatabase('bench', log);
    let useCommitTs = await commitTimestampsEnabled(db.url);
    if (!useCommitTs && db.restart) {
      await sql(db.url, 'alter system set track_commit_timestamp = on');
      await db.restart(0);
      useCommitTs = await commitTimestampsEnabled(db.url);
    }
    sim = await ExchangeSimulator.start({
      tradesPerSecond: perSymbol(RATE),
      binanceSymbols: BINANCE_SYMBOLS,
      okxSymbols: OKX_SYMBOLS,
      seed: 42,
      binanceHandshakesPer5Min: 100_000,
      okxHandshakesPerSecond: 1_000,
      okxSubscribesPerHour: 100_000,
    });
    say('starting the collector');
    col = await startCollectorProcess(join(scratch, 'collector'), collectorEnv(sim, db.url));
    await waitFor(() => (col!.stats()?.pipeline?.ticksStored ?? 0) > 0, 30_000, 'ticks stored');

    const fixed = await fixedRate(sim, db, col, useCommitTs);
    say(`  ${round(fixed.cpuUsPerTick, 2)} µs/tick, RSS max ${fixed.rssMaxMb} MB, latency p50 ${round(fixed.latency.p50Ms, 0)} p99 ${round(fixed.latency.p99Ms, 0)} max ${round(fixed.latency.maxMs, 0)} ms (${fixed.latency.method})`);
    const ids = await sql<{ k: string; id: string }>(db.url, "select exchange || ':' || symbol as k, instrument_id::text as id from instruments");
    const csv = windowCsv(sim, fixed, new Map(ids.map((r) => [r.k, r.id])));
    const steps = await sweep(sim, col);
    sim.setRate(0);
    const exit = await col.stop();
    const collectorExit = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    col = null;

    const bare = await bareClient(sim);
    say(`  ${round(bare.cpuUsPerMessage, 2)} µs/message`);
    sim.setRate(0);
    const copy = await copyFloor(db.url, csv);
    say(`  ${fmtInt(copy.rowsPerSec)} rows/s`);
    const insert = await insertPattern(sim, db.url);
    say(`  ${fmtInt(insert.rowsPerSec)} rows/s`);

    let md = render({ machine: await machine(db), fixed, steps, bare, copy, insert, collectorExit }) + '\n' +
      (await storageBenchSection(quick ? { ticks: 200_000, fillRows: 600_000, insertTicks: 100_000, log: say } : { log: say }));
    say('archive export (bench/export-bench.ts)');
    md += `\n${await runExportBench({ quick, logger: log })}`;
    process.stdout.write(`\n${md}\n`);
    if (OUT) {
      writeFileSync(OUT, md);
      say(`wrote ${OUT}`);
    }
  } finally {
    if (col) await col.stop().catch(() => {});
    if (sim) await sim.stop().catch(() => {});
    if (db) await db.close().catch(() => {});
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
