/**
 * The cost curve: at each offered rate, one client after another on the same simulator feed, each a fresh plain
 * `node` process measured from /proc over the same kind of window:
 *  - floor: a bare `ws` client that only JSON.parses each frame (bench/bare-client.ts);
 *  - tardis: tardis-dev's normalized trade stream (bench/tardis-client.ts), a peer that receives and normalises but
 *    does not store;
 *  - collector: `node dist/src/main.js` (what `npm start` runs) writing into the bench database, settings at their
 *    defaults apart from the feed, the database and BACKFILL_ENABLED=0.
 * CPU is utime + stime of that one process (/proc/<pid>/stat: every thread of it, nothing of PostgreSQL, npm or a
 * shell); per tick means per trade the simulator emitted during the window (floor, tardis) or per row of the
 * window the collector stored. RSS is the process's own VmRSS, sampled twice a second in the window.
 */
import { join } from 'node:path';
import type { ExchangeSimulator } from '../../src/simulator/index.ts';
import { sleep, waitFor } from '../../test/helpers/wait-for.ts';
import { npmStartNodeFlags } from './collector-proc.ts';
import { emptyTicks, freePort, sql } from './database.ts';
import type { BenchDatabase } from './database.ts';
import { collectorEnv, emittedTotal, lastIds, perSymbol, streamEnv } from './feed-setup.ts';
import { commitLatency } from './latency.ts';
import type { LatencyResult } from './latency.ts';
import { startNode } from './node-proc.ts';
import type { NodeProcess } from './node-proc.ts';
import { cpuMicros, cpuSplit, machineCores, machineTicks, peakRssBytes, rssBytes, threadCpuMicros } from './proc.ts';
import { mb } from './stats.ts';

export type ClientKind = 'floor' | 'tardis' | 'collector';

export const CLIENT_SCRIPTS: Record<ClientKind, string> = {
  floor: 'dist/bench/bare-client.js',
  tardis: 'dist/bench/tardis-client.js',
  collector: 'dist/src/main.js',
};

export interface CurveOptions {
  readonly sim: ExchangeSimulator;
  readonly db: BenchDatabase;
  readonly scratch: string;
  readonly rates: readonly number[];
  readonly clients: readonly ClientKind[];
  /** Rounds over every (rate, client); the report takes medians. */
  readonly repeat: number;
  readonly warmupSeconds: (rate: number) => number;
  readonly windowSeconds: (rate: number) => number;
  /** Extra node flags for the collector (e.g. V8 heap flags to try). */
  readonly collectorFlags: readonly string[];
  /** Extra settings for the collector (A/B runs). */
  readonly collectorEnv?: Readonly<Record<string, string>>;
  /** Write a `--cpu-prof` profile of every collector run here. */
  readonly profileDir: string | null;
  /** Where tardis-dev is installed (bench/lib/peers.ts); null leaves the tardis client out. */
  readonly tardisDir: string | null;
  /** The database records commit timestamps: measure send → commit latency of the collector's windows. */
  readonly commitTimestamps: boolean;
  say(msg: string): void;
  /** Called right after each run, while the simulator's tape still holds the window's trades. */
  onRun?(run: ClientRun): void;
}

/** The emitted trade-id range of a window, per `exchange:symbol` (the COPY floor rebuilds those rows). */
export interface TapeWindow {
  readonly from: number;
  readonly to: number;
  readonly firstIds: Map<string, number>;
  readonly lastIds: Map<string, number>;
}

export interface ClientRun {
  readonly client: ClientKind;
  readonly rate: number;
  readonly round: number;
  readonly seconds: number;
  readonly emittedPerSec: number;
  /** The denominator: trades emitted in the window (floor, tardis) or rows of the window stored (collector). */
  readonly ticks: number;
  /** Trades the simulator emitted during the window. */
  readonly emitted: number;
  /** What the client handled of them: trades it counted (floor, tardis), rows it stored (collector). */
  readonly received: number;
  readonly cpuUs: number;
  readonly usPerTick: number;
  readonly cores: number;
  readonly rssMaxMb: number;
  /** VmHWM at the end: the peak since the process started. */
  readonly rssPeakMb: number;
  /** Cores the whole machine kept busy during the window (this client, the simulator, PostgreSQL, everyone else). */
  readonly machineCores: number;
  /** Share of the window's CPU spent on the process's main thread (the rest: GC and compiler workers, libuv). */
  readonly mainThreadShare: number;
  readonly latency?: LatencyResult;
  readonly window?: TapeWindow;
}

