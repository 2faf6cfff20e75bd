/**
 * The frame templates (src/exchanges/frame-templates.ts): real-shaped trade frames are read without JSON.parse and
 * give the tick the general path gives; near misses are declined and get the general path's answer, rejection and
 * all; the simulator sends its trades in the exchanges' serialization, so the benchmark measures the template.
 * The fuzz properties (test/helpers/fuzz-properties.ts) check the same on generated and edited frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import type { FrameResult } from '../src/connection/feed.ts';
import { classifyBinanceFrame, classifyBinanceJson, matchBinanceTradeFrame } from '../src/exchanges/binance/binance-mapper.ts';
import { classifyOkxFrame, classifyOkxJson, matchOkxTradesFrame } from '../src/exchanges/okx/okx-mapper.ts';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import { binanceTemplateFrame, okxTemplateFrame } from './helpers/fuzz-properties.ts';
import { waitFor } from './helpers/wait-for.ts';

const AT = 1_700_000_000_123;
const REAL_AT = 1_672_515_782_200;

/** protocols.md A2 (current and pre-2024-06 forms) and D (real prices, E after T). */
const BINANCE_TAKEN = [
  '{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}',
  '{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","b":88,"a":50,"T":1672515782136,"m":true,"M":true}}',
  '{"stream":"ethbtc@trade","data":{"e":"trade","E":1672515782139,"s":"ETHBTC","t":0,"p":"0.00219650","q":"0.04570000","T":1672515782136,"m":false,"M":true}}',
];
/** protocols.md B3 (`trades-all`), without `source` (D: 2022-2023 pushes), and two trades in one push. */
const OKX_TAKEN = [
  '{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","source":"0","ts":"1672515782136"}]}',
  '{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"sell","ts":"1672515782136"}]}',
  '{"arg":{"channel":"trades-all","instId":"ETH-USDT"},"data":[{"instId":"ETH-USDT","tradeId":"7","px":"1.5","sz":"2","side":"buy","source":"1","ts":"1672515782136"},{"instId":"ETH-USDT","tradeId":"0008","px":"1.50","sz":"0.1","side":"sell","source":"0","ts":"1672515782137"}]}',
];

const bn = BINANCE_TAKEN[0]!;
const okx = OKX_TAKEN[0]!;
/** Each is declined by the template (whatever the general path then makes of it: a tick or a named rejection). */
const BINANCE_DECLINED = [
  bn.replace('{"stream"', '{ "stream"'), // whitespace
  bn.replace('"e":"trade","E":1672515782136,', '"E":1672515782136,"e":"trade",'), // key order
  bn.replace('"t":12345', '"t":012345'), // not JSON: leading zero
  bn.replace('"t":12345', '"t":1.2345e4'), // JSON, but not how Binance spells it
  bn.replace('"t":12345', '"t":9007199254740993'), // beyond 2^53
  bn.replace('"p":"0.001"', '"p":"0.000"'), // zero price: refused
  bn.replace('"p":"0.001"', '"p":"1e-3"'), // exponent: refused
  bn.replace('"T":1672515782136', '"T":1672515782136000'), // microseconds: refused
  bn.replace('"s":"BTCUSDT"', '"s":"BTC\\u0055SDT"'), // an escape
  bn.replace('"M":true}', '"M":true,"x":1}'), // an extra field
  bn + ' ', // trailing text
  bn.replace('"m":true', '"m":"true"'), // a string, not a boolean: refused
];
const OKX_DECLINED = [
  okx.replace('"channel":"trades-all"', '"channel":"trades"'), // another channel: refused
  okx.replace('"tradeId":"130639474"', '"tradeId":"99999999999999999"'), // 17 digits: refused
  okx.replace('"side":"buy"', '"side":"BUY"'), // refused
  okx.replace('"sz":"0.12060306"', '"sz":"0"'), // zero size: refused
  okx.replace('"source":"0",', '"source":"0","count":"3",'), // a field trades-all does not have
  okx.replace(']}', '],"extra":1}'),
  okx.replace('}]}', '},]}'), // not JSON
  okx.replace('"data":[', '"data":[{"instId":"BTC-USDT"},'), // one bad trade among good ones: partial frame
  '{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[]}',
];

test('real-shaped trade frames are read by the template, and give the tick the JSON path gives', () => {
  for (const f of BINANCE_TAKEN) {
    assert.notEqual(matchBinanceTradeFrame(f, REAL_AT), null, f);
    const result = classifyBinanceFrame(f, REAL_AT);
    assert.equal(result.kind, 'ticks');
    assert.deepEqual(result, classifyBinanceJson(f, REAL_AT));
  }
  for (const f of OKX_TAKEN) {
    assert.notEqual(matchOkxTradesFrame(f, REAL_AT), null, f);
    const result = classifyOkxFrame(f, REAL_AT);
    assert.equal(result.kind, 'ticks');
    assert.deepEqual(result, classifyOkxJson(f, REAL_AT));
  }
  const [tick] = (classifyBinanceFrame(BINANCE_TAKEN[2]!, REAL_AT) as Extract<FrameResult, { kind: 'ticks' }>).ticks;
  assert.deepEqual(tick, { exchange: 'binance', symbol: 'ETHBTC', tradeId: 0, price: '0.00219650', qty: '0.04570000', side: 'buy', tradeTime: 1672515782136, receivedAt: REAL_AT, source: 'live' });
});

