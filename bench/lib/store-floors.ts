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

/** CSV of the rows a window emitted, rebuilt from the tape; call right after the window (the tape is a ring). */
export function windowCsv(sim: ExchangeSimulator, w: TapeWindow): { chunks: Buffer[]; rows: number } {
  const chunks: Buffer[] = [];
  let parts: string[] = [];
  let size = 0;
  let rows = 0;
  for (const s of SYMBOLS) {
    const key = `${s.exchange}:${s.symbol}`;
    const lo = w.firstIds.get(key)! + 1;
    const hi = w.lastIds.get(key)!;
    for (let id = lo; id <= hi; id++) {
      const t = sim.trade(s.exchange, s.symbol, id);
      if (!t) continue;
      const line = `${s.exchange},${s.symbol},${id},${t.price},${t.qty},${t.side},${new Date(t.time).toISOString()},${new Date(t.time + 1).toISOString()},live\n`;
      parts.push(line);
      size += line.length;
      rows++;
      if (size > 1 << 20) {
        chunks.push(Buffer.from(parts.join('')));
        parts = [];
        size = 0;
      }
    }
  }
  if (parts.length > 0) chunks.push(Buffer.from(parts.join('')));
  return { chunks, rows };
}

export interface CopyResult {
  readonly rows: number;
  readonly rowsPerSec: number;
  readonly runs: number[];
}

/** COPY of the rows into the emptied `ticks` table (primary key and index in place); best of 2 runs. */
export async function copyFloor(url: string, csv: { chunks: Buffer[]; rows: number }, say: (msg: string) => void): Promise<CopyResult> {
  say(`floor 2: COPY of ${fmtInt(csv.rows)} rows into ticks`);
  const client = new pg.Client({ connectionString: url, application_name: 'mc-bench-copy' });
  client.on('error', () => {});
  await client.connect();
  const runs: number[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      await client.query('truncate ticks');
      await client.query('checkpoint').catch(() => {}); // start each run from the same state (superuser only)
      const t0 = process.hrtime.bigint();
      const n = await copyIn(client, 'copy ticks (exchange, symbol, trade_id, price, qty, side, trade_time, received_at, source) from stdin with (format csv)', csv.chunks);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      runs.push(n / s);
    }
    await client.query('truncate ticks');
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
  await sql(url, 'truncate ticks');
  sim.setRate(perSymbol(rate));
  say(`pattern: one INSERT per tick through a default pg pool, same stream at ${fmtInt(rate)} ticks/s`);
  const child = startNode('dist/bench/insert-client.js', collectorEnv(sim, url));
  try {
    await child.waitForLine((l) => Number(l.inserted ?? 0) > 0, 20_000, 'inserts flowing');
    await sleep(Math.min(warmup, 5) * 1000);
    const count = async () => Number((await sql<{ n: string }>(url, 'select count(*) as n from ticks'))[0]!.n);
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
    await sql(url, 'truncate ticks').catch(() => {});
  }
}
