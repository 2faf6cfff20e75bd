/** BENCHMARKS.md: one markdown block per bench section, plus the machine header, the method and every run. */
import { DEFAULTS } from '../../src/config.ts';
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { PROJECT_ROOT } from '../../test/helpers/child-collector.ts';
import { npmStartNodeFlags } from './collector-proc.ts';
import { IDLE_SETTLE_MS } from './curve.ts';
import type { ClientKind, ClientRun, CurvePoint, IdleRun } from './curve.ts';
import { curveChart } from './curve-chart.ts';
import type { CurveSeriesPoint } from './curve-chart.ts';
import { sql } from './database.ts';
import type { BenchDatabase } from './database.ts';
import { SYMBOLS } from './feed-setup.ts';
import type { PeerInstall } from './peers.ts';
import type { CopyResult, InsertResult } from './store-floors.ts';
import { fmtInt, round } from './stats.ts';
import { SUSTAIN_BUFFER_SLOPE, SUSTAIN_STORED_RATIO } from './sweep.ts';
import type { SweepResult } from './sweep.ts';

/** Targets of issue #13, checked in the report (bench figures, never timed tests). */
export const RATIO_TARGETS: ReadonlyArray<{ rate: number; ratio: number }> = [
  { rate: 400, ratio: 1.3 },
  { rate: 4_000, ratio: 1.15 },
  { rate: 20_000, ratio: 1.15 },
];
export const RSS_TARGET = { rate: 20_000, mb: 100 };
export const IDLE_CPU_TARGET = 0.005;

const verdict = (ok: boolean) => (ok ? '**met**' : '**not met**');
const us = (n: number) => `${round(n, n < 10 ? 2 : 1)} µs`;

export function clientLabel(client: ClientKind, tardis: PeerInstall | null): string {
  if (client === 'floor') return 'bare ws + JSON.parse (floor)';
  if (client === 'tardis') return `tardis-dev ${tardis?.version ?? ''} normalized stream (does not store)`;
  return 'this collector (per stored tick)';
}

function point(points: readonly CurvePoint[], client: ClientKind, rate: number): CurvePoint | undefined {
  return points.find((p) => p.client === client && p.rate === rate);
}

function ratioTo(points: readonly CurvePoint[], p: CurvePoint): number | null {
  const floor = point(points, 'floor', p.rate);
  return floor ? p.usPerTick / floor.usPerTick : null;
}

export interface CurveReport {
  readonly points: readonly CurvePoint[];
  readonly runs: readonly ClientRun[];
  readonly idle: IdleRun | null;
  readonly tardis: PeerInstall | null;
  readonly referenceRate: number;
  /** Path of the chart relative to BENCHMARKS.md, or null when none is written. */
  readonly chart: string | null;
}

