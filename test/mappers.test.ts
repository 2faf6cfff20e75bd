import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyBinanceFrame } from '../src/exchanges/binance/binance-mapper.ts';
import { classifyOkxFrame } from '../src/exchanges/okx/okx-mapper.ts';
import type { FrameResult } from '../src/connection/feed.ts';

const AT = 1_700_000_000_123;

function ticksOf(r: FrameResult) {
  assert.equal(r.kind, 'ticks', JSON.stringify(r));
  return (r as Extract<FrameResult, { kind: 'ticks' }>).ticks;
}

// Captured-format payloads from protocols.md §A2 (current and pre-2024-06 shapes).
const BINANCE_CURRENT = '{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}';
const BINANCE_PRE_2024 = '{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","b":88,"a":50,"T":1672515782136,"m":true,"M":true}';
const BINANCE_COMBINED = '{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":false,"M":true}}';

test('binance current and pre-2024 trade shapes map to the same tick; m:true means the taker sold', () => {
  for (const frame of [BINANCE_CURRENT, BINANCE_PRE_2024]) {
    const [tick] = ticksOf(classifyBinanceFrame(frame, AT));
    assert.deepEqual(tick, {
      exchange: 'binance', symbol: 'BNBBTC', tradeId: 12345, price: '0.001', qty: '100', side: 'sell',
      tradeTime: 1672515782136, receivedAt: AT, source: 'live',
    });
  }
});

test('binance combined wrapper is unwrapped; m:false means the taker bought', () => {
  const [tick] = ticksOf(classifyBinanceFrame(BINANCE_COMBINED, AT));
  assert.equal(tick!.symbol, 'BTCUSDT');
  assert.equal(tick!.side, 'buy');
});

test('binance prices and quantities stay exact decimal strings', () => {
  const frame = BINANCE_CURRENT.replace('"0.001"', '"43251.12345678901234567"').replace('"100"', '"0.00000001"');
  const [tick] = ticksOf(classifyBinanceFrame(frame, AT));
  assert.equal(tick!.price, '43251.12345678901234567');
  assert.equal(tick!.qty, '0.00000001');
});

test('binance control responses, serverShutdown (raw and combined) classify', () => {
  assert.deepEqual(classifyBinanceFrame('{"result":null,"id":1}', AT), { kind: 'ack' });
  assert.deepEqual(classifyBinanceFrame('{"result":["btcusdt@trade"],"id":1}', AT), { kind: 'subscriptions', symbols: ['BTCUSDT'] });
  assert.equal(classifyBinanceFrame('{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}', AT).kind, 'rejected');
  assert.equal(classifyBinanceFrame('{"e":"serverShutdown","E":1770123456789}', AT).kind, 'notice');
  assert.equal(classifyBinanceFrame('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}', AT).kind, 'notice');
});

const binanceBad: Array<[string, string, string]> = [
  ['invalid JSON', '{"e":"trade",', 'invalid_json'],
  ['not an object', '[1,2]', 'bad_type'],
  ['missing t', BINANCE_CURRENT.replace('"t":12345,', ''), 'missing_field'],
  ['missing p', BINANCE_CURRENT.replace('"p":"0.001",', ''), 'missing_field'],
  ['null q', BINANCE_CURRENT.replace('"q":"100"', '"q":null'), 'missing_field'],
  ['price as number', BINANCE_CURRENT.replace('"p":"0.001"', '"p":0.001'), 'bad_type'],
  ['trade id as string', BINANCE_CURRENT.replace('"t":12345', '"t":"12345"'), 'bad_type'],
  ['m as string', BINANCE_CURRENT.replace('"m":true', '"m":"true"'), 'bad_type'],
  ['non-numeric price', BINANCE_CURRENT.replace('"p":"0.001"', '"p":"abc"'), 'bad_number'],
  ['negative price', BINANCE_CURRENT.replace('"p":"0.001"', '"p":"-0.001"'), 'bad_number'],
  ['negative qty', BINANCE_CURRENT.replace('"q":"100"', '"q":"-1"'), 'bad_number'],
  ['zero qty', BINANCE_CURRENT.replace('"q":"100"', '"q":"0.000"'), 'bad_number'],
  ['exponent price', BINANCE_CURRENT.replace('"p":"0.001"', '"p":"1e-3"'), 'bad_number'],
  ['fractional trade id', BINANCE_CURRENT.replace('"t":12345', '"t":1.5'), 'bad_number'],
  ['unsafe trade id', BINANCE_CURRENT.replace('"t":12345', '"t":9007199254740993'), 'bad_number'],
  ['unknown event', '{"e":"kline","E":1,"s":"BTCUSDT"}', 'unknown_event'],
  ['no event type', '{"E":1,"s":"BTCUSDT"}', 'missing_field'],
];
for (const [name, frame, kind] of binanceBad) {
  test(`binance bad input is rejected as ${kind}: ${name}`, () => {
    const r = classifyBinanceFrame(frame, AT);
    assert.equal(r.kind, 'rejected', JSON.stringify(r));
    assert.equal((r as Extract<FrameResult, { kind: 'rejected' }>).reject, kind);
  });
}

