/**
 * The files under deploy/ hold up against the real thing (issue #12 "Operations the ecosystem expects"):
 *  - every metric named by the Prometheus alert rules and the Grafana dashboard is exported by a real collector
 *    (a full collector against the simulator and a test database, its /metrics scraped);
 *  - `promtool check rules` accepts the rules (Debian package `prometheus`; CI installs it);
 *  - `systemd-analyze verify` accepts the unit without a warning;
 *  - the Dockerfile runs exactly the production path the production-install test proves.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Collector } from '../src/collector.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { npmStartNodeFlags } from '../bench/lib/collector-proc.ts';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { collectorHarness } from './helpers/collector-harness.ts';
import type { Harness } from './helpers/collector-harness.ts';
import { freePort } from './helpers/free-port.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait-for.ts';

const ALERTS = join(PROJECT_ROOT, 'deploy/prometheus/alerts.yml');
const DASHBOARD = join(PROJECT_ROOT, 'deploy/grafana/market-collector.json');
const UNIT = join(PROJECT_ROOT, 'deploy/systemd/market-collector.service');
const DOCKERFILE = join(PROJECT_ROOT, 'deploy/docker/Dockerfile');

/** Series Prometheus itself makes for every target; not the collector's. */
const PROMETHEUS_SYNTHETIC = new Set(['up']);
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects: identifiers that are not functions, keywords or labels. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // label values
    .replace(/\{[^}]*\}/g, ' ') // matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/\$\w+|\$\{[^}]*\}/g, ' '); // Grafana variables
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // a function
    if (PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    if (/^\d/.test(m[0])) continue;
    names.add(m[0]);
  }
  return [...names];
}

function alertExprs(): string[] {
  const text = readFileSync(ALERTS, 'utf8');
  const exprs = [...text.matchAll(/^\s*expr:\s*(.+)$/gm)].map((m) => m[1]!.trim());
  assert.equal(exprs.length, [...text.matchAll(/^\s*- alert:/gm)].length, 'one single-line expr per alert');
  return exprs;
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ type: string; targets?: Array<{ expr: string }> }>; templating: { list: Array<{ definition?: string }> } };
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const v of dash.templating.list) {
    const m = /^label_values\((\w+),/.exec(v.definition ?? '');
    if (m) exprs.push(m[1]!);
  }
  return exprs;
}

test('metricNames reads PromQL the way the checks need', () => {
  assert.deepEqual(metricNames('sum by (exchange, conn) (increase(market_collector_reconnects_total{reason="close"}[5m])) > 60'), ['market_collector_reconnects_total']);
  assert.deepEqual(metricNames('a{kind="x"} > 0 or b{state=~"live|rotating"} == 0'), ['a', 'b']);
  assert.deepEqual(metricNames('max(x{instance=~"$instance"}) > 0'), ['x']);
});

describe('deploy/ against a real collector', () => {
  let sim: ExchangeSimulator;
  let harness: Harness;
  let collector: Collector;
  let exported: Set<string>;

  before(async () => {
    sim = await ExchangeSimulator.start({ tradesPerSecond: 20, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
    harness = await collectorHarness(sim, captureLogs('warn').logger);
    const port = await freePort();
    collector = await harness.start({ BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT', METRICS_PORT: String(port) });
    await waitFor(() => collector.storage.pipeline().ticksStored > 0, 20_000, 'ticks stored');
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    exported = new Set<string>();
    for (const m of body.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
      exported.add(m[1]!);
      if (m[2] === 'histogram' || m[2] === 'summary') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1]! + s);
    }
    for (const m of body.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) exported.add(m[1]!);
  });
  after(async () => {
    await harness?.close();
    await sim?.stop();
  });

  test('every metric the alert rules name is exported', () => {
    const named = alertExprs().flatMap(metricNames);
    assert.ok(named.length > 10, `metric names found in the rules: ${named.length}`);
    for (const name of named) assert.ok(exported.has(name) || PROMETHEUS_SYNTHETIC.has(name), `alerts.yml names ${name}, which the collector does not export`);
    const text = alertExprs().join('\n');
    for (const needed of ['close_wait', 'fd_growth', 'reconnect_storm', 'journal_ticks', 'gaps_unfillable', 'ticks_stored_total']) assert.ok(text.includes(needed), `an alert covers ${needed}`);
  });

  test('every metric the Grafana dashboard queries is exported', () => {
    const named = dashboardExprs().flatMap(metricNames);
    assert.ok(named.length > 20, `metric names found in the dashboard: ${named.length}`);
    for (const name of named) assert.ok(exported.has(name), `the dashboard queries ${name}, which the collector does not export`);
  });
});

test('promtool check rules accepts deploy/prometheus/alerts.yml', { skip: spawnSync('promtool', ['--version']).error ? 'promtool is not installed (Debian package prometheus; .ci/run installs it)' : false }, () => {
  const r = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS: \d+ rules found/);
});

test('systemd-analyze verify accepts the unit without a warning', { skip: spawnSync('systemd-analyze', ['--version']).error ? 'systemd-analyze is not installed' : false }, () => {
  // The unit names /usr/bin/node; verify it against wherever node is on this machine.
  const dir = mkdtempSync(join(tmpdir(), 'mc-unit-'));
  try {
    const unit = join(dir, 'market-collector.service');
    writeFileSync(unit, readFileSync(UNIT, 'utf8').replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => l.includes('market-collector.service')).join('\n'), '', 'no warning about the unit');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the Dockerfile does the production path: npm ci --omit=dev, node with npm start\'s flags as a non-root user, files that exist', () => {
  const text = readFileSync(DOCKERFILE, 'utf8');
  const flags = npmStartNodeFlags();
  assert.ok(flags.length > 0);
  assert.match(text, /^RUN npm ci --omit=dev\b/m);
  assert.ok(text.split('\n').includes(`CMD ${JSON.stringify(['node', ...flags, 'dist/src/main.js']).replaceAll('","', '", "')}`), 'CMD is node, npm start\'s flags, dist/src/main.js');
  assert.match(text, /^USER node$/m);
  for (const m of text.matchAll(/^COPY (.+) \S+$/gm)) for (const src of m[1]!.split(/\s+/)) assert.ok(existsSync(join(PROJECT_ROOT, src)), `COPY ${src} exists`);
  const unit = readFileSync(UNIT, 'utf8');
  assert.ok(unit.split('\n').includes(`ExecStart=/usr/bin/node ${flags.join(' ')} dist/src/main.js`), 'ExecStart is node, npm start\'s flags, dist/src/main.js');
});
