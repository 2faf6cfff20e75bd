/**
 * Every fault kind, against the simulator over real sockets: the connection reconnects, resubscribes, ticks keep
 * flowing, and the reconnect reason is counted correctly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import type { FaultKind, SimExchange } from '../src/simulator/index.ts';
import { createConnections } from '../src/exchanges/connections.ts';
import type { Connection } from '../src/connection/connection.ts';
import type { CollectorError } from '../src/errors.ts';
import type { ConnectionSnapshot, ReconnectReason } from '../src/snapshots.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { simConfig } from './helpers/collector-env.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { FAST_FAULTS_SIM } from './helpers/sim-options.ts';
import { waitFor, sleep } from './helpers/wait-for.ts';

/** Notices close later here than elsewhere: the replacement must be seen going live before the old socket closes. */
const SIM_OPTIONS = { ...FAST_FAULTS_SIM, shutdownCloseDelayMs: 800, noticeCloseDelayMs: 1500 };

interface Case {
  fault: FaultKind;
  reason: ReconnectReason;
  /** Handshake faults hit the next upgrade: force one with a server close first. */
  viaReconnect?: boolean;
  check?: (before: ConnectionSnapshot, after: ConnectionSnapshot) => void;
}

const common: Case[] = [
  { fault: 'close1001', reason: 'close', check: (b, a) => assert.ok((a.closeCodes['1001'] ?? 0) > (b.closeCodes['1001'] ?? 0)) },
  { fault: 'reset', reason: 'error' },
  { fault: 'fin', reason: 'close', check: (b, a) => assert.ok((a.closeCodes['1006'] ?? 0) > (b.closeCodes['1006'] ?? 0)) },
  { fault: 'stallHandshake', reason: 'handshake_timeout', viaReconnect: true },
  { fault: 'refuse503', reason: 'refused', viaReconnect: true },
  { fault: 'refuse429', reason: 'refused', viaReconnect: true, check: (_b, a) => assert.ok(a.lastBackoffMs >= 1000, `Retry-After honoured: ${a.lastBackoffMs}`) },
  { fault: 'oversized', reason: 'protocol', check: (b, a) => assert.equal(a.rejected.oversized, b.rejected.oversized + 1) },
];
const perExchange: Record<SimExchange, Case[]> = {
  binance: [
    ...common,
    { fault: 'blackhole', reason: 'heartbeat', check: (b, a) => assert.equal(a.detections!.heartbeat, b.detections!.heartbeat + 1) },
    { fault: 'serverShutdown', reason: 'notice' },
  ],
  okx: [
    ...common,
    { fault: 'blackhole', reason: 'heartbeat', check: (b, a) => assert.equal(a.detections!.heartbeat, b.detections!.heartbeat + 1) },
    // OKX sends no 64008 on /business, where trades-all lives: the upgrade arrives as a plain close.
    { fault: 'notice64008', reason: 'close', check: (b, a) => assert.equal(a.reconnectsByReason.notice, b.reconnectsByReason.notice, 'no notice on /business') },
  ],
};

