/**
 * The completeness audit shared by the soak and the redundancy test: for one symbol, every id from the first stored
 * to the last the simulator emitted must be in the table exactly once, with price, qty, side and time equal to the
 * simulator's tape.
 */
import pg from 'pg';
import type { ExchangeSimulator, SimExchange } from '../../src/simulator/index.ts';

export interface SymbolAudit {
  readonly exchange: SimExchange;
  readonly symbol: string;
  readonly first: number | null;
  readonly last: number;
  readonly stored: number;
  readonly missing: number;
  readonly duplicates: number;
  readonly wrong: number;
  /** Stored ids above `last` (the simulator never emitted them). */
  readonly extra: number;
  /** Stored ids the tape no longer retains (cannot be compared). */
  readonly unverifiable: number;
  readonly backfilled: number;
  /** Up to 10 missing ranges, e.g. "1000200-1000230". */
  readonly missingRanges: readonly string[];
  /** Up to 5 examples of wrong rows. */
  readonly wrongExamples: readonly string[];
}

export interface AuditReport {
  readonly symbols: readonly SymbolAudit[];
  readonly missing: number;
  readonly duplicates: number;
  readonly wrong: number;
  readonly extra: number;
  readonly ok: boolean;
}

/** Same decimal value regardless of trailing zeros. */
function sameDecimal(a: string, b: string): boolean {
  const norm = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  return norm(a) === norm(b);
}

interface Row {
  trade_id: string;
  price: string;
  qty: string;
  side: string;
  ms: string;
  source: string;
}

async function auditSymbol(client: pg.Client, sim: ExchangeSimulator, exchange: SimExchange, symbol: string, last: number): Promise<SymbolAudit> {
  const dup = await client.query<{ n: string; d: string }>(
    'select count(*) as n, count(distinct trade_id) as d from ticks where exchange = $1 and symbol = $2',
    [exchange, symbol],
  );
  const duplicates = Number(dup.rows[0]!.n) - Number(dup.rows[0]!.d);
  const res = await client.query<Row>(
    `select trade_id, price::text as price, qty::text as qty, side, (extract(epoch from trade_time) * 1000)::bigint::text as ms, source
       from ticks where exchange = $1 and symbol = $2 order by trade_id`,
    [exchange, symbol],
  );
  const rows = res.rows;
  const first = rows.length > 0 ? Number(rows[0]!.trade_id) : null;
  const missingRanges: string[] = [];
  const wrongExamples: string[] = [];
  let missing = 0;
  let wrong = 0;
  let extra = 0;
  let unverifiable = 0;
  let backfilled = 0;
  let expected = first ?? last + 1;
  const noteGap = (from: number, to: number) => {
    missing += to - from + 1;
    if (missingRanges.length < 10) missingRanges.push(from === to ? String(from) : `${from}-${to}`);
  };
  for (const r of rows) {
    const id = Number(r.trade_id);
    if (r.source === 'backfill') backfilled++;
    if (id > last) {
      extra++;
      continue;
    }
    if (id > expected) noteGap(expected, id - 1);
    if (id >= expected) expected = id + 1;
    const t = sim.trade(exchange, symbol, id);
    if (!t) {
      unverifiable++;
      continue;
    }
    if (!sameDecimal(r.price, t.price) || !sameDecimal(r.qty, t.qty) || r.side !== t.side || Number(r.ms) !== t.time) {
      wrong++;
      if (wrongExamples.length < 5) {
        wrongExamples.push(`${id}: stored ${r.price}/${r.qty}/${r.side}/${r.ms}, tape ${t.price}/${t.qty}/${t.side}/${t.time}`);
      }
    }
  }
  if (first !== null && expected <= last) noteGap(expected, last);
  return { exchange, symbol, first, last, stored: rows.length, missing, duplicates, wrong, extra, unverifiable, backfilled, missingRanges, wrongExamples };
}

/**
 * Audits every symbol of the simulator against the table at `url`. `lastEmitted` gives, per `exchange:symbol`, the
 * last id to expect (default: the tape's last id now; pause the simulator first).
 */
export async function auditTable(url: string, sim: ExchangeSimulator, symbols: ReadonlyArray<{ exchange: SimExchange; symbol: string }>, lastEmitted?: ReadonlyMap<string, number>): Promise<AuditReport> {
  const client = new pg.Client({ connectionString: url, application_name: 'mc-audit' });
  client.on('error', () => {});
  await client.connect();
  try {
    const out: SymbolAudit[] = [];
    for (const { exchange, symbol } of symbols) {
      const last = lastEmitted?.get(`${exchange}:${symbol}`) ?? sim.tapeRange(exchange, symbol)?.last ?? 0;
      out.push(await auditSymbol(client, sim, exchange, symbol, last));
    }
    const sum = (k: 'missing' | 'duplicates' | 'wrong' | 'extra') => out.reduce((s, a) => s + a[k], 0);
    const report = { symbols: out, missing: sum('missing'), duplicates: sum('duplicates'), wrong: sum('wrong'), extra: sum('extra') };
    const nothingStored = out.some((a) => a.stored === 0);
    return { ...report, ok: !nothingStored && report.missing === 0 && report.duplicates === 0 && report.wrong === 0 && report.extra === 0 };
  } finally {
    await client.end().catch(() => {});
  }
}

export function describeAudit(a: AuditReport): string {
  return a.symbols
    .map((s) =>
      `${s.exchange}:${s.symbol} ids ${s.first ?? '-'}..${s.last} stored ${s.stored} (backfilled ${s.backfilled}) missing ${s.missing}` +
      `${s.missingRanges.length ? ` [${s.missingRanges.join(', ')}]` : ''} duplicates ${s.duplicates} wrong ${s.wrong}` +
      `${s.wrongExamples.length ? ` [${s.wrongExamples.join('; ')}]` : ''} extra ${s.extra} unverifiable ${s.unverifiable}`,
    )
    .join('\n');
}
