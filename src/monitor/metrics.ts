/**
 * Prometheus metrics on a registry of our own (never prom-client's global one), so several monitors can live in one
 * process. Every value is read from the snapshots at scrape time through collect() callbacks; cumulative snapshot
 * counters are turned into prom-client counters by delta, so they stay monotonic. Labels are bounded sets only:
 * exchange, conn, reason, kind, state, type.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { droppedLogLines, pendingLogBytes } from '../log-sink.ts';
import { LIVENESS_REASONS, RECONNECT_REASONS, REJECT_KINDS } from '../snapshots.ts';
import type { ConnectionSnapshot, ConnectionStateName } from '../snapshots.ts';
import { ALARM_KINDS } from './alarms.ts';
import type { Alarm } from './alarms.ts';
import type { MonitorProviders } from './monitor.ts';
import { FD_TYPES, LOOP_DELAY_RESOLUTION_MS, TCP_STATES } from './resources.ts';
import type { ProcessCensus } from './resources.ts';

export interface MetricsSources {
  readonly providers: MonitorProviders;
  readonly alarms: () => readonly Alarm[];
  /** A fresh census (null where /proc is missing). */
  readonly census: () => ProcessCensus | null;
}

const CONNECTION_STATES: readonly ConnectionStateName[] = ['idle', 'connecting', 'subscribing', 'live', 'rotating', 'closing', 'backoff', 'stopping', 'stopped'];

type Labels = Record<string, string>;

/**
 * Every metric name starts with this, prom-client's default process metrics included, so the collector's series
 * never clash with another exporter's `process_*` or `nodejs_*` on the same Prometheus. The helpers below add it:
 * metrics are declared with their short name (`reconnects_total` is exported as `market_collector_reconnects_total`).
 */
export const METRIC_PREFIX = 'market_collector_';

/** Feeds a cumulative value into a Counter by delta; a value that went backwards is a restarted source. */
class CounterFeed<L extends string> {
  readonly counter: Counter<L>;
  readonly #last = new Map<string, number>();

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[], collect: (feed: CounterFeed<L>) => void) {
    const feed = this;
    this.counter = new Counter<L>({ name: METRIC_PREFIX + name, help, labelNames: [...labelNames], registers: [registry], collect() { collect(feed); } });
  }

  set(labels: Labels & Partial<Record<L, string>>, value: number): void {
    const key = JSON.stringify(labels);
    const prev = this.#last.get(key);
    const d = prev === undefined ? value : value >= prev ? value - prev : value;
    this.#last.set(key, value);
    if (d > 0) this.counter.inc(labels as Partial<Record<L, string>>, d);
    else if (prev === undefined) this.counter.inc(labels as Partial<Record<L, string>>, 0); // show the series at 0
  }
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], collect: (g: Gauge<L>) => void): Gauge<L> {
  return new Gauge<L>({ name: METRIC_PREFIX + name, help, labelNames: [...labelNames], registers: [registry], collect() { this.reset(); collect(this); } });
}

const connLabels = (c: ConnectionSnapshot) => ({ exchange: c.exchange, conn: c.connId });

export function createMetrics(src: MetricsSources): Registry {
  const registry = new Registry();
  // prom-client's own loop-lag histogram samples every 10 ms by default: another 100 timer wake-ups a second.
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX, eventLoopMonitoringPrecision: LOOP_DELAY_RESOLUTION_MS });
  connectionMetrics(registry, src);
  // Families of a stage the composition root did not provide are left out rather than shown as zeros.
  if (src.providers.pipeline) pipelineMetrics(registry, src);
  if (src.providers.pool) poolMetrics(registry, src);
  if (src.providers.gaps) gapsMetrics(registry, src);
  processMetrics(registry, src);
  new CounterFeed(registry, 'log_lines_dropped_total', 'Log lines dropped because the log destination failed or did not keep up', [], (f) => f.set({}, droppedLogLines()));
  gauge(registry, 'log_pending_bytes', 'Log bytes waiting for a slow log reader (dropped beyond 1 MiB)', [], (g) => g.set(pendingLogBytes()));
  gauge(registry, 'alarms_active', 'Active alarms by kind', ['kind'], (g) => {
    const active = src.alarms();
    for (const kind of ALARM_KINDS) g.set({ kind }, active.filter((a) => a.kind === kind).length);
  });
  return registry;
}