describe('fault kinds against the simulator', () => {
  let sim: ExchangeSimulator;
  let connections: Connection[];
  const sink = new CollectingSink();
  const logs = captureLogs('debug');

  before(async () => {
    sim = await ExchangeSimulator.start(SIM_OPTIONS);
    connections = createConnections(simConfig(sim, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT' }), sink, logs.logger);
    for (const c of connections) c.start();
    await waitFor(() => connections.every((c) => c.state === 'live'), 5000, 'both connections live');
  });

  after(async () => {
    await Promise.all(connections.map((c) => c.stop()));
    await sim.stop();
  });

  for (const exchange of ['binance', 'okx'] as const) {
    for (const kase of perExchange[exchange]) {
      test(`${exchange}: ${kase.fault} -> reconnect counted as ${kase.reason}, ticks keep flowing`, async () => {
        const conn = connections.find((c) => c.exchange === exchange)!;
        const symbol = exchange === 'binance' ? 'BTCUSDT' : 'BTC-USDT';
        await waitFor(() => conn.state === 'live', 5000, 'live before the fault');
        const before = conn.snapshot();
        const ticksBefore = sink.count(exchange);
        sim.inject(exchange, kase.fault);
        if (kase.viaReconnect) sim.inject(exchange, 'close1001');
        await waitFor(() => conn.snapshot().reconnectsByReason[kase.reason] > before.reconnectsByReason[kase.reason], 8000, `reason ${kase.reason} counted`);
        await waitFor(() => conn.state === 'live', 8000, 'live again');
        await waitFor(() => sink.count(exchange) > ticksBefore + 3, 5000, 'ticks after the reconnect');
        const after = conn.snapshot();
        kase.check?.(before, after);
        assert.deepEqual(after.symbols, [symbol], 'resubscribed to the same set');
        assert.ok(sim.liveSockets(exchange) <= 2, 'at most the live socket and a closing one');
        await waitFor(() => sim.liveSockets(exchange) === 1, 3000, 'exactly one server-side socket once settled');
      });
    }

    test(`${exchange}: malformed frames are counted per kind, never emitted, and do not drop the connection`, async () => {
      const conn = connections.find((c) => c.exchange === exchange)!;
      await waitFor(() => conn.state === 'live', 5000, 'live');
      const before = conn.snapshot();
      const ticksBefore = sink.ticks.length;
      sim.inject(exchange, 'malformed');
      await waitFor(() => {
        const r = conn.snapshot().rejected;
        return (['invalid_json', 'binary', 'missing_field', 'bad_type', 'bad_number', 'unknown_event'] as const).every((k) => r[k] > before.rejected[k]);
      }, 3000, 'every bad-input kind counted');
      await sleep(200);
      assert.equal(conn.snapshot().reconnects, before.reconnects);
      assert.equal(conn.state, 'live');
      for (const t of sink.ticks.slice(ticksBefore)) {
        assert.match(t.price, /^\d+(\.\d+)?$/);
        assert.match(t.qty, /^\d+(\.\d+)?$/);
        assert.ok(Number(t.price) > 0 && Number(t.qty) > 0);
      }
      const warned = logs.find((l) => l.msg === 'rejected exchange frame');
      assert.ok(warned.length > 0 && warned.every((l) => typeof l.sample === 'string' && (l.sample as string).length <= 230), 'warned with a truncated sample');
    });
  }

  test('every transition was logged once with exchange, connId, from, to, reason', () => {
    const transitions = logs.find((l) => l.msg === 'connection state');
    assert.ok(transitions.length > 20);
    for (const t of transitions) {
      for (const field of ['exchange', 'connId', 'from', 'to', 'reason']) assert.ok(field in t, `${field} in ${JSON.stringify(t)}`);
    }
  });
});

describe('planned rotation and refused symbols', () => {
  test('binance rotates before its age limit without a gap; overlap bounded; old socket closed', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM_OPTIONS, tradesPerSecond: 40 });
    const sink = new CollectingSink();
    const [conn] = createConnections(simConfig(sim, { OKX_SYMBOLS: '', BINANCE_SYMBOLS: 'BTCUSDT', BINANCE_ROTATE_AFTER_MS: '1000' }), sink, captureLogs().logger);
    let maxSockets = 0;
    const sampler = setInterval(() => (maxSockets = Math.max(maxSockets, sim.liveSockets('binance'))), 10);
    try {
      conn!.start();
      await waitFor(() => conn!.snapshot().reconnectsByReason.rotation >= 3, 10_000, 'three rotations');
      await waitFor(() => conn!.state === 'live' && sim.liveSockets('binance') === 1, 3000, 'settled on one socket');
      assert.ok(maxSockets <= 2, `never more than old + replacement (saw ${maxSockets})`);
      const ids = sink.ids('binance', 'BTCUSDT');
      assert.equal(ids.at(-1)! - ids[0]! + 1, ids.length, 'no trade id missing across rotations');
    } finally {
      clearInterval(sampler);
      await conn!.stop();
      await sim.stop();
    }
  });

  test('okx unknown instrument (60018): errors naming it, confirmed unknown by the instruments endpoint, retried only after a long wait; the other symbol keeps flowing', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM_OPTIONS, okxSymbols: ['BTC-USDT'] });
    const sink = new CollectingSink();
    const logs = captureLogs();
    const [conn] = createConnections(simConfig(sim, { BINANCE_SYMBOLS: '', OKX_SYMBOLS: 'BTC-USDT,FOO-BAR', REFUSED_SYMBOL_RETRY_MS: '1500' }), sink, logs.logger);
    const errors = () => logs.find((l) => l.level === 50 && String(l.msg).includes('FOO-BAR'));
    try {
      conn!.start();
      await waitFor(() => sink.count('okx', 'BTC-USDT') > 5, 5000, 'BTC-USDT flowing');
      await waitFor(() => errors().some((l) => l.verdict === 'unknown'), 5000, 'refusal confirmed against the instruments endpoint');
      assert.match(String(errors()[0]!.msg), /exchange refused FOO-BAR: OKX error 60018: Wrong URL or channel:trades-all,instId:FOO-BAR/);
      assert.match(String(errors().find((l) => l.verdict === 'unknown')!.msg), /public\/instruments\?instType=SPOT does not list it \(unknown instrument\); subscribing it again in 1500 ms/);
      assert.deepEqual(conn!.snapshot().refusedSymbols, ['FOO-BAR']);
      sim.inject('okx', 'close1001');
      await waitFor(() => conn!.snapshot().reconnects === 1 && conn!.state === 'live', 5000, 'reconnected');
      const before = sink.count('okx', 'BTC-USDT');
      await waitFor(() => sink.count('okx', 'BTC-USDT') > before + 5, 5000, 'BTC-USDT flowing after reconnect');
      assert.deepEqual(sim.subscriptions('okx'), [['BTC-USDT']], 'FOO-BAR not resubscribed on reconnect while it waits');
      assert.equal(errors().filter((l) => l.verdict === 'unknown').length, 1, 'no error loop');
      // Never refused for good on one error: after the wait it is asked for again (and refused again, with a doubled wait).
      await waitFor(() => errors().some((l) => l.verdict === 'unknown' && l.retryInMs === 3000), 6000, 'second refusal after the retry, wait doubled');
      assert.equal(conn!.state, 'live');
      assert.deepEqual(conn!.snapshot().symbols, ['BTC-USDT']);
    } finally {
      await conn!.stop();
      await sim.stop();
    }
  });

  test('okx: every instrument refused (trades-all not served on the URL) is a configuration error naming the URL and the channel', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM_OPTIONS, okxTradesAllOn: 'public' });
    const logs = captureLogs();
    const fatal: CollectorError[] = [];
    const [conn] = createConnections(simConfig(sim, { BINANCE_SYMBOLS: '', OKX_SYMBOLS: 'BTC-USDT,ETH-USDT' }), new CollectingSink(), logs.logger, { onFatal: (e) => fatal.push(e) });
    try {
      conn!.start();
      await waitFor(() => fatal.length === 1, 8000, 'fatal configuration error reported');
      assert.equal(fatal[0]!.code, 'E_SUBSCRIPTION_REFUSED');
      assert.match(fatal[0]!.message, new RegExp(`refused every instrument of okx-0 on ${sim.okxWsUrl.replace(/[.:/]/g, '\\$&')}/ws/v5/business channel trades-all`));
      assert.match(fatal[0]!.message, /60018/);
      assert.match(fatal[0]!.message, /lists BTC-USDT, ETH-USDT: the URL or the channel is wrong/);
      assert.equal(conn!.state, 'stopped');
      assert.equal(sim.liveSockets('okx'), 0);
    } finally {
      await conn!.stop();
      await sim.stop();
    }
  });
});

