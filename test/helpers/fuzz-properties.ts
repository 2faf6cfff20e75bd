/**
 * Property-based fuzzing of everything that turns exchange bytes into ticks: both exchanges' classify() (followed by
 * the connection's subscription check, as in production) and the REST page mappers. Inputs: arbitrary strings,
 * arbitrary JSON, real-shaped frames with fields mutated, and nesting up to 50,000 levels. The properties: nothing
 * throws; every tick is well formed (exact decimal price and quantity, safe integer id, a subscribed symbol); every
 * rejection detail is short. Shared by test/fuzz-mappers.test.ts (bounded) and scripts/fuzz.ts (long runs).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FrameResult } from '../../src/connection/feed.ts';
import { Subscription } from '../../src/connection/subscription.ts';
import { classifyBinanceFrame, classifyBinanceJson, mapBinanceRestPage } from '../../src/exchanges/binance/binance-mapper.ts';
import { classifyOkxFrame, classifyOkxJson, mapOkxRestPage } from '../../src/exchanges/okx/okx-mapper.ts';
import type { PageMapping } from '../../src/exchanges/validate.ts';
import { DECIMAL_RE } from '../../src/tick.ts';
import type { Exchange, Tick } from '../../src/tick.ts';

const AT = 1_700_000_000_123;
/** Longest rejection detail any mapper may produce: details go into log lines. */
export const MAX_DETAIL_CHARS = 400;

const SUBSCRIBED: Record<Exchange, readonly string[]> = { binance: ['BTCUSDT', 'ETHUSDT'], okx: ['BTC-USDT', 'ETH-USDT'] };
const OTHER: Record<Exchange, readonly string[]> = { binance: ['XRPUSDT', 'btcusdt', 'BTCUSDT '], okx: ['XRP-USDT', 'BTC-USD', 'btc-usdt'] };

// ---- the properties' checks ----

function checkTick(t: Tick, exchange: Exchange, symbols: readonly string[]): void {
  assert.equal(t.exchange, exchange);
  assert.ok(symbols.includes(t.symbol), `symbol ${JSON.stringify(t.symbol)} outside the subscription`);
  assert.ok(Number.isSafeInteger(t.tradeId) && t.tradeId >= 0, `trade id ${t.tradeId}`);
  assert.ok(Number.isSafeInteger(t.tradeTime) && t.tradeTime >= 0, `trade time ${t.tradeTime}`);
  for (const [name, v] of [['price', t.price], ['qty', t.qty]] as const) {
    assert.equal(typeof v, 'string', `${name} is a string`);
    assert.match(v, DECIMAL_RE, `${name} ${JSON.stringify(v)} is an exact decimal`);
    assert.match(v, /[1-9]/, `${name} is not zero`);
  }
  assert.ok(t.side === 'buy' || t.side === 'sell');
  assert.equal(t.receivedAt, AT);
}

function checkDetail(detail: string): void {
  assert.equal(typeof detail, 'string');
  assert.ok(detail.length <= MAX_DETAIL_CHARS, `detail of ${detail.length} chars: ${detail.slice(0, 80)}...`);
}

/** classify() as the connection uses it: the frame's ticks, then the subscription check. */
function classifyAndCheck(exchange: Exchange, text: string): void {
  const classify = exchange === 'binance' ? classifyBinanceFrame : classifyOkxFrame;
  const result: FrameResult = classify(text, AT);
  switch (result.kind) {
    case 'ticks': {
      for (const r of result.rejects ?? []) checkDetail(r.detail);
      const subscription = new Subscription(SUBSCRIBED[exchange]);
      const { kept } = subscription.split(result.ticks);
      for (const t of kept) checkTick(t, exchange, SUBSCRIBED[exchange]);
      for (const t of result.ticks) checkTick(t, exchange, [t.symbol]); // well formed even before the check
      break;
    }
    case 'rejected':
    case 'notice':
    case 'symbol_refused':
      checkDetail(result.detail);
      break;
    default:
      break;
  }
}

