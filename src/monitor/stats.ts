/**
 * The stats line: one JSON object per interval built from the stage snapshots and the resource census. Snapshots
 * hold cumulative counters; this tracker keeps the previous ones and reports per-interval deltas and rates.
 */
import { LIVENESS_REASONS, RECONNECT_REASONS, REJECT_KINDS } from '../snapshots.ts';
import type {
  ConnectionSnapshot, ConnectionStateName, GapsSnapshot, LivenessReason, PipelineSnapshot, PoolSnapshot, ReconnectReason, RejectKind,
} from '../snapshots.ts';
import type { FdType, ProcessCensus, TcpState } from './resources.ts';

export interface ConnectionStats {
  readonly exchange: string;
  readonly connId: string;
  readonly state: ConnectionStateName;
  /** ms the current socket has been live; 0 while not live. */
  readonly uptimeMs: number;
  readonly connects: number;
  readonly reconnects: {
    readonly total: number;
    readonly interval: number;
    readonly byReason: Readonly<Record<ReconnectReason, number>>;
    readonly intervalByReason: Readonly<Record<ReconnectReason, number>>;
  };
  readonly closeCodes: Readonly<Record<string, number>>;
  readonly lastBackoffMs: number;
  /** Frames and ticks in this interval; the *Total fields are since start. */
  readonly frames: number;
  readonly ticks: number;
  readonly framesTotal: number;
  readonly ticksTotal: number;
  /** Rejected frames by kind in this interval, and since start. */
  readonly rejected: Readonly<Record<RejectKind, number>>;
  readonly rejectedTotal: Readonly<Record<RejectKind, number>>;
  /** Why it is not live (null while live). */
  readonly cause: string | null;
  /** Dead sockets detected by a missed liveness deadline, since start and in this interval. */
  readonly detections: { readonly total: Readonly<Record<LivenessReason, number>>; readonly interval: Readonly<Record<LivenessReason, number>> };
  readonly resubscribed: number;
  readonly refusedSymbols: readonly string[];
}

/** The pipeline snapshot's figures the stats line carries as they are. */
type PipelineCounts = Pick<
  PipelineSnapshot,
  'ticksReceived' | 'ticksStored' | 'ticksDuplicate' | 'ticksRejected' | 'bufferDepth' | 'bufferMax' | 'journalBytes' | 'journalTicks' | 'writeErrors' | 'backpressure'
  | 'ticksInMemory' | 'ticksAwaitingJournal'
>;

export interface PipelineStats extends PipelineCounts {
  /** Live trades whose id was stored with other values (the stored row kept), and genuinely new ids below the last. */
  readonly ticksConflicting: number;
  readonly ticksOutOfOrder: number;
  readonly ticksReceivedPerSec: number;
  readonly ticksStoredPerSec: number;
  /** Batches written in this interval, and since start. */
  readonly batches: number;
  readonly batchesTotal: number;
  readonly batchLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** ISO time (the snapshot has ms epoch). */
  readonly lastWriteOkAt: string | null;
}

export interface ProcessStats {
  /** Absent where /proc is missing. */
  readonly fds?: Readonly<Record<FdType | 'total', number>>;
  readonly tcp?: Readonly<Partial<Record<TcpState, number>>>;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly eventLoopDelayP99Ms: number;
}

export interface StatsLine {
  readonly at: string;
  /** Length of the interval these deltas cover. */
  readonly intervalMs: number;
  readonly connections: readonly ConnectionStats[];
  readonly pipeline?: PipelineStats;
  readonly pool?: PoolSnapshot;
  readonly gaps?: GapsSnapshot;
  readonly process: ProcessStats;
  /** Kinds (with subject) of the alarms active when the line was taken. */
  readonly alarms: readonly string[];
}

export interface StatsInput {
  readonly connections: readonly ConnectionSnapshot[];
  readonly pipeline?: PipelineSnapshot | undefined;
  readonly pool?: PoolSnapshot | undefined;
  readonly gaps?: GapsSnapshot | undefined;
  readonly census: ProcessCensus;
  readonly eventLoopDelayP99Ms: number;
  readonly alarms: readonly string[];
}

