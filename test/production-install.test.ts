/**
 * The production path (issue #12 point 1 and its "Done when"), for real: the project is copied into a fresh 0700
 * directory (as /root or a `mktemp -d` is), installed with `npm ci --omit=dev` from the npm cache (no network, no
 * dev dependency: no tsx, no type packages), and then, as the README says:
 *   - `node dist/src/main.js` (the service command) collects ticks from the simulator into the embedded PostgreSQL
 *     (as root from that 0700 directory, so the binaries and the data are placed where the postgres user can reach
 *     them);
 *   - `npm run query`, `npm run migrate` and `npm run diagnose` work (compiled, through scripts/run.mjs);
 *   - SIGTERM ends it with exit 0.
 * Takes about 30 s here, most of it `npm ci` from the cache.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { freePort } from './helpers/free-port.ts';
import { waitFor } from './helpers/wait-for.ts';

const run = promisify(execFile);

function hasGit(): boolean {
  try {
    execFileSync('git', ['-C', PROJECT_ROOT, 'rev-parse', '--is-inside-work-tree'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('npm ci --omit=dev, then the README production commands, from a 0700 directory', { skip: hasGit() ? false : 'not a git checkout: cannot tell which files a clone would have' }, () => {
  let home: string;
  let app: string;
  let sim: ExchangeSimulator;
  let collector: ChildProcess | undefined;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'mc-prod-')); // 0700
    assert.equal(statSync(home).mode & 0o777, 0o700);
    app = join(home, 'market-collector');
    mkdirSync(app);
    // What a fresh clone holds: the tracked files plus new ones not ignored, as they are in this work tree.
    const files = execFileSync('git', ['-C', PROJECT_ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' }).split('\0').filter((f) => f && existsSync(join(PROJECT_ROOT, f)));
    execFileSync('tar', ['-C', PROJECT_ROOT, '--null', '-T', '-', '-cf', join(home, 'src.tar')], { input: files.join('\0') });
    execFileSync('tar', ['-C', app, '-xf', join(home, 'src.tar')]);
    sim = await ExchangeSimulator.start({ tradesPerSecond: 20, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] });
  });
  after(async () => {
    if (collector && collector.exitCode === null) collector.kill('SIGKILL');
    await sim?.stop();
    // a server a failed run left behind on the copy's data dir
    rmSync(home, { recursive: true, force: true });
  });

  test('install, collect, query, migrate, diagnose, stop', async (t) => {
    const started = Date.now();
    const install = await run('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app, maxBuffer: 16 * 1024 * 1024 }).catch((err: { stderr?: string }) => err);
    if ('stderr' in install && /ENOTCACHED/.test(String(install.stderr))) {
      t.skip('the npm cache does not hold every runtime package (run npm ci once with network)');
      return;
    }
    assert.ok(!(install instanceof Error), `npm ci --omit=dev failed: ${String((install as { stderr?: string }).stderr)}`);
    const installMs = Date.now() - started;
    assert.ok(existsSync(join(app, 'dist/src/main.js')), 'npm ci built dist/ (prepare)');
    for (const dev of ['tsx', '@types/node', 'vega-lite']) assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} is not installed`);

    const runtime = mkdtempSync(join(tmpdir(), 'mc-prod-runtime-'));
    chmodSync(runtime, 0o755);
    const env = {
      PATH: process.env.PATH ?? '', HOME: home,
      BINANCE_WS_URL: sim.binanceWsUrl, OKX_WS_URL: sim.okxWsUrl, BINANCE_REST_URL: sim.binanceRestUrl, OKX_REST_URL: sim.okxRestUrl,
      BINANCE_SYMBOLS: 'BTCUSDT', OKX_SYMBOLS: 'BTC-USDT', EMBEDDED_PG_PORT: String(await freePort()), METRICS_PORT: String(await freePort()),
      EMBEDDED_PG_RUNTIME_DIR: runtime,
    };
    let dataDir: string | undefined;
    try {
      collector = spawn(process.execPath, ['dist/src/main.js'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const proc = collector;
      const lines: Array<Record<string, unknown>> = [];
      createInterface({ input: collector.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
      let stderr = '';
      collector.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => collector!.on('exit', (code) => r(code)));
      await waitFor(() => lines.some((l) => l.msg === 'collector started'), 60_000, `collector started (stderr: ${stderr})`);
      const pg = lines.find((l) => String(l.msg).startsWith('embedded PostgreSQL running'))!;
      dataDir = String(pg.dataDir);
      if (process.getuid?.() === 0) assert.ok(String(pg.dataDir).startsWith(runtime), `as root from a 0700 dir the data is placed under the runtime dir: ${String(pg.dataDir)}`);

      const cli = (args: string[]) => run('npm', ['run', '-s', ...args], { cwd: app, env });
      let last = '';
      await waitFor(async () => {
        const { stdout, stderr: err } = await cli(['query', '--', '--counts', '--format', 'json']).catch((e: { stdout: string; stderr: string }) => e);
        last = `${stdout}${err}`;
        const rows = JSON.parse(stdout) as Array<{ ticks: string | number }>;
        return rows.length === 2 && rows.every((r) => Number(r.ticks) > 0);
      }, 30_000, 'npm run query shows ticks of both exchanges').catch((err: Error) => {
        throw new Error(`${err.message}; last output: ${JSON.stringify(last)}`);
      });
      const migrate = await cli(['migrate']);
      assert.match(migrate.stdout, /schema is up to date/);
      const diag = await cli(['diagnose', '--', '--pid', String(proc.pid)]);
      assert.match(diag.stdout, /market-collector diagnose: pid \d+/);
      assert.match(diag.stdout, /TCP sockets by state/);

      proc.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      console.log(`production path: npm ci --omit=dev --offline ${installMs} ms; whole test ${Date.now() - started} ms`);
    } finally {
      if (collector?.exitCode === null) collector.kill('SIGKILL');
      // A collector that did not stop leaves its detached server running: stop it by its pid file.
      const pidFile = dataDir && join(dataDir, 'postmaster.pid');
      if (pidFile && existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
        if (pid > 0) process.kill(pid, 'SIGINT');
        await waitFor(() => !existsSync(pidFile), 10_000, 'left-over server stopped').catch(() => undefined);
      }
      rmSync(runtime, { recursive: true, force: true });
    }
  });
});
