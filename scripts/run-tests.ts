/**
 * `npm test`: runs every test/**\/*.test.ts with node:test through tsx.
 * Extra arguments are test files or --test-name-pattern filters, passed through.
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
import { join } from 'node:path';
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

let child: ReturnType<typeof spawn> | undefined;
const onSignal = (sig: NodeJS.Signals): void => {
  if (child) child.kill(sig);
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

child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...flags, ...files], {
  stdio: 'inherit',
  env,
});
child.on('exit', (code, signal) => {
  void cleanup().then(() => process.exit(code ?? (signal ? 1 : 0)));
});
