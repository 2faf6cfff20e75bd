/**
 * The database a bench or soak run uses: by default its own embedded PostgreSQL in a temp dir (a fresh machine has
 * no server), or a fresh database created on the server DATABASE_URL points at (dropped at the end). The embedded
 * one can be restarted (the soak's database outage).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/storage/embedded.ts';
import type { Logger } from '../../src/logger.ts';

export interface BenchDatabase {
  readonly url: string;
  readonly kind: 'embedded' | 'external';
  /** Embedded: stop and start the server (same data dir and port). Undefined for an external server. */
  readonly restart?: (downMs: number) => Promise<void>;
  /** Embedded: the postmaster's pid (from postmaster.pid), to read the server's CPU time. */
  readonly serverPid?: () => number | null;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function openBenchDatabase(name: string, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<BenchDatabase> {
  const external = env.DATABASE_URL;
  if (external !== undefined && external !== '') return createExternal(external, name);
  return startEmbedded(name, logger);
}

async function startEmbedded(name: string, logger: Logger): Promise<BenchDatabase> {
  const root = mkdtempSync(join(tmpdir(), `mc-${name}-`));
  // When run as root the server runs as the `postgres` OS user, which must be able to create its data dir here.
  chmodSync(root, 0o777);
  const dir = join(root, 'pg');
  const port = await freePort();
  let pgHandle = await startEmbeddedPostgres({ dir, port, logger });
  let stopped = false;
  return {
    url: pgHandle.url,
    kind: 'embedded',
    serverPid() {
      try {
        const pid = Number(readFileSync(join(pgHandle.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
      } catch {
        return null;
      }
    },
    async restart(downMs: number) {
      await pgHandle.stop();
      await new Promise((r) => setTimeout(r, downMs));
      pgHandle = await startEmbeddedPostgres({ dir, port, logger });
    },
    async close() {
      if (stopped) return;
      stopped = true;
      await pgHandle.stop().catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function createExternal(serverUrl: string, name: string): Promise<BenchDatabase> {
  const dbName = `mc_${name}_${process.pid}_${Date.now().toString(36)}`.replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${dbName}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  return {
    url: u.toString(),
    kind: 'external',
    async close() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${dbName} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** One short-lived client for one statement. */
export async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'mc-bench-probe' });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Empties the ticks table, if the collector's migrations have created it yet. */
export async function emptyTicks(url: string): Promise<void> {
  await sql(url, "do $$ begin if to_regclass('tick_rows') is not null then truncate tick_rows; end if; end $$");
}