const OKX_TRADE = '{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","source":"0","ts":"1630048897897"}]}';

test('okx trades-all push maps; numbers stay strings; side is the taker side', () => {
  const [tick] = ticksOf(classifyOkxFrame(OKX_TRADE, AT));
  assert.deepEqual(tick, {
    exchange: 'okx', symbol: 'BTC-USDT', tradeId: 130639474, price: '42219.9', qty: '0.12060306', side: 'buy',
    tradeTime: 1630048897897, receivedAt: AT, source: 'live',
  });
});

test('okx events: pong, subscribe ack, notice 64008, unknown instrument, tolerated events', () => {
  assert.deepEqual(classifyOkxFrame('pong', AT), { kind: 'heartbeat' });
  assert.deepEqual(classifyOkxFrame('{"id":"1","event":"subscribe","arg":{"channel":"trades-all","instId":"BTC-USDT"},"connId":"a4d3ae55"}', AT), { kind: 'ack' });
  assert.equal(classifyOkxFrame('{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}', AT).kind, 'notice');
  const refused = classifyOkxFrame('{"event":"error","msg":"Wrong URL or channel:trades-all,instId:FOO-BAR doesn\'t exist. Please use the correct URL, channel and parameters referring to API document.","code":"60018","connId":"2b5dc6ac"}', AT);
  assert.equal(refused.kind, 'symbol_refused');
  assert.equal((refused as Extract<FrameResult, { kind: 'symbol_refused' }>).symbol, 'FOO-BAR');
  assert.deepEqual(classifyOkxFrame('{"event":"channel-conn-count","channel":"orders","connCount":"2","connId":"abcd1234"}', AT), { kind: 'ignore' });
  assert.deepEqual(classifyOkxFrame('{"event":"unsubscribe","arg":{"channel":"trades-all","instId":"BTC-USDT"},"connId":"d0b44253"}', AT), { kind: 'ignore' });
  assert.equal(classifyOkxFrame('{"event":"error","code":"60012","msg":"Invalid request"}', AT).kind, 'rejected');
});

test('okx push with one bad trade among good ones keeps the good ones and reports the bad one', () => {
  const frame = '{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[' +
    '{"instId":"BTC-USDT","tradeId":"1","px":"1.5","sz":"2","side":"sell","ts":"1630048897897"},' +
    '{"instId":"BTC-USDT","tradeId":"2","px":"-1.5","sz":"2","side":"sell","ts":"1630048897898"}]}';
  const r = classifyOkxFrame(frame, AT);
  assert.equal(r.kind, 'ticks');
  const t = r as Extract<FrameResult, { kind: 'ticks' }>;
  assert.equal(t.ticks.length, 1);
  assert.equal(t.rejects?.[0]?.kind, 'bad_number');
});

const okxTrade = (patch: string) => OKX_TRADE.replace('"tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy"', patch);
const okxBad: Array<[string, string, string]> = [
  ['invalid JSON', 'pong!', 'invalid_json'],
  ['missing tradeId', okxTrade('"px":"42219.9","sz":"0.12060306","side":"buy"'), 'missing_field'],
  ['px as number', okxTrade('"tradeId":"1","px":42219.9,"sz":"0.1","side":"buy"'), 'bad_type'],
  ['tradeId as number', okxTrade('"tradeId":1,"px":"1","sz":"0.1","side":"buy"'), 'bad_type'],
  ['non-numeric sz', okxTrade('"tradeId":"1","px":"1","sz":"lots","side":"buy"'), 'bad_number'],
  ['negative px', okxTrade('"tradeId":"1","px":"-1","sz":"1","side":"buy"'), 'bad_number'],
  ['bad side', okxTrade('"tradeId":"1","px":"1","sz":"1","side":"up"'), 'bad_type'],
  ['data not an array', '{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":{}}', 'bad_type'],
  ['unexpected channel', '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[]}', 'unknown_event'],
  ['unknown event', '{"event":"surprise"}', 'unknown_event'],
  ['neither event nor push', '{"hello":1}', 'unknown_event'],
];
for (const [name, frame, kind] of okxBad) {
  test(`okx bad input is rejected as ${kind}: ${name}`, () => {
    const r = classifyOkxFrame(frame, AT);
    assert.equal(r.kind, 'rejected', JSON.stringify(r));
    assert.equal((r as Extract<FrameResult, { kind: 'rejected' }>).reject, kind);
  });
}
