/**
 * `npm run simulate -- [flags]`: runs the exchange simulator until SIGINT/SIGTERM and prints the environment that
 * points the collector at it. Bad flags: a clear message and exit code 2.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../logger.ts';
import { ExchangeSimulator } from './simulator.ts';
import { FAULT_KINDS, faultApplies } from './faults.ts';
import { SIM_EXCHANGES } from './types.ts';
import type { FaultKind, SimExchange, SimulatorOptions } from './types.ts';

const USAGE = `Usage: npm run simulate -- [options]

  --host <addr>                 listen address (default 127.0.0.1)
  --port <n>                    fixed ports: Binance on n, OKX on n+1 (default: any free ports, new each run)
  --binance-port <n>            Binance WS + REST + /__sim control port (overrides --port)
  --okx-port <n>                OKX WS + REST port (overrides --port)
  --rate <n>                    trades per second per symbol (default 5)
  --seed <n>                    tape seed (default 1)
  --first-trade-id <n>          first trade id of every symbol (default 1000000)
  --binance-symbols <a,b>       default BTCUSDT,ETHUSDT
  --okx-symbols <a,b>           default BTC-USDT,ETH-USDT
  --faults <k1,k2>              fault kinds injected round-robin (${FAULT_KINDS.join(', ')})
  --fault-every-ms <n>          interval of the fault schedule (required with --faults)
  --fault-exchanges <e1,e2>     exchanges the schedule hits (default binance,okx)
  --binance-ping-interval-ms <n>, --binance-pong-timeout-ms <n>, --binance-max-age-ms <n>
  --okx-idle-timeout-ms <n>, --retry-after-seconds <n>, --tape-retention <n>
  --log-level <level>           simulator log level (default info)
  -h, --help

Control API on the Binance port: GET /__sim/status; POST /__sim/fault with a JSON body
  {"exchange":"binance"|"okx","kind":"<fault kind>","count":1}   (count optional: the next n sockets/upgrades)
  e.g. curl -X POST -d '{"exchange":"okx","kind":"reset"}' http://127.0.0.1:<port>/__sim/fault
POST /__sim/rest-fault {"exchange","kind":"fail500"|"rateLimit429"|"rateLimit200" (OKX),"count","retryAfterSeconds"}; POST /__sim/rate
{"tradesPerSecond":n}; POST /__sim/pause, /__sim/resume, /__sim/step {"n":k}.`;

class UsageError extends Error {}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const INT_FLAGS = {
  'binance-port': 'binancePort',
  'okx-port': 'okxPort',
  seed: 'seed',
  'first-trade-id': 'firstTradeId',
  'binance-ping-interval-ms': 'binancePingIntervalMs',
  'binance-pong-timeout-ms': 'binancePongTimeoutMs',
  'binance-max-age-ms': 'binanceMaxConnectionAgeMs',
  'okx-idle-timeout-ms': 'okxIdleTimeoutMs',
  'retry-after-seconds': 'retryAfterSeconds',
  'tape-retention': 'tapeRetention',
} as const satisfies Record<string, keyof SimulatorOptions>;

function number(flag: string, v: string, integer: boolean): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < (flag === 'seed' ? -(2 ** 31) : 0) || (integer && !Number.isSafeInteger(n))) {
    throw new UsageError(`--${flag}: expected a${integer ? 'n integer' : ' number'}${flag === 'seed' ? '' : ' >= 0'}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function parseCli(argv: string[]): { options: SimulatorOptions; logLevel: string } | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        host: { type: 'string' },
        port: { type: 'string' },
        rate: { type: 'string' },
        'binance-symbols': { type: 'string' },
        'okx-symbols': { type: 'string' },
        faults: { type: 'string' },
        'fault-every-ms': { type: 'string' },
        'fault-exchanges': { type: 'string' },
        'log-level': { type: 'string' },
        ...Object.fromEntries(Object.keys(INT_FLAGS).map((k) => [k, { type: 'string' as const }])),
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return 'help';
  const options: SimulatorOptions = {};
  if (typeof v.host === 'string') options.host = v.host;
  if (typeof v.rate === 'string') options.tradesPerSecond = number('rate', v.rate, false);
  if (typeof v.port === 'string') {
    const port = number('port', v.port, true);
    if (port < 1 || port > 65_534) throw new UsageError(`--port: expected a port from 1 to 65534 (OKX takes the next one), got ${JSON.stringify(v.port)}`);
    options.binancePort = port;
    options.okxPort = port + 1;
  }
  for (const [flag, key] of Object.entries(INT_FLAGS)) {
    const raw = v[flag];
    if (typeof raw === 'string') (options as Record<string, number>)[key] = number(flag, raw, true);
  }
  const bn = list(v['binance-symbols'] as string | undefined);
  if (bn) options.binanceSymbols = bn;
  const okx = list(v['okx-symbols'] as string | undefined);
  if (okx) options.okxSymbols = okx;
  const kinds = list(v.faults as string | undefined);
  const every = v['fault-every-ms'] as string | undefined;
  const exchanges = list(v['fault-exchanges'] as string | undefined);
  if (kinds && kinds.length > 0) {
    for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new UsageError(`--faults: unknown kind ${JSON.stringify(k)}; known: ${FAULT_KINDS.join(', ')}`);
    if (every === undefined) throw new UsageError('--faults needs --fault-every-ms');
    for (const e of exchanges ?? []) if (!(SIM_EXCHANGES as readonly string[]).includes(e)) throw new UsageError(`--fault-exchanges: unknown exchange ${JSON.stringify(e)}`);
    const targets = (exchanges ?? SIM_EXCHANGES) as SimExchange[];
    for (const k of kinds) {
      if (!targets.some((e) => faultApplies(e, k as FaultKind))) throw new UsageError(`--faults: ${k} does not exist on ${targets.join(', ')}`);
    }
    options.faultSchedule = { everyMs: number('fault-every-ms', every, true), kinds: kinds as FaultKind[], ...(exchanges ? { exchanges: targets } : {}) };
  } else if (every !== undefined || exchanges !== undefined) {
    throw new UsageError('--fault-every-ms and --fault-exchanges need --faults');
  }
  const logLevel = typeof v['log-level'] === 'string' ? v['log-level'] : 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  return { options, logLevel };
}

/** One line a shell can take as it is: the four variables that point the collector at this simulator. */
function exportLine(sim: Pick<ExchangeSimulator, 'binanceWsUrl' | 'okxWsUrl' | 'binanceRestUrl' | 'okxRestUrl'>): string {
  return `export BINANCE_WS_URL=${sim.binanceWsUrl} OKX_WS_URL=${sim.okxWsUrl} BINANCE_REST_URL=${sim.binanceRestUrl} OKX_REST_URL=${sim.okxRestUrl}`;
}

async function main(): Promise<void> {
  let cli;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`simulate: ${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (cli === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let sim: ExchangeSimulator;
  try {
    sim = await ExchangeSimulator.start({ ...cli.options, logger: createLogger({ level: cli.logLevel }) });
  } catch (err) {
    process.stderr.write(`simulate: ${(err as Error).message}\n`);
    process.exit(err instanceof RangeError ? 2 : 1);
  }
  process.stdout.write(
    [
      `exchange simulator running: Binance ${sim.binanceWsUrl}, OKX ${sim.okxWsUrl}`,
      `control API: ${sim.binanceRestUrl}/__sim/status; inject a fault: curl -X POST -d '{"exchange":"binance","kind":"reset"}' ${sim.binanceRestUrl}/__sim/fault`,
      'point the collector at it: paste this line into its shell, then npm start',
      exportLine(sim),
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`simulate: ${signal}, stopping\n`);
    void sim.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`simulate: stop failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await main();