function delta(now: number, before: number | undefined): number {
  // A counter that went backwards belongs to a replaced source: everything it holds is new.
  if (before === undefined || now < before) return now;
  return now - before;
}

function deltaRecord<K extends string>(keys: readonly K[], now: Readonly<Record<K, number>>, before?: Readonly<Record<K, number>>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of keys) out[k] = delta(now[k] ?? 0, before?.[k]);
  return out;
}

const NO_DETECTIONS: Readonly<Record<LivenessReason, number>> = { heartbeat: 0, silence: 0 };

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export class StatsTracker {
  #prevConnections = new Map<string, ConnectionSnapshot>();
  #prevPipeline: PipelineSnapshot | undefined;
  #prevAt: number;

  constructor(startedAt = Date.now()) {
    this.#prevAt = startedAt;
  }

  /** Builds the line for the interval ending `now` and makes `now` the start of the next one. */
  sample(input: StatsInput, now = Date.now()): StatsLine {
    const intervalMs = Math.max(0, now - this.#prevAt);
    const line: StatsLine = {
      at: new Date(now).toISOString(),
      intervalMs,
      connections: input.connections.map((c) => this.#connection(c, now)),
      ...(input.pipeline ? { pipeline: this.#pipeline(input.pipeline, intervalMs) } : {}),
      ...(input.pool ? { pool: { ...input.pool } } : {}),
      ...(input.gaps ? { gaps: { ...input.gaps } } : {}),
      process: processStats(input),
      alarms: [...input.alarms],
    };
    this.#prevAt = now;
    this.#prevConnections = new Map(input.connections.map((c) => [`${c.exchange}/${c.connId}`, c]));
    this.#prevPipeline = input.pipeline;
    return line;
  }

  #connection(c: ConnectionSnapshot, now: number): ConnectionStats {
    const prev = this.#prevConnections.get(`${c.exchange}/${c.connId}`);
    return {
      exchange: c.exchange,
      connId: c.connId,
      state: c.state,
      uptimeMs: c.liveSince === null ? 0 : Math.max(0, now - c.liveSince),
      connects: c.connects,
      reconnects: {
        total: c.reconnects,
        interval: delta(c.reconnects, prev?.reconnects),
        byReason: { ...c.reconnectsByReason },
        intervalByReason: deltaRecord(RECONNECT_REASONS, c.reconnectsByReason, prev?.reconnectsByReason),
      },
      closeCodes: { ...c.closeCodes },
      lastBackoffMs: c.lastBackoffMs,
      frames: delta(c.frames, prev?.frames),
      ticks: delta(c.ticks, prev?.ticks),
      framesTotal: c.frames,
      ticksTotal: c.ticks,
      rejected: deltaRecord(REJECT_KINDS, c.rejected, prev?.rejected),
      rejectedTotal: { ...c.rejected },
      cause: c.cause ?? null,
      detections: {
        total: deltaRecord(LIVENESS_REASONS, c.detections ?? NO_DETECTIONS),
        interval: deltaRecord(LIVENESS_REASONS, c.detections ?? NO_DETECTIONS, prev?.detections),
      },
      resubscribed: c.resubscribed ?? 0,
      refusedSymbols: [...(c.refusedSymbols ?? [])],
    };
  }

  #pipeline(p: PipelineSnapshot, intervalMs: number): PipelineStats {
    const prev = this.#prevPipeline;
    const perSec = (now: number, before: number | undefined) => (intervalMs > 0 ? round((delta(now, before) * 1000) / intervalMs) : 0);
    return {
      ticksReceivedPerSec: perSec(p.ticksReceived, prev?.ticksReceived),
      ticksStoredPerSec: perSec(p.ticksStored, prev?.ticksStored),
      ticksReceived: p.ticksReceived,
      ticksStored: p.ticksStored,
      ticksDuplicate: p.ticksDuplicate,
      ticksRejected: p.ticksRejected,
      bufferDepth: p.bufferDepth,
      bufferMax: p.bufferMax,
      journalBytes: p.journalBytes,
      journalTicks: p.journalTicks,
      batches: delta(p.batches, prev?.batches),
      batchesTotal: p.batches,
      batchLatencyMs: { p50: round(p.batchLatencyMsP50), p99: round(p.batchLatencyMsP99), max: round(p.batchLatencyMsMax) },
      writeErrors: p.writeErrors,
      lastWriteOkAt: p.lastWriteOkAt === null ? null : new Date(p.lastWriteOkAt).toISOString(),
      backpressure: p.backpressure,
      ticksInMemory: p.ticksInMemory,
      ticksAwaitingJournal: p.ticksAwaitingJournal,
      ticksConflicting: p.ticksConflicting ?? 0,
      ticksOutOfOrder: p.ticksOutOfOrder ?? 0,
    };
  }
}

function processStats(input: StatsInput): ProcessStats {
  const { census } = input;
  const base = { rssBytes: census.rssBytes, heapUsedBytes: census.heapUsedBytes, eventLoopDelayP99Ms: round(input.eventLoopDelayP99Ms) };
  if (!census.fds || !census.tcp) return base;
  const tcp: Partial<Record<TcpState, number>> = {};
  for (const [state, n] of Object.entries(census.tcp.byState) as Array<[TcpState, number]>) if (n > 0 || state !== 'UNKNOWN') tcp[state] = n;
  return { fds: { total: census.fds.total, ...census.fds.byType }, tcp, ...base };
}

/**
 * The exit line (`collector stopped`): the stats line's shapes (ISO times, rounded latencies, the same pipeline and
 * connection fields) over the whole run, plus when it started, how long it ran and the reconnect totals.
 */
export interface ExitSummary {
  readonly startedAt: string;
  readonly stoppedAt: string;
  readonly uptimeMs: number;
  readonly reconnects: { readonly total: number; readonly byReason: Readonly<Record<ReconnectReason, number>> };
  readonly connections: ReadonlyArray<Pick<ConnectionStats, 'exchange' | 'connId' | 'state' | 'connects' | 'framesTotal' | 'ticksTotal' | 'rejectedTotal'> & { readonly reconnects: number }>;
  readonly pipeline?: PipelineStats;
  readonly pool?: PoolSnapshot;
  readonly gaps?: GapsSnapshot;
}

export function exitSummary(input: Omit<StatsInput, 'census' | 'eventLoopDelayP99Ms' | 'alarms'>, startedAt: number, now = Date.now()): ExitSummary {
  const census: ProcessCensus = { procAvailable: false, fds: null, tcp: null, rssBytes: 0, heapUsedBytes: 0 };
  const whole = new StatsTracker(startedAt).sample({ ...input, census, eventLoopDelayP99Ms: 0, alarms: [] }, now);
  const byReason = Object.fromEntries(RECONNECT_REASONS.map((r) => [r, 0])) as Record<ReconnectReason, number>;
  for (const c of input.connections) for (const r of RECONNECT_REASONS) byReason[r] += c.reconnectsByReason[r];
  return {
    startedAt: new Date(startedAt).toISOString(),
    stoppedAt: whole.at,
    uptimeMs: whole.intervalMs,
    reconnects: { total: input.connections.reduce((sum, c) => sum + c.reconnects, 0), byReason },
    connections: whole.connections.map((c) => ({
      exchange: c.exchange, connId: c.connId, state: c.state, connects: c.connects, reconnects: c.reconnects.total,
      framesTotal: c.framesTotal, ticksTotal: c.ticksTotal, rejectedTotal: c.rejectedTotal,
    })),
    ...(whole.pipeline ? { pipeline: whole.pipeline } : {}),
    ...(whole.pool ? { pool: whole.pool } : {}),
    ...(whole.gaps ? { gaps: whole.gaps } : {}),
  };
}
