/** Runs the whole collector in-process against a simulator and a fresh test database, and audits the table. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCollector } from '../../src/collector.ts';
import type { Collector } from '../../src/collector.ts';
import type { Logger } from '../../src/logger.ts';
import type { ExchangeSimulator, SimExchange } from '../../src/simulator/index.ts';
import { simConfig } from './collector-env.ts';
import { createTestDatabase } from './db.ts';

export interface Harness {
  readonly url: string;
  readonly dir: string;
  start(overrides?: Record<string, string>): Promise<Collector>;
  close(): Promise<void>;
}

/** One test database and scratch dir; `start` may be called again after a collector stopped (restart tests). */
export async function collectorHarness(sim: ExchangeSimulator, logger: Logger, base: Record<string, string> = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'mc-harness-'));
  const running = new Set<Collector>();
  return {
    url: db.url,
    dir,
    async start(overrides = {}) {
      const config = simConfig(sim, {
        DATABASE_URL: db.url,
        METRICS_PORT: '0',
        PID_FILE: join(dir, 'collector.pid'),
        SPILL_DIR: join(dir, 'spill'),
        STATS_INTERVAL_MS: '600000',
        BACKFILL_RETRY_INTERVAL_MS: '1000',
        BATCH_MAX_AGE_MS: '50',
        BATCH_MIN_ROWS: '0',
        ...base,
        ...overrides,
      });
      const c = await startCollector(config, logger);
      running.add(c);
      return c;
    },
    async close() {
      for (const c of running) await c.stop(); // idempotent
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface StoredTick {
  tradeId: number;
  price: string;
  qty: string;
  side: string;
  tradeTime: number;
  source: string;
}

export async function storedTicks(url: string, exchange: SimExchange, symbol: string): Promise<StoredTick[]> {
  const rows = await sqlRows<{ trade_id: string; price: string; qty: string; side: string; trade_time: Date; source: string }>(
    url,
    'select trade_id, price::text, qty::text, side, trade_time, source from ticks where exchange = $1 and symbol = $2 order by trade_id',
    [exchange, symbol],
  );
  return rows.map((r) => ({ tradeId: Number(r.trade_id), price: r.price, qty: r.qty, side: r.side, tradeTime: r.trade_time.getTime(), source: r.source }));
}

export async function sqlRows<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Same decimal value regardless of trailing zeros (numeric keeps the scale it was given, but be lenient). */
export function sameDecimal(a: string, b: string): boolean {
  const norm = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  return norm(a) === norm(b);
}

export interface Audit {
  first: number;
  last: number;
  stored: number;
  missing: number[];
  wrong: string[];
  backfilled: number;
}

/** Compares the table with the simulator's tape from the first stored id to `last` (default: the tape's last). */
export async function audit(url: string, sim: ExchangeSimulator, exchange: SimExchange, symbol: string, last?: number): Promise<Audit> {
  const rows = await storedTicks(url, exchange, symbol);
  const first = rows[0]?.tradeId ?? NaN;
  const upto = last ?? sim.tapeRange(exchange, symbol)!.last;
  const byId = new Map(rows.map((r) => [r.tradeId, r]));
  const missing: number[] = [];
  const wrong: string[] = [];
  for (let id = first; id <= upto; id++) {
    const row = byId.get(id);
    if (!row) {
      if (missing.length < 50) missing.push(id);
      continue;
    }
    const t = sim.trade(exchange, symbol, id);
    if (!t) {
      wrong.push(`${id}: not on the tape`);
      continue;
    }
    if (!sameDecimal(row.price, t.price) || !sameDecimal(row.qty, t.qty) || row.side !== t.side || row.tradeTime !== t.time) {
      if (wrong.length < 20) wrong.push(`${id}: stored ${JSON.stringify(row)} sent ${JSON.stringify(t)}`);
    }
  }
  return { first, last: upto, stored: rows.length, missing, wrong, backfilled: rows.filter((r) => r.source === 'backfill').length };
}
