/** A TickSource for the command-line tools: the storage layer's bounded pool with one connection, and Kysely on it. */
import { Kysely, PostgresDialect } from 'kysely';
import type { StorageConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import { ResettablePool } from '../storage/pool.ts';
import type { Database } from '../storage/schema.ts';
import type { TickSource } from './tick-source.ts';

export interface CliSource extends TickSource {
  close(): Promise<void>;
}

/** CLI statements may scan a whole day: at least a minute, or PG_STATEMENT_TIMEOUT_MS if longer. */
const CLI_STATEMENT_TIMEOUT_MS = 60_000;

export function openCliSource(url: string, storage: StorageConfig, logger: Logger): CliSource {
  const pool = new ResettablePool({
    url,
    poolMax: 1,
    idleTimeoutMs: storage.idleTimeoutMs,
    acquireTimeoutMs: Math.max(storage.acquireTimeoutMs, CLI_STATEMENT_TIMEOUT_MS),
    connectTimeoutMs: storage.connectTimeoutMs,
    statementTimeoutMs: Math.max(storage.statementTimeoutMs, CLI_STATEMENT_TIMEOUT_MS),
    maxUses: storage.maxUses,
    maxLifetimeMs: storage.maxLifetimeMs,
    logger,
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, connect: () => pool.connect(), close: () => db.destroy() };
}
