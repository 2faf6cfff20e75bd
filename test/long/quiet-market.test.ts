/**
 * Two minutes of a market without trades, with the exchanges' real heartbeat pace (simulator defaults: Binance pings
 * every 20 s; OKX closes a socket idle for 30 s and answers only its text `ping`) and the collector's defaults: our
 * pings keep both sockets proven alive, nothing is reconnected, nothing is detected dead, and Binance's inbound
 * message count stays far under its limit of 5 per second.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection } from '../../src/connection/connection.ts';
import { createConnections } from '../../src/exchanges/connections.ts';
import { ExchangeSimulator } from '../../src/simulator/index.ts';
import { CollectingSink } from '../helpers/collect-sink.ts';
import { defaultConfigFor } from '../helpers/collector-env.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { sleep, waitFor } from '../helpers/wait-for.ts';

const QUIET_MS = 120_000;

let sim: ExchangeSimulator;
let connections: Connection[];
const sink = new CollectingSink();
const logs = captureLogs('info');

before(async () => {
  sim = await ExchangeSimulator.start({ binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'], tradesPerSecond: 0 });
  connections = createConnections(defaultConfigFor(sim), sink, logs.logger);
  for (const c of connections) c.start();
  await waitFor(() => connections.every((c) => c.state === 'live'), 10_000, 'both live (acknowledged, no data)');
});

after(async () => {
  await Promise.all(connections.map((c) => c.stop()));
  await sim.stop();
});

test('2 minutes without a trade: zero reconnects, zero detections, always live (defaults, real heartbeat pace)', { timeout: QUIET_MS + 30_000 }, async () => {
  const okxFramesBefore = connections.find((c) => c.exchange === 'okx')!.snapshot().frames;
  const notLive: string[] = [];
  const started = Date.now();
  while (Date.now() - started < QUIET_MS) {
    for (const c of connections) if (c.state !== 'live') notLive.push(`${c.exchange} ${c.state} at ${Date.now() - started} ms`);
    await sleep(250);
  }
  assert.equal(sink.ticks.length, 0, 'the market was quiet');
  for (const c of connections) {
    const s = c.snapshot();
    assert.equal(s.reconnects, 0, `${c.exchange}: ${JSON.stringify(s.reconnectsByReason)}`);
    assert.deepEqual(s.detections, { heartbeat: 0, silence: 0 }, c.exchange);
  }
  assert.deepEqual(notLive, [], 'live at every sample');
  assert.equal(sim.liveSockets('binance'), 1);
  assert.equal(sim.liveSockets('okx'), 1);
  // Our OKX pings were answered (each pong is a frame): about one per OKX_PING_IDLE_MS + round trip.
  const pongs = connections.find((c) => c.exchange === 'okx')!.snapshot().frames - okxFramesBefore;
  const peak = sim.stats().binanceInboundPeakPerSecond;
  console.log(`quiet market ${QUIET_MS / 1000} s: 0 reconnects; okx pongs received ${pongs}; binance inbound peak ${peak} messages/s (limit 5)`);
  assert.ok(pongs >= 20, `okx was pinged and answered (${pongs} pongs)`);
  assert.ok(peak >= 1 && peak <= 2, `binance saw our pings, at most ${peak} messages in any second`);
});
