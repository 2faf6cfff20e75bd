/**
 * The storage side's reference points: floor (2), `COPY` of the same rows straight into the same table, and the
 * pattern the collector replaces, one `INSERT` per tick through a default pg pool on the same stream.
 */
import pg from 'pg';
import type { ExchangeSimulator } from '../../src/simulator/index.ts';
import { sleep } from '../../test/helpers/wait-for.ts';
import { copyIn } from './copy-in.ts';
import type { TapeWindow } from './curve.ts';
import { sql } from './database.ts';
import { collectorEnv, perSymbol, SYMBOLS } from './feed-setup.ts';
import { startNode } from './node-proc.ts';
import { fmtInt } from './stats.ts';

/**
 * The rows a window emitted, rebuilt from the tape as CSV lines in `tick_rows`' layout, per symbol (the instrument id
 * is the collector's, known only once it has registered the symbol: `copyFloor` adds it). Call right after the
 * window (the tape is a ring).
 */
export interface WindowCsv {
  readonly rows: number;
  /** `exchange:symbol` -> lines after the instrument id: `,<flags>,<price>,<qty>` preceded by `<time>,<id>,,1,` */
  readonly bySymbol: ReadonlyMap<string, readonly [head: string, tail: string][]>;
}

export function windowCsv(sim: ExchangeSimulator, w: TapeWindow): WindowCsv {
  const bySymbol = new Map<string, [string, string][]>();
  let rows = 0;
  for (const s of SYMBOLS) {
    const key = `${s.exchange}:${s.symbol}`;
    const lines: [string, string][] = [];
    const lo = w.firstIds.get(key)! + 1;
    const hi = w.lastIds.get(key)!;
    for (let id = lo; id <= hi; id++) {
      const t = sim.trade(s.exchange, s.symbol, id);
      if (!t) continue;
      // received 1 ms after the trade: received_at null, received_delay_ms 1
      lines.push([`${new Date(t.time).toISOString()},${id},,1,`, `,${t.side === 'sell' ? 1 : 0},${t.price},${t.qty}\n`]);
      rows++;
    }
    bySymbol.set(key, lines);
  }
  return { rows, bySymbol };
}

/** The CSV chunks (about 1 MiB each) with the collector's instrument ids filled in. */
async function csvChunks(url: string, csv: WindowCsv): Promise<Buffer[]> {
  const ids = new Map((await sql<{ k: string; id: string }>(url, "select exchange || ':' || symbol as k, instrument_id::text as id from instruments")).map((r) => [r.k, r.id]));
  const chunks: Buffer[] = [];
  let parts: string[] = [];
  let size = 0;
  for (const [key, lines] of csv.bySymbol) {
    const id = ids.get(key);
    if (id === undefined) throw new Error(`no instruments row for ${key}: the collector never stored it`);
    for (const [head, tail] of lines) {
      const line = head + id + tail;
      parts.push(line);
      size += line.length;
      if (size > 1 << 20) {
        chunks.push(Buffer.from(parts.join('')));
        parts = [];
        size = 0;
      }
    }
  }
  if (parts.length > 0) chunks.push(Buffer.from(parts.join('')));
  return chunks;
}

export interface CopyResult {
  readonly rows: number;
  readonly rowsPerSec: number;
  readonly runs: number[];
}

/**
 * COPY of the rows into the emptied `tick_rows` (the day's partition with its unique index and the BRIN in place),
 * the table the collector writes; best of 2 runs.
 */
export async function copyFloor(url: string, csv: WindowCsv, say: (msg: string) => void): Promise<CopyResult> {
  say(`floor 2: COPY of ${fmtInt(csv.rows)} rows into tick_rows`);
  const chunks = await csvChunks(url, csv);
  const client = new pg.Client({ connectionString: url, application_name: 'mc-bench-copy' });
  client.on('error', () => {});
  await client.connect();
  const runs: number[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      await client.query('truncate tick_rows');
      await client.query('checkpoint').catch(() => {}); // start each run from the same state (superuser only)
      const t0 = process.hrtime.bigint();
      const n = await copyIn(client, 'copy tick_rows (trade_time, trade_id, received_at, received_delay_ms, instrument_id, flags, price, qty) from stdin with (format csv)', chunks);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      runs.push(n / s);
    }
    await client.query('truncate tick_rows');
  } finally {
    await client.end().catch(() => {});
  }
  return { rows: csv.rows, rowsPerSec: Math.max(...runs), runs };
}

export interface InsertResult {
  readonly rate: number;
  readonly seconds: number;
  readonly rowsPerSec: number;
  readonly dropped: number;
  readonly backlog: number;
}

/** bench/insert-client.ts (compiled) on the stream at `rate`; rows/s = growth of count(*) over `seconds`. */
export async function insertPattern(sim: ExchangeSimulator, url: string, rate: number, warmup: number, seconds: number, say: (msg: string) => void): Promise<InsertResult> {
  await sql(url, 'truncate tick_rows');
  sim.setRate(perSymbol(rate));
  say(`pattern: one INSERT per tick through a default pg pool, same stream at ${fmtInt(rate)} ticks/s`);
  const child = startNode('dist/bench/insert-client.js', collectorEnv(sim, url));
  try {
    await child.waitForLine((l) => Number(l.inserted ?? 0) > 0, 20_000, 'inserts flowing');
    await sleep(Math.min(warmup, 5) * 1000);
    const count = async () => Number((await sql<{ n: string }>(url, 'select count(*) as n from tick_rows'))[0]!.n);
    const n0 = await count();
    const t0 = Date.now();
    await sleep(seconds * 1000);
    const n1 = await count();
    const t1 = Date.now();
    const end = child.last()!;
    return { rate, seconds, rowsPerSec: (n1 - n0) / ((t1 - t0) / 1000), dropped: Number(end.dropped ?? 0), backlog: Number(end.waiting ?? 0) };
  } finally {
    await child.stop();
    sim.setRate(0);
    await sql(url, 'truncate tick_rows').catch(() => {});
  }
}
