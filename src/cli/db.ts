/**
 * `npm run db [-- --demo]`: the embedded PostgreSQL alone, for psql or any client, without the collector. Prints the
 * psql command and the connection details, then runs until Ctrl-C (SIGINT/SIGTERM), when it stops the server if it
 * started it (a server already running on that data dir, a collector's for instance, is reused and left running).
 *   --demo   the demo's server (./.data/demo/postgres on port 54339) instead of EMBEDDED_PG_DIR/EMBEDDED_PG_PORT
 * With DATABASE_URL set there is nothing to start: it says so (exit 0). Exit 1: the server could not start; 2: usage.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createLogger, redactSecrets } from '../logger.ts';
import { DEMO_EMBEDDED } from '../storage/cli-support.ts';
import { psqlCommand, startEmbeddedPostgres } from '../storage/embedded.ts';

const USAGE = `usage: npm run db [-- --demo]
  starts the embedded PostgreSQL alone (EMBEDDED_PG_DIR, EMBEDDED_PG_PORT) and prints the psql command
  --demo   the demo's server instead (${DEMO_EMBEDDED.dir}, port ${DEMO_EMBEDDED.port})`;

async function main(argv: string[]): Promise<number> {
  let demo = false;
  try {
    const { values } = parseArgs({ args: argv, options: { demo: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    demo = values.demo ?? false;
  } catch (err) {
    process.stderr.write(`db: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`db: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    return 2;
  }
  if (config.storage.databaseUrl && !demo) {
    process.stdout.write(`DATABASE_URL is set (${redactSecrets(config.storage.databaseUrl)}): nothing to start; psql "$DATABASE_URL"\n`);
    return 0;
  }
  const logger = createLogger({ level: 'warn', fd: 2 });
  const dir = demo ? DEMO_EMBEDDED.dir : config.storage.embeddedDir;
  const port = demo ? DEMO_EMBEDDED.port : config.storage.embeddedPort;
  const server = await startEmbeddedPostgres({ dir, port, runtimeDir: config.storage.embeddedRuntimeDir, logger });
  const u = new URL(server.url);
  process.stdout.write(
    [
      `embedded PostgreSQL ${server.owned ? 'started' : 'already running (left running on exit)'} on ${u.hostname}:${u.port}, data ${server.dataDir}`,
      `  psql:     ${psqlCommand(server)}`,
      `  user ${decodeURIComponent(u.username)}, database ${decodeURIComponent(u.pathname.slice(1))}, password in ${server.passwordFile}`,
      `Ctrl-C ${server.owned ? 'stops it' : 'leaves it running'}.`,
      '',
    ].join('\n'),
  );
  // Signal handlers alone do not keep the process alive: a timer does, until a signal arrives.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(keepAlive);
  await server.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`db: ${redactSecrets(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(1);
  },
);
