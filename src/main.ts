/**
 * `npm start`: read the configuration, start the collector, stop it on a signal.
 * First SIGINT/SIGTERM: graceful stop (sockets closed, buffer flushed or journaled, pool ended), exit 0 within 10 s.
 * Second signal: exit at once (the journal is synced per batch, so what it holds is intact).
 */
import { loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { createLogger } from './logger.ts';
import type { Logger } from './logger.ts';
import { startCollector } from './collector.ts';
import type { Collector } from './collector.ts';

/** If a graceful stop has not finished by then, something is stuck: say so and leave. */
const STOP_WATCHDOG_MS = 9_500;

function fail(logger: Logger | null, message: string, err: unknown, code: number): never {
  if (logger) logger.fatal({ err }, message);
  else process.stderr.write(`market-collector: ${message}: ${err instanceof Error ? err.message : String(err)}\n`);
  // pino writes synchronously to stdout by default; exit now.
  process.exit(code);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`market-collector: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, pretty: config.logPretty });

  let starting: Promise<Collector> | null = null;
  let signals = 0;
  let exitCode = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    logger.info({ signal }, 'signal received: stopping gracefully (send it again to exit at once)');
    const watchdog = setTimeout(() => fail(logger, `graceful stop did not finish within ${STOP_WATCHDOG_MS} ms`, null, 1), STOP_WATCHDOG_MS);
    watchdog.unref();
    void (starting ?? Promise.reject(new Error('not started'))).then((c) => c.stop()).then(
      () => {
        clearTimeout(watchdog);
        logger.flush();
        process.exit(exitCode);
      },
      (err: unknown) => fail(logger, 'error while stopping', err, 1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception: stopping');
    exitCode = 1;
    if (signals === 0) onSignal('SIGTERM');
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection: stopping');
    exitCode = 1;
    if (signals === 0) onSignal('SIGTERM');
  });

  starting = startCollector(config, logger);
  try {
    const collector = await starting;
    void collector.fatal.then((err) => {
      logger.fatal({ err }, err.message);
      exitCode = 2;
      if (signals === 0) onSignal('SIGTERM');
    });
  } catch (err) {
    // A configuration the exchanges refuse (unknown symbols) is a configuration error too: exit code 2.
    fail(logger, 'could not start', err, err instanceof ConfigError ? 2 : 1);
  }
}

void main();
