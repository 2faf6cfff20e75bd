/**
 * The monitor: every STATS_INTERVAL_MS one "stats" log line (also kept in `<pid file>.stats.json`), alarms checked
 * on a shorter cadence, and the /metrics, /healthz, /readyz endpoint. It only reads snapshots and /proc; it never
 * sits in the data path. Everything it starts (timers, histogram, server, pid file) is undone by stop().
 *
 * Readiness (/readyz, ready()):
 *  - every connection the providers report must be live or rotating; no connection at all is not ready;
 *  - with a pipeline provider, the database must have taken a write within readyDbWindowMs, unless no write is
 *    due: nothing buffered and nothing in the journal (no tick arrived yet, or a quiet market) counts as ready;
 *  - without a pipeline provider (a collector run without storage, tests) the database is not judged.
 * Active alarms are listed in the /readyz body but do not decide readiness.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { ConnectionSnapshot, GapsSnapshot, PipelineSnapshot, PoolSnapshot } from '../snapshots.ts';
import { AlarmEngine, alarmLabel } from './alarms.ts';
import type { Alarm } from './alarms.ts';
import { AtomicFile, removePidFile, statsFileFor, writePidFile } from './files.ts';
import { startOpsServer } from './http.ts';
import type { OpsServer, Readiness } from './http.ts';
import { createMetrics } from './metrics.ts';
import { LOOP_DELAY_RESOLUTION_MS, procAvailable } from './resources.ts';
import { SelfCensus } from './self-census.ts';
import type { ProcessCensus } from './resources.ts';
import { StatsTracker, exitSummary } from './stats.ts';
import type { ExitSummary, StatsLine } from './stats.ts';

export type { Alarm, AlarmKind } from './alarms.ts';
export type { ExitSummary, StatsLine } from './stats.ts';

export interface MonitorProviders {
  connections(): readonly ConnectionSnapshot[];
  pipeline?(): PipelineSnapshot;
  pool?(): PoolSnapshot;
  gaps?(): GapsSnapshot;
}

export interface MonitorOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly providers: MonitorProviders;
  /** Write the pid file and the stats file next to it (default true). */
  readonly pid?: boolean;
  /** Listen on an OS-chosen port instead of METRICS_PORT, even when METRICS_PORT is 0 (tests). */
  readonly ephemeralPort?: boolean;
  /** How often alarms are checked between stats lines; default min(STATS_INTERVAL_MS, 5000). */
  readonly checkIntervalMs?: number;
}

export interface Monitor {
  /** The port /metrics listens on; null when disabled. */
  readonly port: number | null;
  /** Takes a stats line now (logs it, stores it, checks every alarm); the next interval starts from here. */
  sampleNow(): StatsLine;
  activeAlarms(): Alarm[];
  ready(): { ready: boolean; reasons: string[] };
  /** The whole run in the stats line's shapes, with uptime and reconnect totals (the `collector stopped` line). */
  summary(): ExitSummary;
  /** Stops timers and the endpoint, removes the pid file and the stats file. */
  stop(): Promise<void>;
}

const MAX_CHECK_INTERVAL_MS = 5_000;
const TCP_TABLE_MAX_AGE_MS = 15_000;

export async function startMonitor(opts: MonitorOptions): Promise<Monitor> {
  const monitor = new MonitorImpl(opts);
  try {
    await monitor.start();
  } catch (err) {
    await monitor.stop();
    throw err;
  }
  return monitor;
}

class MonitorImpl implements Monitor {
  readonly #opts: MonitorOptions;
  readonly #log: Logger;
  readonly #alarms: AlarmEngine;
  readonly #startedAt = Date.now();
  readonly #tracker = new StatsTracker(this.#startedAt);
  readonly #loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  readonly #procOk = procAvailable();
  readonly #statsFile: AtomicFile | null;
  readonly #pidFile: string | null;
  #server: OpsServer | null = null;
  #timers: NodeJS.Timeout[] = [];
  #stopped: Promise<void> | null = null;
  #censusFailed = false;
  /** TCP tables re-read at least every half CLOSE_WAIT grace (see SelfCensus), at most every 15 s when nothing changes. */
  readonly #selfCensus: SelfCensus;

