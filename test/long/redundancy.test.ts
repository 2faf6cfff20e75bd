/**
 * More than one machine: two collector processes on the same symbols and the same database, one killed with
 * SIGKILL halfway while the other keeps running. Afterwards every id from the first stored to the last the
 * simulator emitted is in the table exactly once, equal to the tape: the primary key and ON CONFLICT DO NOTHING make
 * the overlap harmless, and the survivor alone covers the time after the kill.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExchangeSimulator } from '../../src/simulator/index.ts';
import type { SimExchange } from '../../src/simulator/index.ts';
import { auditTable, describeAudit } from '../../bench/lib/audit.ts';
import { startCollectorProcess } from '../../bench/lib/collector-proc.ts';
import type { CollectorProcess } from '../../bench/lib/collector-proc.ts';
import { simEnv } from '../helpers/collector-env.ts';
import { sqlRows } from '../helpers/collector-harness.ts';
import { createTestDatabase } from '../helpers/db.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { sleep, waitFor } from '../helpers/wait-for.ts';

const BINANCE = ['BTCUSDT', 'ETHUSDT'];
const OKX = ['BTC-USDT', 'ETH-USDT'];
const SYMBOLS: Array<{ exchange: SimExchange; symbol: string }> = [
  ...BINANCE.map((symbol) => ({ exchange: 'binance' as const, symbol })),
  ...OKX.map((symbol) => ({ exchange: 'okx' as const, symbol })),
];
/** How long both run together, then the survivor alone. */
const PHASE_MS = 8_000;

describe('two collectors, one SIGKILLed halfway', () => {
  let sim: ExchangeSimulator;
  let db: TestDatabase;
  let dir: string;
  const running: CollectorProcess[] = [];

  before(async () => {
    sim = await ExchangeSimulator.start({
      tradesPerSecond: 100,
      binanceSymbols: BINANCE,
      okxSymbols: OKX,
      binancePingIntervalMs: 500,
      binanceHandshakesPer5Min: 100_000,
      okxHandshakesPerSecond: 1_000,
      okxSubscribesPerHour: 100_000,
    });
    db = await createTestDatabase('redundancy');
    dir = mkdtempSync(join(tmpdir(), 'mc-redundancy-'));
  });

  after(async () => {
    for (const c of running) c.child.kill();
    await sim.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('no gap and no duplicate after one collector is killed', async () => {
    const env = simEnv(sim, {
      BINANCE_SYMBOLS: BINANCE.join(','),
      OKX_SYMBOLS: OKX.join(','),
      DATABASE_URL: db.url,
      BACKFILL_RETRY_INTERVAL_MS: '1000',
    });
    const [a, b] = await Promise.all([startCollectorProcess(join(dir, 'a'), env), startCollectorProcess(join(dir, 'b'), env)]);
    running.push(a!, b!);
    const stored = (c: CollectorProcess) => c.stats()?.pipeline?.ticksStored ?? 0;
    await waitFor(() => stored(a!) > 0 && stored(b!) > 0, 20_000, 'both collectors storing');
    await sleep(PHASE_MS);

    const aStats = a!.stats();
    a!.child.proc.kill('SIGKILL');
    const killed = await a!.child.exited;
    assert.equal(killed.signal, 'SIGKILL');
    await sleep(PHASE_MS);

    sim.pause();
    const last = new Map(SYMBOLS.map((s) => [`${s.exchange}:${s.symbol}`, sim.tapeRange(s.exchange, s.symbol)!.last]));
    await waitFor(async () => {
      const rows = await sqlRows<{ exchange: string; symbol: string; hi: string }>(db.url, 'select exchange, symbol, max(trade_id) as hi from ticks group by 1, 2');
      return SYMBOLS.every((s) => Number(rows.find((r) => r.exchange === s.exchange && r.symbol === s.symbol)?.hi ?? 0) >= last.get(`${s.exchange}:${s.symbol}`)!);
    }, 20_000, 'the survivor stored up to the last emitted id');
    await waitFor(() => b!.stats()?.pipeline?.bufferDepth === 0, 10_000, 'survivor buffer empty');

    const exit = await b!.stop();
    assert.equal(exit.code, 0, 'the survivor stops gracefully');
    const stopped = b!.child.lines.find((l) => l.msg === 'collector stopped') as { pipeline?: { ticksDuplicate: number } } | undefined;

    const report = await auditTable(db.url, sim, SYMBOLS, last);
    console.log(describeAudit(report));
    const dups = (aStats?.pipeline?.ticksDuplicate ?? 0) + (stopped?.pipeline?.ticksDuplicate ?? 0);
    console.log(`killed collector had stored ${aStats?.pipeline?.ticksStored ?? 0}; duplicates absorbed by ON CONFLICT: ${dups}`);
    assert.ok((aStats?.pipeline?.ticksStored ?? 0) > 0, 'the killed collector was writing before the kill');
    assert.ok(dups > 0, 'both wrote the same ticks (the overlap was real)');
    for (const s of report.symbols) {
      assert.ok(s.stored > 0, `${s.exchange}:${s.symbol}: rows stored`);
      assert.equal(s.missing, 0, `${s.exchange}:${s.symbol}: no gap (${s.missingRanges.join(', ')})`);
      assert.equal(s.duplicates, 0, `${s.exchange}:${s.symbol}: no duplicate`);
      assert.equal(s.wrong, 0, `${s.exchange}:${s.symbol}: rows equal the tape (${s.wrongExamples.join('; ')})`);
      assert.equal(s.extra, 0, `${s.exchange}:${s.symbol}: nothing that was never emitted`);
      assert.equal(s.stored, s.last - s.first! + 1, `${s.exchange}:${s.symbol}: contiguous ids, each once`);
    }
  });
});