export function curveMarkdown(r: CurveReport): string {
  const { points } = r;
  const clients = (['floor', 'tardis', 'collector'] as const).filter((c) => points.some((p) => p.client === c));
  const rates = [...new Set(points.map((p) => p.rate))].sort((a, b) => a - b);
  const L: string[] = ['## Cost per tick at every rate', ''];
  L.push(
    'Each client is its own plain `node` process, started fresh at each rate, one after another on the same simulator feed. ' +
      'CPU is utime + stime of that process over the window divided by the trades of the window (the collector: by the rows of the window it stored); ' +
      'RSS is the highest VmRSS of that process in the window. Ratios are to the floor measured at the same rate in this run. ' +
      'Only the collector stores; the other two only receive and normalise (tardis-dev) or parse (floor). PostgreSQL\'s CPU is not counted.',
    '',
  );
  L.push(`| offered | ${clients.map((c) => clientLabel(c, r.tardis)).join(' | ')} |`, `|---|${clients.map(() => '---').join('|')}|`);
  for (const rate of rates) {
    const cells = clients.map((c) => {
      const p = point(points, c, rate);
      if (!p) return 'n/a';
      const ratio = ratioTo(points, p);
      const range = p.runs > 1 ? ` [${round(p.usRange[0], 1)}–${round(p.usRange[1], 1)}]` : '';
      const cost = c === 'floor' || ratio === null ? `${us(p.usPerTick)}${range}` : `${c === 'collector' ? '**' : ''}×${round(ratio, 2)}${c === 'collector' ? '**' : ''} (${us(p.usPerTick)}${range})`;
      const behind = p.receivedShare < 0.98 ? ` (${c === 'collector' ? 'stored' : 'received'} only ${round(p.receivedShare * 100, 0)}% of the window's trades: behind its feed)` : '';
      return `${cost}, ${p.rssMaxMb} MB${behind}`;
    });
    L.push(`| ${fmtInt(rate)} ticks/s | ${cells.join(' | ')} |`);
  }
  if (r.idle) {
    L.push(`| no trades (heartbeats only) | ${clients.map((c) => (c === 'collector' ? `${round(r.idle!.cores * 100, 2)}% of a core, ${r.idle!.rssMaxMb} MB` : '')).join(' | ')} |`);
  }
  L.push('');
  const repeats = Math.max(0, ...points.map((p) => p.runs));
  if (repeats > 1) L.push(`Medians of ${repeats} rounds; [low–high] µs per tick over the rounds.`, '');
  if (r.chart) L.push(`![CPU per tick vs rate](${r.chart})`, '');
  const ref = r.runs.find((x) => x.client === 'collector' && x.rate === r.referenceRate && x.latency);
  if (ref?.latency) {
    const l = ref.latency;
    L.push(`Send → commit latency of the collector's ${fmtInt(r.referenceRate)} ticks/s window (every row, commit timestamps): p50 ${round(l.p50Ms, 0)} ms, p99 ${round(l.p99Ms, 0)} ms, max ${round(l.maxMs, 0)} ms over ${fmtInt(l.rows)} rows.`, '');
  }
  L.push(...targetsMarkdown(r));
  return L.join('\n');
}

function targetsMarkdown(r: CurveReport): string[] {
  const L: string[] = ['### Targets', '', '| target | measured | |', '|---|---|---|'];
  for (const t of RATIO_TARGETS) {
    const p = point(r.points, 'collector', t.rate);
    const ratio = p ? ratioTo(r.points, p) : null;
    L.push(`| ≤ ${t.ratio}× the in-run floor at ${fmtInt(t.rate)} ticks/s | ${ratio === null ? 'not measured' : `×${round(ratio, 2)} (${us(p!.usPerTick)} vs ${us(point(r.points, 'floor', t.rate)!.usPerTick)})`} | ${ratio === null ? '' : verdict(ratio <= t.ratio)} |`);
  }
  const rss = point(r.points, 'collector', RSS_TARGET.rate);
  L.push(`| RSS ≤ ${RSS_TARGET.mb} MB at ${fmtInt(RSS_TARGET.rate)} ticks/s | ${rss ? `${rss.rssMaxMb} MB` : 'not measured'} | ${rss ? verdict(rss.rssMaxMb <= RSS_TARGET.mb) : ''} |`);
  if (r.idle) L.push(`| idle CPU ≤ ${IDLE_CPU_TARGET * 100}% of a core | ${round(r.idle.cores * 100, 2)}% (${round(r.idle.cpuUs / 1000, 0)} ms of CPU in ${round(r.idle.seconds, 0)} s) | ${verdict(r.idle.cores <= IDLE_CPU_TARGET)} |`);
  L.push('');
  return L;
}

export async function curveSvg(points: readonly CurvePoint[], tardis: PeerInstall | null): Promise<string> {
  const series: CurveSeriesPoint[] = points.map((p) => ({
    rate: p.rate,
    series: p.client === 'floor' ? 'bare ws + JSON.parse (floor)' : p.client === 'tardis' ? `tardis-dev ${tardis?.version ?? ''} (no storage)` : 'this collector (stores)',
    usPerTick: round(p.usPerTick, 2),
    ratio: round(ratioTo(points, p) ?? NaN, 3),
  }));
  return curveChart('market-collector: CPU per tick vs offered rate (one run, one machine)', series, RATIO_TARGETS);
}

