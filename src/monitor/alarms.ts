/**
 * Alarms: conditions that point at a leak or a stall. Each is raised once (warn, msg "alarm", with its kind and the
 * figures that triggered it) and cleared once (info, msg "alarm cleared"). Active alarms feed /readyz, the stats
 * line, /metrics and tests.
 */
import type { MonitorConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { ConnectionSnapshot, PipelineSnapshot, PoolSnapshot } from '../snapshots.ts';
import type { FdCensus, TcpCensus } from './resources.ts';

export type AlarmKind = 'close_wait' | 'fd_threshold' | 'fd_growth' | 'reconnect_storm' | 'pool_waiting' | 'journal_in_use' | 'event_loop_delay';
export const ALARM_KINDS: readonly AlarmKind[] = ['close_wait', 'fd_threshold', 'fd_growth', 'reconnect_storm', 'pool_waiting', 'journal_in_use', 'event_loop_delay'];

export type Figures = Readonly<Record<string, unknown>>;

export interface Alarm {
  readonly kind: AlarmKind;
  /** What it is about when a kind can fire for several things at once (a connection id); otherwise undefined. */
  readonly subject?: string;
  /** ms epoch when it was raised. */
  readonly since: number;
  /** The figures at the last evaluation. */
  readonly figures: Figures;
  readonly message: string;
}

export interface AlarmSettings extends Pick<MonitorConfig, 'closeWaitGraceMs' | 'fdThreshold' | 'fdGrowthIntervals' | 'reconnectsPerMinute' | 'eventLoopDelayMs'> {
  /** How long pool clients may wait before it counts as a stall (config.storage.acquireTimeoutMs). */
  readonly acquireTimeoutMs: number;
}

export interface CheckInput {
  readonly connections: readonly ConnectionSnapshot[];
  readonly pipeline?: PipelineSnapshot | undefined;
  readonly pool?: PoolSnapshot | undefined;
  /** Null where /proc is missing. */
  readonly tcp: TcpCensus | null;
  /** Null when the histogram has no samples yet. */
  readonly eventLoopDelayP99Ms: number | null;
}

interface Firing {
  readonly subject?: string;
  readonly figures: Figures;
  readonly message: string;
}

const RECONNECT_WINDOW_MS = 60_000;

export class AlarmEngine {
  readonly #settings: AlarmSettings;
  readonly #log: Logger;
  readonly #active = new Map<string, Alarm>();
  /** inode -> first time it was seen in CLOSE_WAIT. */
  readonly #closeWaitSince = new Map<number, number>();
  /** Per connection: (time, cumulative reconnects) samples covering the last minute. */
  readonly #reconnectSamples = new Map<string, Array<{ at: number; total: number }>>();
  #poolWaitingSince: number | null = null;
  readonly #fdHistory: number[] = [];

  constructor(settings: AlarmSettings, logger: Logger) {
    this.#settings = settings;
    this.#log = logger;
  }

  active(): Alarm[] {
    return [...this.#active.values()].sort((a, b) => a.since - b.since);
  }

  /** The frequent check: everything except the FD figures, which are judged per stats interval. */
  check(input: CheckInput, now = Date.now()): void {
    if (input.tcp) this.#reconcile('close_wait', this.#closeWait(input.tcp, now), now);
    this.#reconcile('reconnect_storm', this.#reconnectStorm(input.connections, now), now);
    this.#reconcile('pool_waiting', this.#poolWaiting(input.pool, now), now);
    this.#reconcile('journal_in_use', journalInUse(input.pipeline), now);
    if (input.eventLoopDelayP99Ms !== null) this.#reconcile('event_loop_delay', this.#eventLoop(input.eventLoopDelayP99Ms), now);
  }

  /** Once per stats interval: FDs above the threshold, or growing across K consecutive intervals. */
  checkFds(fds: FdCensus | null, now = Date.now()): void {
    if (!fds) return;
    const { fdThreshold, fdGrowthIntervals: k } = this.#settings;
    const over = fds.total > fdThreshold ? [{ figures: { fds: fds.total, threshold: fdThreshold, byType: fds.byType }, message: `${fds.total} open FDs, above ${fdThreshold}` }] : [];
    this.#reconcile('fd_threshold', over, now);
    this.#fdHistory.push(fds.total);
    if (this.#fdHistory.length > k + 1) this.#fdHistory.shift();
    const h = this.#fdHistory;
    const growing = h.length === k + 1 && h.every((v, i) => i === 0 || v > h[i - 1]!);
    const growth = growing
      ? [{ figures: { fds: fds.total, history: [...h], intervals: k, byType: fds.byType }, message: `open FDs grew in each of the last ${k} intervals: ${h.join(' -> ')}` }]
      : [];
    this.#reconcile('fd_growth', growth, now);
  }

  #closeWait(tcp: TcpCensus, now: number): Firing[] {
    const grace = this.#settings.closeWaitGraceMs;
    const current = tcp.sockets.filter((s) => s.state === 'CLOSE_WAIT');
    const seen = new Set(current.map((s) => s.inode));
    for (const inode of this.#closeWaitSince.keys()) if (!seen.has(inode)) this.#closeWaitSince.delete(inode);
    for (const s of current) if (!this.#closeWaitSince.has(s.inode)) this.#closeWaitSince.set(s.inode, now);
    const stuck = current
      .map((s) => ({ inode: s.inode, local: s.local, remote: s.remote, ageMs: now - this.#closeWaitSince.get(s.inode)! }))
      .filter((s) => s.ageMs >= grace);
    if (stuck.length === 0) return [];
    const remotes = [...new Set(stuck.map((s) => s.remote))].slice(0, 5).join(', ');
    return [{ figures: { count: stuck.length, graceMs: grace, sockets: stuck.slice(0, 20) }, message: `${stuck.length} socket(s) in CLOSE_WAIT longer than ${grace} ms (peer closed, we did not): ${remotes}` }];
  }

  #reconnectStorm(connections: readonly ConnectionSnapshot[], now: number): Firing[] {
    const limit = this.#settings.reconnectsPerMinute;
    const out: Firing[] = [];
    const present = new Set<string>();
    for (const c of connections) {
      const key = `${c.exchange}/${c.connId}`;
      present.add(key);
      // Counters start at zero with the process; the first sighting counts from there.
      const samples = this.#reconnectSamples.get(key) ?? [{ at: now, total: 0 }];
      samples.push({ at: now, total: c.reconnects });
      // Keep the newest sample at or before the window start as the base, drop anything older.
      while (samples.length > 1 && samples[1]!.at <= now - RECONNECT_WINDOW_MS) samples.shift();
      this.#reconnectSamples.set(key, samples);
      const base = samples[0]!;
      const inWindow = Math.max(0, c.reconnects - base.total);
      if (inWindow > limit) {
        out.push({
          subject: key,
          figures: { exchange: c.exchange, connId: c.connId, reconnects: inWindow, windowMs: Math.min(RECONNECT_WINDOW_MS, now - base.at), limit, byReason: c.reconnectsByReason },
          message: `${key} reconnected ${inWindow} times within a minute (limit ${limit})`,
        });
      }
    }
    for (const key of this.#reconnectSamples.keys()) if (!present.has(key)) this.#reconnectSamples.delete(key);
    return out;
  }

  #poolWaiting(pool: PoolSnapshot | undefined, now: number): Firing[] {
    if (!pool || pool.waiting === 0) {
      this.#poolWaitingSince = null;
      return [];
    }
    this.#poolWaitingSince ??= now;
    const waitedMs = now - this.#poolWaitingSince;
    const limit = this.#settings.acquireTimeoutMs;
    if (waitedMs < limit) return [];
    return [{ figures: { waiting: pool.waiting, total: pool.total, idle: pool.idle, max: pool.max, waitingForMs: waitedMs, acquireTimeoutMs: limit }, message: `${pool.waiting} pool client(s) waiting for ${waitedMs} ms (acquire timeout ${limit} ms)` }];
  }

  #eventLoop(p99Ms: number): Firing[] {
    const limit = this.#settings.eventLoopDelayMs;
    if (p99Ms <= limit) return [];
    return [{ figures: { p99Ms: Math.round(p99Ms * 100) / 100, thresholdMs: limit }, message: `event-loop delay p99 ${p99Ms.toFixed(1)} ms above ${limit} ms` }];
  }

  /** Raise new firings, refresh the figures of ongoing ones, clear the ones of this kind that stopped firing. */
  #reconcile(kind: AlarmKind, firing: readonly Firing[], now: number): void {
    const keys = new Set<string>();
    for (const f of firing) {
      const key = f.subject === undefined ? kind : `${kind}:${f.subject}`;
      keys.add(key);
      const existing = this.#active.get(key);
      const alarm: Alarm = { kind, ...(f.subject === undefined ? {} : { subject: f.subject }), since: existing?.since ?? now, figures: f.figures, message: f.message };
      this.#active.set(key, alarm);
      if (!existing) this.#log.warn({ kind, subject: f.subject, ...f.figures }, 'alarm');
    }
    for (const [key, alarm] of this.#active) {
      if (alarm.kind !== kind || keys.has(key)) continue;
      this.#active.delete(key);
      this.#log.info({ kind, subject: alarm.subject, activeForMs: now - alarm.since }, 'alarm cleared');
    }
  }
}

function journalInUse(p: PipelineSnapshot | undefined): Firing[] {
  if (!p || (p.journalBytes === 0 && p.journalTicks === 0)) return [];
  return [{ figures: { journalBytes: p.journalBytes, journalTicks: p.journalTicks, writeErrors: p.writeErrors }, message: `spill journal in use: ${p.journalTicks} ticks, ${p.journalBytes} bytes (database writes failing or slow)` }];
}

/** A label for an alarm in lists: `kind` or `kind:subject`. */
export function alarmLabel(a: Alarm): string {
  return a.subject === undefined ? a.kind : `${a.kind}:${a.subject}`;
}
