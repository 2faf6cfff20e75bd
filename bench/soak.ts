/**
 * `npm run soak -- --minutes N` (or `--seconds N`) [--out DIR (default docs)] [--rate 400] [--fault-every SECONDS]
 *
 * The collector (a child process) against the simulator with every fault kind injected on a schedule, the database
 * restarted once (embedded server: pg_ctl stop/start; DATABASE_URL server: a TCP proxy in front of it is cut), pool
 * resets forced (PG_POOL_RESET_INTERVAL_MS), and a sample every second of the collector's FDs, TCP sockets by state,
 * RSS, heap, database connections, reconnects, buffer and journal. At the end the simulator is paused, the collector
 * gets time to backfill every gap, is stopped with SIGTERM, and the table is audited against the simulator's tape.
 *
 * Writes DIR/soak.json (samples + verdict), DIR/soak.svg (chart) and DIR/soak.md (verdict table); exit code 0 when
 * the verdict passes, 1 otherwise.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/logger.ts';
import { ExchangeSimulator, FAULT_KINDS, faultApplies } from '../src/simulator/index.ts';
import type { FaultKind, SimExchange } from '../src/simulator/index.ts';
import { PROJECT_ROOT } from '../test/helpers/child-collector.ts';
import { simEnv } from '../test/helpers/collector-env.ts';
import { TcpProxy } from '../test/helpers/tcp-proxy.ts';
import { sleep, waitFor } from '../test/helpers/wait-for.ts';
import { numberArg, parseArgs } from './lib/args.ts';
import { auditTable, describeAudit } from './lib/audit.ts';
import type { AuditReport } from './lib/audit.ts';
import { renderChart } from './lib/chart.ts';
import type { ChartEvent, ChartPoint } from './lib/chart.ts';
import { FAST_FAULTS_SIM } from '../test/helpers/sim-options.ts';
import { startCollectorProcess } from './lib/collector-proc.ts';
import type { CollectorProcess } from './lib/collector-proc.ts';
import { openBenchDatabase, sql } from './lib/database.ts';
import type { BenchDatabase } from './lib/database.ts';
import { Sampler } from './lib/sampler.ts';
import type { Sample } from './lib/sampler.ts';
import { round, slope } from './lib/stats.ts';

const BINANCE_SYMBOLS = ['BTCUSDT', 'ETHUSDT'];
const OKX_SYMBOLS = ['BTC-USDT', 'ETH-USDT'];
const SYMBOLS: ReadonlyArray<{ exchange: SimExchange; symbol: string }> = [
  ...BINANCE_SYMBOLS.map((symbol) => ({ exchange: 'binance' as const, symbol })),
  ...OKX_SYMBOLS.map((symbol) => ({ exchange: 'okx' as const, symbol })),
];

/** Verdict thresholds (documented in the report). */
const FD_TOLERANCE = 2;
const CLOSE_WAIT_GRACE_MS = 10_000;
const POOL_MAX = 3;
/**
 * RSS slope limit over the second half: max(1 MB/min, allowance / half length in minutes). The allowance is the GC
 * sawtooth (15 MB) once the half is 2 minutes or longer; a shorter half still holds the process's warm-up (a 60 s soak
 * grew 72 -> 94 MB over its first minute, alone on the machine, then stayed flat), so it gets 30 MB.
 */
const RSS_SLOPE_FLOOR_MB_PER_MIN = 1;
const RSS_NOISE_MB = 15;
const RSS_WARMUP_NOISE_MB = 30;
const RSS_WARMUP_HALF_MINUTES = 2;
/**
 * RSS that climbs back to where it already was is not a leak: a 10-minute soak gave memory back to the system at
 * 260 s (116 -> 83 MB) and grew again to 116-118 MB, its second half's fitted slope 3.95 MB/min with a flat heap. So the
 * RSS check also passes when the second half never goes more than this above the first half's highest RSS; a leak
 * keeps setting new highs.
 */
