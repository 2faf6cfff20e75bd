/** Shared by the storage CLIs (query, migrate): resolve the database URL (DATABASE_URL or the embedded server). */
import type { StorageConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import { startEmbeddedPostgres } from './embedded.ts';

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

/** A usage error: the CLI prints it and exits 2. */
export class UsageError extends Error {}
