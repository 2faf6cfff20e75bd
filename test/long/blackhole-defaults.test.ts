/**
 * A black-holed socket (the peer keeps the TCP connection but sends nothing, answers no ping, ignores our close) is
 * terminated and replaced within 10 s of the last byte it delivered, on each exchange, with the collector's default
 * settings against the exchanges' real pace (simulator defaults: Binance pings every 20 s; OKX closes idle sockets at
 * 30 s and answers only its text `ping`). Prints the measured figures.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection } from '../../src/connection/connection.ts';
import { createConnections } from '../../src/exchanges/connections.ts';
import { ExchangeSimulator } from '../../src/simulator/index.ts';
import { CollectingSink } from '../helpers/collect-sink.ts';
import { defaultConfigFor } from '../helpers/collector-env.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { waitFor } from '../helpers/wait-for.ts';

const LIMIT_MS = 10_000;

let sim: ExchangeSimulator;
let connections: Connection[];
const sink = new CollectingSink();
const logs = captureLogs('info');

before(async () => {
  sim = await ExchangeSimulator.start({ binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
  // Nothing but where the exchanges are: every liveness setting is the default.
  connections = createConnections(defaultConfigFor(sim), sink, logs.logger);
  for (const c of connections) c.start();
  await waitFor(() => connections.every((c) => c.state === 'live') && sink.count('binance') > 3 && sink.count('okx') > 3, 10_000, 'both live with data');
});

after(async () => {
  await Promise.all(connections.map((c) => c.stop()));
  await sim.stop();
});

test('black hole on both exchanges: detected and replaced within 10 s of the last received byte (defaults)', { timeout: 40_000 }, async () => {
  const injectedAt = Date.now();
  for (const exchange of ['binance', 'okx'] as const) sim.inject(exchange, 'blackhole');
  const results: string[] = [];
  await Promise.all(connections.map(async (conn) => {
    const mine = (l: Record<string, unknown>) => l.exchange === conn.exchange && typeof l.time === 'number' && (l.time as number) >= injectedAt;
    const detection = await waitFor(() => logs.find((l) => mine(l) && String(l.msg).startsWith('dead socket detected'))[0], LIMIT_MS + 5_000, `${conn.exchange} detection`);
    assert.notEqual(conn.state, 'live', 'not reported live once the deadline was missed');
    const live = await waitFor(() => logs.find((l) => mine(l) && l.msg === 'connection state' && l.to === 'live' && (l.time as number) >= (detection.time as number))[0], LIMIT_MS, `${conn.exchange} replacement live`);
    const lastByteAt = (detection.time as number) - (detection.silentMs as number);
    const detectMs = (detection.time as number) - lastByteAt;
    const replaceMs = (live.time as number) - lastByteAt;
    results.push(`${conn.exchange}: last byte -> detection ${detectMs} ms (${String(detection.reason)}), last byte -> replacement live ${replaceMs} ms, fault injected -> replacement live ${(live.time as number) - injectedAt} ms`);
    assert.equal(detection.reason, 'heartbeat', 'our own ping found it');
    assert.ok(replaceMs <= LIMIT_MS, `${conn.exchange}: replaced ${replaceMs} ms after its last byte (limit ${LIMIT_MS})`);
    assert.equal(conn.snapshot().detections?.heartbeat, 1);
  }));
  console.log(`black hole with default settings: ${results.join('; ')}`);
  const before = sink.count('okx');
  await waitFor(() => sink.count('okx') > before + 2, 5_000, 'okx data again');
});
