/**
 * The operations endpoint: /metrics is valid Prometheus text on a registry of its own, counters stay monotonic,
 * /healthz answers, /readyz follows the connections and the database, and stop() closes everything. The second part
 * runs real connections against the simulator: reconnect counters after an injected fault, /readyz 503 while an
 * exchange refuses and 200 once it recovers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import type { Connection } from '../src/connection/connection.ts';
import { createConnections } from '../src/exchanges/connections.ts';
import { startMonitor } from '../src/monitor/monitor.ts';
import type { Monitor } from '../src/monitor/monitor.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { RECONNECT_REASONS, REJECT_KINDS } from '../src/snapshots.ts';
import type { ConnectionSnapshot, PipelineSnapshot, ReconnectReason, RejectKind } from '../src/snapshots.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { simConfig } from './helpers/collector-env.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait-for.ts';
import { FAST_FAULTS_SIM } from './helpers/sim-options.ts';

// ---------------------------------------------------------------------------------------------------------------
// A small Prometheus text-format (0.0.4) parser and validator.

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  get(name: string, labels?: Record<string, string>): number | undefined;
  all(name: string): Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any case (prom-client prints "Nan"). */
function parseValue(s: string, where: string): number {
  if (/^\+?inf$/i.test(s)) return Infinity;
  if (/^-inf$/i.test(s)) return -Infinity;
  if (/^nan$/i.test(s)) return NaN;
  assert.match(s, /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/, `value in ${where}`);
  return Number(s);
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    assert.ok(eq > i, `label name in ${where}`);
    const name = text.slice(i, eq).trim();
    assert.match(name, LABEL_NAME, `label name in ${where}`);
    assert.equal(text[eq + 1], '"', `quoted label value in ${where}`);
    let j = eq + 2;
    let value = '';
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j];
        assert.ok(next === '\\' || next === '"' || next === 'n', `escape in ${where}`);
        value += next === 'n' ? '\n' : next;
      } else value += text[j];
    }
    assert.equal(text[j], '"', `closed label value in ${where}`);
    assert.ok(!(name in labels), `duplicate label ${name} in ${where}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i += 1;
  }
  return labels;
}

function familyOf(name: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count', '_total']) {
    if (name.endsWith(suffix) && types.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return undefined;
}

/** Every family the collector exports carries this prefix; the accessors below take the short name. */
const PREFIX = 'market_collector_';

function unprefixed(name: string, where: string): string {
  assert.ok(name.startsWith(PREFIX), `metric name without the ${PREFIX} prefix: ${where}`);
  return name.slice(PREFIX.length);
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const [n, line] of text.split('\n').entries()) {
    const where = `line ${n + 1}: ${line}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a comment
      assert.match(m[2]!, METRIC_NAME, where);
      const family = unprefixed(m[2]!, where);
      if (m[1] === 'TYPE') {
        assert.ok(TYPES.has(m[3]!), `type in ${where}`);
        assert.ok(!types.has(family), `one TYPE per family: ${where}`);
        types.set(family, m[3]!);
      } else {
        assert.ok(!helps.has(family), `one HELP per family: ${where}`);
        helps.add(family);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    assert.ok(m, `sample syntax: ${where}`);
    const name = unprefixed(m[1]!, where);
    const labels = m[2] ? parseLabels(m[2], where) : {};
    assert.ok(familyOf(name, types), `TYPE declared before ${where}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(key), `duplicate series ${where}`);
    seen.add(key);
    samples.push({ name, labels, value: parseValue(m[3]!, where) });
  }
  const matches = (s: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    types,
    samples,
    get: (name, labels = {}) => samples.find((s) => s.name === name && matches(s, labels))?.value,
    all: (name) => samples.filter((s) => s.name === name),
  };
}

// ---------------------------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function get(port: number, path: string, agent?: http.Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, ...(agent ? { agent } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

async function scrape(port: number): Promise<Exposition> {
  const r = await get(port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

function fakeConnection(over: Partial<ConnectionSnapshot> = {}): ConnectionSnapshot {
  const byReason = Object.fromEntries(RECONNECT_REASONS.map((r) => [r, 0])) as Record<ReconnectReason, number>;
  const rejected = Object.fromEntries(REJECT_KINDS.map((k) => [k, 0])) as Record<RejectKind, number>;
  return {
    exchange: 'binance', connId: 'binance-0', state: 'live', liveSince: Date.now() - 5000, connects: 1, reconnects: 0,
    reconnectsByReason: byReason, closeCodes: {}, lastBackoffMs: 0, frames: 0, ticks: 0, rejected, symbols: ['BTCUSDT'], ...over,
  };
}

function fakePipeline(over: Partial<PipelineSnapshot> = {}): PipelineSnapshot {
  return {
    ticksReceived: 100, ticksStored: 90, ticksDuplicate: 1, ticksRejected: 0, bufferDepth: 10, bufferMax: 1000, journalBytes: 0, journalTicks: 0,
    batches: 9, batchLatencyMsP50: 2, batchLatencyMsP99: 8, batchLatencyMsMax: 12, lastWriteOkAt: Date.now(), writeErrors: 0, backpressure: false,
    ticksInMemory: 10, ticksAwaitingJournal: 0, ...over,
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'monitor-http-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function config(env: Record<string, string> = {}) {
  return loadConfig({ METRICS_PORT: '0', PID_FILE: join(tmp, 'collector.pid'), STATS_INTERVAL_MS: '3600000', ...env });
}

describe('ops endpoint with fake providers', () => {
  let conns: ConnectionSnapshot[];
  let pipeline: PipelineSnapshot | undefined;
  let monitor: Monitor;

  before(async () => {
    conns = [fakeConnection(), fakeConnection({ exchange: 'okx', connId: 'okx-0', symbols: ['BTC-USDT'] })];
    pipeline = fakePipeline();
    monitor = await startMonitor({
      config: config(),
      logger: captureLogs('info').logger,
      providers: {
        connections: () => conns,
        pipeline: () => pipeline!,
        pool: () => ({ total: 2, idle: 1, waiting: 0, expired: 3, resets: 1, errors: 0, max: 3 }),
        gaps: () => ({ detected: 2, open: 0, filled: 2, unfillable: 0, backfilledTicks: 40, restRequests: 3, restErrors: 0, restRateLimited: 0 }),
      },
      pid: false,
      ephemeralPort: true,
    });
  });
  after(() => monitor.stop());

  test('METRICS_PORT=0 disables the endpoint', async () => {
    const m = await startMonitor({ config: config(), logger: captureLogs().logger, providers: { connections: () => [] }, pid: false });
    assert.equal(m.port, null);
    await m.stop();
  });

  test('/healthz is 200; unknown paths 404', async () => {
    assert.equal((await get(monitor.port!, '/healthz')).status, 200);
    assert.equal((await get(monitor.port!, '/nope')).status, 404);
  });

  test('/metrics parses as Prometheus text and carries every family with bounded labels', async () => {
    const m = await scrape(monitor.port!);
    assert.equal(m.types.get('reconnects_total'), 'counter');
    assert.equal(m.get('reconnects_total', { exchange: 'binance', conn: 'binance-0', reason: 'close' }), 0);
    assert.equal(m.all('reconnects_total').length, 2 * RECONNECT_REASONS.length);
    assert.equal(m.get('connection_state', { conn: 'okx-0', state: 'live' }), 1);
    assert.equal(m.get('connection_state', { conn: 'okx-0', state: 'backoff' }), 0);
    assert.equal(m.all('rejected_total').length, 2 * REJECT_KINDS.length);
    for (const name of ['frames_total', 'ticks_total', 'connects_total']) assert.equal(m.types.get(name), 'counter', name);
    assert.equal(m.get('pipeline_ticks_stored_total'), 90);
    assert.equal(m.get('pipeline_buffer_depth'), 10);
    assert.equal(m.get('pool_clients_idle'), 1);
    assert.equal(m.get('pool_expired_total'), 3);
    assert.equal(m.get('gaps_detected_total'), 2);
    assert.ok((m.get('process_fds', { type: 'socket' }) ?? 0) >= 1, 'our own listening socket');
    assert.ok((m.get('process_tcp_sockets', { state: 'LISTEN' }) ?? 0) >= 1, 'our own listening socket in LISTEN');
    assert.ok((m.get('process_open_fds') ?? 0) > 0, 'default metrics on our registry, prefixed too (market_collector_process_open_fds)');
    assert.ok(m.get('nodejs_eventloop_lag_p99_seconds') !== undefined, 'event-loop lag from the default metrics');
    const labelNames = new Set(m.samples.flatMap((s) => Object.keys(s.labels)));
    for (const l of labelNames) assert.ok(['exchange', 'conn', 'reason', 'kind', 'state', 'type', 'le', 'space', 'version', 'major', 'minor', 'patch'].includes(l), `bounded label ${l}`);
  });

  test('counters follow the snapshots by delta and never go backwards', async () => {
    const [b, o] = conns;
    conns = [fakeConnection({ ...b, reconnects: 3, reconnectsByReason: { ...b!.reconnectsByReason, error: 3 }, frames: 50 }), o!];
    let m = await scrape(monitor.port!);
    assert.equal(m.get('reconnects_total', { conn: 'binance-0', reason: 'error' }), 3);
    assert.equal(m.get('frames_total', { conn: 'binance-0' }), 50);
    // The connection object was replaced: its counters restart from 0 (then 1). The exported counter keeps counting.
    conns = [fakeConnection({ reconnects: 1, reconnectsByReason: { ...b!.reconnectsByReason, error: 1 }, frames: 5 }), o!];
    m = await scrape(monitor.port!);
    assert.equal(m.get('reconnects_total', { conn: 'binance-0', reason: 'error' }), 4);
    assert.equal(m.get('frames_total', { conn: 'binance-0' }), 55);
  });

  test('two monitors in one process have separate registries', async () => {
    const other = await startMonitor({ config: config(), logger: captureLogs().logger, providers: { connections: () => [fakeConnection({ connId: 'binance-9' })] }, pid: false, ephemeralPort: true });
    try {
      const m = await scrape(other.port!);
      assert.equal(m.get('connection_state', { conn: 'binance-9', state: 'live' }), 1);
      assert.equal(m.get('connection_state', { conn: 'okx-0', state: 'live' }), undefined);
    } finally {
      await other.stop();
    }
  });

  test('/readyz: 200 when every connection is live and the database is writing; 503 listing what is not', async () => {
    conns = [fakeConnection(), fakeConnection({ exchange: 'okx', connId: 'okx-0' })];
    pipeline = fakePipeline();
    let r = await get(monitor.port!, '/readyz');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(monitor.ready(), { ready: true, reasons: [] });

    conns = [fakeConnection({ state: 'rotating' }), fakeConnection({ exchange: 'okx', connId: 'okx-0', state: 'backoff', liveSince: null })];
    r = await get(monitor.port!, '/readyz');
    assert.equal(r.status, 503);
    const body = JSON.parse(r.body) as { ready: boolean; reasons: string[]; connections: unknown[] };
    assert.equal(body.ready, false);
    assert.deepEqual(body.reasons, ['okx/okx-0 is backoff'], 'rotating counts as live');

    conns = [fakeConnection(), fakeConnection({ exchange: 'okx', connId: 'okx-0' })];
    pipeline = fakePipeline({ lastWriteOkAt: Date.now() - 120_000, bufferDepth: 500, journalTicks: 20 });
    r = await get(monitor.port!, '/readyz');
    assert.equal(r.status, 503);
    assert.match((JSON.parse(r.body) as { reasons: string[] }).reasons[0]!, /^database: last successful database write \d+ ms ago/);

    pipeline = fakePipeline({ lastWriteOkAt: null, ticksReceived: 0, ticksStored: 0, bufferDepth: 0 });
    assert.equal((await get(monitor.port!, '/readyz')).status, 200, 'no tick yet: no write is due');
    pipeline = fakePipeline({ lastWriteOkAt: Date.now() - 120_000, bufferDepth: 0 });
    assert.equal((await get(monitor.port!, '/readyz')).status, 200, 'quiet market, nothing pending');
    pipeline = fakePipeline({ lastWriteOkAt: null, bufferDepth: 3 });
    assert.equal((await get(monitor.port!, '/readyz')).status, 503, 'ticks waiting and never written');
    pipeline = fakePipeline();
  });

  test('no connection at all is not ready; without a pipeline the database is not judged', async () => {
    const m = await startMonitor({ config: config(), logger: captureLogs().logger, providers: { connections: () => [] }, pid: false });
    try {
      assert.deepEqual(m.ready(), { ready: false, reasons: ['no exchange connection is configured'] });
    } finally {
      await m.stop();
    }
  });
});

describe('lifecycle', () => {
  test('stop() closes the server fully (keep-alive sockets too) and removes the pid file and the stats file', async () => {
    const pidFile = join(tmp, 'nested', 'dir', 'collector.pid');
    const m = await startMonitor({ config: config({ PID_FILE: pidFile }), logger: captureLogs().logger, providers: { connections: () => [fakeConnection()] }, ephemeralPort: true });
    const port = m.port!;
    assert.equal(readFileSync(pidFile, 'utf8').trim(), String(process.pid), 'pid file written, dir created');
    const line = m.sampleNow();
    const statsFile = `${pidFile}.stats.json`;
    await waitFor(() => existsSync(statsFile), 2000, 'stats file');
    const stored = JSON.parse(readFileSync(statsFile, 'utf8')) as Record<string, unknown>;
    assert.equal(stored.pid, process.pid);
    assert.equal(stored.at, line.at);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await get(port, '/healthz', agent)).status, 200);
    await m.stop();
    await m.stop(); // idempotent
    assert.equal(existsSync(pidFile), false, 'pid file removed');
    assert.equal(existsSync(statsFile), false, 'stats file removed (the exit line carries the last figures)');
    await assert.rejects(new Promise((resolve, reject) => net.connect(port, '127.0.0.1').on('connect', resolve).on('error', reject)), { code: 'ECONNREFUSED' });
    agent.destroy();
  });
});

const SIM_OPTIONS = FAST_FAULTS_SIM;

describe('ops endpoint against the simulator', () => {
  let sim: ExchangeSimulator;
  let connections: Connection[];
  let monitor: Monitor;

  before(async () => {
    sim = await ExchangeSimulator.start(SIM_OPTIONS);
    const cfg = simConfig(sim, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT', METRICS_PORT: '0', STATS_INTERVAL_MS: '3600000', PID_FILE: join(tmp, 'sim.pid') });
    const logger = captureLogs('info').logger;
    connections = createConnections(cfg, new CollectingSink(), logger);
    monitor = await startMonitor({ config: cfg, logger, providers: { connections: () => connections.map((c) => c.snapshot()) }, pid: false, ephemeralPort: true });
    for (const c of connections) c.start();
    await waitFor(() => connections.every((c) => c.state === 'live'), 8000, 'connections live');
  });

  after(async () => {
    await Promise.all(connections.map((c) => c.stop()));
    await monitor.stop();
    await sim.stop();
  });

  test('/metrics carries the reconnect counter of an injected fault', async () => {
    const before = await scrape(monitor.port!);
    const closesBefore = before.get('reconnects_total', { exchange: 'binance', conn: 'binance-0', reason: 'close' }) ?? 0;
    const okxSum = (m: Exposition) => m.all('reconnects_total').filter((s) => s.labels.conn === 'okx-0').reduce((n, s) => n + s.value, 0);
    const okxBefore = okxSum(before);
    const binance = connections.find((c) => c.exchange === 'binance')!;
    const okx = connections.find((c) => c.exchange === 'okx')!;
    const okxReconnects = okx.snapshot().reconnects;
    sim.inject('binance', 'close1001');
    sim.inject('okx', 'reset');
    await waitFor(() => binance.snapshot().reconnectsByReason.close > 0 && okx.snapshot().reconnects > okxReconnects, 8000, 'reconnects counted');
    await waitFor(() => binance.state === 'live' && okx.state === 'live', 8000, 'live again');
    // Under load the new sockets may not have delivered a trade yet: the counters asserted below need one each.
    await waitFor(() => binance.snapshot().frames > 0 && okx.snapshot().ticks > 0, 8000, 'frames and ticks after the reconnect');
    const m = await scrape(monitor.port!);
    const closes = m.get('reconnects_total', { exchange: 'binance', conn: 'binance-0', reason: 'close' })!;
    assert.equal(closes, binance.snapshot().reconnectsByReason.close);
    assert.ok(closes > closesBefore, `close reconnects ${closesBefore} -> ${closes}`);
    // The reset's reason label is the connection layer's call; the per-reason series must add up to its total.
    assert.equal(okxSum(m), okx.snapshot().reconnects);
    assert.ok(okxSum(m) > okxBefore, `okx reconnects ${okxBefore} -> ${okxSum(m)}`);
    assert.ok(m.get('frames_total', { exchange: 'binance', conn: 'binance-0' })! > 0, 'binance frames counted');
    assert.ok(m.get('ticks_total', { exchange: 'okx', conn: 'okx-0' })! > 0, 'okx ticks counted');
    assert.equal(m.get('connection_state', { conn: 'binance-0', state: 'live' }), 1);
    assert.ok(m.get('process_tcp_sockets', { state: 'ESTABLISHED' })! >= 2, 'our two exchange sockets');
  });

  test('/readyz is 503 while an exchange refuses upgrades and 200 again once it recovers', async () => {
    await waitFor(async () => (await get(monitor.port!, '/readyz')).status === 200, 8000, 'ready');
    sim.inject('okx', 'refuse503', { count: 10 });
    sim.inject('okx', 'close1001');
    const down = await waitFor(async () => {
      const r = await get(monitor.port!, '/readyz');
      return r.status === 503 ? r : null;
    }, 5000, '/readyz 503');
    const body = JSON.parse(down.body) as { reasons: string[] };
    assert.ok(body.reasons.some((r) => r.startsWith('okx/okx-0 is ')), body.reasons.join('; '));
    assert.ok(!body.reasons.some((r) => r.startsWith('binance/')), 'binance stays live');
    await waitFor(async () => (await get(monitor.port!, '/readyz')).status === 200, 15_000, '/readyz 200 after recovery');
    // Each of the 10 refused upgrades ends an attempt: as `refused`, or as `handshake_timeout` when the machine is so
    // loaded that the client's handshake timer fires before the 503 arrives.
    const byReason = connections.find((c) => c.exchange === 'okx')!.snapshot().reconnectsByReason;
    assert.ok(byReason.refused + byReason.handshake_timeout >= 10, `refused upgrades counted: ${JSON.stringify(byReason)}`);
  });
});