export interface IdleRun {
  readonly seconds: number;
  readonly cpuUs: number;
  readonly cores: number;
  readonly rssMaxMb: number;
  readonly rssEndMb: number;
  readonly machineCores: number;
}

/** Runs every client at every rate, `repeat` rounds, low rates first. */
export async function runCurve(o: CurveOptions): Promise<ClientRun[]> {
  const runs: ClientRun[] = [];
  for (let round = 1; round <= o.repeat; round++) {
    for (const rate of o.rates) {
      for (const client of o.clients) {
        if (client === 'tardis' && o.tardisDir === null) continue;
        const run = await runClient(o, client, rate, round);
        o.say(`  ${client} at ${rate}/s: ${run.usPerTick.toFixed(2)} µs/tick, ${(run.cores * 100).toFixed(1)}% of a core, RSS max ${run.rssMaxMb} MB` +
          (run.received < 0.98 * run.emitted ? ` (handled only ${run.received} of the ${run.emitted} trades of the window)` : ''));
        runs.push(run);
        o.onRun?.(run);
      }
    }
  }
  return runs;
}

async function runClient(o: CurveOptions, client: ClientKind, rate: number, round: number): Promise<ClientRun> {
  const seconds = o.windowSeconds(rate);
  o.say(`curve: ${client} at ${rate} ticks/s (round ${round}): warm-up ${o.warmupSeconds(rate)} s, window ${seconds} s`);
  o.sim.setRate(perSymbol(rate));
  const proc = await startClient(o, client, `${client}-${rate}-${round}`);
  try {
    await sleep(o.warmupSeconds(rate) * 1000);
    const firstIds = lastIds(o.sim);
    const e0 = emittedTotal(o.sim);
    const m0 = machineTicks();
    const cpu0 = cpuMicros(proc.pid);
    const threads0 = threadCpuMicros(proc.pid);
    const split0 = cpuSplit(proc.pid);
    const from = Date.now();
    const rss: number[] = [];
    while (Date.now() - from < seconds * 1000) {
      await sleep(Math.min(500, Math.max(1, from + seconds * 1000 - Date.now())));
      rss.push(rssBytes(proc.pid));
    }
    const cpu1 = cpuMicros(proc.pid);
    const threads = threadDelta(threads0, threadCpuMicros(proc.pid));
    const split1 = cpuSplit(proc.pid);
    const to = Date.now();
    o.say(`  CPU by thread: ${[...threads.byName].filter(([, us]) => us > 0).sort((a, b) => b[1] - a[1]).map(([n, us]) => `${n} ${Math.round(us / 1000)} ms`).join(', ')}; ` +
      `user ${Math.round((split1.userUs - split0.userUs) / 1000)} ms, system ${Math.round((split1.sysUs - split0.sysUs) / 1000)} ms, ` +
      `${Math.round((split1.switches - split0.switches) / ((to - from) / 1000))} context switches/s`);
    const m1 = machineTicks();
    const e1 = emittedTotal(o.sim);
    const window: TapeWindow = { from, to, firstIds, lastIds: lastIds(o.sim) };
    const peak = peakRssBytes(proc.pid);
    const span = (to - from) / 1000;
    const cpuUs = cpu1 - cpu0;
    let ticks = e1 - e0;
    let received: number;
    let latency: LatencyResult | undefined;
    if (client === 'collector') {
      ticks = await storedInWindow(o.db.url, from, to, ticks);
      received = ticks;
      if (o.commitTimestamps) latency = await commitLatency(o.db.url, from, to);
    } else {
      await waitFor(() => Number(proc.last()?.at ?? 0) >= to, 5_000, 'a report after the window');
      received = Math.round(receivedAt(proc, to) - receivedAt(proc, from));
    }
    return {
      client,
      rate,
      round,
      seconds: span,
      emittedPerSec: (e1 - e0) / span,
      emitted: e1 - e0,
      ticks,
      received,
      cpuUs,
      usPerTick: cpuUs / ticks,
      cores: cpuUs / 1e6 / span,
      rssMaxMb: mb(Math.max(...rss)),
      rssPeakMb: mb(peak),
      machineCores: machineCores(m0, m1, span),
      mainThreadShare: threads.total > 0 ? (threads.byName.get('main') ?? 0) / threads.total : NaN,
      ...(latency ? { latency } : {}),
      ...(client === 'collector' ? { window } : {}),
    };
  } finally {
    await stopClient(proc, client);
  }
}

