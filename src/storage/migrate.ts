/** Applies migrations/ with kysely's Migrator and a static provider. Concurrent instances serialise on its lock. */
import { Migrator } from 'kysely';
import type { Kysely, MigrationProvider, MigrationResult } from 'kysely';
import { migrations } from '../../migrations/index.ts';
import { classifyDbError, StorageError } from './errors.ts';

const provider: MigrationProvider = { getMigrations: async () => ({ ...migrations }) };

export interface MigrateOutcome {
  readonly applied: readonly string[];
}

/** Brings the schema to the latest migration; throws StorageError naming the failing migration. */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrateOutcome> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r: MigrationResult) => r.status === 'Error');
  if (error !== undefined && error !== null) {
    const where = failed ? ` (migration ${failed.migrationName})` : '';
    const message = error instanceof Error ? error.message : String(error);
    throw new StorageError(`migration failed${where}: ${message}`, classifyDbError(error), { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
