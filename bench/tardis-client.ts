/**
 * Peer of the benchmark: tardis-dev's normalized real-time stream (`streamNormalized` + `normalizeTrades`) on the
 * same feed. It receives and normalises trades and stores nothing. Run by bench.ts as a child process (plain node,
 * compiled like the other clients); tardis-dev is not a dependency of the project: bench/lib/peers.ts installs it into
 * a cache dir at bench time and passes that dir as TARDIS_DEV_DIR. Its feeds read the WSS_URL_BINANCE / WSS_URL_OKEX
 * overrides (set by bench.ts to the simulator). Prints `{"trades":n,"errors":n}` once a second.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { reportEvery, streamOptionsFromEnv } from './lib/stream-client.ts';

/** The part of tardis-dev's API this client uses (its own typings are not available at compile time). */
interface TardisDev {
  streamNormalized(options: { exchange: string; symbols: string[]; onError?: (err: Error) => void }, ...normalizers: unknown[]): AsyncIterable<{ type: string }>;
  normalizeTrades: unknown;
}

const dir = process.env.TARDIS_DEV_DIR;
if (!dir) throw new Error('TARDIS_DEV_DIR is not set');
const tardis = createRequire(join(dir, 'package.json'))('tardis-dev') as TardisDev;
const opts = streamOptionsFromEnv(process.env);

let trades = 0;
let errors = 0;

async function consume(exchange: string, symbols: string[]): Promise<void> {
  if (symbols.length === 0) return;
  const messages = tardis.streamNormalized({ exchange, symbols, onError: () => void errors++ }, tardis.normalizeTrades);
  for await (const m of messages) if (m.type === 'trade') trades++;
}

const timer = reportEvery(1000, () => ({ trades, errors }));
process.on('SIGTERM', () => {
  clearInterval(timer);
  process.exit(0);
});
void Promise.all([consume('binance', opts.binanceSymbols.map((s) => s.toLowerCase())), consume('okex', [...opts.okxSymbols])]).catch((err: unknown) => {
  process.stderr.write(`tardis-client: ${String(err)}\n`);
  process.exit(1);
});