const RSS_NEW_HIGH_MB = 5;
/** Heap used (V8's live objects, from the stats file) is flat after warm-up: its floor may rise 10 MB or 0.5 MB/min. */
const HEAP_SLOPE_FLOOR_MB_PER_MIN = 0.5;
const HEAP_NOISE_MB = 10;
/** After the simulator is paused: how long the collector gets to store and backfill everything. */
const COMPLETE_TIMEOUT_MS = 90_000;

/** Cleanups to run if the process is interrupted mid-run (the normal path runs them in runSoak's finally). */
const pendingCleanups = new Set<() => Promise<void>>();

async function interrupt(): Promise<void> {
  process.stderr.write('soak interrupted: cleaning up\n');
  for (const c of pendingCleanups) await c().catch(() => {});
  process.exit(130);
}

export interface SoakOptions {
  readonly seconds: number;
  readonly out: string;
  /** Total ticks/s across the four symbols. */
  readonly rate: number;
  /** 0: automatic (see faultInterval). */
  readonly faultEverySeconds: number;
  readonly log: (msg: string) => void;
}

interface Check {
  readonly name: string;
  readonly value: string;
  readonly ok: boolean;
}

export interface SoakResult {
  readonly ok: boolean;
  readonly checks: readonly Check[];
  readonly audit: AuditReport | null;
  readonly faults: Readonly<Record<string, number>>;
  readonly samples: readonly Sample[];
  readonly events: readonly ChartEvent[];
  readonly faultEveryMs: number;
  readonly poolResetMs: number;
  readonly database: string;
}

const HANDSHAKE_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(['stallHandshake', 'refuse503', 'refuse429']);

/** Polls the table until every symbol holds a contiguous run of ids up to the simulator's last. */
async function waitComplete(url: string, last: ReadonlyMap<string, number>, timeoutMs: number): Promise<boolean> {
  try {
    await waitFor(async () => {
      const rows = await sql<{ exchange: string; symbol: string; lo: string; hi: string; n: string }>(
        url,
        'select exchange, symbol, min(trade_id) as lo, max(trade_id) as hi, count(*) as n from ticks group by exchange, symbol',
      );
      return SYMBOLS.every((s) => {
        const r = rows.find((x) => x.exchange === s.exchange && x.symbol === s.symbol);
        return r !== undefined && Number(r.hi) >= last.get(`${s.exchange}:${s.symbol}`)! && Number(r.n) === Number(r.hi) - Number(r.lo) + 1;
      });
    }, timeoutMs, 'every id stored', 500);
    return true;
  } catch {
    return false;
  }
}

/**
 * --fault-every, or by default 6 s, shortened (not below 2 s) so that a short run still goes through every kind once.
 */
function faultInterval(opts: SoakOptions, activeMs: number): number {
  if (opts.faultEverySeconds > 0) return opts.faultEverySeconds * 1000;
  return Math.max(2_000, Math.min(6_000, Math.floor(activeMs / (FAULT_KINDS.length + 1))));
}

/**
 * The lowest value (RSS or heap used) of each of 10 equal time buckets: a leak raises this floor, while the garbage
 * collector's sawtooth mostly moves the peaks, so the slope is fitted through these points.
 */
function lowerEnvelope(samples: readonly Sample[], value: (s: Sample) => number | null): Array<{ t: number; mb: number }> {
  const known = samples.flatMap((x) => {
    const mb = value(x);
    return mb !== null && Number.isFinite(mb) ? [{ t: x.t, mb }] : [];
  });
  if (known.length < 2) return known;
  const t0 = known[0]!.t;
  const width = Math.max(1, (known[known.length - 1]!.t - t0) / 10);
  const buckets = new Map<number, { t: number; mb: number }>();
  for (const x of known) {
    const k = Math.min(9, Math.floor((x.t - t0) / width));
    const b = buckets.get(k);
    if (!b || x.mb < b.mb) buckets.set(k, x);
  }
  return [...buckets.values()].sort((a, b) => a.t - b.t);
}