function checkPage(page: PageMapping, exchange: Exchange, symbol: string): void {
  if (!page.ok) {
    checkDetail(page.detail);
    return;
  }
  for (const r of page.rejects) checkDetail(r.detail);
  for (const t of page.ticks) {
    checkTick(t, exchange, [symbol]);
    assert.equal(t.source, 'backfill');
  }
}

// ---- arbitraries ----

/** `[[[...]]]` (or `{"a":{"a":...}}`) this deep, as text: JSON.parse takes it, String() of it overflows the stack. */
const deepText = (depth: number, kind: 'array' | 'object'): string =>
  kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/**
 * A deeply nested value stands in the generated frames as a small marker and becomes text only in `serialize`:
 * neither JSON.stringify nor fast-check's own printing of a counterexample could handle the real thing.
 */
class Deep {
  constructor(readonly depth: number, readonly kind: 'array' | 'object') {}
  toJSON(): string {
    return `\u0000deep:${this.depth}:${this.kind}\u0000`;
  }
}

const deepValue = fc
  .tuple(fc.integer({ min: 1, max: 50_000 }), fc.constantFrom<'array' | 'object'>('array', 'object'))
  .map(([depth, kind]) => new Deep(depth, kind));

/** JSON text of a generated frame, with each Deep marker expanded to its nesting. */
function serialize(v: unknown): string {
  return JSON.stringify(v).replace(/"\\u0000deep:(\d+):(array|object)\\u0000"/g, (_m, depth: string, kind: 'array' | 'object') => deepText(Number(depth), kind));
}

/** Strings that look almost like numbers, ids and symbols. */
const nearMiss = fc.constantFrom(
  '', ' ', '0', '0.0', '00', '-1', '-0.5', '1e5', '1E-7', 'NaN', 'Infinity', ' 1', '1 ', '1.', '.5', '1..2', '0x10', '１', '٣',
  '9007199254740993', '99999999999999999999', '1'.repeat(41), `0.${'1'.repeat(41)}`, 'true', 'null', 'buy ', 'BUY', 'sell\u0000',
  '__proto__', 'constructor', 'toString', '\ud800', 'x'.repeat(10_000),
);

/** Any value a field could hold. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 3, arbitrary: nearMiss },
  { weight: 1, arbitrary: deepValue },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 2 ** 53, 2 ** 53 + 2, 1e308, -0)) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}) },
);

type Json = Record<string, unknown>;

/** Replaces, deletes or adds fields of `base` (and of one nested object, reached by `path`), then serializes. */
function mutated(base: () => Json, nestedPaths: ReadonlyArray<readonly (string | number)[]>): fc.Arbitrary<string> {
  const keyOf = fc.oneof(fc.constantFrom(...allKeys(base(), nestedPaths)), fc.string({ maxLength: 6 }));
  const mutation = fc.record({
    at: fc.constantFrom<readonly (string | number)[]>([], ...nestedPaths),
    key: keyOf,
    op: fc.constantFrom('set', 'set', 'set', 'delete'),
    value: fieldValue,
  });
  return fc.array(mutation, { minLength: 1, maxLength: 4 }).map((mutations) => {
    const frame = base();
    for (const m of mutations) {
      const target = reach(frame, m.at);
      if (!target || typeof target !== 'object') continue;
      const obj = target as Record<string, unknown>;
      if (m.op === 'delete') {
        delete obj[m.key];
        continue;
      }
      // A copy: fast-check reuses generated values (constants, shrinking), which must never be mutated or shared.
      const value = m.value instanceof Deep ? m.value : (JSON.parse(JSON.stringify(m.value)) as unknown);
      Object.defineProperty(obj, m.key, { value, enumerable: true, writable: true, configurable: true });
    }
    return serialize(frame);
  });
}

function reach(v: unknown, path: readonly (string | number)[]): unknown {
  let cur = v;
  for (const p of path) cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[p] : undefined;
  return cur;
}

function allKeys(frame: Json, nestedPaths: ReadonlyArray<readonly (string | number)[]>): string[] {
  const keys = new Set(Object.keys(frame));
  for (const p of nestedPaths) for (const k of Object.keys((reach(frame, p) as Json | undefined) ?? {})) keys.add(k);
  return [...keys];
}

