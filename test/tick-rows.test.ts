/**
 * The writer's off-heap tick columns (src/storage/tick-rows.ts) against a plain array model: whatever goes in comes
 * out of take(), slice(), groupedByInstrument() and ticks() unchanged, with columns handed on and recycled between
 * batches, text arrays grown and compacted, and the binary parameters decoded back to the values.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InstrumentIndex, TickRows } from '../src/storage/tick-rows.ts';
import type { Tick } from '../src/tick.ts';

const tickArb: fc.Arbitrary<Tick> = fc.record({
  exchange: fc.constantFrom('binance', 'okx'),
  symbol: fc.constantFrom('BTCUSDT', 'ETHUSDT', 'BTC-USDT', 'Ü"\\{,}'),
  tradeId: fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.constant(Number.NaN)),
  price: fc.oneof(fc.stringMatching(/^[0-9]{1,12}(\.[0-9]{1,10})?$/), fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ minLength: 2000, maxLength: 5000 })),
  qty: fc.oneof(fc.stringMatching(/^[0-9]{1,8}(\.[0-9]{1,12})?$/), fc.string({ unit: 'binary', maxLength: 10 })),
  side: fc.constantFrom('buy', 'sell'),
  tradeTime: fc.integer({ min: 1_500_000_000_000, max: 2_000_000_000_000 }),
  receivedAt: fc.integer({ min: 1_500_000_000_000, max: 2_000_000_000_000 }),
  source: fc.constantFrom('live', 'backfill'),
}).map((t) => ({ ...t })) as fc.Arbitrary<Tick>;

type Op = { op: 'push'; ticks: Tick[] } | { op: 'take'; n: number } | { op: 'recycle'; which: number };

describe('tick rows', () => {
  test('a random run of pushes, takes and recycles: every batch holds exactly the ticks taken, in order', () => {
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 3, arbitrary: fc.array(tickArb, { maxLength: 300 }).map((ticks) => ({ op: 'push' as const, ticks })) },
      { weight: 2, arbitrary: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(Infinity)).map((n) => ({ op: 'take' as const, n })) },
      { weight: 2, arbitrary: fc.nat().map((which) => ({ op: 'recycle' as const, which })) },
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const buffer = new TickRows(new InstrumentIndex(100), 4, 64);
        let model: Tick[] = [];
        let seq = 0;
        const seqs: number[] = [];
        // Batches taken and not recycled yet, with what they must hold.
        const live: Array<{ rows: TickRows; ticks: Tick[]; seqs: number[] }> = [];
        for (const o of ops) {
          if (o.op === 'push') {
            for (const t of o.ticks) {
              assert.ok(buffer.push(t, ++seq));
              model.push(t);
              seqs.push(seq);
            }
          } else if (o.op === 'take') {
            const k = Math.min(o.n, model.length);
            const rows = buffer.take(o.n);
            live.push({ rows, ticks: model.slice(0, k), seqs: seqs.splice(0, k) });
            model = model.slice(k);
          } else if (live.length > 0) {
            const [b] = live.splice(o.which % live.length, 1);
            buffer.recycle(b!.rows);
            assert.equal(b!.rows.length, 0);
          }
          // Nothing taken or left behind changes while the others are filled, taken and recycled.
          assert.deepEqual(buffer.ticks(), model);
          assert.equal(buffer.firstSeq(), seqs.length > 0 ? seqs[0] : Number.POSITIVE_INFINITY);
          for (const b of live) {
            assert.deepEqual(b.rows.ticks(), b.ticks);
            assert.deepEqual(b.rows.entries().map((e) => e.s), b.seqs);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  test('text arrays grow with rows taken from the front: the rows left keep their text', () => {
    const rows = new TickRows(new InstrumentIndex(10), 4, 64);
    const t = (i: number, price: string): Tick => ({ exchange: 'okx', symbol: 'BTC-USDT', tradeId: i, price, qty: `${i}.5`, side: 'sell', tradeTime: 1, receivedAt: 2, source: 'live' });
    const all = [t(0, '1.25'), t(1, '2.5'), t(2, 'ü'.repeat(40)), t(3, '4')];
    all.forEach((x, i) => rows.push(x, i + 1));
    assert.deepEqual(rows.take(2).ticks(), all.slice(0, 2));
    // a price far bigger than the text array: it grows (and drops the taken rows' text) while rows 2 and 3 remain
    const big = t(4, '9'.repeat(100_000));
    rows.push(big, 5);
    assert.deepEqual(rows.ticks(), [...all.slice(2), big]);
    assert.deepEqual(rows.take(Infinity).ticks(), [...all.slice(2), big]);
  });

  test('slice and groupedByInstrument copy the ticks; grouping keeps arrival order within an instrument', () => {
    fc.assert(
      fc.property(fc.array(tickArb, { maxLength: 200 }), fc.nat(200), fc.nat(200), (ticks, a, b) => {
        const rows = new TickRows(new InstrumentIndex(100), 8, 64);
        ticks.forEach((t, i) => rows.push(t, i + 1));
        const [from, to] = a <= b ? [a, b] : [b, a];
        assert.deepEqual(rows.slice(from, to).ticks(), ticks.slice(from, to));
        const key = (t: Tick) => `${t.exchange} ${t.symbol}`;
        const order = [...new Set(ticks.map(key))];
        const expected = order.flatMap((k) => ticks.filter((t) => key(t) === k));
        const grouped = rows.groupedByInstrument();
        assert.deepEqual(grouped.ticks(), expected);
        // the grouped rows are sliced into the round's batches: every slice holds its own rows' text
        assert.deepEqual(grouped.slice(from, to).ticks(), expected.slice(from, to));
        assert.deepEqual(grouped.take(from).ticks(), expected.slice(0, from));
        assert.deepEqual(grouped.ticks(), expected.slice(from));
        assert.deepEqual(rows.ticks(), ticks, 'the source is unchanged');
      }),
      { numRuns: 100 },
    );
  });

  test('the binary parameters hold the values: int8 arrays, the delay or the received time, flags, numerics', () => {
    const rows = new TickRows(new InstrumentIndex(10));
    const base = 1_790_000_000_123;
    const ticks: Tick[] = [
      { exchange: 'binance', symbol: 'BTCUSDT', tradeId: 2 ** 40 + 7, price: '97000.12', qty: '0.00150000', side: 'sell', tradeTime: base, receivedAt: base + 5, source: 'live' },
      { exchange: 'okx', symbol: 'BTC-USDT', tradeId: 1, price: '0', qty: '10000.0000', side: 'buy', tradeTime: base, receivedAt: base + 40_000, source: 'backfill' },
    ];
    for (const [i, t] of ticks.entries()) rows.push(t, i + 1);
    const p = rows.params((k) => (k.exchange === 'binance' ? 3 : 4));
    const ints = (buf: unknown, width: 2 | 8) => {
      const b = buf as Buffer;
      assert.equal(b.readInt32BE(0), 1, 'one dimension');
      const n = b.readInt32BE(12);
      const out: Array<bigint | number | null> = [];
      for (let i = 0, at = 20; i < n; i++) {
        const len = b.readInt32BE(at);
        at += 4;
        if (len < 0) out.push(null);
        else {
          assert.equal(len, width);
          out.push(width === 8 ? b.readBigInt64BE(at) : b.readInt16BE(at));
          at += len;
        }
      }
      return out;
    };
    assert.deepEqual(ints(p[0], 8), [BigInt(base), BigInt(base)]);
    assert.deepEqual(ints(p[1], 8), [2n ** 40n + 7n, 1n]);
    assert.deepEqual(ints(p[2], 8), [null, BigInt(base + 40_000)], 'received_at only when the delay does not fit');
    assert.deepEqual(ints(p[3], 2), [5, null]);
    assert.deepEqual(ints(p[4], 2), [3, 4]);
    assert.deepEqual(ints(p[5], 2), [1, 2], 'flags: sold, backfilled');
    // numeric: ndigits, weight, sign, dscale, base-10000 digits
    const price = p[6] as Buffer;
    assert.ok(Buffer.isBuffer(price));
    assert.equal(price.readInt32BE(8), 1700);
    assert.deepEqual([price.readInt32BE(20), price.readInt16BE(24), price.readInt16BE(26), price.readInt16BE(28), price.readInt16BE(30)], [8 + 6, 3, 1, 0, 2]);
    assert.deepEqual([price.readInt16BE(32), price.readInt16BE(34), price.readInt16BE(36)], [9, 7000, 1200]);
    const qty = p[7] as Buffer;
    assert.deepEqual([qty.readInt32BE(20), qty.readInt16BE(24), qty.readInt16BE(26), qty.readInt16BE(30), qty.readInt16BE(32)], [8 + 2, 1, -1, 8, 15]);
    assert.throws(() => {
      const bad = new TickRows(new InstrumentIndex(10));
      bad.push({ ...ticks[0]!, tradeId: 1.5 }, 1);
      bad.params(() => 1);
    }, /trade_id 1.5 of row 0 of the batch is not a whole number/);
  });

  test('the instrument index is bounded: past its maximum a tick of a new instrument is refused, known ones still go in', () => {
    const rows = new TickRows(new InstrumentIndex(2));
    const t = (symbol: string): Tick => ({ exchange: 'binance', symbol, tradeId: 1, price: '1', qty: '1', side: 'buy', tradeTime: 1, receivedAt: 1, source: 'live' });
    assert.ok(rows.push(t('A'), 1));
    assert.ok(rows.push(t('B'), 2));
    assert.equal(rows.push(t('C'), 3), false);
    assert.ok(rows.push(t('A'), 4));
    assert.equal(rows.length, 3);
  });
});
