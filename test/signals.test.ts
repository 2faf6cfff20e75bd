/**
 * The collector as a real process: SIGTERM with ticks in flight exits 0 with everything received in the table;
 * with the database unreachable the buffer is journaled, a second signal exits at once, the journal is intact and
 * replayed by the next run; a bad configuration value stops the process naming the variable.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { spawnCollector } from './helpers/child-collector.ts';
import type { ChildCollector } from './helpers/child-collector.ts';
import { simEnv } from './helpers/collector-env.ts';
import { sqlRows } from './helpers/collector-harness.ts';
import { createTestDatabase } from './helpers/db.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

const SIM = { tradesPerSecond: 200, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] };

function files(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

describe('signals on a real collector process', () => {
  let sim: ExchangeSimulator;
  let db: { url: string; drop(): Promise<void> };
  let dir: string;
  const children: ChildCollector[] = [];

  before(async () => {
    sim = await ExchangeSimulator.start(SIM);
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'mc-signals-'));
  });
  after(async () => {
    for (const c of children) c.kill();
    await sim.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string>) =>
    simEnv(sim, {
      BINANCE_SYMBOLS: 'BTCUSDT',
      OKX_SYMBOLS: 'BTC-USDT',
      METRICS_PORT: '0',
      PID_FILE: join(dir, 'collector.pid'),
      SPILL_DIR: join(dir, 'spill'),
      BACKFILL_ENABLED: '0',
      LOG_LEVEL: 'info',
      ...extra,
    });

  test('SIGTERM with ticks in flight: exit 0 within 10 s, every received tick in the table', async () => {
    await sqlRows(db.url, 'select 1');
    const child = spawnCollector(env({ DATABASE_URL: db.url }));
    children.push(child);
    await child.waitForLog((l) => l.msg === 'collector started', 60_000, 'started');
    await waitFor(async () => {
      const r = await sqlRows<{ n: string }>(db.url, 'select count(*) as n from ticks').catch(() => [{ n: '0' }]);
      return Number(r[0]!.n) > 200;
    }, 20_000, 'ticks stored');
    // DuckDB (the archive's) is opened only in the archive child: its native library is not in the collector's memory.
    const maps = readFileSync(`/proc/${child.proc.pid}/maps`, 'utf8');
    assert.ok(!/duckdb/i.test(maps), 'no DuckDB library mapped in the collector process');
    assert.ok(/\.node$|libc\.so/m.test(maps), 'the maps file lists libraries');
    const sentAt = Date.now();
    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    console.log(`SIGTERM → exit ${exit.code} after ${exit.at - sentAt} ms`);
    assert.equal(exit.code, 0, `exit 0 (stderr: ${child.stderr.join('\n')})`);
    assert.ok(exit.at - sentAt < 10_000, `exited within 10 s (${exit.at - sentAt} ms)`);
    const stopped = child.lines.find((l) => l.msg === 'collector stopped') as { pipeline: { ticksReceived: number; ticksStored: number; ticksDuplicate: number; journalTicks: number } } | undefined;
    assert.ok(stopped, 'logged its final figures');
    const rows = await sqlRows<{ n: string; lo: string; hi: string; exchange: string }>(db.url, 'select exchange, count(*) as n, min(trade_id) as lo, max(trade_id) as hi from ticks group by exchange');
    const total = rows.reduce((s, r) => s + Number(r.n), 0);
    assert.equal(stopped.pipeline.journalTicks, 0, 'nothing left in a journal: the database was up');
    assert.equal(total, stopped.pipeline.ticksReceived - stopped.pipeline.ticksDuplicate, 'every received tick is in the table');
    for (const r of rows) assert.equal(Number(r.hi) - Number(r.lo) + 1, Number(r.n), `${r.exchange}: contiguous ids`);
  });

  test('database unreachable: SIGTERM journals the buffer; a second signal exits at once; the next run replays the journal', async () => {
    const u = new URL(db.url);
    const proxy = await TcpProxy.start(u.hostname, Number(u.port || 5432));
    const spill = join(dir, 'spill');
    try {
      await sqlRows(db.url, 'truncate tick_rows');
      const child = spawnCollector(env({ DATABASE_URL: proxy.url(db.url), MAX_BUFFERED_TICKS: '100', PG_ACQUIRE_TIMEOUT_MS: '500', PG_CONNECT_TIMEOUT_MS: '500' }));
      children.push(child);
      await child.waitForLog((l) => l.msg === 'collector started', 60_000, 'started');
      await sleep(500);
      proxy.cut();
      await waitFor(() => files(spill).length > 0, 20_000, 'journal in use while the database is down');
      await sleep(500);
      const sentAt = Date.now();
      child.proc.kill('SIGTERM');
      await sleep(100);
      child.proc.kill('SIGTERM');
      const exit = await child.exited;
      console.log(`second signal → exit ${exit.code} after ${exit.at - sentAt} ms`);
      assert.notEqual(exit.code, null, 'exited by itself, not killed');
      assert.ok(exit.at - sentAt < 5_000, 'the second signal exits at once');
      // The journal is intact: every line parses.
      let journaled = 0;
      for (const f of files(spill)) {
        const text = readFileSync(join(spill, f), 'utf8');
        for (const line of text.split('\n')) {
          if (line.trim() === '') continue;
          JSON.parse(line);
          journaled++;
        }
      }
      assert.ok(journaled > 0, `journal holds ticks (${journaled} lines)`);

      proxy.restore();
      const next = spawnCollector(env({ DATABASE_URL: db.url }));
      children.push(next);
      await next.waitForLog((l) => l.msg === 'collector started', 60_000, 'restarted');
      await waitFor(() => files(spill).length === 0, 30_000, 'journal replayed and removed');
      next.proc.kill('SIGTERM');
      assert.equal((await next.exited).code, 0);
      const rows = await sqlRows<{ n: string }>(db.url, 'select count(*) as n from ticks');
      assert.ok(Number(rows[0]!.n) >= journaled, 'the journaled ticks are in the table');
    } finally {
      await proxy.stop();
    }
  });

  test('a bad configuration value stops the process with a message naming the variable (exit 2)', async () => {
    const child = spawnCollector({ ...env({}), PG_POOL_MAX: 'lots' });
    children.push(child);
    const exit = await child.exited;
    assert.equal(exit.code, 2);
    assert.match(child.stderr.join('\n'), /PG_POOL_MAX: expected an integer/);
  });
});