// Real shapes (protocols.md §A2, §B2-B5).
const binanceTrade = (): Json => ({ e: 'trade', E: 1672515782136, s: 'BTCUSDT', t: 12345, p: '0.001', q: '100', T: 1672515782136, m: true, M: true });
const binanceFrames = fc.oneof(
  mutated(binanceTrade, []),
  mutated(() => ({ stream: 'btcusdt@trade', data: binanceTrade() }), [['data']]),
  mutated(() => ({ result: ['btcusdt@trade'], id: 1 }), []),
  mutated(() => ({ error: { code: 2, msg: 'Invalid request: invalid stream' }, id: 2 }), [['error']]),
  mutated(() => ({ stream: '!serverShutdown', data: { e: 'serverShutdown', E: 1770123456789 } }), [['data']]),
);
const okxTrade = (): Json => ({ instId: 'BTC-USDT', tradeId: '130639474', px: '42219.9', sz: '0.12060306', side: 'buy', source: '0', ts: '1630048897897' });
const okxFrames = fc.oneof(
  mutated(() => ({ arg: { channel: 'trades-all', instId: 'BTC-USDT' }, data: [okxTrade(), { ...okxTrade(), instId: 'ETH-USDT', tradeId: '5' }] }), [['arg'], ['data', 0], ['data', 1]]),
  mutated(() => ({ event: 'error', code: '60018', msg: "Parameter instId:FOO-BAR doesn't exist", connId: 'a4d3ae55' }), []),
  mutated(() => ({ event: 'subscribe', arg: { channel: 'trades-all', instId: 'BTC-USDT' }, connId: 'a4d3ae55' }), [['arg']]),
  mutated(() => ({ event: 'notice', code: '64008', msg: 'The connection will soon be closed for a service upgrade.', connId: 'a4d3ae55' }), []),
);
/** REST bodies as text (parsed inside the property, so deep ones never pass through fast-check's printer). */
const binanceRestBody = fc.oneof(
  fc.array(mutated(() => ({ id: 28457, price: '4.00000100', qty: '12.00000000', quoteQty: '48.000012', time: 1499865549590, isBuyerMaker: true, isBestMatch: true }), []), { maxLength: 5 })
    .map((items) => `[${items.join(',')}]`),
  mutated(() => ({ code: -1121, msg: 'Invalid symbol.' }), []),
  fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
  deepValue.map(serialize),
);
const okxRestBody = fc.oneof(
  mutated(() => ({ code: '0', msg: '', data: [okxTrade(), { ...okxTrade(), tradeId: '130639473' }] }), [['data', 0], ['data', 1]]),
  fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
  deepValue.map(serialize),
);

/** Frames that were valid except for a nested field: `{"e":[[...]]}`, `{"event":"error","code":[[...]]}`, ... */
const deepFrames = (exchange: Exchange) =>
  fc.tuple(fc.integer({ min: 1, max: 50_000 }), fc.constantFrom<'array' | 'object'>('array', 'object'), fc.nat(4)).map(([depth, kind, where]) => {
    const d = deepText(depth, kind);
    if (exchange === 'binance') {
      return [`{"e":${d}}`, `{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":${d}}}`, `{"id":${d},"error":{"code":${d},"msg":${d}}}`, `{"e":"serverShutdown","E":${d}}`, d][where]!;
    }
    return [`{"event":"error","code":${d}}`, `{"event":"error","code":"1","msg":${d}}`, `{"arg":{"channel":"trades-all"},"data":[${d}]}`, `{"arg":{"channel":${d}},"data":[]}`, `{"event":${d}}`][where]!;
  });

/**
 * Frames in the exchanges' own serialization (the shapes src/exchanges/frame-templates.ts reads without JSON.parse),
 * each field drawn from valid values and from near misses the template must decline or read exactly as JSON would.
 */