function connectionMetrics(registry: Registry, src: MetricsSources): void {
  const conns = () => src.providers.connections();
  new CounterFeed(registry, 'reconnects_total', 'Reconnects by connection and reason', ['exchange', 'conn', 'reason'], (f) => {
    for (const c of conns()) for (const reason of RECONNECT_REASONS) f.set({ ...connLabels(c), reason }, c.reconnectsByReason[reason]);
  });
  new CounterFeed(registry, 'liveness_detections_total', 'Dead sockets found by a missed liveness deadline (heartbeat: our ping unanswered; silence: nothing at all)', ['exchange', 'conn', 'reason'], (f) => {
    for (const c of conns()) for (const reason of LIVENESS_REASONS) f.set({ ...connLabels(c), reason }, c.detections?.[reason] ?? 0);
  });
  new CounterFeed(registry, 'resubscribed_streams_total', "Streams subscribed again because the exchange's subscription list lacked them", ['exchange', 'conn'], (f) => {
    for (const c of conns()) f.set(connLabels(c), c.resubscribed ?? 0);
  });
  new CounterFeed(registry, 'connects_total', 'Sockets opened by connection', ['exchange', 'conn'], (f) => {
    for (const c of conns()) f.set(connLabels(c), c.connects);
  });
  new CounterFeed(registry, 'frames_total', 'Frames received by connection', ['exchange', 'conn'], (f) => {
    for (const c of conns()) f.set(connLabels(c), c.frames);
  });
  new CounterFeed(registry, 'ticks_total', 'Ticks emitted by connection', ['exchange', 'conn'], (f) => {
    for (const c of conns()) f.set(connLabels(c), c.ticks);
  });
  new CounterFeed(registry, 'rejected_total', 'Rejected frames by connection and kind', ['exchange', 'conn', 'kind'], (f) => {
    for (const c of conns()) for (const kind of REJECT_KINDS) f.set({ ...connLabels(c), kind }, c.rejected[kind]);
  });
  gauge(registry, 'connection_state', '1 for the current state of each connection, 0 for the others', ['exchange', 'conn', 'state'], (g) => {
    for (const c of conns()) for (const state of CONNECTION_STATES) g.set({ ...connLabels(c), state }, c.state === state ? 1 : 0);
  });
  gauge(registry, 'connection_uptime_seconds', 'Seconds the current socket has been live (0 while not live)', ['exchange', 'conn'], (g) => {
    const now = Date.now();
    for (const c of conns()) g.set(connLabels(c), c.liveSince === null ? 0 : (now - c.liveSince) / 1000);
  });
  gauge(registry, 'connection_last_backoff_seconds', 'The last backoff delay chosen', ['exchange', 'conn'], (g) => {
    for (const c of conns()) g.set(connLabels(c), c.lastBackoffMs / 1000);
  });
}

function pipelineMetrics(registry: Registry, src: MetricsSources): void {
  const p = () => src.providers.pipeline?.();
  const counters: Array<[string, string, (s: NonNullable<ReturnType<typeof p>>) => number]> = [
    ['pipeline_ticks_received_total', 'Ticks handed to the pipeline', (s) => s.ticksReceived],
    ['pipeline_ticks_stored_total', 'Ticks written to the database', (s) => s.ticksStored],
    ['pipeline_ticks_duplicate_total', 'Ticks a batch insert found already present', (s) => s.ticksDuplicate],
    ['pipeline_ticks_rejected_total', 'Ticks the pipeline refused', (s) => s.ticksRejected],
    ['pipeline_batches_total', 'Batches written', (s) => s.batches],
    ['pipeline_write_errors_total', 'Failed database writes', (s) => s.writeErrors],
    ['ticks_conflicting_total', 'Live trades whose id was already stored with other values (the stored row is kept)', (s) => s.ticksConflicting ?? 0],
    ['ticks_out_of_order_total', 'Live trades below the last id seen for their symbol, not stored before (stored)', (s) => s.ticksOutOfOrder ?? 0],
  ];
  for (const [name, help, read] of counters) {
    new CounterFeed(registry, name, help, [], (f) => {
      const s = p();
      if (s) f.set({}, read(s));
    });
  }
  const gauges: Array<[string, string, (s: NonNullable<ReturnType<typeof p>>) => number | null]> = [
    ['pipeline_buffer_depth', 'Ticks buffered in memory', (s) => s.bufferDepth],
    ['pipeline_buffer_max', 'Buffer capacity', (s) => s.bufferMax],
    ['pipeline_journal_bytes', 'Bytes in the spill journal', (s) => s.journalBytes],
    ['pipeline_journal_ticks', 'Ticks in the spill journal', (s) => s.journalTicks],
    ['pipeline_batch_latency_p50_seconds', 'Batch write latency p50', (s) => s.batchLatencyMsP50 / 1000],
    ['pipeline_batch_latency_p99_seconds', 'Batch write latency p99', (s) => s.batchLatencyMsP99 / 1000],
    ['pipeline_batch_latency_max_seconds', 'Batch write latency max', (s) => s.batchLatencyMsMax / 1000],
    ['pipeline_last_write_ok_timestamp_seconds', 'Unix time of the last successful write (0: none yet)', (s) => (s.lastWriteOkAt === null ? null : s.lastWriteOkAt / 1000)],
    ['pipeline_backpressure', '1 while producers are asked to pause', (s) => (s.backpressure ? 1 : 0)],
    ['pipeline_ticks_in_memory', 'Ticks held only in memory (buffer, batch in flight, waiting for the journal)', (s) => s.ticksInMemory],
    ['pipeline_ticks_awaiting_journal', 'Ticks waiting for the spill journal (held in memory while it is unwritable)', (s) => s.ticksAwaitingJournal],
  ];
  for (const [name, help, read] of gauges) {
    gauge(registry, name, help, [], (g) => {
      const s = p();
      const v = s ? read(s) : null;
      if (v !== null) g.set(v);
    });
  }
}

