/**
 * The first-minutes tools (issue #12 points 6 and 8): the demo's closing line gives one command that queries its
 * data, and that command works after the demo has stopped; `npm run db` starts the embedded server alone and prints
 * a psql command that works; the simulator prints one pasteable `export` line, takes fixed ports, and its fault
 * API lists the valid kinds when given a wrong one.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { freePort } from './helpers/free-port.ts';
import { waitFor } from './helpers/wait-for.ts';

const TSX = pathToFileURL(join(PROJECT_ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const procs: ChildProcess[] = [];
const dirs: string[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function hasPsql(): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, 'psql')));
}

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'mc-tools-'));
  dirs.push(d);
  return d;
}

/** As root the demo's data (under a 0700 scratch dir) goes to the runtime dir: keep that in a scratch dir too. */
function runtimeDir(): string {
  const d = scratch();
  chmodSync(d, 0o755);
  return d;
}

/** A project entry point run from `cwd` (a scratch dir: relative paths such as ./.data land there). */
function start(entry: string, args: string[], cwd: string, env: Record<string, string>) {
  const proc = spawn(process.execPath, ['--import', TSX, join(PROJECT_ROOT, entry), ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  const out: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => out.push(l));
  createInterface({ input: proc.stderr! }).on('line', (l) => out.push(l));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out, exited };
}

/** Runs `VAR=a VAR2=b npm run query -- args` as the user would paste it, against the project from `cwd`. */
async function runPrinted(command: string, cwd: string, extraEnv: Record<string, string>): Promise<string> {
  const m = /^((?:[A-Z_]+=\S+ )+)npm run query -- (.*)$/.exec(command.trim());
  assert.ok(m, `a VAR=value ... npm run query -- ... command: ${command}`);
  const env = Object.fromEntries(m[1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', TSX, join(PROJECT_ROOT, 'src/cli/query.ts'), ...m[2]!.split(' ')], { cwd, env: { PATH: process.env.PATH ?? '', ...extraEnv, ...env } });
  return stdout;
}

describe('demo, db and simulator tools', () => {
  test('the demo names the command that queries its data; after the demo, it shows its ticks; npm run db -- --demo opens that server with a psql line that works', async () => {
    const cwd = scratch();
    const demoPort = String(await freePort());
    const runtime = { EMBEDDED_PG_RUNTIME_DIR: runtimeDir() };
    const demo = start('scripts/demo.ts', [], cwd, { LOG_PRETTY: '0', METRICS_PORT: '0', DEMO_PG_PORT: demoPort, OKX_SYMBOLS: '', BINANCE_SYMBOLS: 'BTCUSDT', ...runtime });
    await waitFor(() => demo.out.some((l) => l.includes('"collector started"')), 60_000, `demo started: ${demo.out.slice(-5).join('\n')}`);
    await waitFor(() => demo.out.filter((l) => l.includes('"connection state"') && l.includes('"to":"live"')).length > 0, 10_000, 'live');
    await new Promise((r) => setTimeout(r, 1500));
    demo.proc.kill('SIGINT');
    assert.equal(await demo.exited, 0, demo.out.slice(-5).join('\n'));
    const closing = demo.out.map((l) => JSON.parse(l) as { msg: string }).find((l) => l.msg.startsWith('demo stopped'));
    assert.ok(closing, 'a closing line');
    const command = /query the demo's ticks afterwards with: (.*?)\s{3}\(psql: npm run db -- --demo\)/.exec(closing.msg)?.[1];
    assert.ok(command, closing.msg);

    // npm run db -- --demo: the demo's server alone (the command above then reuses it)
    const db = start('src/cli/db.ts', ['--demo'], cwd, { DEMO_PG_PORT: demoPort, ...runtime });
    await waitFor(() => db.out.some((l) => l.startsWith('Ctrl-C')), 60_000, `db ready: ${db.out.join('\n')}`);
    const table = await runPrinted(command.replace('--latest 10', '--latest 3 --format json'), cwd, runtime);
    const rows = JSON.parse(table) as Array<{ symbol: string }>;
    assert.equal(rows.length, 3, table);
    assert.equal(rows[0]!.symbol, 'BTCUSDT');
    if (hasPsql()) {
      const psql = db.out.find((l) => l.trim().startsWith('psql:'))!.trim().replace(/^psql:\s*/, '');
      const { stdout } = await promisify(execFile)('sh', ['-c', `${psql} -tAc 'select count(*) > 0 from ticks'`], { cwd });
      assert.equal(stdout.trim(), 't', 'the printed psql command reaches the demo data');
    }
    db.proc.kill('SIGINT');
    assert.equal(await db.exited, 0);
  });

  test('npm run simulate: one pasteable export line, fixed ports, fault errors listing the valid kinds', async () => {
    const port = await freePort();
    const sim = start('src/simulator/cli.ts', ['--port', String(port), '--log-level', 'warn'], scratch(), {});
    await waitFor(() => sim.out.some((l) => l.startsWith('export ')), 30_000, 'export line');
    const line = sim.out.find((l) => l.startsWith('export '))!;
    const { stdout } = await promisify(execFile)('sh', ['-c', `${line}; echo "$BINANCE_WS_URL $OKX_WS_URL $BINANCE_REST_URL $OKX_REST_URL"`]);
    assert.equal(stdout.trim(), `ws://127.0.0.1:${port} ws://127.0.0.1:${port + 1} http://127.0.0.1:${port} http://127.0.0.1:${port + 1}`);
    const post = async (body: unknown) => {
      const r = await fetch(`http://127.0.0.1:${port}/__sim/fault`, { method: 'POST', body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as { error?: string; ok?: boolean } };
    };
    const unknown = await post({ exchange: 'binance', kind: 'explode' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error!, /unknown fault "explode"; valid kinds: close1001, reset, .*oversized/);
    const wrongPlace = await post({ exchange: 'okx', kind: 'serverShutdown' });
    assert.match(wrongPlace.body.error!, /serverShutdown does not exist on okx; valid there: .*notice64008/);
    assert.equal((await post({ exchange: 'okx', kind: 'reset' })).body.ok, true);
    sim.proc.kill('SIGTERM');
    assert.equal(await sim.exited, 0);
  });
});
