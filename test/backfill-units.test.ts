import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GapTracker } from '../src/backfill/gap-tracker.ts';
import { uncovered } from '../src/backfill/range-fill.ts';
import { RateBudget } from '../src/backfill/rate-budget.ts';
import type { Tick } from '../src/tick.ts';

const tick = (tradeId: number, symbol = 'BTCUSDT'): Tick => ({
  exchange: 'binance', symbol, tradeId, price: '1', qty: '1', side: 'buy', tradeTime: 1, receivedAt: 1, source: 'live',
});

const CONFIGURED = { binance: ['BTCUSDT', 'ETHUSDT'] };

test('gap tracker: contiguous ids reveal nothing; a jump reveals exactly the missing range; lower ids are late', () => {
  const g = new GapTracker(CONFIGURED);
  assert.deepEqual(g.observe(tick(10)), { kind: 'next' }, 'first id ever seen opens no gap');
  assert.deepEqual(g.observe(tick(11)), { kind: 'next' });
  assert.deepEqual(g.observe(tick(15)), { kind: 'gap', gap: { exchange: 'binance', symbol: 'BTCUSDT', from: 12, to: 14 } });
  assert.deepEqual(g.observe(tick(13)), { kind: 'late' }, 'an id below the last is late, not a gap');
  assert.deepEqual(g.observe(tick(15)), { kind: 'late' }, 'a repeated id is late');
  assert.equal(g.last('binance', 'BTCUSDT'), 15);
});

test('gap tracker: seeded from the database, the first tick after a restart reveals the hole', () => {
  const g = new GapTracker(CONFIGURED);
  g.seed('binance', 'BTCUSDT', 100);
  assert.deepEqual(g.observe(tick(120)), { kind: 'gap', gap: { exchange: 'binance', symbol: 'BTCUSDT', from: 101, to: 119 } });
  assert.deepEqual(g.observe(tick(1, 'ETHUSDT')), { kind: 'next' }, 'symbols are independent');
});

test('gap tracker: state exists only for configured symbols, whatever a feed sends', () => {
  const g = new GapTracker(CONFIGURED);
  assert.equal(g.size, 2);
  for (let i = 0; i < 10_000; i++) assert.equal(g.observe(tick(i, `X${i}USDT`)).kind, 'untracked');
  g.seed('binance', 'NOTCONFIGURED', 5);
  g.seed('okx', 'BTC-USDT', 5);
  assert.equal(g.size, 2, 'no state for unknown symbols');
  assert.equal(g.last('binance', 'X5USDT'), undefined);
});

test('uncovered lists the ids a page set did not cover', () => {
  assert.deepEqual(uncovered({ from: 1, to: 10 }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), []);
  assert.deepEqual(uncovered({ from: 1, to: 10 }, [4, 5, 9]), [{ from: 1, to: 3 }, { from: 6, to: 8 }, { from: 10, to: 10 }]);
  assert.deepEqual(uncovered({ from: 5, to: 6 }, []), [{ from: 5, to: 6 }]);
});

test('rate budget: capacity per window, shared; a Retry-After pause holds everyone', () => {
  let now = 0;
  const b = new RateBudget({ capacity: 50, windowMs: 60_000, now: () => now });
  assert.equal(b.tryTake(25), 0);
  assert.equal(b.tryTake(25), 0);
  assert.equal(b.tryTake(25), 60_000, 'third call waits for the next window');
  now = 60_000;
  assert.equal(b.tryTake(25), 0);
  b.pauseFor(5_000);
  assert.equal(b.tryTake(1), 5_000);
  now = 65_000;
  assert.equal(b.tryTake(1), 0);
});
