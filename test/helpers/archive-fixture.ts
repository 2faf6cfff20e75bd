/** Seeds ticks for the archive tests through the real writer, and reads them back the way the query command does. */
import pg from 'pg';
import type { Storage } from '../../src/storage/storage.ts';
import type { TickRow } from '../../src/archive/archive-reader.ts';
import type { Tick } from '../../src/tick.ts';
import { makeTick } from './db.ts';

export const DAY_A = '2026-11-20';
export const DAY_B = '2026-11-21';
const A0 = Date.parse(`${DAY_A}T00:00:00Z`);
const B0 = Date.parse(`${DAY_B}T00:00:00Z`);
/** Binance ids end at the largest safe integer; bigint text must survive every step. */
export const BINANCE_FIRST_ID = 9_007_199_254_740_991 - 79;

const BINANCE_PRICES = ['97000.50000000', '0.00219650', '97001.00000000', '96999.99000000'];
const OKX_PRICES = ['97000.5', '97001', '96999.25', '0.000123'];
const OKX_QTYS = ['0.0013', '12.5', '3', '0.00000001'];

/** 50 Binance ticks on day A (the last at 23:59:59.999), 30 on day B; 20 OKX ticks on day A with mixed scales. */
export function fixtureTicks(): Tick[] {
  const ticks: Tick[] = [];
  for (let i = 0; i < 80; i++) {
    const onA = i < 50;
    const tradeTime = onA ? (i === 49 ? A0 + 86_399_999 : A0 + i * 1_000_000) : B0 + (i - 50) * 60_000;
    ticks.push(makeTick(BINANCE_FIRST_ID + i, { tradeTime, receivedAt: tradeTime + 7, price: BINANCE_PRICES[i % 4], qty: '0.00150000', source: i % 10 === 3 ? 'backfill' : 'live' }));
  }
  for (let i = 0; i < 20; i++) {
    const tradeTime = A0 + 3_600_000 + i * 500;
    ticks.push(makeTick(5_000 + i, { exchange: 'okx', symbol: 'BTC-USDT', tradeTime, receivedAt: tradeTime + 3, price: OKX_PRICES[i % 4], qty: OKX_QTYS[i % 4] }));
  }
  return ticks;
}

export async function seed(storage: Storage, ticks: readonly Tick[]): Promise<void> {
  for (const t of ticks) storage.sink.write(t);
  await storage.flush();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'test-admin' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function sqlExec(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  return withClient(url, (c) => c.query(text, values));
}

/** One symbol-day from the table, as the query command selects it. */
export async function tableRows(url: string, exchange: string, symbol: string, day: string): Promise<TickRow[]> {
  const r = await sqlExec(
    url,
    `select exchange, symbol, trade_id::text as trade_id, price::text as price, qty::text as qty, side, trade_time, received_at, source
     from ticks where exchange = $1 and symbol = $2 and trade_time >= ($3 || 'T00:00:00Z')::timestamptz and trade_time < ($3 || 'T00:00:00Z')::timestamptz + interval '1 day'
     order by trade_time, trade_id`,
    [exchange, symbol, day],
  );
  return r.rows as TickRow[];
}

/**
 * Deletes ticks the way a test simulates losing them (retention, a row never stored): from the storage layer's
 * rows (`ticks` is a view over them). `where` may use exchange, symbol, trade_id and trade_time.
 */
export async function deleteTicks(url: string, where: string, values: unknown[] = []): Promise<void> {
  await sqlExec(
    url,
    `delete from tick_rows t using instruments i where i.instrument_id = t.instrument_id and (${where.replace(/\b(exchange|symbol)\b/g, 'i.$1').replace(/\b(trade_id|trade_time)\b/g, 't.$1')})`,
    values,
  );
}