/** CPU per thread name over a window (threads that started in it count from 0), and its total. */
function threadDelta(before: Map<string, number>, after: Map<string, number>): { byName: Map<string, number>; total: number } {
  const byName = new Map<string, number>();
  let total = 0;
  for (const [name, us] of after) {
    const d = us - (before.get(name) ?? 0);
    byName.set(name, d);
    total += d;
  }
  return { byName, total };
}

/** How long an idle collector runs before its window (see runIdle). */
export const IDLE_SETTLE_MS = 30_000;

/** The collector at rate 0 (heartbeats only): CPU and RSS of a fresh process once its sockets are live. */
export async function runIdle(o: CurveOptions, seconds: number): Promise<IdleRun> {
  o.say(`idle: the collector with no trades (heartbeats only) for ${seconds} s`);
  o.sim.setRate(0);
  const proc = await startClient(o, 'collector', 'idle');
  try {
    // Past the start's own work (compiling, first checks of the monitor, archiver and maintenance): the idle a
    // months-long service sits in. With 5 s it measured 0.58% of a core where the steady state was 0.30%.
    await sleep(IDLE_SETTLE_MS);
    const m0 = machineTicks();
    const cpu0 = cpuMicros(proc.pid);
    const from = Date.now();
    const rss: number[] = [];
    while (Date.now() - from < seconds * 1000) {
      await sleep(1000);
      rss.push(rssBytes(proc.pid));
    }
    const cpuUs = cpuMicros(proc.pid) - cpu0;
    const span = (Date.now() - from) / 1000;
    const machine = machineCores(m0, machineTicks(), span);
    return { seconds: span, cpuUs, cores: cpuUs / 1e6 / span, rssMaxMb: mb(Math.max(...rss)), rssEndMb: mb(rss[rss.length - 1]!), machineCores: machine };
  } finally {
    await stopClient(proc, 'collector');
  }
}