  constructor(opts: MonitorOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'monitor' });
    const mc = opts.config.monitor;
    this.#alarms = new AlarmEngine({ ...mc, acquireTimeoutMs: opts.config.storage.acquireTimeoutMs }, this.#log);
    this.#pidFile = opts.pid === false ? null : mc.pidFile;
    this.#statsFile = this.#pidFile === null ? null : new AtomicFile(statsFileFor(this.#pidFile));
    this.#selfCensus = new SelfCensus(Math.min(TCP_TABLE_MAX_AGE_MS, mc.closeWaitGraceMs / 2));
  }

  get port(): number | null {
    return this.#server?.port ?? null;
  }

  async start(): Promise<void> {
    const { config } = this.#opts;
    const mc = config.monitor;
    if (!this.#procOk) this.#log.warn('/proc is not available: open FDs and TCP sockets are left out of stats, alarms and metrics');
    this.#loopDelay.enable();
    if (this.#pidFile !== null) {
      const other = writePidFile(this.#pidFile);
      if (other !== null) this.#log.warn({ pidFile: this.#pidFile, otherPid: other }, 'pid file named another live process; replaced it');
    }
    if (mc.metricsPort !== 0 || this.#opts.ephemeralPort) {
      const registry = createMetrics({ providers: this.#opts.providers, alarms: () => this.activeAlarms(), census: () => this.#census() });
      this.#server = await startOpsServer({
        host: mc.metricsHost,
        port: this.#opts.ephemeralPort ? 0 : mc.metricsPort,
        registry,
        readiness: () => this.#readiness(),
        logger: this.#log,
      });
    }
    const checkMs = this.#opts.checkIntervalMs ?? Math.min(config.statsIntervalMs, MAX_CHECK_INTERVAL_MS);
    this.#every(config.statsIntervalMs, () => this.sampleNow());
    if (checkMs < config.statsIntervalMs) this.#every(checkMs, () => this.#check(this.#census()));
    this.#log.info({ port: this.port, host: mc.metricsHost, pidFile: this.#pidFile, statsIntervalMs: config.statsIntervalMs, checkIntervalMs: checkMs }, 'monitor started');
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(() => {
      try {
        fn();
      } catch (err) {
        this.#log.error({ err }, 'monitor tick failed');
      }
    }, ms);
    t.unref();
    this.#timers.push(t);
  }

  sampleNow(): StatsLine {
    const now = Date.now();
    const census = this.#census();
    this.#check(census, now);
    this.#alarms.checkFds(census.fds, now);
    const p = this.#opts.providers;
    const line = this.#tracker.sample(
      {
        connections: p.connections(),
        pipeline: p.pipeline?.(),
        pool: p.pool?.(),
        gaps: p.gaps?.(),
        census,
        eventLoopDelayP99Ms: this.#loopDelayP99() ?? 0,
        alarms: this.#alarms.active().map(alarmLabel),
      },
      now,
    );
    this.#loopDelay.reset();
    this.#log.info(line, 'stats');
    this.#statsFile?.write(`${JSON.stringify({ pid: process.pid, ...line })}\n`).catch((err: unknown) => this.#log.warn({ err, path: this.#statsFile?.path }, 'could not write the stats file'));
    return line;
  }

  activeAlarms(): Alarm[] {
    return this.#alarms.active();
  }

  ready(): { ready: boolean; reasons: string[] } {
    const { ready, reasons } = this.#readiness();
    return { ready, reasons };
  }

  summary(): ExitSummary {
    const p = this.#opts.providers;
    return exitSummary({ connections: p.connections(), pipeline: p.pipeline?.(), pool: p.pool?.(), gaps: p.gaps?.() }, this.#startedAt);
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#loopDelay.disable();
    const server = this.#server;
    this.#server = null;
    await server?.close();
    await this.#statsFile?.settled();
    if (this.#pidFile !== null) {
      try {
        // The stats file describes a running collector (diagnose reads it); the exit line carries the last figures.
        if (removePidFile(this.#pidFile)) this.#statsFile?.remove();
      } catch (err) {
        this.#log.warn({ err, pidFile: this.#pidFile }, 'could not remove the pid file or the stats file');
      }
    }
    this.#log.info('monitor stopped');
  }

  #check(census: ProcessCensus, now = Date.now()): void {
    const p = this.#opts.providers;
    this.#alarms.check({ connections: p.connections(), pipeline: p.pipeline?.(), pool: p.pool?.(), tcp: census.tcp, eventLoopDelayP99Ms: this.#loopDelayP99() }, now);
  }

  #loopDelayP99(): number | null {
    return this.#loopDelay.count > 0 ? this.#loopDelay.percentile(99) / 1e6 : null;
  }

  /** Never throws: with /proc missing or unreadable (e.g. out of FDs) the FD and socket figures are left out. */
  #census(): ProcessCensus {
    if (this.#procOk) {
      try {
        const c = this.#selfCensus.take();
        this.#censusFailed = false;
        return c;
      } catch (err) {
        if (!this.#censusFailed) this.#log.warn({ err }, 'resource census failed; FD and socket figures left out');
        this.#censusFailed = true;
      }
    }
    const mem = process.memoryUsage();
    return { procAvailable: false, fds: null, tcp: null, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
  }

  #readiness(): Readiness & Record<string, unknown> {
    const reasons: string[] = [];
    const conns = this.#opts.providers.connections();
    if (conns.length === 0) reasons.push('no exchange connection is configured');
    for (const c of conns) if (c.state !== 'live' && c.state !== 'rotating') reasons.push(`${c.exchange}/${c.connId} is ${c.state}${c.cause ? `: ${c.cause}` : ''}`);
    const db = this.#dbReadiness();
    if (db.reason) reasons.push(db.reason);
    return {
      ready: reasons.length === 0,
      reasons,
      connections: conns.map((c) => ({ exchange: c.exchange, connId: c.connId, state: c.state })),
      db: db.detail,
      alarms: this.activeAlarms().map((a) => ({ kind: a.kind, subject: a.subject, message: a.message })),
    };
  }

  #dbReadiness(): { reason?: string; detail: unknown } {
    const pipeline = this.#opts.providers.pipeline?.();
    if (!pipeline) return { detail: 'not judged (no pipeline)' };
    const windowMs = this.#opts.config.monitor.readyDbWindowMs;
    const ageMs = pipeline.lastWriteOkAt === null ? null : Date.now() - pipeline.lastWriteOkAt;
    const detail = { lastWriteOkAgoMs: ageMs, windowMs, bufferDepth: pipeline.bufferDepth, journalTicks: pipeline.journalTicks, writeErrors: pipeline.writeErrors };
    if (ageMs !== null && ageMs <= windowMs) return { detail };
    if (pipeline.bufferDepth === 0 && pipeline.journalTicks === 0) return { detail }; // no write is due
    const last = ageMs === null ? 'no successful database write yet' : `last successful database write ${ageMs} ms ago`;
    return { reason: `database: ${last} (window ${windowMs} ms) with ${pipeline.bufferDepth} buffered and ${pipeline.journalTicks} journaled ticks waiting`, detail };
  }
}