/** Slope (MB/min) of the floor of `value` over `half` (`halfMinutes` long), and its limit: max(floorPerMin, allowance ÷ halfMinutes). */
function floorSlope(half: readonly Sample[], halfMinutes: number, value: (s: Sample) => number | null, allowanceMb: number, floorPerMin: number): { slope: number; limit: number } {
  const floor = lowerEnvelope(half, value);
  return {
    slope: slope(floor.map((x) => x.t / 60), floor.map((x) => x.mb)),
    limit: Math.max(floorPerMin, allowanceMb / Math.max(halfMinutes, 1e-9)),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const say = opts.log;
  const logger = createLogger({ level: process.env.SOAK_LOG_LEVEL ?? 'warn' });
  const scratch = mkdtempSync(join(tmpdir(), 'mc-soak-'));
  const events: ChartEvent[] = [];
  const faults: Record<string, number> = {};
  let db: BenchDatabase | null = null;
  let proxy: TcpProxy | null = null;
  let sim: ExchangeSimulator | null = null;
  let col: CollectorProcess | null = null;
  let sampler: Sampler | null = null;
  const timers: NodeJS.Timeout[] = [];
  const cleanup = async () => {
    for (const tm of timers) clearInterval(tm);
    if (col) await col.stop(3_000).catch(() => {});
    await sampler?.close();
    if (sim) await sim.stop().catch(() => {});
    if (proxy) await proxy.stop().catch(() => {});
    if (db) await db.close().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  };
  pendingCleanups.add(cleanup);
  try {
    say('starting the database');
    db = await openBenchDatabase('soak', logger);
    let collectorUrl = db.url;
    if (!db.restart) {
      // Another server: the outage is a cut TCP proxy between the collector and it.
      const u = new URL(db.url);
      proxy = await TcpProxy.start(u.hostname, Number(u.port || 5432));
      collectorUrl = proxy.url(db.url);
    }
    sim = await ExchangeSimulator.start({
      ...FAST_FAULTS_SIM,
      tradesPerSecond: opts.rate / SYMBOLS.length,
      binanceSymbols: BINANCE_SYMBOLS,
      okxSymbols: OKX_SYMBOLS,
      seed: 7,
      binancePingIntervalMs: 500,
      shutdownCloseDelayMs: 800,
      noticeCloseDelayMs: 1500,
    });
    const poolResetMs = Math.max(5_000, Math.min(20_000, Math.floor((opts.seconds * 1000) / 3)));
    say('starting the collector');
    const started = Date.now();
    col = await startCollectorProcess(
      join(scratch, 'collector'),
      simEnv(sim, {
        BINANCE_SYMBOLS: BINANCE_SYMBOLS.join(','),
        OKX_SYMBOLS: OKX_SYMBOLS.join(','),
        DATABASE_URL: collectorUrl,
        PG_POOL_MAX: String(POOL_MAX),
        PG_POOL_RESET_INTERVAL_MS: String(poolResetMs),
        PG_ACQUIRE_TIMEOUT_MS: '1000',
        PG_CONNECT_TIMEOUT_MS: '1000',
        BACKFILL_RETRY_INTERVAL_MS: '1000',
        ALARM_CLOSE_WAIT_GRACE_MS: String(CLOSE_WAIT_GRACE_MS),
        LOG_LEVEL: 'info',
      }),
    );
    const c = col;
    const live = () => (c.stats()?.connections ?? []).length > 0 && c.stats()!.connections.every((x) => x.state === 'live');
    await waitFor(live, 30_000, 'every connection live');
    sampler = new Sampler(col.pid, db.url, () => c.stats(), started);
    const s = sampler;
    let sampling = Promise.resolve();
    timers.push(setInterval(() => (sampling = sampling.then(() => s.sample().then(() => {}))), 1000));

    // Baseline: the median of a few samples once everything is live and storing.
    await sleep(5_000);
    const baseline = s.samples.slice(-4);
    const baseFds = median(baseline.map((x) => x.fds));
    const baseTcp = median(baseline.map((x) => x.tcpTotal));
    say(`baseline: ${baseFds} FDs, ${baseTcp} TCP sockets`);

    // Faults on a schedule: round-robin over every kind, each on every exchange it applies to.
    const end = started + opts.seconds * 1000;
    const quietMs = Math.min(15_000, opts.seconds * 150); // the last part stays fault-free: every connection live for the audit
    const faultEveryMs = faultInterval(opts, end - quietMs - Date.now());
    let next = 0;
    const inject = () => {
      const kind = FAULT_KINDS[next++ % FAULT_KINDS.length]!;
      for (const exchange of ['binance', 'okx'] as const) {
        if (!faultApplies(exchange, kind)) continue;
        sim!.inject(exchange, kind);
        if (HANDSHAKE_KINDS.has(kind)) sim!.inject(exchange, 'close1001'); // handshake faults hit the next upgrade
        faults[`${exchange}:${kind}`] = (faults[`${exchange}:${kind}`] ?? 0) + 1;
      }
    };
    const faultTimer = setInterval(inject, faultEveryMs);
    timers.push(faultTimer);
    say(`a fault every ${round(faultEveryMs / 1000, 1)} s`);

    // The run, with one database outage at about 35% of it.
    const outageAt = started + opts.seconds * 350;
    const downMs = opts.seconds >= 300 ? 10_000 : 5_000;
    await sleep(Math.max(0, outageAt - Date.now()));
    const t = () => round((Date.now() - started) / 1000, 1);
    events.push({ t: t(), label: 'database down' });
    say(`database ${db.restart ? 'restart' : 'outage (proxy cut)'} for ${downMs / 1000} s`);
    if (db.restart) {
      await db.restart(downMs);
    } else {
      proxy!.cut();
      await sleep(downMs);
      proxy!.restore();
    }
    events.push({ t: t(), label: 'database up' });
    await sleep(Math.max(0, end - quietMs - Date.now()));
    clearInterval(faultTimer);
    await sleep(Math.max(0, end - Date.now()));
    say('run over: pausing the simulator, waiting for every id to be stored');
    await waitFor(live, 30_000, 'every connection live').catch(() => say('not every connection is live'));
    sim.pause();
    events.push({ t: t(), label: 'paused' });
    const last = new Map(SYMBOLS.map((x) => [`${x.exchange}:${x.symbol}`, sim!.tapeRange(x.exchange, x.symbol)?.last ?? 0]));
    const complete = await waitComplete(db.url, last, COMPLETE_TIMEOUT_MS);
    await waitFor(() => {
      const st = c.stats();
      return st?.pipeline?.bufferDepth === 0 && st.pipeline.journalTicks === 0 && (st.gaps?.open ?? 0) === 0;
    }, 20_000, 'buffer, journal and gaps empty').catch(() => say('buffer, journal or gaps not empty'));
    await sleep(3_000);
    for (const tm of timers) clearInterval(tm);
    await sampling;
    const endSamples: Sample[] = [];
    for (let i = 0; i < 3; i++) {
      const x = await s.sample();
      if (x) endSamples.push(x);
      await sleep(1000);
    }
    const endFds = median(endSamples.map((x) => x.fds));
    const endTcp = median(endSamples.map((x) => x.tcpTotal));
    const finalStats = c.stats();
    say('stopping the collector (SIGTERM)');
    const exit = await c.stop();
    col = null;
    const audit = await auditTable(db.url, sim, SYMBOLS, last);
    say(describeAudit(audit));

    // Verdict.
    const samples = s.samples;
    const half = samples.filter((x) => x.t >= samples[samples.length - 1]!.t / 2);
    const halfMinutes = (half[half.length - 1]!.t - half[0]!.t) / 60;
    const rss = floorSlope(half, halfMinutes, (x) => x.rssMb, halfMinutes < RSS_WARMUP_HALF_MINUTES ? RSS_WARMUP_NOISE_MB : RSS_NOISE_MB, RSS_SLOPE_FLOOR_MB_PER_MIN);
    const highest = (xs: readonly Sample[]): number => Math.max(...xs.map((x) => x.rssMb).filter((v) => Number.isFinite(v)));
    const firstHalfHigh = highest(samples.filter((x) => x.t < half[0]!.t));
    const secondHalfHigh = highest(half);
    const noNewHigh = Number.isFinite(firstHalfHigh) && secondHalfHigh <= firstHalfHigh + RSS_NEW_HIGH_MB;
    const heap = floorSlope(half, halfMinutes, (x) => x.heapMb, HEAP_NOISE_MB, HEAP_SLOPE_FLOOR_MB_PER_MIN);
    const resets = finalStats?.pool?.resets ?? 0;
    const reconnects = Math.max(0, ...samples.map((x) => x.reconnects));
    const checks: Check[] = [
      { name: `FDs back to baseline (within ${FD_TOLERANCE})`, value: `${baseFds} → ${endFds}`, ok: endFds - baseFds <= FD_TOLERANCE },
      { name: `TCP sockets back to baseline (within ${FD_TOLERANCE})`, value: `${baseTcp} → ${endTcp}`, ok: endTcp - baseTcp <= FD_TOLERANCE },
      { name: `no CLOSE_WAIT older than ${CLOSE_WAIT_GRACE_MS / 1000} s`, value: `oldest ${round(s.maxCloseWaitMs / 1000, 1)} s`, ok: s.maxCloseWaitMs < CLOSE_WAIT_GRACE_MS },
      { name: `database connections never above PG_POOL_MAX (${POOL_MAX})`, value: `max ${s.maxDbConnections}`, ok: s.maxDbConnections <= POOL_MAX },
      {
        name: `RSS slope over the second half ≤ ${round(rss.limit, 1)} MB/min, or no new high (≤ first half's + ${RSS_NEW_HIGH_MB} MB)`,
        value: `${round(rss.slope, 2)} MB/min; highest ${round(firstHalfHigh, 1)} → ${round(secondHalfHigh, 1)} MB`,
        ok: rss.slope <= rss.limit || noNewHigh,
      },
      { name: `heap used slope over the second half ≤ ${round(heap.limit, 1)} MB/min`, value: `${round(heap.slope, 2)} MB/min`, ok: heap.slope <= heap.limit },
      { name: 'every id stored before the stop (backfill finished)', value: complete ? 'yes' : `not within ${COMPLETE_TIMEOUT_MS / 1000} s`, ok: complete },
      { name: 'zero missing', value: String(audit.missing), ok: audit.missing === 0 },
      { name: 'zero duplicate', value: String(audit.duplicates), ok: audit.duplicates === 0 },
      { name: 'zero wrong (price, qty, side, time = tape)', value: String(audit.wrong), ok: audit.wrong === 0 },
      { name: 'nothing stored that was never sent', value: String(audit.extra), ok: audit.extra === 0 },
      { name: 'SIGTERM: graceful exit 0', value: exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`, ok: exit.code === 0 },
      { name: 'database restarted once', value: db.restart ? 'pg_ctl stop + start' : 'proxy cut', ok: events.some((e) => e.label === 'database up') },
      { name: `pool reset forced (every ${poolResetMs / 1000} s)`, value: `${resets} resets`, ok: resets >= 1 },
      {
        name: 'every fault kind injected, and survived',
        value: `${new Set(Object.keys(faults).map((k) => k.split(':')[1])).size}/${FAULT_KINDS.length} kinds, ${Object.values(faults).reduce((a, b) => a + b, 0)} faults, ${reconnects} reconnects`,
        ok: reconnects > 0 && FAULT_KINDS.every((k) => Object.keys(faults).some((f) => f.endsWith(`:${k}`))),
      },
    ];
    const ok = checks.every((x) => x.ok) && audit.ok;
    const database = `PostgreSQL ${(await sql<{ v: string }>(db.url, "select current_setting('server_version') as v"))[0]!.v} (${db.restart ? 'embedded, temp dir' : 'DATABASE_URL server, fresh database'})`;
    return { ok, checks, audit, faults, samples, events, faultEveryMs, poolResetMs, database };
  } finally {
    pendingCleanups.delete(cleanup);
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// output

function points(samples: readonly Sample[], series: string, pick: (s: Sample) => number | null): ChartPoint[] {
  const out: ChartPoint[] = [];
  for (const s of samples) {
    const v = pick(s);
    if (v !== null && Number.isFinite(v)) out.push({ t: s.t, series, value: v });
  }
  return out;
}

export async function chart(r: SoakResult, title: string): Promise<string> {
  const states = [...new Set(r.samples.flatMap((s) => Object.keys(s.tcp)))].sort();
  return renderChart(
    title,
    [
      { title: 'Open file descriptors of the collector', yTitle: 'FDs', points: points(r.samples, 'FDs', (s) => s.fds) },
      {
        title: 'Its TCP sockets by state (/proc/<pid>/net/tcp by inode), and its database connections (pg_stat_activity)',
        yTitle: 'sockets',
        points: [...states.flatMap((st) => points(r.samples, st, (s) => s.tcp[st] ?? 0)), ...points(r.samples, 'db connections', (s) => s.dbConnections)],
      },
      { title: 'Memory', yTitle: 'MB', points: [...points(r.samples, 'RSS', (s) => s.rssMb), ...points(r.samples, 'heap used', (s) => s.heapMb)] },
      { title: 'Reconnects (cumulative)', yTitle: 'reconnects', points: points(r.samples, 'reconnects', (s) => s.reconnects) },
      {
        title: 'Buffer and journal',
        yTitle: 'ticks',
        points: [...points(r.samples, 'buffer', (s) => s.bufferDepth), ...points(r.samples, 'journal', (s) => s.journalTicks)],
      },
    ],
    r.events,
  );
}

export function markdown(r: SoakResult, opts: SoakOptions, svgName: string): string {
  const L: string[] = [];
  const minutes = round(opts.seconds / 60, 1);
  L.push(`# Soak: ${minutes} minutes`, '');
  L.push(`Run with \`npm run soak -- --seconds ${opts.seconds}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${opts.rate} ticks/s over 4 symbols, a fault every ${round(r.faultEveryMs / 1000, 1)} s (round-robin over every kind, each on both exchanges where it applies), the database restarted once, the pool reset on a timer, one sample per second.`, '');
  L.push(`Machine: ${cpus().length} cores, Node ${process.version}, ${r.database}. Collector settings: the test timeouts of \`test/helpers/collector-env.ts\` (silence 1.5 s, handshake 1 s, backoff 50-400 ms), PG_POOL_MAX=${POOL_MAX}, PG_POOL_RESET_INTERVAL_MS=${r.poolResetMs}, BACKFILL_RETRY_INTERVAL_MS=1000, everything else default.`, '');
  L.push(`**Verdict: ${r.ok ? 'PASS' : 'FAIL'}**`, '');
  L.push('| check | measured | |', '|---|---|---|');
  for (const c of r.checks) L.push(`| ${c.name} | ${c.value} | ${c.ok ? 'ok' : '**FAIL**'} |`);
  L.push('', `![soak chart](${svgName})`, '');
  if (r.audit) {
    L.push('## Audit against the simulator\'s tape', '');
    L.push('| symbol | ids | stored | backfilled | missing | duplicate | wrong |', '|---|---|---|---|---|---|---|');
    for (const a of r.audit.symbols) L.push(`| ${a.exchange}:${a.symbol} | ${a.first ?? '-'}..${a.last} | ${a.stored} | ${a.backfilled} | ${a.missing} | ${a.duplicates} | ${a.wrong} |`);
    L.push('');
  }
  L.push('## Faults injected', '');
  L.push(Object.entries(r.faults).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none', '');
  L.push('## How the verdict is judged', '');
  L.push(`- FDs and TCP sockets: median of 3 samples at the end (simulator paused, everything stored) minus the median of the baseline samples (5 s after every connection went live) must be at most ${FD_TOLERANCE}.`);
  L.push(`- CLOSE_WAIT: each socket inode in CLOSE_WAIT is timed from the first sample that shows it; none may reach ${CLOSE_WAIT_GRACE_MS / 1000} s (ALARM_CLOSE_WAIT_GRACE_MS).`);
  L.push(`- Database connections: \`pg_stat_activity\` rows with \`application_name = 'market-collector'\` on the soak's database, every second, never above PG_POOL_MAX.`);
  L.push(`- RSS slope: least-squares line through the lowest RSS sample of each tenth of the second half (a leak lifts that floor; the GC sawtooth mostly moves the peaks), in MB/min; limit max(${RSS_SLOPE_FLOOR_MB_PER_MIN} MB/min, ${RSS_NOISE_MB} MB ÷ the half's length in minutes), i.e. a run may not grow more than ${RSS_NOISE_MB} MB along the fitted line (the GC sawtooth alone reaches a few MB), a long one not more than ${RSS_SLOPE_FLOOR_MB_PER_MIN} MB/min; a half shorter than ${RSS_WARMUP_HALF_MINUTES} minutes still holds the warm-up (V8 growing its heap, pg and ws buffers) and may grow ${RSS_WARMUP_NOISE_MB} MB. The check also passes when the second half's highest RSS is at most ${RSS_NEW_HIGH_MB} MB above the first half's: RSS that was given back to the system and grows back to where it was is not a leak, while a leak keeps setting new highs.`);
  L.push(`- Heap used slope: the same fit through the collector's own heapUsed (its stats file, every second): V8's live objects, where a leak of ticks, frames or map entries shows first; limit max(${HEAP_SLOPE_FLOOR_MB_PER_MIN} MB/min, ${HEAP_NOISE_MB} MB ÷ the half's length in minutes).`);
  L.push('- Audit: for every symbol, every id from the first stored to the last the simulator emitted before it was paused must be in the table once, with price, qty, side and trade time equal to the tape (gaps from faults and the outage are backfilled over the simulator\'s REST API by the collector).');
  L.push('');
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), []);
  const seconds = args.values.has('seconds') ? numberArg(args, 'seconds', 60) : numberArg(args, 'minutes', 1) * 60;
  if (seconds < 30) throw new Error('--seconds: at least 30');
  const opts: SoakOptions = {
    seconds,
    out: resolve(args.values.get('out') ?? join(PROJECT_ROOT, 'docs')),
    rate: numberArg(args, 'rate', 400),
    faultEverySeconds: numberArg(args, 'fault-every', 0),
    log: (msg) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`),
  };
  const result = await runSoak(opts);
  mkdirSync(opts.out, { recursive: true });
  writeFileSync(join(opts.out, 'soak.json'), JSON.stringify({ ok: result.ok, checks: result.checks, audit: result.audit, faults: result.faults, events: result.events, samples: result.samples }, null, 1));
  writeFileSync(join(opts.out, 'soak.svg'), await chart(result, `market-collector soak: ${round(seconds / 60, 1)} min, ${result.ok ? 'PASS' : 'FAIL'}`));
  writeFileSync(join(opts.out, 'soak.md'), markdown(result, opts, 'soak.svg'));
  for (const c of result.checks) process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.value}\n`);
  process.stdout.write(`verdict: ${result.ok ? 'PASS' : 'FAIL'} (${join(opts.out, 'soak.md')})\n`);
  process.exitCode = result.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // Ctrl-C / SIGTERM: stop the collector and the embedded server before leaving.
  process.once('SIGINT', () => void interrupt()).once('SIGTERM', () => void interrupt());
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      process.stderr.write(`soak failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
