/**
 * The service entry point: `node dist/src/main.js` (what `npm start` runs after building).
 *
 * Start: `.env` in the working directory (the environment wins over it) → the configuration (a bad value: a
 * message naming it, exit 2) → a warning per unknown variable that is a near miss of a known one → the collector.
 *
 * Exit paths, every one bounded:
 *  - first SIGINT/SIGTERM: graceful stop (sockets closed, buffer flushed or journaled, pool ended), exit 0; a start
 *    still waiting for the database is cancelled instead;
 *  - second signal (or a signal during a stop forced by an error): journal what is in memory, synchronously, and
 *    exit 130 at once;
 *  - an unexpected error (uncaught exception, unhandled rejection): logged with its reason, graceful stop, exit 1;
 *  - the stop watchdog: armed when a stop begins and never cleared before the process exits; if the graceful stop
 *    has not finished after STOP_WATCHDOG_MS, it journals what is in memory synchronously and exits 1.
 * Logging never delays an exit: lines are drained for at most LOG_DRAIN_MS, and a failing log destination only
 * drops lines (src/log-sink.ts). (Before this, the watchdog was cleared before `logger.flush()`, and pino's exit
 * hook then retried a write to a dead pipe for ever inside process.exit: issue #14, failure 5.)
 */
import { writeSync } from 'node:fs';
import { loadConfig, nearMissVariables } from './config.ts';
import type { Config } from './config.ts';
import { applyEnvFile } from './env-file.ts';
import { CollectorError, ConfigError } from './errors.ts';
import { drainLogs } from './log-sink.ts';
import { createLogger, redactSecrets } from './logger.ts';
import type { Logger } from './logger.ts';
import { startCollector } from './collector.ts';
import type { Collector } from './collector.ts';

/** If a graceful stop has not finished by then, something is stuck: journal what is in memory and leave. */
const STOP_WATCHDOG_MS = 9_500;
/** The most an exit waits for log lines to reach a slow reader. */
const LOG_DRAIN_MS = 250;
/** Fatal lines logged for unexpected errors; a storm of them is counted, not printed. */
const MAX_FATAL_LINES = 20;

function stderr(text: string): void {
  try {
    writeSync(2, redactSecrets(text));
  } catch {
    // stderr is gone: nothing left to tell
  }
}

/** One line for a failure we expect (a CollectorError says what failed); the full error for anything else. */
function describe(err: unknown): { reason: string; err?: unknown } {
  if (err instanceof CollectorError) return { reason: `${err.message} (${err.code})` };
  return { reason: err instanceof Error ? err.message : String(err), err };
}

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      stderr(`market-collector: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

function reportEnvironment(logger: Logger, envFile: ReturnType<typeof applyEnvFile>): void {
  if (envFile.error) logger.warn({ file: envFile.path, error: envFile.error }, 'could not read .env; using the environment only');
  else if (envFile.path) logger.info({ file: envFile.path, applied: envFile.applied, overriddenByEnvironment: envFile.overridden }, 'read .env (the environment wins over it)');
  for (const m of nearMissVariables(process.env)) {
    logger.warn({ variable: m.variable, didYouMean: m.didYouMean }, `unknown variable ${m.variable} is ignored: did you mean ${m.didYouMean}?`);
  }
}

function main(): void {
  const envFile = applyEnvFile(process.env);
  const config = readConfig();
  const logger = createLogger({ level: config.logLevel, pretty: config.logPretty });
  reportEnvironment(logger, envFile);

  const abortStart = new AbortController();
  let collector: Collector | null = null;
  let exitCode = 0;
  let stopping = false;
  let exiting = false;

  /** The one way out. The drain is bounded and a ref'd timer guarantees process.exit runs. */
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(code), LOG_DRAIN_MS + 50);
    void drainLogs(LOG_DRAIN_MS).finally(() => process.exit(code));
  };

  /** Synchronously journal the ticks only held in memory (an exit that cannot wait for the graceful close). */
  const journalNow = (why: string): void => {
    if (!collector) return;
    try {
      const ticks = collector.storage.emergencyJournal();
      logger.warn({ ticks, why }, 'ticks held in memory journaled before exiting (replayed at the next start)');
    } catch (err) {
      logger.fatal({ err, why }, 'could not journal the ticks held in memory before exiting: they are lost');
    }
  };

  /** Begins the graceful stop (once); the first non-zero code asked for is the exit code. */
  const requestStop = (reason: string, code: number): void => {
    if (exitCode === 0) exitCode = code;
    if (stopping) return;
    stopping = true;
    // Never cleared: only process.exit ends it. Ref'd, so a stop that hangs on nothing cannot end the process silently.
    setTimeout(() => {
      logger.fatal({ reason, watchdogMs: STOP_WATCHDOG_MS }, `graceful stop did not finish within ${STOP_WATCHDOG_MS} ms: exiting`);
      journalNow('stop watchdog');
      exit(exitCode || 1);
    }, STOP_WATCHDOG_MS);
    abortStart.abort(new Error(reason));
    starting
      .then(
        (c) => c.stop(),
        () => undefined, // a failed or cancelled start has already unwound
      )
      .then(
        () => exit(exitCode),
        (err: unknown) => {
          logger.fatal({ ...describe(err) }, 'error while stopping');
          journalNow('error while stopping');
          exit(exitCode || 1);
        },
      );
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'signal during the stop: journaling what is in memory and exiting now');
      journalNow(`second signal (${signal})`);
      exit(130);
      return;
    }
    logger.info({ signal }, 'signal received: stopping gracefully (send it again to exit at once)');
    requestStop(`signal ${signal}`, 0);
  };
  let unexpected = 0;
  const onUnexpected = (kind: string) => (err: unknown) => {
    const { reason } = describe(err);
    if (++unexpected <= MAX_FATAL_LINES) logger.fatal({ err, unexpected }, `${kind}: stopping (${reason})`);
    requestStop(`${kind}: ${reason}`, 1);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onUnexpected('uncaught exception'));
  process.on('unhandledRejection', onUnexpected('unhandled rejection'));

  const starting = startCollector(config, logger, { signal: abortStart.signal });
  starting.then(
    (c) => {
      collector = c;
      // Every instrument of a connection refused (a wrong URL or channel): a configuration error, exit 2.
      void c.fatal.then((err) => {
        logger.fatal({ err }, err.message);
        requestStop(err.message, 2);
      });
    },
    (err: unknown) => {
      if (abortStart.signal.aborted) {
        logger.info({ reason: String(abortStart.signal.reason) }, 'start cancelled');
        return; // requestStop exits
      }
      logger.fatal({ ...describe(err) }, `could not start: ${describe(err).reason}`);
      // A configuration the exchanges refuse (unknown symbols) is a configuration error too: exit code 2.
      exit(err instanceof ConfigError ? 2 : 1);
    },
  );
}

main();
