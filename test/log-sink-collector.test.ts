/**
 * The collector process itself with a log destination that fails (issue #14 i and failure 5): stdout is a real pipe
 * whose reader first stops reading, then dies mid-run. Collection carries on (ticks keep reaching the table), the
 * dropped lines are on /metrics, stderr says so once, and SIGTERM still ends the process with exit 0 within the
 * 10 s bound. (A reader dying during the shutdown itself: test/log-sink.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { simEnv } from './helpers/collector-env.ts';
import { sqlRows } from './helpers/collector-harness.ts';
import { createTestDatabase } from './helpers/db.ts';
import { freePort } from './helpers/free-port.ts';
import { waitFor } from './helpers/wait-for.ts';

const procs: ChildProcess[] = [];

function metric(port: number, name: string): Promise<number | null> {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
        resolve(m ? Number(m[1]) : null);
      });
    }).on('error', () => resolve(null));
  });
}

describe('the collector with a dead log sink', () => {
  let sim: ExchangeSimulator;
  let db: { url: string; drop(): Promise<void> };
  let dir: string;

  before(async () => {
    sim = await ExchangeSimulator.start({ tradesPerSecond: 100, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'mc-logsink-'));
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await sim.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(reader: ChildProcess, name: string) {
    const port = await freePort();
    const env = simEnv(sim, {
      BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT', DATABASE_URL: db.url, METRICS_PORT: String(port),
      PID_FILE: join(dir, `${name}.pid`), SPILL_DIR: join(dir, `${name}-spill`), BACKFILL_ENABLED: '0',
      // a stats line every 100 ms (about 3 kB each) fills a pipe nobody reads within seconds
      STATS_INTERVAL_MS: '100', LOG_LEVEL: 'debug',
    });
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', reader.stdin!, 'pipe'],
    });
    reader.stdin!.destroy();
    procs.push(proc);
    const stderr: string[] = [];
    createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
    const exited = new Promise<{ code: number | null; at: number }>((r) => proc.on('exit', (code) => r({ code, at: Date.now() })));
    await waitFor(async () => (await metric(port, 'market_collector_pipeline_ticks_stored_total') ?? 0) > 0, 60_000, `${name}: collector storing ticks`);
    return { proc, port, stderr, exited };
  }

  const stored = async () => Number((await sqlRows<{ n: string }>(db.url, 'select count(*) as n from ticks'))[0]!.n);

  test('stdout stuck, then its reader dies mid-run: collection carries on throughout, dropped lines on /metrics, said once, SIGTERM exits 0 within 10 s', async () => {
    const reader = spawn('sleep', ['60'], { stdio: ['pipe', 'ignore', 'ignore'] });
    procs.push(reader);
    const c = await start(reader, 'deadsink');
    await waitFor(async () => (await metric(c.port, 'market_collector_log_pending_bytes') ?? 0) > 0, 20_000, 'the pipe is full: log lines waiting');
    let before = await stored();
    await waitFor(async () => (await stored()) > before + 100, 20_000, 'ticks still stored while stdout is stuck');
    reader.kill('SIGKILL'); // the reader dies: EPIPE from now on
    await waitFor(async () => (await metric(c.port, 'market_collector_log_lines_dropped_total') ?? 0) > 10, 10_000, 'dropped lines counted');
    before = await stored();
    await waitFor(async () => (await stored()) > before + 100, 20_000, 'ticks still stored after the log reader died');
    assert.equal(c.stderr.filter((l) => /log output to stdout failed \(EPIPE\).*collection carries on/.test(l)).length, 1, c.stderr.join('\n'));
    const sentAt = Date.now();
    c.proc.kill('SIGTERM');
    const exit = await Promise.race([c.exited, new Promise<null>((r) => setTimeout(() => r(null), 12_000).unref())]);
    assert.ok(exit, 'still running 12 s after SIGTERM');
    assert.equal(exit.code, 0, c.stderr.join('\n'));
    assert.ok(exit.at - sentAt < 10_000, `exit ${exit.at - sentAt} ms after SIGTERM`);
  });
});
