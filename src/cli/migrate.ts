/** `npm run migrate`: applies migrations/ to DATABASE_URL (or the embedded database). Exit 0 ok, 1 failed, 2 usage. */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createLogger, redactSecrets } from '../logger.ts';
import { cliDatabase } from '../storage/cli-support.ts';
import { migrateToLatest } from '../storage/migrate.ts';

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write('usage: npm run migrate\n  applies every pending migration to DATABASE_URL (or the embedded database)\n');
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(`migrate: unknown argument ${JSON.stringify(argv[0])} (the command takes none)\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`migrate: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    return 2;
  }
  const logger = createLogger({ level: 'warn', destination: process.stderr as never });
  const target = await cliDatabase(config.storage, logger);
  const pool = new pg.Pool({ connectionString: target.url, max: 1, application_name: 'market-collector-migrate', connectionTimeoutMillis: config.storage.connectTimeoutMs });
  pool.on('error', () => undefined);
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  try {
    const { applied } = await migrateToLatest(db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
    return 0;
  } finally {
    await db.destroy();
    await target.release();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`migrate: ${redactSecrets(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(1);
  },
);
