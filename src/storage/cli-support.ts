/**
 * Shared by the storage CLIs (query, migrate, db, export): resolve the database URL (DATABASE_URL or the embedded
 * server). Importing this module applies `.env` from the working directory (the environment wins), before the CLI
 * reads its configuration, so the CLIs see the same settings as the collector.
 */
import type { StorageConfig } from '../config.ts';
import { applyEnvFile } from '../env-file.ts';
import type { Logger } from '../logger.ts';
import { startEmbeddedPostgres } from './embedded.ts';

applyEnvFile(process.env);

export interface CliDatabase {
  readonly url: string;
  /** Stops the embedded server if this process started it; otherwise a no-op. */
  release(): Promise<void>;
}

export async function cliDatabase(storage: StorageConfig, logger: Logger): Promise<CliDatabase> {
  if (storage.databaseUrl) return { url: storage.databaseUrl, release: async () => {} };
  const embedded = await startEmbeddedPostgres({ dir: storage.embeddedDir, port: storage.embeddedPort, runtimeDir: storage.embeddedRuntimeDir, logger });
  return { url: embedded.url, release: () => embedded.stop() };
}

/** The demo's own embedded server (`npm run demo`), kept apart from the user's data; DEMO_PG_PORT moves its port. */
export const DEMO_EMBEDDED = { dir: './.data/demo/postgres', port: Number(process.env.DEMO_PG_PORT) || 54339 } as const;

/** The command that queries the demo's data after `npm run demo` (printed by the demo at start and at the end). */
export const DEMO_QUERY_COMMAND = `EMBEDDED_PG_DIR=${DEMO_EMBEDDED.dir} EMBEDDED_PG_PORT=${DEMO_EMBEDDED.port} npm run query -- --latest 10`;

/** A usage error: the CLI prints it and exits 2. */
export class UsageError extends Error {}