export function sweepMarkdown(s: SweepResult, seconds: number): string {
  const L: string[] = ['## Rate sweep', ''];
  L.push(
    `One collector (stats written every second) held at each total rate for ${seconds} s after a short settle. Sustained = stored ≥ ${SUSTAIN_STORED_RATIO * 100}% of emitted, buffer slope < ${SUSTAIN_BUFFER_SLOPE * 100}% of the rate per second, nothing journaled. ` +
      'The sweep stops at the first step not sustained, after one more step halfway between it and the last sustained one. Past its limit the buffer stays bounded while the backlog piles up in the sockets in front of it, hence the stored-vs-emitted test.',
    '',
  );
  L.push('| target rate | emitted/s | stored/s | buffer end | buffer max | buffer slope (/s) | journal | sustained |', '|---|---|---|---|---|---|---|---|');
  for (const x of s.steps) {
    L.push(`| ${fmtInt(x.rate)} | ${fmtInt(x.emittedPerSec)} | ${fmtInt(x.storedPerSec)} | ${fmtInt(x.bufferEnd)} | ${fmtInt(x.bufferMax)} | ${round(x.bufferSlopePerSec)} | ${fmtInt(x.journalTicks)} | ${x.sustained ? 'yes' : 'no'} |`);
  }
  if (s.steps.length > 0 && s.steps.every((x) => x.sustained)) L.push('', 'Every step was sustained: the ceiling is above the last step (raise `--sweep`); the figure is a lower bound.');
  L.push('', `The sweep's collector (started like the tests start it: \`node dist/src/main.js\`, without the start script's heap flags) exited with ${s.collectorExit} on SIGTERM.`, '');
  return L.join('\n');
}

export function bestSustained(s: SweepResult | null): number | null {
  const ok = s?.steps.filter((x) => x.sustained) ?? [];
  return ok.length === 0 ? null : Math.max(...ok.map((x) => x.emittedPerSec));
}

export interface StorageReport {
  readonly copy: CopyResult | null;
  readonly insert: InsertResult | null;
  readonly sweep: SweepResult | null;
  readonly points: readonly CurvePoint[];
}

export function storageMarkdown(r: StorageReport): string {
  const L: string[] = ['## Storage floors and the pattern the collector replaces', ''];
  const sustained = bestSustained(r.sweep);
  const topFloor = [...r.points].filter((p) => p.client === 'floor').sort((a, b) => b.rate - a.rate)[0];
  const bareCapacity = topFloor ? 1e6 / topFloor.usPerTick : null;
  L.push('| measure | value |', '|---|---|');
  if (r.copy) L.push(`| COPY of the ${fmtInt(r.copy.rows)} rows of the reference window into the emptied table (best of ${r.copy.runs.length}) | ${fmtInt(r.copy.rowsPerSec)} rows/s |`);
  if (bareCapacity !== null) L.push(`| what one core could parse at the floor's cost at ${fmtInt(topFloor!.rate)} ticks/s | ${fmtInt(bareCapacity)} messages/s |`);
  if (r.insert) L.push(`| one INSERT per tick through a default pg pool, stream at ${fmtInt(r.insert.rate)} ticks/s | ${fmtInt(r.insert.rowsPerSec)} rows/s (${fmtInt(r.insert.backlog)} queries waiting at the end${r.insert.dropped > 0 ? `, ${fmtInt(r.insert.dropped)} trades dropped past the cap of 10,000 waiting` : ''}) |`);
  if (sustained !== null) L.push(`| highest rate the collector sustained (sweep) | ${fmtInt(sustained)} ticks/s |`);
  L.push('');
  if (sustained !== null) {
    L.push('| target (earlier issues) | measured | |', '|---|---|---|');
    const lower = Math.min(bareCapacity ?? Infinity, r.copy?.rowsPerSec ?? Infinity);
    if (Number.isFinite(lower)) L.push(`| sustained rate ≥ ½ of the lower floor (${fmtInt(lower / 2)} ticks/s) | ${fmtInt(sustained)} ticks/s | ${verdict(sustained >= lower / 2)} |`);
    if (r.insert) L.push(`| ≥ 20 × the per-row-INSERT pattern | ${round(sustained / r.insert.rowsPerSec, 1)} × | ${verdict(sustained >= 20 * r.insert.rowsPerSec)} |`);
    L.push('');
  }
  return L.join('\n');
}

