/**
 * The first minutes of a real collector process (issue #12 points 4 and 5): a database that comes up after the
 * collector is waited for (warn lines naming the reason) and then used; `.env` in the working directory is read,
 * the environment winning over it; a misspelled variable is warned about with the name meant.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { simEnv } from './helpers/collector-env.ts';
import { proxiedFixture } from './helpers/proxied-db.ts';
import type { ProxiedFixture } from './helpers/proxied-db.ts';
import { waitFor } from './helpers/wait-for.ts';

describe('a collector process started before its database, configured partly by .env', () => {
  let fx: ProxiedFixture;
  let proc: ReturnType<typeof spawn> | undefined;

  before(async () => {
    fx = await proxiedFixture({ tradesPerSecond: 20, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] }, 'mc-startup-');
  });
  after(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    await fx.close();
  });

  test('waits for the database with warn lines, then starts; .env applied under the environment; near miss warned', async () => {
    fx.proxy.cut(); // the database is "not up yet": every connection is reset
    const env = simEnv(fx.sim, { DATABASE_URL: fx.proxy.url(fx.db.url), METRICS_PORT: '0', PID_FILE: join(fx.dir, 'c.pid'), SPILL_DIR: join(fx.dir, 'spill'), BACKFILL_ENABLED: '0', LOG_LEVEL: 'info' });
    const { BINANCE_SYMBOLS: _b, OKX_SYMBOLS: _o, ...rest } = env;
    // From .env: the symbols, a misspelled pool size, and a LOG_LEVEL the environment overrides.
    writeFileSync(join(fx.dir, '.env'), 'BINANCE_SYMBOLS=BTCUSDT\nOKX_SYMBOLS=\nPG_POOL_MAXX=2\nLOG_LEVEL=debug\n');
    proc = spawn(process.execPath, ['--import', pathToFileURL(join(PROJECT_ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(PROJECT_ROOT, 'src/main.ts')], {
      cwd: fx.dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...rest }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Array<Record<string, unknown>> = [];
    createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => proc!.on('exit', (code) => r(code)));
    const has = (pred: (l: Record<string, unknown>) => boolean) => lines.some(pred);

    await waitFor(() => lines.filter((l) => l.msg === String(l.msg) && String(l.msg).startsWith('waiting for the database')).length >= 2, 20_000, 'two warn lines while the database is down');
    const waiting = lines.find((l) => String(l.msg).startsWith('waiting for the database'))!;
    assert.equal(waiting.level, 40, 'warn');
    assert.match(String(waiting.reason), /ECONNRESET|terminated|closed/i, 'names the reason');
    assert.equal(has((l) => l.msg === 'collector started'), false, 'not started while the database is down');
    fx.proxy.restore();
    await waitFor(() => has((l) => l.msg === 'collector started'), 30_000, 'started once the database is up');

    const started = lines.find((l) => l.msg === 'collector started')!;
    assert.deepEqual(started.binance, ['BTCUSDT'], 'symbols from .env');
    assert.deepEqual(started.okx, [], 'an empty value from .env disables OKX');
    const read = lines.find((l) => String(l.msg).startsWith('read .env'))!;
    assert.deepEqual(read.overriddenByEnvironment, ['LOG_LEVEL']);
    assert.equal(has((l) => l.level === 20), false, 'LOG_LEVEL from the environment (info) won over .env (debug)');
    const miss = lines.find((l) => l.variable === 'PG_POOL_MAXX')!;
    assert.equal(miss.level, 40);
    assert.equal(miss.didYouMean, 'PG_POOL_MAX');
    assert.match(String(miss.msg), /unknown variable PG_POOL_MAXX is ignored: did you mean PG_POOL_MAX\?/);

    proc.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const stopped = lines.find((l) => l.msg === 'collector stopped') as Record<string, any>;
    assert.match(String(stopped.startedAt), /^\d{4}-\d\d-\d\dT/, 'exit summary: ISO start time');
    assert.ok(stopped.uptimeMs > 0 && typeof stopped.reconnects.total === 'number', 'uptime and reconnect totals');
    assert.match(String(stopped.pipeline.lastWriteOkAt ?? ''), /^(\d{4}-\d\d-\d\dT.*)?$/, 'ISO like the stats line');
  });
});
