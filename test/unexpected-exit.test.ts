/**
 * An unexpected error in a real collector process (issue #14 b, main.ts side): with the database down and ticks
 * only in memory, an uncaught exception is logged with its reason, and even when the graceful stop cannot finish
 * (the exchange sockets ignore close and terminate, as one that never emits 'close' does), what was in memory is
 * journaled and the process exits 1 within the stop watchdog's bound. Before, the watchdog exited without
 * journaling: the buffer was lost. The exception is a real one (a preloaded module throws from a timer on SIGUSR2),
 * not a hook in the collector.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { simEnv } from './helpers/collector-env.ts';
import { proxiedFixture } from './helpers/proxied-db.ts';
import type { ProxiedFixture } from './helpers/proxied-db.ts';
import { waitFor } from './helpers/wait-for.ts';

function journaledTicks(dir: string): number {
  let n = 0;
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const f of files) for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line.trim() !== '') n++;
  return n;
}

describe('an uncaught exception while the database is down', () => {
  let fx: ProxiedFixture;
  let proc: ReturnType<typeof spawn> | undefined;

  before(async () => {
    fx = await proxiedFixture({ tradesPerSecond: 200, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] }, 'mc-crash-');
  });
  after(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    await fx.close();
  });

  test('logged with its reason, what is in memory journaled, exit 1 within the bound', async () => {
    const spill = join(fx.dir, 'spill');
    const env = simEnv(fx.sim, {
      BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT', DATABASE_URL: fx.proxy.url(fx.db.url), METRICS_PORT: '0', PID_FILE: join(fx.dir, 'c.pid'),
      SPILL_DIR: spill, BACKFILL_ENABLED: '0', PG_ACQUIRE_TIMEOUT_MS: '500', PG_CONNECT_TIMEOUT_MS: '500',
    });
    proc = spawn(process.execPath, ['--import', pathToFileURL(join(PROJECT_ROOT, 'node_modules/tsx/dist/loader.mjs')).href, '--import', pathToFileURL(join(PROJECT_ROOT, 'test/fixtures/crash-on-sigusr2.mjs')).href, join(PROJECT_ROOT, 'src/main.ts')], {
      cwd: fx.dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Array<Record<string, any>> = [];
    createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, any>));
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; at: number }>((r) => proc!.on('exit', (code) => r({ code, at: Date.now() })));
    await waitFor(() => lines.some((l) => l.msg === 'collector started'), 60_000, `started: ${stderr}`);
    fx.proxy.cut();
    await new Promise((r) => setTimeout(r, 1500)); // ~600 ticks arrive with nowhere to go but memory
    assert.equal(journaledTicks(spill), 0, 'nothing journaled yet: the ticks are in memory (MAX_BUFFERED_TICKS not reached)');
    const sentAt = Date.now();
    proc.kill('SIGUSR2');
    const exit = await exited;
    assert.equal(exit.code, 1, stderr);
    assert.ok(exit.at - sentAt < 11_000, `exited ${exit.at - sentAt} ms after the error`);
    const fatal = lines.find((l) => l.level === 60);
    assert.ok(fatal, 'a fatal line');
    assert.match(String(fatal.msg), /^uncaught exception: stopping \(injected crash for the test\)$/);
    const journaled = journaledTicks(spill);
    assert.ok(journaled > 100, `what was in memory is in the journal: ${journaled} ticks`);
    const stopped = lines.find((l) => l.msg === 'collector stopped');
    const emergency = lines.find((l) => String(l.msg).startsWith('ticks held in memory journaled before exiting'));
    // Either the stop finished (sockets closed on a timer) and storage journaled, or the watchdog journaled.
    assert.ok(stopped || (emergency && emergency.why === 'stop watchdog'), `a graceful stop or the watchdog's journal: ${lines.slice(-4).map((l) => l.msg).join(' | ')}`);
    console.log(`uncaught exception, database down: ${stopped ? 'graceful stop' : `watchdog journaled ${emergency!.ticks} ticks`}; exit ${exit.code} after ${exit.at - sentAt} ms; ${journaled} ticks in the journal`);
  });
});
