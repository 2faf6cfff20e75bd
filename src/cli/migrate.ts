/**
 * `npm run migrate`: applies migrations/ to DATABASE_URL (or the embedded database), creates the daily partitions of
 * yesterday .. the day after tomorrow, and moves the rows of a pre-partitioning `ticks` table into `tick_rows` to
 * the end (the collector would do that in the background; each chunk is its own transaction, so an interrupted run
 * loses nothing and the next one carries on). Exit 0 ok, 1 failed, 2 usage.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createLogger, redactSecrets } from '../logger.ts';
import { cliDatabase } from '../storage/cli-support.ts';
import { systemClock } from '../clock.ts';
import { legacyPresent, moveLegacyRows } from '../storage/legacy.ts';
import { migrateToLatest } from '../storage/migrate.ts';
import { aheadDays, ensurePartitions } from '../storage/partitions.ts';
import type { Database } from '../storage/schema.ts';

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'usage: npm run migrate\n  applies every pending migration to DATABASE_URL (or the embedded database), creates the daily partitions\n' +
        '  of yesterday .. today + 2, and moves the rows of an old unpartitioned ticks table into tick_rows\n',
    );
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
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    const { applied } = await migrateToLatest(db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
    const created = await ensurePartitions(db, aheadDays(systemClock));
    process.stdout.write(created.length ? `partitions created: ${created.join(', ')}\n` : 'partitions up to date\n');
    if (await legacyPresent(db)) {
      process.stdout.write('moving the rows of the old ticks table into tick_rows (interrupt at any time: the next run carries on)\n');
      let last = 0;
      const moved = await moveLegacyRows(db, {
        logger,
        onProgress: (p) => {
          if (Date.now() - last < 2_000) return;
          last = Date.now();
          process.stdout.write(`  moved ${p.moved} rows (block ${p.block} of ${p.blocks})\n`);
        },
      });
      process.stdout.write(`moved ${moved.moved} rows (${moved.moved - moved.inserted} were already in tick_rows); old table dropped\n`);
    }
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
