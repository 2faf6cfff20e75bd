/**
 * LOG_PRETTY=1 prints the stats line as a few readable lines (issue #12 point 7) while the JSON line stays
 * complete; the exit summary uses the stats line's shapes over the whole run, with uptime and reconnect totals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prettyFormatter } from '../src/logger.ts';
import { StatsTracker, exitSummary } from '../src/monitor/stats.ts';
import { statsText } from '../src/monitor/stats-text.ts';
import { RECONNECT_REASONS, REJECT_KINDS } from '../src/snapshots.ts';
import type { ConnectionSnapshot, PipelineSnapshot, ReconnectReason, RejectKind } from '../src/snapshots.ts';
import { captureLogs } from './helpers/log-capture.ts';

function conn(over: Partial<ConnectionSnapshot>): ConnectionSnapshot {
  const byReason = Object.fromEntries(RECONNECT_REASONS.map((r) => [r, 0])) as Record<ReconnectReason, number>;
  const rejected = Object.fromEntries(REJECT_KINDS.map((k) => [k, 0])) as Record<RejectKind, number>;
  return { exchange: 'binance', connId: 'binance-0', state: 'live', liveSince: 1_000, connects: 1, reconnects: 0, reconnectsByReason: byReason, closeCodes: {}, lastBackoffMs: 0, frames: 0, ticks: 0, rejected, symbols: ['BTCUSDT'], ...over };
}

const pipeline: PipelineSnapshot = {
  ticksReceived: 6000, ticksStored: 5990, ticksDuplicate: 3, ticksRejected: 0, bufferDepth: 10, bufferMax: 100_000, journalBytes: 0, journalTicks: 0,
  batches: 120, batchLatencyMsP50: 2.912345, batchLatencyMsP99: 9.7123, batchLatencyMsMax: 11.33333, lastWriteOkAt: 61_000, writeErrors: 0, backpressure: false, ticksInMemory: 10, ticksAwaitingJournal: 0,
};

function sample() {
  const c0 = conn({});
  const tracker = new StatsTracker(1_000);
  tracker.sample({ connections: [c0], census: { procAvailable: false, fds: null, tcp: null, rssBytes: 1, heapUsedBytes: 1 }, eventLoopDelayP99Ms: 1, alarms: [] }, 1_000);
  const c1 = conn({ frames: 2400, ticks: 2400, reconnects: 2, reconnectsByReason: { ...c0.reconnectsByReason, close: 1, silence: 1 }, rejected: { ...c0.rejected, invalid_json: 4 } });
  const okx = conn({ exchange: 'okx', connId: 'okx-0', state: 'backoff', liveSince: null, reconnects: 5, reconnectsByReason: { ...c0.reconnectsByReason, refused: 5 } });
  return tracker.sample({
    connections: [c1, okx], pipeline, pool: { total: 2, idle: 1, waiting: 0, expired: 0, resets: 0, errors: 0, max: 3 },
    gaps: { detected: 8, open: 1, filled: 7, unfillable: 0, backfilledTicks: 40, restRequests: 8, restErrors: 0, restRateLimited: 0 },
    census: { procAvailable: true, fds: { total: 38, byType: { socket: 14, file: 5, pipe: 11, anon_inode: 0, other: 8 } } as never, tcp: { byState: { ESTABLISHED: 6, CLOSE_WAIT: 0, LISTEN: 2 }, sockets: [] } as never, rssBytes: 141_750_272, heapUsedBytes: 1 },
    eventLoopDelayP99Ms: 13.52, alarms: ['reconnect_storm:okx/okx-0'],
  }, 61_000);
}

test('statsText: one line per connection plus pipeline, resources and alarms, with rates and reasons of the interval', () => {
  const lines = statsText(JSON.parse(JSON.stringify(sample())) as Record<string, unknown>);
  assert.equal(lines.length, 5, lines.join('\n'));
  assert.match(lines[0]!, /^binance\/binance-0 live 1m00s · ticks 40\.0\/s · reconnects 2 in interval \(close 1, silence 1\), 2 total · rejected invalid_json 4$/);
  assert.match(lines[1]!, /^okx\/okx-0 backoff · .*reconnects 5 in interval \(refused 5\)/);
  assert.match(lines[2]!, /^pipeline 100\.0\/s in, 99\.8\/s stored · buffer 10\/100,000 · journal 0 ticks · batch p50 2\.9 ms p99 9\.7 ms · write errors 0$/);
  assert.match(lines[3]!, /^pool 2\/3 \(idle 1, waiting 0\) · gaps 8 detected, 1 open, 7 filled, 0 unfillable · fds 38 · tcp ESTABLISHED 6, LISTEN 2 · rss 135 MB · loop p99 13\.5 ms$/);
  assert.equal(lines[4], 'alarms: reconnect_storm:okx/okx-0');
});

test('the pretty formatter prints a stats entry in a few lines, every other entry on one line; JSON stays complete', () => {
  const logs = captureLogs('info');
  logs.logger.child({ component: 'monitor' }).info(sample(), 'stats');
  logs.logger.info({ exchange: 'binance', from: 'live', to: 'closing', nested: { a: [1, 2, 3] } }, 'connection state');
  const [statsJson, stateJson] = logs.raw;
  const pretty = prettyFormatter(false);
  const out = pretty(statsJson!);
  assert.equal(out.trimEnd().split('\n').length, 6, out);
  assert.match(out.split('\n')[0]!, /INFO.*: stats$/);
  assert.equal(pretty(stateJson!).trimEnd().split('\n').length, 1);
  const full = JSON.parse(statsJson!) as Record<string, any>;
  assert.equal(full.connections[0].rejectedTotal.invalid_json, 4, 'the JSON line keeps every field');
  assert.deepEqual(full.pipeline.batchLatencyMs, { p50: 2.91, p99: 9.71, max: 11.33 }, 'latencies rounded in the stats line');
});

test('exitSummary: ISO times, rounded latencies, uptime and reconnect totals over the whole run', () => {
  const c = conn({ frames: 10, ticks: 10, reconnects: 3, reconnectsByReason: { ...conn({}).reconnectsByReason, close: 2, error: 1 } });
  const s = exitSummary({ connections: [c], pipeline }, 1_000, 121_000);
  assert.equal(s.startedAt, new Date(1_000).toISOString());
  assert.equal(s.stoppedAt, new Date(121_000).toISOString());
  assert.equal(s.uptimeMs, 120_000);
  assert.equal(s.reconnects.total, 3);
  assert.equal(s.reconnects.byReason.close, 2);
  assert.equal(s.pipeline!.lastWriteOkAt, new Date(61_000).toISOString());
  assert.deepEqual(s.pipeline!.batchLatencyMs, { p50: 2.91, p99: 9.71, max: 11.33 });
  assert.equal(s.pipeline!.ticksReceivedPerSec, 50, 'rates over the whole run');
});