export interface MethodReport {
  readonly quick: boolean;
  readonly warmupSeconds: (rate: number) => number;
  readonly windowSeconds: (rate: number) => number;
  readonly idleSeconds: number;
  readonly collectorFlags: readonly string[];
  readonly commitTs: boolean;
  readonly tardis: PeerInstall | null;
}

export function methodMarkdown(m: MethodReport): string {
  const L: string[] = ['## Method', ''];
  L.push(`- **Feed.** The simulator runs in the bench process with ${SYMBOLS.length} symbols (${SYMBOLS.map((s) => s.symbol).join(', ')}), one trade per WebSocket frame; rates are totals across symbols. Every client gets the same frames (Binance combined stream, OKX \`trades-all\`).`);
  L.push(`- **Clients.** All three are compiled to plain JS (\`npm run build\` for the collector, \`bench/tsconfig.clients.json\` for the bench's clients) and run as \`node <script>\`, so /proc/<pid> is the process doing the work, never npm, a shell or tsx. The collector is \`node ${[...npmStartNodeFlags(), ...m.collectorFlags].map((f) => `${f} `).join('')}dist/src/main.js\`, the command \`npm start\` runs (its node flags are read from package.json), with its defaults (STATS_INTERVAL_MS 60000, PG_POOL_MAX 3, BATCH_MAX_ROWS 5000, BATCH_MAX_AGE_MS 100, /metrics on a free port, not scraped) except the feed, \`DATABASE_URL\` and \`BACKFILL_ENABLED=0\` (each run restarts it while the simulator keeps emitting; backfilling those holes is work a steady-state deployment does not do). The floor (\`bench/bare-client.ts\`) opens the same two sockets with \`ws\` and only \`JSON.parse\`s each frame. tardis-dev (\`bench/tardis-client.ts\`) runs \`streamNormalized\` + \`normalizeTrades\` for \`binance\` and \`okex\`, pointed at the simulator through its own \`WSS_URL_BINANCE\` / \`WSS_URL_OKEX\` overrides (it asks Binance for \`timeUnit=microsecond\`, which the simulator supports).`);
  L.push(`- **tardis-dev** is not a project dependency: ${m.tardis?.dir ? `the bench installed ${m.tardis.name}@${m.tardis.version} with npm into \`node_modules/.cache/market-collector-bench/\` (once; later runs reuse it)` : `it could not be installed (${m.tardis?.error ?? 'not requested'})`}, so \`npm ci\` for development, CI and production never fetches it or its dependency tree.`);
  L.push(`- **Windows.** Each client process starts, gets a warm-up at the rate (the collector: after both its connections are live) long enough for V8 to have optimised its hot code, 24,000 trades' worth within 8 to 60 s (${m.warmupSeconds(400)} s at 400 ticks/s, ${m.warmupSeconds(4_000)} s at 4,000, ${m.warmupSeconds(20_000)} s above; a collector at 400 ticks/s was still compiling functions 40 s after its start), then a window of ${m.windowSeconds(400)} s at 400 and 4,000 ticks/s, ${m.windowSeconds(20_000)} s above. CPU from \`/proc/<pid>/stat\` (all threads of that process; the kernel counts in 10 ms steps, under 2% of the smallest window's CPU). The collector's rows of the window are counted in the table once their count stops growing.`);
  L.push(`- **Idle.** A fresh collector with the simulator at rate 0: its sockets live, the simulator's Binance ping every 20 s, the collector's own liveness probes after ${DEFAULTS.BINANCE_PING_IDLE_MS / 1000} s of silence on each socket (a WebSocket ping to Binance, the text \`ping\` to OKX, each answered), the 60 s stats line; CPU and RSS over ${m.idleSeconds} s after ${IDLE_SETTLE_MS / 1000} s of settling (the start's own work: migrations, the first stats, V8 compiling).`);
  L.push(m.commitTs
    ? '- **Latency.** The trade time on the wire is the simulator\'s send time; with `track_commit_timestamp = on` (set by the bench on its own server), `pg_xact_commit_timestamp(xmin) - trade_time` is the send → commit latency of every row of the window.'
    : '- **Latency.** Not measured: this server does not record commit timestamps.');
  L.push('- **The machine is shared.** Everything (simulator, client, PostgreSQL) runs on the same cores, and so may other work: the "machine busy" column of the run table says how many cores the whole machine kept busy during each window, to judge the noise.');
  L.push(`- Reproduce: \`npm run bench\` (about 15 minutes), \`npm run bench -- --quick\` for a smoke run (about 3 minutes, writes nothing), \`--repeat 3\` for medians of 3 rounds, \`--rates\`, \`--clients\`, \`--only curve\`; \`--profile DIR\` writes a \`--cpu-prof\` profile of every collector run; \`DATABASE_URL=postgres://... npm run bench\` uses another server (a fresh database is created and dropped).`);
  L.push('');
  return L.join('\n');
}

