/**
 * Send → commit latency across processes. Two methods, the first used when the server allows it:
 *
 * - `commit_ts`: with `track_commit_timestamp = on`, PostgreSQL records when each transaction committed;
 *   `pg_xact_commit_timestamp(xmin) - trade_time` is then exact for every row (trade_time is the simulator's send
 *   time, both clocks are this machine's). Computed in one query after the run: nothing runs during the measurement.
 * - `poll`: otherwise a poller asks for `max(trade_id)` of every symbol every few ms; the ids that became visible
 *   between two polls get `poll time - send time`. This over-estimates by up to one poll interval plus the query.
 */
import pg from 'pg';
import type { ExchangeSimulator, SimExchange } from '../../src/simulator/index.ts';
import { percentile } from './stats.ts';

export interface LatencyResult {
  readonly method: 'commit_ts' | 'poll';
  readonly rows: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export async function commitTimestampsEnabled(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, application_name: 'mc-bench-probe' });
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query<{ v: string }>("select current_setting('track_commit_timestamp') as v");
    return r.rows[0]?.v === 'on';
  } finally {
    await c.end().catch(() => {});
  }
}

/** Latency of every row sent in [fromMs, toMs), from commit timestamps. */
export async function commitLatency(url: string, fromMs: number, toMs: number): Promise<LatencyResult> {
  const c = new pg.Client({ connectionString: url, application_name: 'mc-bench-probe' });
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query<{ n: string; p50: number | null; p99: number | null; max: number | null }>(
      `select count(*) as n,
              percentile_disc(0.5) within group (order by lat) as p50,
              percentile_disc(0.99) within group (order by lat) as p99,
              max(lat) as max
         from (select extract(epoch from (pg_xact_commit_timestamp(xmin) - trade_time)) * 1000 as lat
                 from tick_rows where trade_time >= to_timestamp($1::double precision / 1000)
                              and trade_time <  to_timestamp($2::double precision / 1000)) s`,
      [fromMs, toMs],
    );
    const row = r.rows[0]!;
    return { method: 'commit_ts', rows: Number(row.n), p50Ms: Number(row.p50), p99Ms: Number(row.p99), maxMs: Number(row.max) };
  } finally {
    await c.end().catch(() => {});
  }
}

export interface Poller {
  stop(): Promise<LatencyResult>;
}

/** Polls max(trade_id) per symbol every `intervalMs` and records, for each newly visible id, now - its send time. */
export async function startPoller(url: string, sim: ExchangeSimulator, symbols: ReadonlyArray<{ exchange: SimExchange; symbol: string }>, fromMs: number, toMs: number, intervalMs = 10): Promise<Poller> {
  const c = new pg.Client({ connectionString: url, application_name: 'mc-bench-probe' });
  c.on('error', () => {});
  await c.connect();
  const text = `select ${symbols.map((_s, i) => `(select max(trade_id) from ticks where exchange = $${2 * i + 1} and symbol = $${2 * i + 2})::text as m${i}`).join(', ')}`;
  const values = symbols.flatMap((s) => [s.exchange, s.symbol]);
  const seen: number[] = symbols.map(() => -1);
  const lat: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await c.query<Record<string, string | null>>(text, values);
      const now = Date.now();
      symbols.forEach((s, i) => {
        const max = Number(r.rows[0]?.[`m${i}`] ?? -1);
        if (seen[i]! >= 0) {
          for (let id = seen[i]! + 1; id <= max; id++) {
            const t = sim.trade(s.exchange, s.symbol, id);
            if (t && t.time >= fromMs && t.time < toMs) lat.push(now - t.time);
          }
        }
        if (max > seen[i]!) seen[i] = max;
      });
      await new Promise((res) => setTimeout(res, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop.catch(() => {});
      await c.end().catch(() => {});
      lat.sort((a, b) => a - b);
      return { method: 'poll', rows: lat.length, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat[lat.length - 1] ?? NaN };
    },
  };
}
