/**
 * `npm test`: runs every test/**\/*.test.ts with node:test through tsx, in two lanes at once:
 *   - the main lane: every file outside test/long/, one file at a time (their timing assertions stay honest);
 *   - the long lane: the files under test/long/ (long and mostly waiting on timers and child processes: a 2-minute
 *     quiet market, real-pace liveness defaults, the 60 s soak with its own database server, the 30 s hostile feed, two redundant
 *     collectors, backfill after restarts), all at once, alongside the main lane, so they add their length once
 *     rather than to the sum. None of them stops the shared database server (the outage test, which does, stays
 *     in the main lane; the soak restarts a server of its own).
 * Both lanes share the one database server; the run fails if either lane fails. The long lane's output is held back
 * and printed after the main lane's, so the two never interleave.
 * Extra arguments are test files or --test-name-pattern filters, passed through (files go to their lane).
 *
 * Database: unless TEST_DATABASE_URL is set, ONE embedded PostgreSQL is started for the whole run in a fresh temp
 * dir on a random free port, and the test child gets TEST_DATABASE_URL (the `postgres` database; each test file
 * creates its own database, see test/helpers/db.ts), TEST_PG_DATA_DIR and TEST_PG_BIN (so the outage test can
 * `pg_ctl stop`/`start` it). The server is stopped and the dir removed at the end, on failure and on SIGINT/SIGTERM.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { createLogger } from '../src/logger.ts';
import { startEmbeddedPostgres } from '../src/storage/embedded.ts';
import type { EmbeddedPostgres } from '../src/storage/embedded.ts';

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const args = process.argv.slice(2);
const files = args.some((a) => a.endsWith('.ts')) ? args.filter((a) => a.endsWith('.ts')) : findTests('test');
const flags = args.filter((a) => !a.endsWith('.ts'));
const LONG_DIR = join('test', 'long');
const isLong = (f: string) => relative(process.cwd(), resolve(f)).startsWith(LONG_DIR + sep);
const longFiles = files.filter(isLong);
const mainFiles = files.filter((f) => !isLong(f));
const env: NodeJS.ProcessEnv = { ...process.env };

let server: EmbeddedPostgres | undefined;
let tempDir: string | undefined;
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await server?.stop();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  })();
  return cleaning;
}

const children = new Set<ReturnType<typeof spawn>>();
const onSignal = (sig: NodeJS.Signals): void => {
  if (children.size > 0) for (const c of children) c.kill(sig);
  else void cleanup().then(() => process.exit(130));
};
process.on('SIGINT', onSignal).on('SIGTERM', onSignal);

if (!env.TEST_DATABASE_URL) {
  const logger = createLogger({ level: process.env.TEST_PG_LOG_LEVEL ?? 'warn' });
  tempDir = mkdtempSync(join(tmpdir(), 'mc-test-pg-'));
  chmodSync(tempDir, 0o755); // as root, the server runs as OS user `postgres`, which must reach the data dir
  try {
    server = await startEmbeddedPostgres({ dir: join(tempDir, 'data'), port: await freePort(), logger, database: 'postgres' });
  } catch (err) {
    console.error(`could not start the embedded PostgreSQL for tests: ${(err as Error).message}`);
    await cleanup();
    process.exit(1);
  }
  env.TEST_DATABASE_URL = server.url;
  env.TEST_PG_DATA_DIR = server.dataDir;
  env.TEST_PG_BIN = server.binDir;
  env.TEST_PG_PORT = String(server.port);
}

/** Runs one lane; resolves with its exit code (a signal counts as a failure). */
function lane(laneFiles: string[], concurrency: number, output: 'inherit' | 'buffer'): { done: Promise<number>; text: () => string } {
  const chunks: Buffer[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...flags, ...laneFiles], {
    stdio: output === 'inherit' ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    env,
  });
  children.add(child);
  child.stdout?.on('data', (c: Buffer) => chunks.push(c));
  child.stderr?.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? (signal ? 1 : 0));
    }),
  );
  return { done, text: () => Buffer.concat(chunks).toString('utf8') };
}

const long = longFiles.length > 0 ? lane(longFiles, longFiles.length, mainFiles.length > 0 ? 'buffer' : 'inherit') : null;
const main = mainFiles.length > 0 ? lane(mainFiles, 1, 'inherit') : null;
const mainCode = main ? await main.done : 0;
if (long && main) process.stdout.write(`\n# long lane (test/long/, ran alongside the main lane): ${longFiles.join(', ')}\n`);
const longCode = long ? await long.done : 0;
if (long && main) process.stdout.write(long.text());
if (long && main) process.stdout.write(`# main lane exit ${mainCode}, long lane exit ${longCode}\n`);
await cleanup();
process.exit(mainCode !== 0 ? mainCode : longCode);
