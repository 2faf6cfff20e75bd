/**
 * `npm run export -- --from YYYY-MM-DD --to YYYY-MM-DD --format parquet|csv --out DIR [--exchange X] [--symbol S]`
 * Writes one file per exchange, symbol and UTC day in [from, to] (both included) that has ticks:
 * DIR/<exchange>/<symbol>/<day>.parquet (or .csv.zst), each with <file>.manifest.json beside it, each verified by
 * reading it back before its manifest is written. An existing file of the same day is replaced atomically.
 * Uses DATABASE_URL, or the embedded database (reused if running, started and stopped again if not).
 * Exit 0 ok, 1 database or export failure (the others are still exported), 2 usage error.
 */
import { mkdir } from 'node:fs/promises';
import { loadConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { createLogger, redactSecrets } from '../logger.ts';
import { cliDatabase, UsageError } from '../storage/cli-support.ts';
import { openCliSource } from '../archive/cli-source.ts';
import { daysBetween } from '../archive/day.ts';
import { exportDay } from '../archive/exporter.ts';
import { listInstruments } from '../archive/tick-source.ts';
import { EXPORT_USAGE, parseExportArgs } from './export-args.ts';

async function main(argv: readonly string[]): Promise<number> {
  let args;
  let config;
  try {
    args = parseExportArgs(argv);
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`export: ${err.message}\n${EXPORT_USAGE}`);
      return 2;
    }
    throw err;
  }
  if (args === 'help') {
    process.stdout.write(EXPORT_USAGE);
    return 0;
  }
  try {
    await mkdir(args.out, { recursive: true });
  } catch (err) {
    process.stderr.write(`export: cannot create --out ${args.out}: ${(err as Error).message}\n`);
    return 1;
  }
  const logger = createLogger({ level: 'warn', destination: process.stderr as never });
  const target = await cliDatabase(config.storage, logger);
  const source = openCliSource(target.url, config.storage, logger);
  const started = Date.now();
  let files = 0;
  let rows = 0;
  let failed = 0;
  try {
    const instruments = (await listInstruments(source.db)).filter(
      (i) => (args.exchange === undefined || i.exchange === args.exchange) && (args.symbol === undefined || i.symbol === args.symbol),
    );
    for (const d of daysBetween(args.from, args.to)) {
      for (const inst of instruments) {
        try {
          const r = await exportDay({ source, root: args.out, inst, day: d, format: args.format, logger });
          if (r.kind === 'empty') continue;
          files++;
          rows += r.manifest.rows;
          process.stdout.write(`${r.path}  ${r.manifest.rows} rows  ${r.manifest.bytes} bytes  ids ${r.manifest.firstTradeId}..${r.manifest.lastTradeId}  gaps ${r.manifest.gaps.length}\n`);
        } catch (err) {
          failed++;
          process.stderr.write(`export: ${inst.exchange} ${inst.symbol} ${d}: ${redactSecrets(err instanceof Error ? err.message : String(err))}\n`);
        }
      }
    }
  } finally {
    await source.close();
    await target.release();
  }
  const s = (Date.now() - started) / 1000;
  process.stdout.write(`exported ${files} file${files === 1 ? '' : 's'}, ${rows} rows in ${s.toFixed(1)} s${failed ? `; ${failed} failed` : ''}\n`);
  return failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`export: ${redactSecrets(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(1);
  },
);
