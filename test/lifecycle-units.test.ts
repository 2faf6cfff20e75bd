import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../src/connection/backoff.ts';
import { Timers } from '../src/connection/timers.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';
import { canTransition, transition, IllegalTransitionError } from '../src/connection/state.ts';
import { splitBinanceSymbols, binanceStreamUrl } from '../src/exchanges/binance/binance-feed.ts';
import { okxSubscribeMessages } from '../src/exchanges/okx/okx-feed.ts';

test('backoff ceilings grow x2 from the base and cap; full jitter stays within [0, ceiling]', () => {
  const b = new Backoff({ baseMs: 500, factor: 2, maxMs: 30_000, random: () => 0.999999 });
  const delays = Array.from({ length: 10 }, () => b.next());
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  const zero = new Backoff({ baseMs: 500, factor: 2, maxMs: 30_000, random: () => 0 });
  assert.equal(zero.next(), 0);
});

test('backoff honours Retry-After as a floor and resets', () => {
  const b = new Backoff({ baseMs: 500, factor: 2, maxMs: 30_000, random: () => 0.5 });
  assert.equal(b.next(3000), 3000);
  assert.equal(b.next(), 500);
  b.reset();
  assert.equal(b.ceiling(), 500);
});

test('transition table allows the lifecycle and refuses illegal pairs', () => {
  const path = ['idle', 'connecting', 'subscribing', 'live', 'rotating', 'live', 'closing', 'backoff', 'connecting', 'stopping', 'stopped'] as const;
  for (let i = 1; i < path.length; i++) assert.equal(transition(path[i - 1]!, path[i]!), path[i]);
  assert.throws(() => transition('idle', 'live'), IllegalTransitionError);
  assert.throws(() => transition('backoff', 'live'), /illegal connection transition backoff -> live/);
  assert.equal(canTransition('stopped', 'connecting'), false);
  assert.equal(canTransition('closing', 'connecting'), false, 'a new socket only after backoff, i.e. after the old one is gone');
});

test('binance symbols split into groups of at most the configured size and never above 1024', () => {
  const symbols = Array.from({ length: 2500 }, (_, i) => `S${i}USDT`);
  assert.deepEqual(splitBinanceSymbols(symbols, 1000).map((g) => g.length), [1000, 1000, 500]);
  assert.deepEqual(splitBinanceSymbols(symbols, 5000).map((g) => g.length), [1024, 1024, 452]);
  assert.equal(binanceStreamUrl('ws://h:1', ['BTCUSDT', 'ETHUSDT']), 'ws://h:1/stream?streams=btcusdt@trade/ethusdt@trade');
});

test('okx subscribes every symbol to trades-all in requests of bounded size', () => {
  const msgs = okxSubscribeMessages(Array.from({ length: 150 }, (_, i) => `C${i}-USDT`));
  assert.equal(msgs.length, 2);
  const first = JSON.parse(msgs[0]!);
  assert.equal(first.op, 'subscribe');
  assert.deepEqual(first.args[0], { channel: 'trades-all', instId: 'C0-USDT' });
  assert.ok(msgs.every((m) => Buffer.byteLength(m) < 64 * 1024));
});

describe('Timers.rearm', () => {
  test('re-arming a pending watchdog keeps one timer and pushes its deadline back; it fires once when the pushes stop', async () => {
    const timers = new Timers();
    let fired = 0;
    timers.rearm('silence', 300, () => fired++);
    const started = Date.now();
    while (Date.now() - started < 700) {
      await sleep(10);
      timers.rearm('silence', 300, () => fired++);
      assert.equal(timers.size, 1);
    }
    assert.equal(fired, 0, 'pushed back on every re-arm (700 ms of re-arms, 300 ms deadline)');
    await waitFor(() => fired === 1, 2000, 'fires after the last re-arm');
    assert.equal(timers.size, 0);
    timers.rearm('silence', 30, () => fired++);
    timers.clearAll();
    await sleep(80);
    assert.equal(fired, 1, 'clearAll leaves nothing to fire');
  });
});
