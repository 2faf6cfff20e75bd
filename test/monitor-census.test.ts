/**
 * The resource census against the real /proc, and the alarms it drives: a socket deliberately left in CLOSE_WAIT,
 * FDs growing across intervals, and a reconnect storm from fake snapshots.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { AlarmEngine } from '../src/monitor/alarms.ts';
import { startMonitor } from '../src/monitor/monitor.ts';
import type { Monitor } from '../src/monitor/monitor.ts';
import { classifyFdTarget, decodeEndpoint, fdCensus, parseProcNetTcp, processCensus, procAvailable, tcpCensus } from '../src/monitor/resources.ts';
import type { TcpCensus } from '../src/monitor/resources.ts';
import { SelfCensus } from '../src/monitor/self-census.ts';
import { RECONNECT_REASONS, REJECT_KINDS } from '../src/snapshots.ts';
import type { ConnectionSnapshot, ReconnectReason, RejectKind } from '../src/snapshots.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait-for.ts';

const skip = procAvailable() ? false : 'no /proc on this system';
const tmp = mkdtempSync(join(tmpdir(), 'monitor-census-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function fakeConnection(over: Partial<ConnectionSnapshot> = {}): ConnectionSnapshot {
  const byReason = Object.fromEntries(RECONNECT_REASONS.map((r) => [r, 0])) as Record<ReconnectReason, number>;
  const rejected = Object.fromEntries(REJECT_KINDS.map((k) => [k, 0])) as Record<RejectKind, number>;
  return {
    exchange: 'binance', connId: 'binance-0', state: 'live', liveSince: Date.now(), connects: 1, reconnects: 0,
    reconnectsByReason: byReason, closeCodes: {}, lastBackoffMs: 0, frames: 0, ticks: 0, rejected, symbols: ['BTCUSDT'], ...over,
  };
}

function config(env: Record<string, string> = {}) {
  return loadConfig({ METRICS_PORT: '0', PID_FILE: join(tmp, 'c.pid'), STATS_INTERVAL_MS: '3600000', ...env });
}

function listen(server: net.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

function connect(port: number, host: string, opts: net.NetConnectOpts = { port, host }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ ...opts, port, host }, () => resolve(s));
    s.once('error', reject);
  });
}

const find = (tcp: TcpCensus, local: string, remote: string) => tcp.sockets.find((s) => s.local === local && s.remote === remote);

describe('parsing', () => {
  test('fd targets are classified by type', () => {
    assert.deepEqual(classifyFdTarget('socket:[12345]'), { type: 'socket', inode: 12345 });
    assert.deepEqual(classifyFdTarget('pipe:[99]'), { type: 'pipe' });
    assert.deepEqual(classifyFdTarget('/dev/null'), { type: 'file' });
    assert.deepEqual(classifyFdTarget('anon_inode:[eventpoll]'), { type: 'other' });
  });

  test('endpoints decode on little- and big-endian hosts, IPv4 and IPv6', () => {
    assert.equal(decodeEndpoint('0100007F:1F90', true), '127.0.0.1:8080');
    assert.equal(decodeEndpoint('7F000001:1F90', false), '127.0.0.1:8080');
    assert.equal(decodeEndpoint('00000000000000000000000001000000:01BB', true), '[::1]:443');
    assert.equal(decodeEndpoint('0000000000000000FFFF00000100007F:0050', true), '[::ffff:127.0.0.1]:80');
    assert.equal(decodeEndpoint('B80D0120000000000000000001000000:0016', true), '[2001:db8::1]:22');
    assert.equal(decodeEndpoint('00000000000000000000000000000000:0000', true), '[::]:0');
  });

  test('a /proc/net/tcp table parses into state, endpoints and inode', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:9C40 0100007F:1F90 08 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1',
      '   2: 0100007F:9C41 0100007F:1F90 06 00000000:00000000 03:00000F2B 00000000     0        0 0 3 0000000000000000',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(text, 4, true), [
      { inode: 1111, state: 'LISTEN', local: '127.0.0.1:8080', remote: '0.0.0.0:0', family: 4 },
      { inode: 2222, state: 'CLOSE_WAIT', local: '127.0.0.1:40000', remote: '127.0.0.1:8080', family: 4 },
      { inode: 0, state: 'TIME_WAIT', local: '127.0.0.1:40001', remote: '127.0.0.1:8080', family: 4 },
    ]);
  });

  test('parsing only some inodes finds each by its inode column, not by the same digits in another column', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  2222        0 1111 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:9C40 0100007F:1F90 08 00000000:00000000 00:00000000 00000000     0     2222 3333 1 0000000000000000 20 4 30 10 -1',
      '   2: 0100007F:9C41 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1',
    ].join('\n');
    const all = parseProcNetTcp(text, 4, true);
    assert.deepEqual(parseProcNetTcp(text, 4, true, new Set([2222, 4444])), all.filter((r) => r.inode === 2222));
    assert.deepEqual(parseProcNetTcp(text, 4, true, new Set([2222, 4444]))[0]?.local, '127.0.0.1:40001');
    assert.deepEqual(parseProcNetTcp(text, 4, true, new Set([1111, 3333])), all.filter((r) => r.inode === 1111 || r.inode === 3333));
    assert.deepEqual(parseProcNetTcp(text, 4, true, new Set()), []);
  });
});

describe('census of the real /proc', { skip }, () => {
  test('a TCP server and client show as LISTEN and two ESTABLISHED sockets with the right endpoints', async () => {
    const server = net.createServer();
    const port = await listen(server, '127.0.0.1');
    const client = await connect(port, '127.0.0.1');
    try {
      const local = `127.0.0.1:${client.localPort}`;
      const serverEnd = `127.0.0.1:${port}`;
      await waitFor(() => find(tcpCensus(), serverEnd, local), 2000, 'the accepted socket');
      const tcp = tcpCensus();
      assert.equal(find(tcp, local, serverEnd)?.state, 'ESTABLISHED', 'client side');
      assert.equal(find(tcp, serverEnd, local)?.state, 'ESTABLISHED', 'server side');
      assert.equal(find(tcp, serverEnd, '0.0.0.0:0')?.state, 'LISTEN');
      assert.ok(tcp.byState.ESTABLISHED >= 2 && tcp.byState.LISTEN >= 1);
      const fds = fdCensus();
      assert.ok(fds.byType.socket >= 3, 'the three sockets are socket FDs');
      for (const s of tcp.sockets) assert.ok(fds.socketInodes.has(s.inode), 'only our own sockets');
      const pc = processCensus();
      assert.ok(pc.procAvailable && pc.rssBytes > 0 && pc.heapUsedBytes > 0 && pc.fds!.total > 0);
    } finally {
      client.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('IPv6 loopback sockets decode too', async (t) => {
    const server = net.createServer();
    let port: number;
    try {
      port = await listen(server, '::1');
    } catch {
      t.skip('no IPv6 loopback');
      return;
    }
    const client = await connect(port, '::1');
    try {
      const local = `[::1]:${client.localPort}`;
      await waitFor(() => find(tcpCensus(), local, `[::1]:${port}`), 2000, 'the IPv6 client socket');
      assert.equal(find(tcpCensus(), local, `[::1]:${port}`)?.family, 6);
    } finally {
      client.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('another pid is read through /proc/<pid>: this process seen by pid equals self', () => {
    const bySelf = fdCensus();
    const byPid = fdCensus(process.pid);
    assert.equal(byPid.pid, process.pid);
    assert.ok(Math.abs(byPid.total - bySelf.total) <= 1);
    assert.throws(() => fdCensus(2 ** 22 + 12345), { name: 'CensusError', code: 'NO_PROCESS' } as object);
  });
});

describe('the monitor\'s census (TCP tables read only when they can say something new)', { skip }, () => {
  test('re-reads the tables on a new socket FD and when the last reading is maxAgeMs old, not otherwise', async () => {
    let now = 0;
    const census = new SelfCensus(10_000, () => now);
    const server = net.createServer((peer) => peer.end()); // the peer closes at once: our end goes to CLOSE_WAIT
    const port = await listen(server, '127.0.0.1');
    try {
      census.take();
      census.take();
      now += 5_000;
      const c1 = census.take();
      assert.equal(census.tableReadings, 1, 'same FDs, reading younger than maxAgeMs: the tables are not read again');
      assert.ok(c1.fds && c1.tcp);

      const leaky = await connect(port, '127.0.0.1', { port, host: '127.0.0.1', allowHalfOpen: true });
      leaky.on('end', () => {});
      leaky.resume();
      try {
        const local = `127.0.0.1:${leaky.localPort}`;
        const remote = `127.0.0.1:${port}`;
        const c2 = census.take();
        assert.equal(census.tableReadings, 2, 'a new socket FD: read at once');
        assert.ok(find(c2.tcp!, local, remote), 'the new socket is in the census');
        // Its state changes (the peer's FIN) without an FD change: seen once the reading is maxAgeMs old.
        await waitFor(() => find(tcpCensus(), local, remote)?.state === 'CLOSE_WAIT', 3000, 'CLOSE_WAIT in /proc');
        assert.notEqual(find(census.take().tcp!, local, remote)?.state, 'CLOSE_WAIT', 'within maxAgeMs the last reading stands');
        now += 10_000;
        assert.equal(find(census.take().tcp!, local, remote)?.state, 'CLOSE_WAIT');
        assert.equal(census.tableReadings, 3);
      } finally {
        leaky.destroy();
      }
      // Closing it changes the FDs: the next census reads the tables again and the socket is gone.
      await waitFor(() => !census.take().tcp!.sockets.some((s) => s.remote === `127.0.0.1:${port}`), 3000, 'the closed socket gone from the census');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a Unix socket FD does not hide TCP sockets, and stays out of the TCP figures', async () => {
    const path = join(tmp, 'census.sock');
    const unix = net.createServer(() => {});
    await new Promise<void>((resolve) => unix.listen(path, resolve));
    const tcpServer = net.createServer(() => {});
    const port = await listen(tcpServer, '127.0.0.1');
    const census = new SelfCensus(0);
    try {
      census.take();
      const client = await connect(port, '127.0.0.1');
      try {
        const c = census.take();
        assert.ok(find(c.tcp!, `127.0.0.1:${client.localPort}`, `127.0.0.1:${port}`), 'the TCP client is found');
        assert.equal(c.tcp!.sockets.length, tcpCensus().sockets.length, 'the same sockets as a plain census');
      } finally {
        client.destroy();
      }
    } finally {
      await new Promise((r) => tcpServer.close(r));
      await new Promise((r) => unix.close(r));
    }
  });
});

describe('leak alarms', { skip }, () => {
  test('a socket held in CLOSE_WAIT is reported, alarms after the grace, and clears once closed', async () => {
    const logs = captureLogs('info');
    const monitor = await startMonitor({
      config: config({ ALARM_CLOSE_WAIT_GRACE_MS: '300' }),
      logger: logs.logger,
      providers: { connections: () => [] },
      pid: false,
      checkIntervalMs: 50,
    });
    const server = net.createServer((peer) => peer.end()); // the peer closes at once
    const port = await listen(server, '127.0.0.1');
    // The leaky double: allowHalfOpen keeps our end open after the peer's FIN, and we never close it.
    const leaky = await connect(port, '127.0.0.1', { port, host: '127.0.0.1', allowHalfOpen: true });
    leaky.on('end', () => {}); // read the FIN, do nothing about it
    leaky.resume();
    try {
      const local = `127.0.0.1:${leaky.localPort}`;
      const remote = `127.0.0.1:${port}`;
      await waitFor(() => find(tcpCensus(), local, remote)?.state === 'CLOSE_WAIT', 3000, 'CLOSE_WAIT in the census');
      const alarm = await waitFor(() => monitor.activeAlarms().find((a) => a.kind === 'close_wait'), 5000, 'close_wait alarm');
      const sockets = alarm.figures.sockets as Array<{ remote: string; local: string; ageMs: number }>;
      assert.ok(sockets.some((s) => s.local === local && s.remote === remote && s.ageMs >= 300), JSON.stringify(sockets));
      const line = logs.find((l) => l.msg === 'alarm' && l.kind === 'close_wait');
      assert.equal(line.length, 1, 'raised once');
      assert.equal(line[0]!.level, 40, 'warn level');
      assert.ok((line[0]!.count as number) >= 1);
      assert.equal(monitor.sampleNow().alarms.includes('close_wait'), true, 'listed in the stats line');

      leaky.destroy();
      await waitFor(() => !monitor.activeAlarms().some((a) => a.kind === 'close_wait'), 3000, 'alarm cleared');
      const cleared = logs.find((l) => l.msg === 'alarm cleared' && l.kind === 'close_wait');
      assert.equal(cleared.length, 1, 'cleared once');
      assert.equal(cleared[0]!.level, 30, 'info level');
    } finally {
      leaky.destroy();
      await new Promise((r) => server.close(r));
      await monitor.stop();
    }
  });

  test('open FDs growing across K consecutive intervals raise fd_growth; a flat interval clears it', async () => {
    const logs = captureLogs('info');
    const monitor = await startMonitor({
      config: config({ ALARM_FD_GROWTH_INTERVALS: '3' }),
      logger: logs.logger,
      providers: { connections: () => [] },
      pid: false,
    });
    const opened: number[] = [];
    try {
      // Synchronous from sample to sample, so nothing else opens or closes an FD in between.
      monitor.sampleNow();
      for (let i = 0; i < 2; i++) {
        opened.push(openSync('/dev/null', 'r'));
        monitor.sampleNow();
        assert.ok(!monitor.activeAlarms().some((a) => a.kind === 'fd_growth'), `not after ${i + 1} growing interval(s)`);
      }
      opened.push(openSync('/dev/null', 'r'));
      const line = monitor.sampleNow();
      const alarm = monitor.activeAlarms().find((a) => a.kind === 'fd_growth');
      assert.ok(alarm, 'raised after 3 growing intervals');
      assert.equal((alarm.figures.history as number[]).length, 4);
      assert.equal(alarm.figures.fds, line.process.fds!.total);
      monitor.sampleNow(); // flat
      assert.ok(!monitor.activeAlarms().some((a) => a.kind === 'fd_growth'), 'cleared');
      assert.equal(logs.find((l) => l.msg === 'alarm cleared' && l.kind === 'fd_growth').length, 1);
    } finally {
      for (const fd of opened) closeSync(fd);
      await monitor.stop();
    }
  });

  test('open FDs above the threshold raise fd_threshold', async () => {
    const logs = captureLogs('info');
    const threshold = fdCensus().total + 5;
    const monitor = await startMonitor({ config: config({ ALARM_FD_THRESHOLD: String(threshold) }), logger: logs.logger, providers: { connections: () => [] }, pid: false });
    const opened: number[] = [];
    try {
      monitor.sampleNow();
      assert.ok(!monitor.activeAlarms().some((a) => a.kind === 'fd_threshold'));
      for (let i = 0; i < 10; i++) opened.push(openSync('/dev/null', 'r'));
      monitor.sampleNow();
      const alarm = monitor.activeAlarms().find((a) => a.kind === 'fd_threshold');
      assert.ok(alarm && (alarm.figures.fds as number) > threshold && alarm.figures.threshold === threshold);
      for (const fd of opened.splice(0)) closeSync(fd);
      monitor.sampleNow();
      assert.ok(!monitor.activeAlarms().some((a) => a.kind === 'fd_threshold'), 'cleared');
    } finally {
      for (const fd of opened) closeSync(fd);
      await monitor.stop();
    }
  });
});

describe('alarms from fake snapshots', () => {
  const settings = { closeWaitGraceMs: 1000, fdThreshold: 1000, fdGrowthIntervals: 5, reconnectsPerMinute: 10, eventLoopDelayMs: 200, acquireTimeoutMs: 5000 };
  const quiet = { tcp: null, eventLoopDelayP99Ms: null };

  test('more than N reconnects of one connection within a minute is a reconnect storm, per connection', () => {
    const logs = captureLogs('info');
    const engine = new AlarmEngine(settings, logs.logger);
    const t0 = 1_000_000;
    const okx = fakeConnection({ exchange: 'okx', connId: 'okx-0', reconnects: 2 });
    engine.check({ connections: [fakeConnection({ reconnects: 0 }), okx], ...quiet }, t0);
    engine.check({ connections: [fakeConnection({ reconnects: 10 }), okx], ...quiet }, t0 + 10_000);
    assert.equal(engine.active().length, 0, '10 within a minute is at the limit, not above');
    engine.check({ connections: [fakeConnection({ reconnects: 11 }), okx], ...quiet }, t0 + 20_000);
    const [alarm] = engine.active();
    assert.equal(alarm?.kind, 'reconnect_storm');
    assert.equal(alarm?.subject, 'binance/binance-0');
    assert.equal(alarm?.figures.reconnects, 11);
    const line = logs.find((l) => l.msg === 'alarm')[0]!;
    assert.equal(line.kind, 'reconnect_storm');
    assert.equal(line.connId, 'binance-0');
    assert.equal(line.limit, 10);
    // A minute later without new reconnects the window holds none: cleared.
    engine.check({ connections: [fakeConnection({ reconnects: 11 }), okx], ...quiet }, t0 + 50_000);
    assert.equal(engine.active().length, 1, 'still within the minute');
    engine.check({ connections: [fakeConnection({ reconnects: 11 }), okx], ...quiet }, t0 + 85_000);
    assert.equal(engine.active().length, 0, 'cleared once the storm left the window');
    assert.equal(logs.find((l) => l.msg === 'alarm cleared' && l.kind === 'reconnect_storm').length, 1);
  });

  test('a storm seen through a running monitor with fake providers', async () => {
    const logs = captureLogs('info');
    let reconnects = 0;
    const monitor = await startMonitor({
      config: config({ ALARM_RECONNECTS_PER_MINUTE: '5' }),
      logger: logs.logger,
      providers: { connections: () => [fakeConnection({ connId: 'binance-7', reconnects, reconnectsByReason: { ...fakeConnection().reconnectsByReason, error: reconnects } })] },
      pid: false,
    });
    try {
      monitor.sampleNow();
      reconnects = 6;
      monitor.sampleNow();
      const alarm = monitor.activeAlarms().find((a) => a.kind === 'reconnect_storm');
      assert.ok(alarm, 'raised');
      assert.equal(alarm.figures.connId, 'binance-7');
      assert.deepEqual(monitor.sampleNow().alarms, ['reconnect_storm:binance/binance-7']);
    } finally {
      await monitor.stop();
    }
  });

  test('pool clients waiting longer than the acquire timeout, the journal in use, event-loop delay', () => {
    const logs = captureLogs('info');
    const engine = new AlarmEngine(settings, logs.logger);
    const pool = { total: 3, idle: 0, waiting: 2, expired: 0, resets: 0, errors: 0, max: 3 };
    const pipeline = {
      ticksReceived: 10, ticksStored: 5, ticksDuplicate: 0, ticksRejected: 0, bufferDepth: 5, bufferMax: 100, journalBytes: 0, journalTicks: 0,
      batches: 1, batchLatencyMsP50: 1, batchLatencyMsP99: 2, batchLatencyMsMax: 3, lastWriteOkAt: 1, writeErrors: 0, backpressure: false,
      ticksInMemory: 5, ticksAwaitingJournal: 0,
    };
    engine.check({ connections: [], pool, pipeline, tcp: null, eventLoopDelayP99Ms: 20 }, 0);
    engine.check({ connections: [], pool, pipeline, tcp: null, eventLoopDelayP99Ms: 20 }, 4_000);
    assert.deepEqual(engine.active(), [], 'waiting shorter than the acquire timeout is fine');
    engine.check({ connections: [], pool, pipeline: { ...pipeline, journalTicks: 7, journalBytes: 700 }, tcp: null, eventLoopDelayP99Ms: 450 }, 5_000);
    assert.deepEqual(engine.active().map((a) => a.kind).sort(), ['event_loop_delay', 'journal_in_use', 'pool_waiting']);
    assert.equal(engine.active().find((a) => a.kind === 'pool_waiting')!.figures.waiting, 2);
    assert.equal(engine.active().find((a) => a.kind === 'journal_in_use')!.figures.journalTicks, 7);
    assert.equal(engine.active().find((a) => a.kind === 'event_loop_delay')!.figures.p99Ms, 450);
    engine.check({ connections: [], pool: { ...pool, waiting: 0 }, pipeline, tcp: null, eventLoopDelayP99Ms: 20 }, 6_000);
    assert.deepEqual(engine.active(), [], 'all cleared');
    assert.equal(logs.find((l) => l.msg === 'alarm cleared').length, 3);
    assert.equal(logs.find((l) => l.msg === 'alarm').length, 3);
  });

  test('CLOSE_WAIT tracking by inode: grace measured from first sighting, a new inode starts afresh', () => {
    const engine = new AlarmEngine(settings, captureLogs().logger);
    const tcp = (inodes: number[]): TcpCensus => ({
      pid: 1, byState: {} as TcpCensus['byState'],
      sockets: inodes.map((inode) => ({ inode, state: 'CLOSE_WAIT' as const, local: '127.0.0.1:1', remote: '127.0.0.1:2', family: 4 as const })),
    });
    engine.check({ connections: [], tcp: tcp([1]), eventLoopDelayP99Ms: null }, 0);
    engine.check({ connections: [], tcp: tcp([1, 2]), eventLoopDelayP99Ms: null }, 900);
    assert.equal(engine.active().length, 0);
    engine.check({ connections: [], tcp: tcp([1, 2]), eventLoopDelayP99Ms: null }, 1000);
    assert.equal(engine.active()[0]?.figures.count, 1, 'only inode 1 is past the grace');
    engine.check({ connections: [], tcp: tcp([2]), eventLoopDelayP99Ms: null }, 1500);
    assert.equal(engine.active().length, 0, 'inode 2 not yet');
    engine.check({ connections: [], tcp: tcp([2]), eventLoopDelayP99Ms: null }, 1900);
    assert.equal(engine.active()[0]?.figures.count, 1);
  });
});