/** Mostly the valid value, sometimes a near miss: about a third of the frames are all valid, the rest have a bad field or two. */
const mostly = <T>(valid: fc.Arbitrary<T>, miss: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 10, arbitrary: valid }, { weight: 1, arbitrary: miss });
const decimal = fc.tuple(fc.stringMatching(/^[0-9]{1,12}$/), fc.option(fc.stringMatching(/^[0-9]{1,10}$/))).map(([i, f]) => (f === null ? i : `${i}.${f}`));
const uintMiss = fc.oneof(fc.constantFrom(2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e16, 1e17, -1, 1.5, 1e21, null, true), nearMiss);
const uint = mostly(fc.nat(), uintMiss);
const time = mostly(fc.integer({ min: AT - 10 ** 11, max: AT + 86_400_000 }), fc.oneof(fc.constantFrom(0, 1672515782136, AT + 86_400_001, AT * 1000, Math.floor(AT / 1000)), uintMiss));
const asDigits = (a: fc.Arbitrary<unknown>) => a.map((v) => (typeof v === 'number' ? String(v) : v));
const symbol = (valid: readonly string[]) => mostly(fc.constantFrom(...valid), fc.oneof(nearMiss, fc.constantFrom('BTC\\USDT', 'BTC"USDT', 'Ünï', 'btcusdt', 'A'.repeat(41))));
export const binanceTemplateFrame = fc
  .record({ stream: mostly(fc.constantFrom('btcusdt@trade', 'ethusdt@trade'), fc.constantFrom('BTCUSDT@trade', 'btcusdt@aggTrade', '')),
    e: mostly(fc.constant('trade'), fc.constantFrom('aggTrade', 1, 'Trade')), E: time, s: symbol(SUBSCRIBED.binance), t: uint,
    p: mostly(decimal, nearMiss), q: mostly(decimal, nearMiss), ba: fc.boolean(), T: time,
    m: mostly(fc.boolean(), fc.constantFrom('true', 1, null)), M: mostly(fc.boolean(), fc.constantFrom(null, 'x')) })
  .map(({ stream, e, E, s, t, p, q, ba, T, m, M }) =>
    JSON.stringify({ stream, data: { e, E, s, t, p, q, ...(ba ? { b: 88, a: 50 } : {}), T, m, M } }));
const okxTemplateTrade = fc
  .record({ instId: symbol(SUBSCRIBED.okx), tradeId: mostly(fc.oneof(asDigits(fc.nat()), fc.stringMatching(/^0{1,3}[0-9]{1,13}$/)), asDigits(uintMiss)),
    px: mostly(decimal, nearMiss), sz: mostly(decimal, nearMiss), side: mostly(fc.constantFrom('buy', 'sell'), fc.constantFrom('BUY', 1, 'sell ')),
    source: fc.option(mostly(fc.constantFrom('0', '1'), fc.constantFrom(0, '12345'))), ts: asDigits(time) })
  .map(({ source, ...t }) => ({ instId: t.instId, tradeId: t.tradeId, px: t.px, sz: t.sz, side: t.side, ...(source === null ? {} : { source }), ts: t.ts }));
export const okxTemplateFrame = fc
  .tuple(mostly(fc.constant('trades-all'), fc.constantFrom('trades', 'TRADES-ALL')), symbol(SUBSCRIBED.okx), fc.array(okxTemplateTrade, { minLength: 0, maxLength: 3 }))
  .map(([channel, instId, data]) => JSON.stringify({ arg: { channel, instId }, data }));
export const validBinanceFrame = '{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000120,"s":"BTCUSDT","t":12345,"p":"29546.52000000","q":"0.85582000","T":1700000000119,"m":false,"M":true}}';
export const validOkxFrame = '{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1050109","px":"29529.03","sz":"2.7704","side":"buy","source":"0","ts":"1700000000100"},{"instId":"ETH-USDT","tradeId":"0000005","px":"1.0","sz":"0.5","side":"sell","ts":"1700000000101"}]}';
/** A valid frame with 1 to 4 characters inserted, replaced or deleted: text that is almost, but not quite, the template. */
export const editedFrame = (base: string) =>
  fc.array(fc.record({ at: fc.nat(base.length), op: fc.constantFrom('insert', 'replace', 'delete'), ch: fc.constantFrom(...'0123456789."\\,:{}[] -+eE\u00e9\u0000atfnulrsbq'.split('')) }), { minLength: 1, maxLength: 4 })
    .map((edits) => {
      let t = base;
      for (const { at, op, ch } of edits) {
        const i = at % (t.length + 1);
        t = op === 'insert' ? t.slice(0, i) + ch + t.slice(i) : op === 'replace' ? t.slice(0, i) + ch + t.slice(i + 1) : t.slice(0, i) + t.slice(i + 1);
      }
      return t;
    });