describe('backoff against a refusing server', () => {
  test('delays grow x2 from the base, are jittered, cap, honour Retry-After, and reset after data', async () => {
    const sim = await ExchangeSimulator.start({ ...SIM_OPTIONS, retryAfterSeconds: 1 });
    const sink = new CollectingSink();
    const logs = captureLogs();
    const [conn] = createConnections(simConfig(sim, { OKX_SYMBOLS: '', BINANCE_SYMBOLS: 'BTCUSDT', BACKOFF_BASE_MS: '40', BACKOFF_MAX_MS: '320' }), sink, logs.logger);
    const backoffs = () => logs.find((l) => l.msg === 'connection state' && l.to === 'backoff') as Array<{ delayMs: number; ceilingMs: number; retryAfterMs: number | null }>;
    try {
      conn!.start();
      await waitFor(() => conn!.state === 'live' && sink.count('binance') > 0, 5000, 'live');
      sim.inject('binance', 'refuse503', { count: 7 });
      sim.inject('binance', 'close1001');
      await waitFor(() => backoffs().length >= 8 && conn!.state === 'live', 15_000, 'eight backoffs then live');
      const seq = backoffs().slice(0, 8);
      assert.deepEqual(seq.map((b) => b.ceilingMs), [40, 80, 160, 320, 320, 320, 320, 320], 'x2 growth from the base, capped');
      for (const b of seq) assert.ok(b.delayMs >= 0 && b.delayMs <= b.ceilingMs, `delay ${b.delayMs} within [0, ${b.ceilingMs}]`);
      assert.ok(seq.some((b) => b.delayMs !== b.ceilingMs), 'jittered');
      assert.ok(new Set(seq.map((b) => b.delayMs)).size > 3, 'jitter varies');

      await waitFor(() => sink.count('binance') > 0 && conn!.snapshot().lastBackoffMs >= 0, 1000, 'data');
      const ticks = sink.count('binance');
      await waitFor(() => sink.count('binance') > ticks, 3000, 'data after recovery');
      sim.inject('binance', 'refuse429');
      sim.inject('binance', 'close1001');
      await waitFor(() => backoffs().length >= 10, 8000, 'two more backoffs');
      const [reset, retryAfter] = backoffs().slice(8, 10);
      assert.equal(reset!.ceilingMs, 40, 'reset to the base after data');
      assert.equal(retryAfter!.retryAfterMs, 1000);
      assert.ok(retryAfter!.delayMs >= 1000, 'Retry-After is a floor');
      await waitFor(() => conn!.state === 'live', 5000, 'live after Retry-After');
    } finally {
      await conn!.stop();
      await sim.stop();
    }
  });
});