async function startClient(o: CurveOptions, client: ClientKind, tag: string): Promise<NodeProcess> {
  const script = CLIENT_SCRIPTS[client];
  if (client === 'floor') {
    const p = startNode(script, streamEnv(o.sim));
    await p.waitForLine((l) => Number(l.trades ?? 0) > 0 || o.sim.rate === 0, 30_000, 'trades flowing');
    return p;
  }
  if (client === 'tardis') {
    const p = startNode(script, {
      ...streamEnv(o.sim),
      TARDIS_DEV_DIR: o.tardisDir!,
      // tardis-dev's own overrides of its exchange URLs; it asks Binance for microsecond timestamps.
      WSS_URL_BINANCE: `${o.sim.binanceWsUrl}/stream?timeUnit=microsecond`,
      WSS_URL_OKEX: `${o.sim.okxWsUrl}/ws/v5/business`,
    });
    await p.waitForLine((l) => Number(l.trades ?? 0) > 0, 30_000, 'trades flowing');
    return p;
  }
  // Every collector run starts from an empty table, so no run inserts into a bigger index than another.
  await emptyTicks(o.db.url);
  const flags = [...npmStartNodeFlags(), ...o.collectorFlags];
  if (o.profileDir) flags.push('--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=collector-${tag}.cpuprofile`);
  const dir = join(o.scratch, tag);
  const p = startNode(script, {
    ...collectorEnv(o.sim, o.db.url),
    METRICS_PORT: String(await freePort()),
    PID_FILE: join(dir, 'collector.pid'),
    SPILL_DIR: join(dir, 'spill'),
    ...o.collectorEnv,
  }, flags);
  await p.waitForLine((l) => l.msg === 'collector started', 90_000, 'collector started');
  await waitFor(() => p.lines.filter((l) => l.msg === 'connection state' && l.to === 'live').length >= 2, 30_000, 'both connections live');
  return p;
}

async function stopClient(proc: NodeProcess, client: ClientKind): Promise<void> {
  const e = await proc.stop();
  if (client === 'collector' && e.code !== 0) {
    const last = proc.lines.slice(-8).map((l) => JSON.stringify(l).slice(0, 400));
    throw new Error(`collector exited with code ${e.code} signal ${e.signal} on SIGTERM; its last lines:\n${last.join('\n')}\nstderr: ${proc.stderr.slice(-5).join('\n')}`);
  }
}

/** The client's trade count at time `t`, interpolated between its once-a-second reports. */
function receivedAt(proc: NodeProcess, t: number): number {
  const reports = proc.lines.filter((l) => typeof l.at === 'number' && typeof l.trades === 'number') as Array<{ at: number; trades: number }>;
  const after = reports.findIndex((r) => r.at >= t);
  if (after <= 0) return reports[Math.max(0, after)]?.trades ?? 0;
  const a = reports[after - 1]!;
  const b = reports[after]!;
  return a.trades + ((b.trades - a.trades) * (t - a.at)) / Math.max(1, b.at - a.at);
}

/**
 * Rows whose send time falls in the window: once all `emitted` are in, or when the count has not grown for 5 s
 * (a collector behind its feed may still be writing the window, or journaling it, after the window ended).
 */
async function storedInWindow(url: string, from: number, to: number, emitted: number): Promise<number> {
  const count = async () =>
    Number((await sql<{ n: string }>(url, 'select count(*) as n from ticks where trade_time >= to_timestamp($1::double precision / 1000) and trade_time < to_timestamp($2::double precision / 1000)', [from, to]))[0]!.n);
  let last = -1;
  let still = 0;
  const deadline = Date.now() + 60_000;
  for (;;) {
    await sleep(500);
    const n = await count();
    still = n === last ? still + 1 : 0;
    if (n >= emitted || still >= 10 || Date.now() > deadline) return n;
    last = n;
  }
}

export interface CurvePoint {
  readonly client: ClientKind;
  readonly rate: number;
  readonly runs: number;
  readonly usPerTick: number;
  /** Lowest and highest µs/tick over the rounds. */
  readonly usRange: readonly [number, number];
  readonly cores: number;
  readonly rssMaxMb: number;
  readonly emittedPerSec: number;
  readonly receivedShare: number;
  readonly machineCores: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Medians over the rounds, per client and rate. */
export function summarize(runs: readonly ClientRun[]): CurvePoint[] {
  const groups = new Map<string, ClientRun[]>();
  for (const r of runs) {
    const k = `${r.client}:${r.rate}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((g) => ({
    client: g[0]!.client,
    rate: g[0]!.rate,
    runs: g.length,
    usPerTick: median(g.map((r) => r.usPerTick)),
    usRange: [Math.min(...g.map((r) => r.usPerTick)), Math.max(...g.map((r) => r.usPerTick))] as const,
    cores: median(g.map((r) => r.cores)),
    rssMaxMb: Math.round(median(g.map((r) => r.rssMaxMb)) * 10) / 10,
    emittedPerSec: median(g.map((r) => r.emittedPerSec)),
    receivedShare: median(g.map((r) => r.received / r.emitted)),
    machineCores: median(g.map((r) => r.machineCores)),
  }));
}
