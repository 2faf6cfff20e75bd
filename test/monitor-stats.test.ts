/**
 * The stats line: every field is there and the counts are right after faults injected through the simulator; the
 * stats file and the diagnose command show the same. And logging hygiene: no password reaches a log line, even when
 * the database refuses the connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { diagnose } from '../src/cli/diagnose.ts';
import type { Connection } from '../src/connection/connection.ts';
import { createConnections } from '../src/exchanges/connections.ts';
import { startMonitor } from '../src/monitor/monitor.ts';
import type { Monitor, StatsLine } from '../src/monitor/monitor.ts';
import { procAvailable } from '../src/monitor/resources.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { RECONNECT_REASONS, REJECT_KINDS } from '../src/snapshots.ts';
import type { PipelineSnapshot } from '../src/snapshots.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { simConfig } from './helpers/collector-env.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait-for.ts';
import { FAST_FAULTS_SIM } from './helpers/sim-options.ts';

const tmp = mkdtempSync(join(tmpdir(), 'monitor-stats-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const SIM_OPTIONS = FAST_FAULTS_SIM;

function keysOf(o: object): string[] {
  return Object.keys(o).sort();
}

describe('the stats line against the simulator', () => {
  let sim: ExchangeSimulator;
  let connections: Connection[];
  let monitor: Monitor;
  const sink = new CollectingSink();
  const logs = captureLogs('info');
  const pidFile = join(tmp, 'run', 'collector.pid');

  const pipeline = (): PipelineSnapshot => ({
    ticksReceived: sink.ticks.length, ticksStored: sink.ticks.length, ticksDuplicate: 0, ticksRejected: 0, bufferDepth: 0, bufferMax: 1000,
    journalBytes: 0, journalTicks: 0, batches: Math.floor(sink.ticks.length / 10), batchLatencyMsP50: 1, batchLatencyMsP99: 3, batchLatencyMsMax: 4,
    lastWriteOkAt: Date.now(), writeErrors: 0, backpressure: false, ticksInMemory: 0, ticksAwaitingJournal: 0,
  });

  before(async () => {
    sim = await ExchangeSimulator.start(SIM_OPTIONS);
    const cfg = simConfig(sim, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT', METRICS_PORT: '0', STATS_INTERVAL_MS: '3600000', PID_FILE: pidFile });
    connections = createConnections(cfg, sink, logs.logger);
    monitor = await startMonitor({
      config: cfg,
      logger: logs.logger,
      providers: {
        connections: () => connections.map((c) => c.snapshot()),
        pipeline,
        pool: () => ({ total: 2, idle: 2, waiting: 0, expired: 1, resets: 0, errors: 0, max: 3 }),
        gaps: () => ({ detected: 0, open: 0, filled: 0, unfillable: 0, backfilledTicks: 0, restRequests: 0, restErrors: 0, restRateLimited: 0 }),
      },
    });
    for (const c of connections) c.start();
    await waitFor(() => connections.every((c) => c.state === 'live'), 8000, 'connections live');
  });

  after(async () => {
    await Promise.all(connections.map((c) => c.stop()));
    await monitor.stop();
    await sim.stop();
  });

  const byExchange = (line: StatsLine, exchange: string) => line.connections.find((c) => c.exchange === exchange)!;
  const conn = (exchange: string) => connections.find((c) => c.exchange === exchange)!;

  test('every field, and the counts of the interval after injected faults', async () => {
    const line0 = monitor.sampleNow();
    const binance = conn('binance');
    const okx = conn('okx');

    sim.inject('binance', 'close1001');
    await waitFor(() => binance.snapshot().reconnects === byExchange(line0, 'binance').reconnects.total + 1 && binance.state === 'live', 8000, 'binance close1001 -> live');
    sim.inject('binance', 'reset');
    await waitFor(() => binance.snapshot().reconnects === byExchange(line0, 'binance').reconnects.total + 2 && binance.state === 'live', 8000, 'binance reset -> live');
    sim.inject('okx', 'malformed');
    await waitFor(() => okx.snapshot().rejected.invalid_json > byExchange(line0, 'okx').rejectedTotal.invalid_json, 5000, 'okx malformed counted');
    sim.inject('okx', 'close1001');
    await waitFor(() => okx.snapshot().reconnects === byExchange(line0, 'okx').reconnects.total + 1 && okx.state === 'live', 8000, 'okx close1001 -> live');
    await waitFor(() => okx.snapshot().ticks > byExchange(line0, 'okx').ticksTotal + 3, 5000, 'okx ticks after the reconnect');

    const line = monitor.sampleNow();
    assert.deepEqual(keysOf(line), ['alarms', 'at', 'connections', 'gaps', 'intervalMs', 'pipeline', 'pool', 'process']);
    assert.ok(line.intervalMs > 0);
    for (const c of line.connections) {
      assert.deepEqual(keysOf(c), ['cause', 'closeCodes', 'connId', 'connects', 'detections', 'exchange', 'frames', 'framesTotal', 'lastBackoffMs', 'reconnects', 'refusedSymbols', 'rejected', 'rejectedTotal', 'resubscribed', 'state', 'ticks', 'ticksTotal', 'uptimeMs']);
      assert.deepEqual(keysOf(c.reconnects), ['byReason', 'interval', 'intervalByReason', 'total']);
      assert.deepEqual(keysOf(c.reconnects.byReason), [...RECONNECT_REASONS].sort());
      assert.deepEqual(keysOf(c.rejected), [...REJECT_KINDS].sort());
      assert.equal(c.state, 'live');
      assert.ok(c.uptimeMs >= 0 && c.lastBackoffMs >= 0);
      const prev = byExchange(line0, c.exchange);
      assert.equal(c.frames, c.framesTotal - prev.framesTotal, 'frames are per interval');
      assert.equal(c.ticks, c.ticksTotal - prev.ticksTotal, 'ticks are per interval');
      for (const k of REJECT_KINDS) assert.equal(c.rejected[k], c.rejectedTotal[k] - prev.rejectedTotal[k], `rejected ${k} per interval`);
    }
    const b = byExchange(line, 'binance');
    assert.equal(b.reconnects.interval, 2);
    // close1001 is a close; whether a TCP reset surfaces as 'error' or 'close' is the connection layer's call.
    assert.ok(b.reconnects.intervalByReason.close >= 1);
    assert.equal(b.reconnects.intervalByReason.close + b.reconnects.intervalByReason.error, 2);
    assert.equal(Object.values(b.reconnects.intervalByReason).reduce((x, y) => x + y, 0), 2, 'by reason adds up to the interval');
    assert.equal(b.reconnects.total, binance.snapshot().reconnects);
    assert.ok((b.closeCodes['1001'] ?? 0) >= 1);
    const o = byExchange(line, 'okx');
    assert.equal(o.reconnects.interval, 1);
    assert.equal(o.reconnects.intervalByReason.close, 1);
    for (const k of ['invalid_json', 'binary', 'missing_field', 'bad_type', 'bad_number', 'unknown_event'] as const) assert.ok(o.rejected[k] >= 1, `okx rejected ${k} in the interval`);
    assert.equal(b.rejected.invalid_json, 0, 'binance had no malformed frames');
    assert.ok(o.ticks > 0 && b.ticks > 0);

    const p = line.pipeline!;
    for (const k of ['ticksReceivedPerSec', 'ticksStoredPerSec', 'bufferDepth', 'journalBytes', 'journalTicks', 'batches', 'batchesTotal', 'batchLatencyMs', 'lastWriteOkAt']) assert.ok(k in p, `pipeline.${k}`);
    assert.ok(p.ticksReceivedPerSec > 0);
    assert.deepEqual(keysOf(line.pool!), ['errors', 'expired', 'idle', 'max', 'resets', 'total', 'waiting']);
    assert.ok('detected' in line.gaps! && 'open' in line.gaps!);
    const proc = line.process;
    assert.ok(proc.rssBytes > 0 && proc.heapUsedBytes > 0 && typeof proc.eventLoopDelayP99Ms === 'number');
    if (procAvailable()) {
      assert.deepEqual(keysOf(proc.fds!), ['file', 'other', 'pipe', 'socket', 'total']);
      assert.ok(proc.tcp!.ESTABLISHED! >= 2, 'the two exchange sockets');
      for (const s of ['ESTABLISHED', 'CLOSE_WAIT', 'TIME_WAIT', 'FIN_WAIT1', 'FIN_WAIT2', 'LAST_ACK', 'CLOSING', 'SYN_SENT', 'LISTEN']) assert.ok(s in proc.tcp!, s);
    }

    const logged = logs.find((l) => l.msg === 'stats').at(-1)!;
    assert.equal(logged.level, 30);
    assert.equal(logged.at, line.at);
    assert.deepEqual(logged.connections, JSON.parse(JSON.stringify(line.connections)));
    await waitFor(() => (JSON.parse(readFileSync(`${pidFile}.stats.json`, 'utf8')) as { at: string }).at === line.at, 2000, 'stats file holds the last line');
  });

  test('diagnose reads this process through the pid file and prints the tables', { skip: procAvailable() ? false : 'no /proc' }, () => {
    let out = '';
    let err = '';
    const code = diagnose(['--pid-file', pidFile], { out: (s) => (out += s), err: (s) => (err += s) });
    assert.equal(code, 0, err);
    assert.match(out, new RegExp(`pid ${process.pid} \\(from ${pidFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
    for (const heading of ['File descriptors', 'TCP sockets by state', 'CLOSE_WAIT sockets (0): none', 'Last stats line', 'Connections']) assert.ok(out.includes(heading), heading);
    const okxPort = new URL(sim.okxWsUrl).port;
    assert.match(out, new RegExp(`ESTABLISHED\\s+127\\.0\\.0\\.1:${okxPort}`), 'the OKX socket with its remote endpoint');
    assert.match(out, /binance\s+binance-0\s+live/);

    const bad = { out: () => {}, err: (s: string) => (err = s) };
    assert.equal(diagnose(['--bogus'], bad), 2);
    assert.match(err, /Unknown option '--bogus'/);
    assert.equal(diagnose(['--pid', 'abc'], bad), 2);
    assert.equal(diagnose(['--pid-file', join(tmp, 'missing.pid')], bad), 2);
    assert.match(err, /no pid file at/);
  });
});

/** A server that asks for a cleartext password, then refuses it the way PostgreSQL does (28P01). */
async function refusingPostgres(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let startup = true;
    s.on('data', () => {
      if (startup) {
        startup = false;
        s.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // AuthenticationCleartextPassword
        return;
      }
      const fields = ['SFATAL', 'VFATAL', 'C28P01', 'Mpassword authentication failed for user "collector"'];
      const body = Buffer.concat([...fields.map((f) => Buffer.from(`${f}\0`)), Buffer.from([0])]);
      const head = Buffer.alloc(5);
      head.write('E', 0);
      head.writeInt32BE(body.length + 4, 1);
      s.end(Buffer.concat([head, body]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }) };
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('logging hygiene', () => {
  const SECRET = 'S3cr3t-Pa55w0rd';

  test('no password in any log line when the database refuses the connection', async () => {
    const logs = captureLogs('debug');
    const log = logs.logger.child({ component: 'storage' });
    const refusing = await refusingPostgres();
    const urls = [
      `postgres://collector:${SECRET}@127.0.0.1:${await closedPort()}/ticks`, // connection refused (RST)
      `postgresql://collector:${SECRET}@127.0.0.1:${refusing.port}/ticks?sslmode=disable`, // password refused (28P01)
    ];
    try {
      for (const url of urls) {
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
        const err = await client.connect().then(() => null, (e: unknown) => e as Error);
        assert.ok(err, `connecting to ${url.replace(SECRET, '***')} fails`);
        await client.end().catch(() => {});
        log.error({ err }, 'database connection failed');
        log.error({ err, databaseUrl: url }, `database at ${url} refused the connection`);
        log.error({ err: new Error(`cannot connect to ${url}`, { cause: err }) }, 'startup failed');
        log.warn({ params: (client as unknown as { connectionParameters: unknown }).connectionParameters }, 'client parameters');
        log.info({ config: { storage: { databaseUrl: url, password: SECRET } } }, 'configuration');
        log.error(err, 'error as the first argument');

        const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 3000, max: 1 });
        pool.on('error', (e) => log.error({ err: e }, 'pool error'));
        const poolErr = await pool.query('select 1').then(() => null, (e: unknown) => e as Error);
        assert.ok(poolErr);
        log.error({ err: poolErr, pool: { options: (pool as unknown as { options: unknown }).options } }, 'pool query failed');
        await pool.end();
      }
      assert.ok(logs.raw.length >= 14);
      assert.ok(logs.raw.some((l) => l.includes('28P01') || l.includes('password authentication failed')), 'the refusal itself is logged');
      const leaks = logs.raw.filter((l) => l.includes(SECRET) || l.includes(encodeURIComponent(SECRET)));
      assert.deepEqual(leaks, [], 'no log line carries the password');
      assert.ok(logs.raw.some((l) => l.includes('collector:***@127.0.0.1')), 'URLs stay readable with the password masked');
    } finally {
      await refusing.close();
    }
  });

  test('an Error logged alone keeps a password in its message out of "msg"', () => {
    const logs = captureLogs('info');
    logs.logger.error(new Error(`cannot connect to postgres://collector:${SECRET}@db:5432/ticks`));
    assert.ok(!logs.raw.some((l) => l.includes(SECRET)), logs.raw.join('\n'));
  });

  test('secrets nested deeper than four levels are redacted', () => {
    const logs = captureLogs('info');
    logs.logger.info({ a: { b: { c: { d: { e: { f: `postgres://u:${SECRET}@h/db` } } } } } }, 'deep');
    assert.ok(!logs.raw.some((l) => l.includes(SECRET)), logs.raw.join('\n'));
  });

  test('an Error under any key is serialized (not {}) and redacted', () => {
    const logs = captureLogs('info');
    logs.logger.warn({ cause: new Error(`password=${SECRET} rejected`) }, 'nested error');
    const line = logs.find((l) => l.msg === 'nested error')[0] as { cause: { message: string } };
    assert.match(line.cause.message, /password=\*\*\* rejected/);
    assert.ok(!logs.raw.some((l) => l.includes(SECRET)));
  });
});
