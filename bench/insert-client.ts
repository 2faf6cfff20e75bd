/**
 * The pattern the collector replaces, for the benchmark: every trade of the same stream becomes one
 * `INSERT ... ON CONFLICT DO NOTHING` through a pg Pool with default settings (max 10), issued as it arrives. Run as a
 * child process by bench.ts, which counts the committed rows. DATABASE_URL and the collector's stream env names.
 *
 * The only addition to the naive pattern is a cap on queries waiting for a pooled client (BACKLOG_CAP, default
 * 200,000): past it, trades are counted as `dropped` instead of queued, so a slow run cannot exhaust memory.
 */
import pg from 'pg';
import { openStreams, reportEvery, streamOptionsFromEnv } from './lib/stream-client.ts';

/** Into the table the collector writes (same compact layout, instrument id looked up per row), not the view. */
const INSERT =
  'insert into tick_rows (trade_time, trade_id, received_at, received_delay_ms, instrument_id, flags, price, qty) ' +
  'select to_timestamp($7::double precision / 1000), $3, ' +
  'case when abs($8::bigint - $7::bigint) > 32767 then to_timestamp($8::double precision / 1000) end, ' +
  'case when abs($8::bigint - $7::bigint) <= 32767 then ($8::bigint - $7::bigint)::smallint end, ' +
  "i.instrument_id, case when $6 = 'sell' then 1 else 0 end, $4::numeric, $5::numeric " +
  'from instruments i where i.exchange = $1 and i.symbol = $2 ' +
  'on conflict do nothing';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
pool.on('error', () => {});
const cap = Number(process.env.BACKLOG_CAP ?? 10_000);
let inserted = 0;
let failed = 0;
let dropped = 0;
let received = 0;

function insert(values: unknown[]): void {
  received++;
  if (pool.waitingCount >= cap) {
    dropped++;
    return;
  }
  pool.query(INSERT, values).then(
    () => inserted++,
    () => failed++,
  );
}

interface BinanceTrade { s: string; t: number; p: string; q: string; T: number; m: boolean }
interface OkxTrade { instId: string; tradeId: string; px: string; sz: string; side: string; ts: string }

const client = openStreams({
  ...streamOptionsFromEnv(process.env),
  onFrame(exchange, text) {
    if (text === 'pong') return;
    const now = Date.now();
    const msg = JSON.parse(text) as { data?: unknown; event?: string };
    if (exchange === 'binance') {
      const t = msg.data as BinanceTrade | undefined;
      if (t?.t === undefined) return;
      insert(['binance', t.s, t.t, t.p, t.q, t.m ? 'sell' : 'buy', t.T, now]);
    } else if (Array.isArray(msg.data)) {
      for (const t of msg.data as OkxTrade[]) insert(['okx', t.instId, t.tradeId, t.px, t.sz, t.side, Number(t.ts), now]);
    }
  },
  onClose(exchange, code) {
    process.stderr.write(`insert-client: ${exchange} socket closed (${code})\n`);
  },
});

const timer = reportEvery(250, () => ({ received, inserted, failed, dropped, waiting: pool.waitingCount }));
process.on('SIGTERM', () => {
  clearInterval(timer);
  client.close();
  process.exit(0);
});