test('near misses are declined and get the JSON path answer (a tick, or the rejection naming the field)', () => {
  for (const [exchange, frames] of [['binance', BINANCE_DECLINED], ['okx', OKX_DECLINED]] as const) {
    const [match, classify, json] = exchange === 'binance'
      ? [(t: string) => matchBinanceTradeFrame(t, REAL_AT), classifyBinanceFrame, classifyBinanceJson]
      : [(t: string) => matchOkxTradesFrame(t, REAL_AT), classifyOkxFrame, classifyOkxJson];
    for (const f of frames) {
      assert.equal(match(f), null, `${exchange} template took ${f}`);
      assert.deepEqual(classify(f, REAL_AT), json(f, REAL_AT), f);
    }
  }
  // Some of them are still valid frames, read by the general path; the others are refused with a reason.
  assert.equal(classifyBinanceFrame(BINANCE_DECLINED[0]!, REAL_AT).kind, 'ticks');
  assert.deepEqual(classifyBinanceFrame(BINANCE_DECLINED[5]!, REAL_AT), { kind: 'rejected', reject: 'bad_number', detail: 'field "p" is zero' });
  assert.equal(classifyOkxFrame(OKX_DECLINED[7]!, REAL_AT).kind, 'ticks');
});

test('the fuzz generators give the template frames it takes and frames it declines, so the equality is not trivial', () => {
  for (const [name, arb, match] of [
    ['binance', binanceTemplateFrame, (t: string) => matchBinanceTradeFrame(t, AT)],
    ['okx', okxTemplateFrame, (t: string) => matchOkxTradesFrame(t, AT)],
  ] as const) {
    const frames = fc.sample(arb, { numRuns: 2_000, seed: 42 });
    const taken = frames.filter((f) => match(f) !== null).length;
    assert.ok(taken > 200 && taken < 1_800, `${name}: the template took ${taken} of 2,000 generated frames`);
  }
});

test('a tick from the template does not keep its frame alive (a buffered tick costs what a JSON-parsed one does)', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heldBy = (classify: (text: string, at: number) => FrameResult): number => {
    gc();
    const before = process.memoryUsage().heapUsed;
    const held: FrameResult[] = [];
    for (let i = 0; i < 50_000; i++) {
      const frame = `{"stream":"btcusdt@trade","data":{"e":"trade","E":${REAL_AT - 5},"s":"BTCUSDT","t":${i},"p":"29546.${String(i).padStart(8, '0')}","q":"0.${String(i + 1).padStart(8, '0')}","T":${REAL_AT - 9},"m":false,"M":true}}`;
      held.push(classify(frame, REAL_AT));
    }
    gc();
    const bytes = process.memoryUsage().heapUsed - before;
    assert.equal(held.length, 50_000);
    return bytes;
  };
  const json = heldBy(classifyBinanceJson);
  const template = heldBy(classifyBinanceFrame);
  // Measured: JSON path 14.9 MB, template 17.4 MB; with the captures left as slices of the ~190-byte frames, 25.0 MB.
  assert.ok(template < json * 1.3, `template path holds ${template} bytes for 50,000 ticks, JSON path ${json}`);
});

test('the simulator sends trades in the exchanges\' serialization: the template reads every trade frame it sends', async () => {
  const sim = await ExchangeSimulator.start({ tradesPerSecond: 200 });
  const sockets: WebSocket[] = [];
  try {
    const frames: Record<'binance' | 'okx', string[]> = { binance: [], okx: [] };
    const bws = new WebSocket(`${sim.binanceWsUrl}/stream?streams=btcusdt@trade/ethusdt@trade`);
    const ows = new WebSocket(`${sim.okxWsUrl}/ws/v5/business`);
    sockets.push(bws, ows);
    bws.on('message', (d) => frames.binance.push(String(d)));
    ows.on('open', () => ows.send(JSON.stringify({ op: 'subscribe', args: [{ channel: 'trades-all', instId: 'BTC-USDT' }, { channel: 'trades-all', instId: 'ETH-USDT' }] })));
    ows.on('message', (d) => frames.okx.push(String(d)));
    await waitFor(() => frames.binance.length >= 50 && frames.okx.filter((f) => f.startsWith('{"arg"')).length >= 50, 10_000, '50 trade frames of each');
    const now = Date.now();
    for (const f of frames.binance) assert.notEqual(matchBinanceTradeFrame(f, now), null, f);
    for (const f of frames.okx.filter((t) => t.startsWith('{"arg"'))) assert.notEqual(matchOkxTradesFrame(f, now), null, f);
  } finally {
    for (const ws of sockets) ws.terminate();
    await sim.stop();
  }
});
