/**
 * Frames that used to crash the process or plant false rows, over real sockets from the simulator: a field nested
 * 10,000 deep, trades for symbols never subscribed, and a frame handler that throws. Each is counted under its
 * kind and logged with a truncated sample; the connection stays live, and stop() is prompt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Connection } from '../src/connection/connection.ts';
import { createConnections } from '../src/exchanges/connections.ts';
import { DEEP_NESTING_LEVELS, ExchangeSimulator, UNSUBSCRIBED_SYMBOLS } from '../src/simulator/index.ts';
import type { Tick, TickSink } from '../src/tick.ts';
import { CollectingSink } from './helpers/collect-sink.ts';
import { simConfig } from './helpers/collector-env.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { FAST_FAULTS_SIM } from './helpers/sim-options.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

const SUBSCRIBED = { binance: 'BTCUSDT', okx: 'BTC-USDT' } as const;
const EXCHANGES = ['binance', 'okx'] as const;

describe('hostile frames against live connections', () => {
  let sim: ExchangeSimulator;
  let connections: Connection[];
  const sink = new CollectingSink();
  const logs = captureLogs('info');
  const conn = (exchange: 'binance' | 'okx') => connections.find((c) => c.exchange === exchange)!;

  before(async () => {
    sim = await ExchangeSimulator.start({ ...FAST_FAULTS_SIM, tradesPerSecond: 50 });
    connections = createConnections(simConfig(sim, { BINANCE_SYMBOLS: SUBSCRIBED.binance, OKX_SYMBOLS: SUBSCRIBED.okx }), sink, logs.logger);
    for (const c of connections) c.start();
    await waitFor(() => connections.every((c) => c.state === 'live') && sink.count('binance') > 0 && sink.count('okx') > 0, 5000, 'both live with data');
  });

  after(async () => {
    await withinMs(Promise.all(connections.map((c) => c.stop())), 5000).catch(() => undefined);
    await sim.stop();
  });

  for (const exchange of EXCHANGES) {
    test(`${exchange}: trades for symbols never subscribed are unexpected_symbol and never reach the sink`, async () => {
      const c = conn(exchange);
      const before = c.snapshot();
      sim.injectHostile(exchange, 'unsubscribed', 6);
      await waitFor(() => c.snapshot().rejected.unexpected_symbol >= before.rejected.unexpected_symbol + 6, 5000, 'six unexpected_symbol rejections');
      await sleep(100);
      assert.equal(c.snapshot().rejected.unexpected_symbol, before.rejected.unexpected_symbol + 6);
      for (const symbol of UNSUBSCRIBED_SYMBOLS[exchange]) assert.equal(sink.count(exchange, symbol), 0, `no ${symbol} tick emitted`);
      assert.ok(sink.ticks.every((t) => t.symbol === SUBSCRIBED[t.exchange]), 'only subscribed symbols emitted');
      const warned = logs.find((l) => l.msg === 'rejected exchange frame' && l.exchange === exchange && l.kind === 'unexpected_symbol');
      assert.ok(warned.length > 0 && UNSUBSCRIBED_SYMBOLS[exchange].some((s) => String(warned[0]!.detail).includes(s)), 'the log names the symbol');
    });

    test(`${exchange}: a field nested ${DEEP_NESTING_LEVELS} deep is bad_type; the connection stays live and keeps its data`, async () => {
      const c = conn(exchange);
      const before = c.snapshot();
      const sent = sim.injectHostile(exchange, 'deepNesting', 4);
      assert.deepEqual(sent.frames, [4], 'four frames on the one socket');
      await waitFor(() => c.snapshot().rejected.bad_type >= before.rejected.bad_type + 4, 5000, 'four bad_type rejections');
      const ticks = sink.count(exchange);
      await waitFor(() => sink.count(exchange) > ticks + 5, 5000, 'ticks still flowing');
      const after = c.snapshot();
      assert.equal(after.rejected.bad_type, before.rejected.bad_type + 4);
      assert.equal(after.rejected.internal, 0, 'the mapper handled it: no handler threw');
      assert.equal(after.reconnects, before.reconnects, 'the socket was not dropped');
      assert.equal(c.state, 'live');
      const warned = logs.find((l) => l.msg === 'rejected exchange frame' && l.exchange === exchange && l.kind === 'bad_type');
      assert.ok(warned.length > 0 && warned.every((l) => (l.sample as string).length <= 230 && (l.detail as string).length <= 330), 'logged, truncated');
    });
  }

  test('stop() finishes promptly after all of it', async () => {
    const started = Date.now();
    await withinMs(Promise.all(connections.map((c) => c.stop())), 3000);
    assert.ok(connections.every((c) => c.state === 'stopped'));
    assert.ok(Date.now() - started < 2000, `stop() took ${Date.now() - started} ms`);
  });
});

function withinMs<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A sink with a bug: it throws on one tick. The frame is lost, counted as internal; everything after it flows. */
class ThrowOnceSink implements TickSink {
  readonly inner = new CollectingSink();
  thrown = false;
  write(tick: Tick): boolean {
    if (!this.thrown) {
      this.thrown = true;
      throw new RangeError('Maximum call stack size exceeded');
    }
    return this.inner.write(tick);
  }
  onDrain(): () => void {
    return () => {};
  }
}

test('a frame handler that throws is counted as internal and logged with a truncated sample; the connection carries on', async () => {
  const sim = await ExchangeSimulator.start({ ...FAST_FAULTS_SIM, tradesPerSecond: 50 });
  const sink = new ThrowOnceSink();
  const logs = captureLogs('info');
  const [c] = createConnections(simConfig(sim, { BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: '' }), sink, logs.logger);
  try {
    c!.start();
    await waitFor(() => sink.thrown && sink.inner.count('binance') > 5, 5000, 'ticks after the throw');
    const snap = c!.snapshot();
    assert.equal(snap.rejected.internal, 1);
    assert.equal(snap.reconnects, 0);
    assert.equal(c!.state, 'live');
    const [line] = logs.find((l) => l.kind === 'internal');
    assert.ok(line, 'logged');
    assert.equal(line.level, 50, 'at error level: it is our bug');
    assert.match(String(line.detail), /RangeError: Maximum call stack size exceeded/);
    assert.ok(typeof line.sample === 'string' && (line.sample as string).includes('"e":"trade"') && (line.sample as string).length <= 230);
    assert.ok(line.err, 'with the error and its stack');
  } finally {
    const started = Date.now();
    await withinMs(c!.stop(), 3000);
    assert.ok(Date.now() - started < 2000, 'stop() is prompt');
    await sim.stop();
  }
});