export function detailMarkdown(runs: readonly ClientRun[]): string {
  const L: string[] = ['## Every run', ''];
  L.push('| client | rate | round | window s | emitted | handled | CPU ms | µs/tick | % of a core | RSS max MB | RSS peak (VmHWM) MB | main thread % of its CPU | machine busy (cores) |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    L.push(`| ${r.client} | ${fmtInt(r.rate)} | ${r.round} | ${round(r.seconds, 1)} | ${fmtInt(r.emitted)} | ${fmtInt(r.received)} | ${fmtInt(r.cpuUs / 1000)} | ${round(r.usPerTick, 2)} | ${round(r.cores * 100, 1)} | ${r.rssMaxMb} | ${r.rssPeakMb} | ${Number.isFinite(r.mainThreadShare) ? round(r.mainThreadShare * 100, 0) : ''} | ${round(r.machineCores, 2)} |`);
  }
  L.push('');
  return L.join('\n');
}

export interface Machine {
  readonly markdown: string;
}

/** RSS of an idle `node` process here: what the runtime itself costs before any module loads. */
function runtimeRssMb(): number {
  const script = 'setTimeout(()=>{const m=/^VmRSS:\\s+(\\d+)/m.exec(require("fs").readFileSync("/proc/self/status","utf8"));console.log(Number(m[1])*1024)},1000)';
  return round(Number(execFileSync(process.execPath, ['-e', script], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim()) / 2 ** 20, 1);
}

export async function describeMachine(db: BenchDatabase, commit: string, run: { minutes: number; load: readonly [number, number]; argv: string }): Promise<Machine> {
  const v = await sql<{ v: string }>(db.url, "select current_setting('server_version') as v");
  const L: string[] = ['# Benchmarks', ''];
  L.push(`Measured by \`npm run bench${run.argv ? ` -- ${run.argv}` : ''}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in ${round(run.minutes, 1)} minutes. One run, one machine; every figure below comes from that run.`, '');
  L.push('| machine | |', '|---|---|');
  L.push(`| CPU cores | ${cpus().length} (${cpus()[0]?.model ?? 'unknown'}) |`);
  L.push(`| memory | ${Math.round(totalmem() / 2 ** 30)} GB |`);
  L.push(`| Node | ${process.version} (an idle \`node\` process: ${runtimeRssMb()} MB RSS) |`);
  L.push(`| PostgreSQL | ${v[0]!.v} - ${db.kind === 'embedded' ? 'embedded PostgreSQL (temp dir, same machine)' : 'DATABASE_URL server (fresh database)'} |`);
  L.push(`| commit | ${commit} |`);
  L.push(`| load average (1 min) at start / end | ${round(run.load[0], 2)} / ${round(run.load[1], 2)} |`, '');
  return { markdown: L.join('\n') };
}