/** The frame template's answer is the general path's answer, whatever the frame. */
function sameAsJsonPath(exchange: Exchange, text: string): void {
  const [fast, json] = exchange === 'binance' ? [classifyBinanceFrame, classifyBinanceJson] : [classifyOkxFrame, classifyOkxJson];
  assert.deepEqual(fast(text, AT), json(text, AT));
}

// ---- the properties ----

export interface FuzzRunOptions {
  readonly numRuns: number;
  readonly seed?: number;
}

export interface FuzzProperty {
  readonly name: string;
  /** Runs the property; throws fast-check's report (with the seed and the shrunk counterexample) on a failure. */
  run(opts: FuzzRunOptions): void;
}

export function fuzzProperties(): FuzzProperty[] {
  const props: FuzzProperty[] = [];
  const add = <T>(name: string, arb: fc.Arbitrary<T>, check: (v: T) => void) =>
    props.push({ name, run: (opts) => fc.assert(fc.property(arb, check), { numRuns: opts.numRuns, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) }) });
  for (const exchange of ['binance', 'okx'] as const) {
    const frames = exchange === 'binance' ? binanceFrames : okxFrames;
    add(`${exchange} classify: arbitrary text`, fc.string({ maxLength: 300, unit: 'binary' }), (t) => classifyAndCheck(exchange, t));
    add(`${exchange} classify: arbitrary JSON`, fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)), (t) => classifyAndCheck(exchange, t));
    add(`${exchange} classify: mutated real frames`, frames, (t) => classifyAndCheck(exchange, t));
    add(`${exchange} classify: deep nesting`, deepFrames(exchange), (t) => classifyAndCheck(exchange, t));
    add(`${exchange} classify: unsubscribed symbols never pass the subscription check`,
      fc.tuple(fc.constantFrom(...OTHER[exchange]), fc.nat()).map(([symbol, id]) =>
        exchange === 'binance'
          ? JSON.stringify({ stream: 'btcusdt@trade', data: { ...binanceTrade(), s: symbol, t: id } })
          : JSON.stringify({ arg: { channel: 'trades-all', instId: 'BTC-USDT' }, data: [{ ...okxTrade(), instId: symbol, tradeId: String(id) }] })),
      (t) => {
        const result = (exchange === 'binance' ? classifyBinanceFrame : classifyOkxFrame)(t, AT);
        assert.equal(result.kind, 'ticks');
        const { kept, refused } = new Subscription(SUBSCRIBED[exchange]).split((result as Extract<FrameResult, { kind: 'ticks' }>).ticks);
        assert.deepEqual(kept, []);
        assert.equal(refused.length, 1);
      });
  }
  for (const [exchange, frames, valid] of [['binance', binanceTemplateFrame, validBinanceFrame], ['okx', okxTemplateFrame, validOkxFrame]] as const) {
    add(`${exchange} frame template: same answer as the JSON path on frames in the exchange's serialization`, frames, (t) => sameAsJsonPath(exchange, t));
    add(`${exchange} frame template: same answer as the JSON path on a valid frame with characters edited`, editedFrame(valid), (t) => sameAsJsonPath(exchange, t));
  }
  add('binance REST page: arbitrary and mutated bodies', binanceRestBody, (body) => checkPage(mapBinanceRestPage(JSON.parse(body), 'BTCUSDT', AT), 'binance', 'BTCUSDT'));
  add('okx REST page: arbitrary and mutated bodies', okxRestBody, (body) => checkPage(mapOkxRestPage(JSON.parse(body), 'BTC-USDT', AT), 'okx', 'BTC-USDT'));
  return props;
}