function poolMetrics(registry: Registry, src: MetricsSources): void {
  const p = () => src.providers.pool?.();
  for (const [name, help, key] of [
    ['pool_clients_total', 'Pool clients (connecting included)', 'total'],
    ['pool_clients_idle', 'Idle pool clients', 'idle'],
    ['pool_clients_waiting', 'Checkouts waiting for a client', 'waiting'],
    ['pool_clients_max', 'Pool size limit', 'max'],
  ] as const) {
    gauge(registry, name, help, [], (g) => {
      const s = p();
      if (s) g.set(s[key]);
    });
  }
  for (const [name, help, key] of [
    ['pool_expired_total', 'Clients closed for idling, age or uses', 'expired'],
    ['pool_resets_total', 'Periodic pool resets', 'resets'],
    ['pool_errors_total', 'Pool and client errors', 'errors'],
  ] as const) {
    new CounterFeed(registry, name, help, [], (f) => {
      const s = p();
      if (s) f.set({}, s[key]);
    });
  }
}

function gapsMetrics(registry: Registry, src: MetricsSources): void {
  const g = () => src.providers.gaps?.();
  for (const [name, help, key] of [
    ['gaps_detected_total', 'Trade-id gaps detected', 'detected'],
    ['gaps_filled_total', 'Gaps filled by backfill', 'filled'],
    ['backfill_ticks_total', 'Ticks fetched by backfill', 'backfilledTicks'],
    ['backfill_rest_requests_total', 'REST requests made by backfill', 'restRequests'],
    ['backfill_rest_errors_total', 'REST requests that failed', 'restErrors'],
    ['backfill_rest_rate_limited_total', 'REST requests rate limited', 'restRateLimited'],
  ] as const) {
    new CounterFeed(registry, name, help, [], (f) => {
      const s = g();
      if (s) f.set({}, s[key]);
    });
  }
  for (const [name, help, key] of [
    ['gaps_open', 'Gaps being fetched or waiting for a retry', 'open'],
    ['gaps_unfillable', 'Gaps recorded as not fillable now', 'unfillable'],
  ] as const) {
    gauge(registry, name, help, [], (m) => {
      const s = g();
      if (s) m.set(s[key]);
    });
  }
}

function processMetrics(registry: Registry, src: MetricsSources): void {
  // One census per scrape, shared by both gauges (the first collect() of a scrape takes it).
  let cached: { at: number; census: ProcessCensus | null } | null = null;
  const census = () => {
    const now = Date.now();
    if (!cached || now - cached.at > 250) cached = { at: now, census: src.census() };
    return cached.census;
  };
  gauge(registry, 'process_fds', 'Open file descriptors by type (from /proc/self/fd)', ['type'], (g) => {
    const c = census();
    if (c?.fds) for (const type of FD_TYPES) g.set({ type }, c.fds.byType[type]);
  });
  gauge(registry, 'process_tcp_sockets', "This process's TCP sockets by state (from /proc/net/tcp{,6})", ['state'], (g) => {
    const c = census();
    if (c?.tcp) for (const state of TCP_STATES) g.set({ state }, c.tcp.byState[state]);
  });
}
