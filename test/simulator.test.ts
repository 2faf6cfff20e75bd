/**
 * Protocol conformance of the exchange simulator, with a plain `ws` client and `fetch` (no collector code): the wire
 * shapes of protocols.md, the limits and their answers, REST paging, the tape as the single source of truth, faults
 * at the wire level, the control API, and a clean stop().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { ExchangeSimulator } from '../src/simulator/index.ts';
import type { SimTrade, SimulatorOptions } from '../src/simulator/index.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

/** A raw `ws` client that records everything it sees. */
class Client {
  readonly ws: WebSocket;
  readonly frames: Array<{ text: string; binary: boolean }> = [];
  readonly pings: Buffer[] = [];
  readonly errors: Error[] = [];
  closed: { code: number; reason: string } | null = null;
  refused: { status: number; retryAfter: string | undefined } | null = null;

  constructor(url: string, opts: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
    this.ws.on('message', (data, binary) => this.frames.push({ text: binary ? '' : String(data), binary }));
    this.ws.on('ping', (data) => this.pings.push(data));
    this.ws.on('error', (err) => this.errors.push(err));
    this.ws.on('close', (code, reason) => (this.closed = { code, reason: String(reason) }));
    this.ws.on('unexpected-response', (req, res) => {
      this.refused = { status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined };
      res.resume();
      req.destroy();
    });
  }

  static async open(url: string, opts: WebSocket.ClientOptions = {}): Promise<Client> {
    const c = new Client(url, opts);
    await waitFor(() => c.ws.readyState === WebSocket.OPEN || c.closed || c.refused, 5000, `open ${url}`);
    assert.equal(c.ws.readyState, WebSocket.OPEN, `opened ${url}`);
    return c;
  }

  send(v: unknown): void {
    this.ws.send(typeof v === 'string' ? v : JSON.stringify(v));
  }

  json(): Array<Record<string, unknown>> {
    return this.frames.filter((f) => !f.binary && f.text !== 'pong').map((f) => JSON.parse(f.text) as Record<string, unknown>);
  }

  /** Waits for the first JSON message (after `from` frames) matching `pred`. */
  async expect(pred: (m: Record<string, unknown>) => boolean, what: string, from = 0, ms = 3000): Promise<Record<string, unknown>> {
    return waitFor(() => this.json().slice(from).find(pred), ms, what);
  }

  async waitClosed(ms = 5000): Promise<{ code: number; reason: string }> {
    return waitFor(() => this.closed, ms, 'close');
  }

  terminate(): void {
    this.ws.terminate();
  }
}

const QUIET: SimulatorOptions = { okxHandshakesPerSecond: 1000, binanceHandshakesPer5Min: 100_000 };

async function withSim<T>(opts: SimulatorOptions, fn: (sim: ExchangeSimulator) => Promise<T>): Promise<T> {
  const sim = await ExchangeSimulator.start({ ...QUIET, ...opts });
  try {
    return await fn(sim);
  } finally {
    await sim.stop();
  }
}

/** A trade as read back off the wire, in the tape's own shape. */
type WireTrade = SimTrade;

function binanceWire(d: Record<string, unknown>): WireTrade {
  assert.equal(d.E, d.T, 'event time = trade time');
  return { symbol: d.s as string, tradeId: d.t as number, price: d.p as string, qty: d.q as string, side: d.m ? 'sell' : 'buy', time: d.T as number };
}

function okxWire(d: Record<string, unknown>): WireTrade {
  return { symbol: d.instId as string, tradeId: Number(d.tradeId), price: d.px as string, qty: d.sz as string, side: d.side as 'buy' | 'sell', time: Number(d.ts) };
}

function asWire(t: SimTrade): WireTrade {
  return { symbol: t.symbol, tradeId: t.tradeId, price: t.price, qty: t.qty, side: t.side, time: t.time };
}

function assertContiguous(ids: number[], what: string): void {
  for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1]! + 1, `${what}: ids contiguous at ${ids[i - 1]} -> ${ids[i]}`);
}

describe('binance websocket', () => {
  let sim: ExchangeSimulator;
  before(async () => {
    sim = await ExchangeSimulator.start({ ...QUIET, tradesPerSecond: 50 });
  });
  after(() => sim.stop());

  test('combined stream: {stream, data:{e:"trade",...}} with the documented fields and types', async () => {
    const c = await Client.open(`${sim.binanceWsUrl}/stream?streams=btcusdt@trade/ethusdt@trade`);
    await waitFor(() => c.json().filter((m) => (m.data as { s: string }).s === 'ETHUSDT').length >= 5, 5000, 'ETHUSDT trades');
    for (const m of c.json()) {
      assert.deepEqual(Object.keys(m), ['stream', 'data']);
      const d = m.data as Record<string, unknown>;
      assert.equal(m.stream, `${(d.s as string).toLowerCase()}@trade`);
      assert.deepEqual(Object.keys(d), ['e', 'E', 's', 't', 'p', 'q', 'T', 'm', 'M']);
      assert.equal(d.e, 'trade');
      assert.ok(Number.isSafeInteger(d.t) && Number.isSafeInteger(d.E));
      assert.match(d.p as string, /^\d+\.\d{8}$/);
      assert.match(d.q as string, /^\d+\.\d{8}$/);
      assert.ok(Number(d.p) > 0 && Number(d.q) > 0);
      assert.equal(typeof d.m, 'boolean');
      assert.equal('b' in d || 'a' in d, false, 'order ids were removed in 2024');
    }
    assert.deepEqual(sim.subscriptions('binance'), [['BTCUSDT', 'ETHUSDT']]);
    c.terminate();
    await waitFor(() => sim.liveSockets('binance') === 0, 3000, 'socket gone');
  });

  test('raw /ws/<stream>: the bare event; /ws/<a>/<b> serves both', async () => {
    const c = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`);
    await waitFor(() => c.json().length >= 3, 3000, 'raw trades');
    for (const m of c.json()) {
      assert.equal(m.e, 'trade');
      assert.equal(m.s, 'BTCUSDT');
    }
    const two = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade/ethusdt@aggTrade`);
    await waitFor(() => two.json().some((m) => m.e === 'aggTrade') && two.json().some((m) => m.e === 'trade'), 3000, 'trade and aggTrade');
    const agg = two.json().filter((m) => m.e === 'aggTrade');
    for (const a of agg) assert.equal(a.f, a.l);
    assertContiguous(agg.map((a) => a.a as number), 'aggTrade a');
    c.terminate();
    two.terminate();
  });

  test('/ws + SUBSCRIBE / LIST_SUBSCRIPTIONS / UNSUBSCRIBE / properties, and the error shapes', async () => {
    const c = await Client.open(`${sim.binanceWsUrl}/ws`);
    // five inbound messages per second at most: pace the requests
    const ask = async (req: unknown, id: unknown) => {
      const from = c.json().length;
      c.send(req);
      const m = await c.expect((x) => 'id' in x && x.id === id && ('result' in x || 'error' in x), `answer to ${JSON.stringify(req)}`, from);
      await sleep(250);
      return m;
    };
    assert.deepEqual(await ask({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 1 }, 1), { result: null, id: 1 });
    await c.expect((m) => m.e === 'trade' && m.s === 'BTCUSDT', 'data after SUBSCRIBE');
    assert.deepEqual(await ask({ method: 'SUBSCRIBE', params: ['ethusdt@trade'], id: 'abc' }, 'abc'), { result: null, id: 'abc' });
    assert.deepEqual(await ask({ method: 'LIST_SUBSCRIPTIONS', id: 3 }, 3), { result: ['btcusdt@trade', 'ethusdt@trade'], id: 3 });
    assert.deepEqual(sim.subscriptions('binance').at(-1), ['BTCUSDT', 'ETHUSDT']);
    assert.deepEqual(await ask({ method: 'UNSUBSCRIBE', params: ['btcusdt@trade'], id: 4 }, 4), { result: null, id: 4 });
    assert.deepEqual(await ask({ method: 'LIST_SUBSCRIPTIONS', id: 5 }, 5), { result: ['ethusdt@trade'], id: 5 });
    assert.deepEqual(await ask({ method: 'GET_PROPERTY', params: ['combined'], id: 6 }, 6), { result: false, id: 6 });
    assert.deepEqual(await ask({ method: 'SET_PROPERTY', params: ['combined', true], id: 7 }, 7), { result: null, id: 7 });
    const from = c.json().length;
    await c.expect((m) => m.stream === 'ethusdt@trade' && (m.data as { e: string }).e === 'trade', 'combined wrapping after SET_PROPERTY', from);

    const bad = await ask({ method: 'SUBSCRIBE_ALL', params: [], id: 8 }, 8);
    assert.equal((bad.error as { code: number }).code, 2);
    assert.match((bad.error as { msg: string }).msg, /^Invalid request: unknown variant `SUBSCRIBE_ALL`, expected one of `SUBSCRIBE`/);
    assert.deepEqual(await ask({ method: 'SUBSCRIBE', params: ['BTCUSDT trade'], id: 9 }, 9), { error: { code: 2, msg: 'Invalid request: invalid stream' }, id: 9 });
    assert.deepEqual(await ask({ method: 'SET_PROPERTY', params: ['colour', true], id: 10 }, 10), { error: { code: 0, msg: 'Unknown property' }, id: 10 });
    assert.deepEqual(await ask({ method: 'SET_PROPERTY', params: ['combined', 'yes'], id: 11 }, 11), { error: { code: 1, msg: 'Invalid value type: expected Boolean' }, id: 11 });
    const invalid = await ask('{"method": SUBSCRIBE', null);
    assert.equal((invalid.error as { code: number }).code, 3);
    assert.match((invalid.error as { msg: string }).msg, /^Invalid JSON/);
    assert.equal(c.closed, null, 'paced requests stay under the limit');
    c.terminate();
  });

  test('more than 5 inbound messages per second: close 1008 "Too many requests"', async () => {
    const c = await Client.open(`${sim.binanceWsUrl}/ws`);
    for (let i = 0; i < 8; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    const closed = await c.waitClosed();
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'Too many requests');
    assert.equal(c.json().filter((m) => 'result' in m).length, 5, 'the first five were answered');
  });

  test('unknown path is refused with 404; bad stream names in the URL with 400', async () => {
    const c = new Client(`${sim.binanceWsUrl}/wss/btcusdt@trade`);
    await waitFor(() => c.refused, 3000, 'refused');
    assert.equal(c.refused!.status, 404);
    const d = new Client(`${sim.binanceWsUrl}/stream?streams=btcusdt@nonsense`);
    await waitFor(() => d.refused, 3000, 'refused');
    assert.equal(d.refused!.status, 400);
  });
});

describe('binance keepalive and limits', () => {
  test('ping frames carry a payload; a client that never pongs is dropped after the deadline, one that does stays', async () => {
    await withSim({ binancePingIntervalMs: 250, binancePongTimeoutMs: 600, tradesPerSecond: 0 }, async (sim) => {
      const silent = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`, { autoPong: false });
      const polite = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`);
      const closed = await silent.waitClosed(5000);
      assert.equal(closed.code, 1006, 'dropped without a close frame');
      assert.ok(silent.pings.length >= 1 && silent.pings.every((p) => p.length > 0), 'pings carry a payload');
      assert.ok(polite.pings.length >= 3);
      assert.equal(polite.closed, null, 'answering pings keeps the connection');
      polite.terminate();
    });
  });

  test('unsolicited pongs do not keep a connection alive', async () => {
    await withSim({ binancePingIntervalMs: 300, binancePongTimeoutMs: 700, tradesPerSecond: 0 }, async (sim) => {
      const c = await Client.open(`${sim.binanceWsUrl}/ws`, { autoPong: false });
      const pongs = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.ws.pong(), 400);
      try {
        assert.equal((await c.waitClosed(5000)).code, 1006);
      } finally {
        clearInterval(pongs);
      }
    });
  });

  test('connection age limit closes the socket', async () => {
    await withSim({ binanceMaxConnectionAgeMs: 300 }, async (sim) => {
      const c = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`);
      assert.equal((await c.waitClosed()).code, 1001);
    });
  });

  test('handshakes over the per-IP limit get HTTP 429 with Retry-After', async () => {
    await withSim({ binanceHandshakesPer5Min: 2 }, async (sim) => {
      const a = await Client.open(`${sim.binanceWsUrl}/ws`);
      const b = await Client.open(`${sim.binanceWsUrl}/ws`);
      const c = new Client(`${sim.binanceWsUrl}/ws`);
      await waitFor(() => c.refused, 3000, 'refused');
      assert.equal(c.refused!.status, 429);
      assert.ok(Number(c.refused!.retryAfter) > 0);
      a.terminate();
      b.terminate();
    });
  });
});

describe('okx websocket', () => {
  let sim: ExchangeSimulator;
  before(async () => {
    sim = await ExchangeSimulator.start({ ...QUIET, tradesPerSecond: 50 });
  });
  after(() => sim.stop());

  test('/business trades-all: one ack per arg with id and connId; 60018 for an unknown instId; the others flow', async () => {
    const c = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
    c.send({ id: '7', op: 'subscribe', args: [{ channel: 'trades-all', instId: 'BTC-USDT' }, { channel: 'trades-all', instId: 'FOO-BAR' }, { channel: 'trades-all', instId: 'ETH-USDT' }] });
    const ack = await c.expect((m) => m.event === 'subscribe', 'ack');
    assert.deepEqual(Object.keys(ack), ['id', 'event', 'arg', 'connId']);
    assert.deepEqual(ack.arg, { channel: 'trades-all', instId: 'BTC-USDT' });
    assert.equal(ack.id, '7');
    assert.match(ack.connId as string, /^[0-9a-f]{8}$/);
    const err = await c.expect((m) => m.event === 'error', 'error');
    assert.equal(err.code, '60018');
    assert.equal(err.id, '7');
    assert.match(err.msg as string, /instId:FOO-BAR doesn't exist/);
    assert.equal(err.connId, ack.connId);
    await c.expect((m) => m.event === 'subscribe' && (m.arg as { instId: string }).instId === 'ETH-USDT', 'ack after the error');
    await waitFor(() => c.json().filter((m) => (m.arg as { instId?: string } | undefined)?.instId === 'ETH-USDT' && 'data' in m).length >= 3, 3000, 'ETH-USDT data');
    for (const m of c.json().filter((x) => 'data' in x)) {
      assert.deepEqual(Object.keys(m), ['arg', 'data']);
      const [d] = m.data as Array<Record<string, unknown>>;
      assert.deepEqual(Object.keys(d!), ['instId', 'tradeId', 'px', 'sz', 'side', 'source', 'ts']);
      for (const v of Object.values(d!)) assert.equal(typeof v, 'string', 'every field is a string');
      assert.ok(d!.side === 'buy' || d!.side === 'sell');
    }
    assert.deepEqual(sim.subscriptions('okx'), [['BTC-USDT', 'ETH-USDT']]);

    const from = c.json().length;
    c.send({ op: 'unsubscribe', args: [{ channel: 'trades-all', instId: 'BTC-USDT' }] });
    const unsub = await c.expect((m) => m.event === 'unsubscribe', 'unsubscribe ack', from);
    assert.equal('id' in unsub, false, 'no id echoed when none was sent');
    assert.deepEqual(sim.subscriptions('okx'), [['ETH-USDT']]);
    c.terminate();
  });

  test('wrong URL and bad requests: 64001 / 64002 / 60012 / 60019 error events', async () => {
    const pub = await Client.open(`${sim.okxWsUrl}/ws/v5/public`);
    pub.send({ op: 'subscribe', args: [{ channel: 'trades-all', instId: 'BTC-USDT' }] });
    assert.equal((await pub.expect((m) => m.event === 'error', '64001')).code, '64001');
    pub.send({ op: 'subscribe', args: [{ channel: 'trades', instId: 'BTC-USDT' }] });
    await pub.expect((m) => m.event === 'subscribe', 'trades ack on /public');
    const data = await pub.expect((m) => 'data' in m, 'trades push');
    assert.equal((data.arg as { channel: string }).channel, 'trades');
    assert.equal((data.data as Array<{ count: string }>)[0]!.count, '1');
    pub.terminate();

    const biz = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
    biz.send({ op: 'subscribe', args: [{ channel: 'trades', instId: 'BTC-USDT' }] });
    assert.equal((await biz.expect((m) => m.event === 'error', '64002')).code, '64002');
    let from = biz.json().length;
    biz.send('{"op":"subscribe","args":[');
    assert.equal((await biz.expect((m) => m.event === 'error', '60012', from)).code, '60012');
    from = biz.json().length;
    biz.send({ op: 'dance', args: [] });
    const bad = await biz.expect((m) => m.event === 'error', '60019', from);
    assert.equal(bad.code, '60019');
    assert.equal(bad.msg, 'Invalid op: dance');
    biz.terminate();
  });

  test('text ping -> text pong', async () => {
    const c = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
    c.send('ping');
    await waitFor(() => c.frames.some((f) => f.text === 'pong'), 3000, 'pong');
    c.terminate();
  });
});

describe('okx idle close 4004', () => {
  test('no subscription within the timeout: 4004', async () => {
    await withSim({ okxIdleTimeoutMs: 400 }, async (sim) => {
      const c = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      const pinger = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.send('ping'), 100);
      try {
        const closed = await c.waitClosed();
        assert.equal(closed.code, 4004, 'pings alone do not count as a subscription');
        assert.equal(closed.reason, 'No data received in 30s');
      } finally {
        clearInterval(pinger);
      }
    });
  });

  test('subscribed but nothing sent either way: 4004; traffic keeps it open', async () => {
    await withSim({ okxIdleTimeoutMs: 400, tradesPerSecond: 0 }, async (sim) => {
      const quiet = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      const busy = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      for (const c of [quiet, busy]) c.send({ op: 'subscribe', args: [{ channel: 'trades-all', instId: 'BTC-USDT' }] });
      const pinger = setInterval(() => busy.ws.readyState === WebSocket.OPEN && busy.send('ping'), 100);
      try {
        assert.equal((await quiet.waitClosed()).code, 4004);
        assert.equal(busy.closed, null);
      } finally {
        clearInterval(pinger);
        busy.terminate();
      }
    });
  });
});

describe('rest', () => {
  let sim: ExchangeSimulator;
  before(async () => {
    sim = await ExchangeSimulator.start({ ...QUIET, tradesPerSecond: 0, firstTradeId: 100, okxHistoryRequestsPer2s: 1000, okxTradesRequestsPer2s: 1000 });
    sim.step(1500);
  });
  after(() => sim.stop());

  const get = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, headers: res.headers, body: (await res.json()) as unknown };
  };

  test('binance historicalTrades: ascending from fromId, limit default 500 max 1000, latest without fromId', async () => {
    const r = await get(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=200&limit=5`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-mbx-used-weight-1m'), '25');
    const rows = r.body as Array<Record<string, unknown>>;
    assert.deepEqual(rows.map((t) => t.id), [200, 201, 202, 203, 204]);
    assert.deepEqual(Object.keys(rows[0]!), ['id', 'price', 'qty', 'quoteQty', 'time', 'isBuyerMaker', 'isBestMatch']);
    for (const row of rows) {
      const t = sim.trade('binance', 'BTCUSDT', row.id as number)!;
      assert.deepEqual([row.price, row.qty, row.time, row.isBuyerMaker], [t.price, t.qty, t.time, t.side === 'sell']);
    }
    const latest = (await get(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT`)).body as Array<{ id: number }>;
    assert.equal(latest.length, 500);
    assert.equal(latest.at(-1)!.id, 1599);
    assertContiguous(latest.map((t) => t.id), 'latest page');
    const big = (await get(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=100&limit=5000`)).body as unknown[];
    assert.equal(big.length, 1000);
    const tail = (await get(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=1590&limit=100`)).body as Array<{ id: number }>;
    assert.deepEqual([tail[0]!.id, tail.at(-1)!.id, tail.length], [1590, 1599, 10], 'never a trade that was not emitted');
    assert.deepEqual((await get(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=1600`)).body, []);
    const trades = (await get(`${sim.binanceRestUrl}/api/v3/trades?symbol=ETHUSDT&limit=3`)).body as Array<{ id: number }>;
    assert.deepEqual(trades.map((t) => t.id), [1597, 1598, 1599]);
  });

  test('binance bad parameters answer 400 with the real codes', async () => {
    const unknown = await get(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=FOOBAR`);
    assert.deepEqual([unknown.status, unknown.body], [400, { code: -1121, msg: 'Invalid symbol.' }]);
    const missing = await get(`${sim.binanceRestUrl}/api/v3/trades`);
    assert.equal(missing.status, 400);
    assert.equal((missing.body as { code: number }).code, -1102);
    const bad = await get(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=-5`);
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { code: number }).code, -1100);
  });

  test('okx history-trades: type=1 paging by tradeId, newest first, after / before / limit', async () => {
    const page = async (q: string) => {
      const r = await get(`${sim.okxRestUrl}/api/v5/market/history-trades?instId=BTC-USDT&${q}`);
      assert.equal(r.status, 200);
      const body = r.body as { code: string; msg: string; data: Array<Record<string, string>> };
      assert.equal(body.code, '0');
      assert.equal(body.msg, '');
      return body.data;
    };
    const newest = await page('');
    assert.equal(newest.length, 100, 'default limit 100');
    assert.equal(newest[0]!.tradeId, '1599');
    assert.equal(newest[99]!.tradeId, '1500');
    assert.deepEqual(Object.keys(newest[0]!), ['instId', 'side', 'sz', 'px', 'source', 'tradeId', 'ts']);
    const after = await page('type=1&after=300&limit=3');
    assert.deepEqual(after.map((t) => t.tradeId), ['299', '298', '297']);
    const between = await page('after=300&before=296&limit=100');
    assert.deepEqual(between.map((t) => t.tradeId), ['299', '298', '297']);
    const beforeOnly = await page('before=1590&limit=3');
    assert.deepEqual(beforeOnly.map((t) => t.tradeId), ['1599', '1598', '1597'], 'before alone returns the latest data');
    assert.equal((await page('limit=500')).length, 100, 'limit capped at 100');
    for (const t of after) {
      const s = sim.trade('okx', 'BTC-USDT', Number(t.tradeId))!;
      assert.deepEqual([t.px, t.sz, t.side, t.ts], [s.price, s.qty, s.side, String(s.time)]);
    }
    const ts = Number(after[0]!.ts);
    const byTime = await page(`type=2&after=${ts + 1}&limit=1`);
    assert.ok(Number(byTime[0]!.ts) <= ts);
    const recent = (await get(`${sim.okxRestUrl}/api/v5/market/trades?instId=ETH-USDT&limit=1000`)).body as { data: Array<{ tradeId: string }> };
    assert.equal(recent.data.length, 500, 'market/trades capped at 500');
    assert.equal(recent.data[0]!.tradeId, '1599');
  });

  test('okx bad parameters: 51001 unknown instrument, 51000 bad limit, 50039 before with type=2', async () => {
    const unknown = await get(`${sim.okxRestUrl}/api/v5/market/history-trades?instId=FOO-BAR`);
    assert.equal((unknown.body as { code: string }).code, '51001');
    const bad = await get(`${sim.okxRestUrl}/api/v5/market/history-trades?instId=BTC-USDT&limit=abc`);
    assert.deepEqual([bad.status, (bad.body as { code: string }).code], [400, '51000']);
    const ts = await get(`${sim.okxRestUrl}/api/v5/market/history-trades?instId=BTC-USDT&type=2&before=5`);
    assert.equal((ts.body as { code: string }).code, '50039');
  });

  test('injected REST faults: 500, then 429 with Retry-After and the exchange bodies', async () => {
    sim.injectRest('binance', 'fail500');
    sim.injectRest('binance', 'rateLimit429', { retryAfterSeconds: 7 });
    assert.equal((await get(`${sim.binanceRestUrl}/api/v3/trades?symbol=BTCUSDT&limit=1`)).status, 500);
    const limited = await get(`${sim.binanceRestUrl}/api/v3/trades?symbol=BTCUSDT&limit=1`);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    assert.equal((limited.body as { code: number }).code, -1003);
    assert.equal((await get(`${sim.binanceRestUrl}/api/v3/trades?symbol=BTCUSDT&limit=1`)).status, 200);

    sim.injectRest('okx', 'rateLimit429', { count: 2 });
    for (let i = 0; i < 2; i++) {
      const r = await get(`${sim.okxRestUrl}/api/v5/market/history-trades?instId=BTC-USDT`);
      assert.deepEqual([r.status, r.body], [429, { msg: 'Too Many Requests', code: '50011' }]);
    }
    assert.equal((await get(`${sim.okxRestUrl}/api/v5/market/history-trades?instId=BTC-USDT`)).status, 200);
    assert.equal(sim.stats().faultsInjected['okx:rest:rateLimit429'], 2);
  });
});

describe('rest rate limits', () => {
  test('binance weight window: 429 + Retry-After + -1003 past the limit, then 418; X-MBX-USED-WEIGHT-1M counts', async () => {
    await withSim({ binanceWeightPerMinute: 100, binanceWeightWindowMs: 60_000, binanceBanAfterRejections: 1, tradesPerSecond: 0 }, async (sim) => {
      sim.step(10);
      const used: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&limit=1`);
        assert.equal(r.status, 200);
        used.push(r.headers.get('x-mbx-used-weight-1m')!);
        await r.body?.cancel();
      }
      assert.deepEqual(used, ['25', '50', '75', '100']);
      const r = await fetch(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&limit=1`);
      assert.equal(r.status, 429);
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      const body = (await r.json()) as { code: number; msg: string };
      assert.equal(body.code, -1003);
      assert.match(body.msg, /^Too much request weight used/);
      await (await fetch(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&limit=1`)).body?.cancel();
      const banned = await fetch(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&limit=1`);
      assert.equal(banned.status, 418, 'keeping on after 429s earns a ban');
      assert.ok(Number(banned.headers.get('retry-after')) >= 60);
      assert.match(((await banned.json()) as { msg: string }).msg, /IP banned until \d+/);
    });
  });

  test('okx history-trades: 429 {"code":"50011"} above the per-2s limit', async () => {
    await withSim({ okxHistoryRequestsPer2s: 3, tradesPerSecond: 0 }, async (sim) => {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await fetch(`${sim.okxRestUrl}/api/v5/market/history-trades?instId=BTC-USDT`);
        statuses.push(r.status);
        await r.body?.cancel();
      }
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    });
  });
});

describe('the tape is the single source of truth', () => {
  test('everything pushed over WS equals the tape; REST serves the same trades', async () => {
    await withSim({ tradesPerSecond: 100 }, async (sim) => {
      const bn = await Client.open(`${sim.binanceWsUrl}/stream?streams=btcusdt@trade/ethusdt@trade`);
      const okx = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      okx.send({ op: 'subscribe', args: [{ channel: 'trades-all', instId: 'BTC-USDT' }, { channel: 'trades-all', instId: 'ETH-USDT' }] });
      const wire = () => [
        ...bn.json().map((m) => binanceWire(m.data as Record<string, unknown>)).map((t) => ({ ex: 'binance' as const, t })),
        ...okx.json().filter((m) => 'data' in m).flatMap((m) => (m.data as Array<Record<string, unknown>>).map(okxWire)).map((t) => ({ ex: 'okx' as const, t })),
      ];
      await waitFor(() => ['BTC-USDT', 'ETH-USDT'].every((s) => wire().filter((w) => w.t.symbol === s).length >= 30), 10_000, 'trades on both');
      sim.pause();
      const frozen = sim.stats().framesSent;
      await waitFor(() => bn.frames.length + okx.frames.length >= frozen.binance + frozen.okx, 3000, 'every frame sent has arrived');
      for (const [ex, symbol] of [['binance', 'BTCUSDT'], ['binance', 'ETHUSDT'], ['okx', 'BTC-USDT'], ['okx', 'ETH-USDT']] as const) {
        const got = wire().filter((w) => w.ex === ex && w.t.symbol === symbol).map((w) => w.t);
        assertContiguous(got.map((t) => t.tradeId), `${ex} ${symbol}`);
        const range = sim.tapeRange(ex, symbol)!;
        assert.equal(got.at(-1)!.tradeId, range.last, `${ex} ${symbol}: the last trade sent was received`);
        const tape = sim.tape(ex, symbol).filter((t) => t.tradeId >= got[0]!.tradeId).map(asWire);
        assert.deepEqual(got, tape, `${ex} ${symbol}: wire == tape`);
      }
      const rest = (await (await fetch(`${sim.binanceRestUrl}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${sim.tapeRange('binance', 'BTCUSDT')!.first}&limit=1000`)).json()) as Array<Record<string, unknown>>;
      assert.deepEqual(rest.map((r) => ({ symbol: 'BTCUSDT', tradeId: r.id, price: r.price, qty: r.qty, side: r.isBuyerMaker ? 'sell' : 'buy', time: r.time })), sim.tape('binance', 'BTCUSDT').map(asWire));
      bn.terminate();
      okx.terminate();
    });
  });

  test('deterministic from the seed; contiguous ids per symbol from firstTradeId; m=true means the taker sold', async () => {
    const run = async (seed: number) =>
      withSim({ seed, tradesPerSecond: 0, firstTradeId: 42 }, async (sim) => {
        sim.step(200);
        return { bn: sim.tape('binance', 'BTCUSDT'), okx: sim.tape('okx', 'ETH-USDT') };
      });
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    const strip = (ts: SimTrade[]) => ts.map(({ tradeId, price, qty, side }) => ({ tradeId, price, qty, side }));
    assert.deepEqual(strip(a.bn), strip(b.bn));
    assert.deepEqual(strip(a.okx), strip(b.okx));
    assert.notDeepEqual(strip(a.bn), strip(c.bn));
    assert.equal(a.bn[0]!.tradeId, 42);
    assertContiguous(a.bn.map((t) => t.tradeId), 'tape');
    assert.ok(a.bn.some((t) => t.side === 'buy') && a.bn.some((t) => t.side === 'sell'));
    for (const t of a.okx) assert.match(t.price, /^\d+(\.\d+)?$/);
  });

  test('tapeRetention bounds the tape; trade() and tapeRange() agree', async () => {
    await withSim({ tradesPerSecond: 0, tapeRetention: 50, firstTradeId: 1 }, async (sim) => {
      sim.step(120);
      assert.deepEqual(sim.tapeRange('binance', 'BTCUSDT'), { first: 71, last: 120 });
      assert.equal(sim.tape('binance', 'BTCUSDT').length, 50);
      assert.equal(sim.trade('binance', 'BTCUSDT', 70), undefined);
      assert.equal(sim.trade('binance', 'BTCUSDT', 71)!.tradeId, 71);
      assert.equal(sim.trade('binance', 'BTCUSDT', 121), undefined);
    });
  });

  test('high rate: one frame per trade, all received in order', async () => {
    await withSim({ tradesPerSecond: 0, binanceSymbols: ['BTCUSDT'], okxSymbols: ['BTC-USDT'] }, async (sim) => {
      const bn = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`);
      sim.setRate(5000);
      await waitFor(() => bn.frames.length >= 5000, 20_000, '5000 frames');
      sim.pause();
      const sent = sim.stats().framesSent.binance;
      await waitFor(() => bn.frames.length === sent, 5000, 'every frame');
      const ids = bn.json().map((m) => m.t as number);
      assertContiguous(ids, 'high rate');
      assert.equal(ids.at(-1), sim.tapeRange('binance', 'BTCUSDT')!.last);
      bn.terminate();
    });
  });
});

describe('faults at the wire level', () => {
  test('close1001, fin (1006 without a close frame), reset (ECONNRESET)', async () => {
    await withSim({ tradesPerSecond: 20 }, async (sim) => {
      let c = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`);
      sim.inject('binance', 'close1001');
      assert.equal((await c.waitClosed()).code, 1001);
      c = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`);
      sim.inject('binance', 'fin');
      assert.equal((await c.waitClosed()).code, 1006);
      const o = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      const sockErrors: string[] = [];
      (o.ws as unknown as { _socket: import('node:net').Socket })._socket.on('error', (e: NodeJS.ErrnoException) => sockErrors.push(e.code ?? ''));
      sim.inject('okx', 'reset');
      assert.equal((await o.waitClosed()).code, 1006);
      assert.deepEqual(sockErrors, ['ECONNRESET']);
      await waitFor(() => sim.liveSockets('binance') + sim.liveSockets('okx') === 0, 3000, 'all gone');
      assert.equal(sim.stats().faultsInjected['binance:close1001'], 1);
    });
  });

  test('blackhole: no data, no pongs, no close reply; the socket lives until the client leaves', async () => {
    await withSim({ tradesPerSecond: 50 }, async (sim) => {
      const c = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`, { closeTimeout: 300 } as WebSocket.ClientOptions);
      await waitFor(() => c.frames.length > 0, 3000, 'data');
      sim.inject('binance', 'blackhole');
      await sleep(100);
      const n = c.frames.length;
      let pongs = 0;
      c.ws.on('pong', () => pongs++);
      c.ws.ping('are you there');
      await sleep(400);
      assert.equal(c.frames.length, n, 'no data after the black hole');
      assert.equal(pongs, 0, 'no pong');
      assert.equal(sim.liveSockets('binance'), 1);
      c.ws.close(1000);
      const closed = await c.waitClosed();
      assert.equal(closed.code, 1006, 'no close reply: the client gave up after its close timeout');
      await waitFor(() => sim.liveSockets('binance') === 0, 3000, 'freed once the client left');
    });
  });

  test('stallHandshake, refuse503, refuse429 apply to the next upgrades only', async () => {
    await withSim({ retryAfterSeconds: 3 }, async (sim) => {
      sim.inject('okx', 'stallHandshake');
      const stalled = new Client(`${sim.okxWsUrl}/ws/v5/business`, { handshakeTimeout: 300 });
      await waitFor(() => stalled.errors.length > 0, 3000, 'handshake timeout');
      assert.match(stalled.errors[0]!.message, /handshake has timed out/);
      sim.inject('okx', 'refuse503');
      sim.inject('okx', 'refuse429', { count: 2 });
      const statuses: Array<{ status: number; retryAfter: string | undefined }> = [];
      for (let i = 0; i < 3; i++) {
        const c = new Client(`${sim.okxWsUrl}/ws/v5/business`);
        statuses.push(await waitFor(() => c.refused, 3000, 'refused'));
      }
      assert.deepEqual(statuses, [{ status: 503, retryAfter: undefined }, { status: 429, retryAfter: '3' }, { status: 429, retryAfter: '3' }]);
      const ok = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      ok.terminate();
      await waitFor(() => sim.liveSockets('okx') === 0, 3000, 'refused and stalled sockets freed');
    });
  });

  test('serverShutdown (combined form) then close; OKX service upgrade: notice 64008 then close on /public, a plain close without notice on /business', async () => {
    await withSim({ shutdownCloseDelayMs: 200, noticeCloseDelayMs: 200 }, async (sim) => {
      const bn = await Client.open(`${sim.binanceWsUrl}/stream?streams=btcusdt@trade`);
      const okx = await Client.open(`${sim.okxWsUrl}/ws/v5/public`);
      const business = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      sim.inject('binance', 'serverShutdown');
      sim.inject('okx', 'notice64008');
      const shutdown = await bn.expect((m) => m.stream === '!serverShutdown', 'serverShutdown');
      assert.equal((shutdown.data as { e: string }).e, 'serverShutdown');
      assert.ok(Number.isSafeInteger((shutdown.data as { E: number }).E));
      const notice = await okx.expect((m) => m.event === 'notice', 'notice');
      assert.equal(notice.code, '64008');
      assert.match(notice.connId as string, /^[0-9a-f]{8}$/);
      await bn.waitClosed();
      await okx.waitClosed();
      assert.equal((await business.waitClosed()).code, 1001, '/business closed too');
      assert.deepEqual(business.frames.filter((f) => f.text.includes('"notice"')), [], 'but never got a notice');
      assert.throws(() => sim.inject('binance', 'notice64008'), /does not exist on binance/);
    });
  });

  test('malformed: one frame of each bad kind; oversized: one frame larger than oversizedBytes', async () => {
    await withSim({ tradesPerSecond: 0, oversizedBytes: 100_000 }, async (sim) => {
      const bn = await Client.open(`${sim.binanceWsUrl}/ws/btcusdt@trade`);
      sim.inject('binance', 'malformed');
      await waitFor(() => bn.frames.length === 7, 3000, 'seven malformed frames');
      assert.equal(bn.frames.filter((f) => f.binary).length, 1);
      const texts = bn.frames.filter((f) => !f.binary).map((f) => f.text);
      assert.throws(() => JSON.parse(texts[0]!));
      const parsed = texts.slice(1).map((t) => JSON.parse(t) as Record<string, unknown>);
      assert.equal('p' in parsed[0]!, false, 'missing price');
      assert.equal(typeof parsed[1]!.p, 'number', 'wrong type');
      assert.equal(parsed[2]!.p, 'abc');
      assert.match(parsed[3]!.q as string, /^-/);
      assert.equal(parsed[4]!.e, 'depthUpdate');
      sim.inject('binance', 'oversized');
      await waitFor(() => bn.frames.length === 8, 3000, 'oversized frame');
      assert.ok(bn.frames[7]!.text.length > 100_000);
      bn.terminate();
    });
  });

  test('faultSchedule injects round-robin on a timer', async () => {
    await withSim({ faultSchedule: { everyMs: 150, kinds: ['close1001', 'fin'], exchanges: ['okx'] } }, async (sim) => {
      const a = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      const first = await a.waitClosed();
      const b = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      const second = await b.waitClosed();
      assert.deepEqual(new Set([first.code, second.code]), new Set([1001, 1006]));
      assert.ok((sim.stats().faultsInjected['okx:close1001'] ?? 0) >= 1);
    });
  });
});

describe('control API', () => {
  test('fault, rate, pause/step, status and tape over HTTP', async () => {
    await withSim({ tradesPerSecond: 0 }, async (sim) => {
      const post = (path: string, body: unknown) => fetch(`${sim.binanceRestUrl}/__sim/${path}`, { method: 'POST', body: JSON.stringify(body) });
      assert.equal((await post('step', { n: 5 })).status, 200);
      const c = await Client.open(`${sim.okxWsUrl}/ws/v5/business`);
      assert.equal((await post('fault', { exchange: 'okx', kind: 'close1001' })).status, 200);
      assert.equal((await c.waitClosed()).code, 1001);
      const bad = await post('fault', { exchange: 'okx', kind: 'meteor' });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /unknown fault/);
      assert.equal((await post('rest-fault', { exchange: 'binance', kind: 'fail500' })).status, 200);
      assert.equal((await fetch(`${sim.binanceRestUrl}/api/v3/trades?symbol=BTCUSDT`)).status, 500);
      assert.equal((await post('rate', { tradesPerSecond: 25 })).status, 200);
      assert.equal(sim.rate, 25);
      const status = (await (await fetch(`${sim.binanceRestUrl}/__sim/status`)).json()) as { tapes: { okx: Record<string, { first: number; last: number }> }; liveSockets: unknown };
      assert.ok(status.tapes.okx['BTC-USDT']!.last >= 1_000_004);
      assert.deepEqual(Object.keys(status.liveSockets as object), ['binance', 'okx']);
      const page = (await (await fetch(`${sim.binanceRestUrl}/__sim/tape?exchange=okx&symbol=BTC-USDT&fromId=1000001&limit=2`)).json()) as { trades: SimTrade[] };
      assert.deepEqual(page.trades, [sim.trade('okx', 'BTC-USDT', 1_000_001), sim.trade('okx', 'BTC-USDT', 1_000_002)]);
    });
  });
});

describe('stop()', () => {
  test('closes every socket (live, black-holed, stalled, REST keep-alive) and both servers; idempotent', async () => {
    const sim = await ExchangeSimulator.start({ ...QUIET, tradesPerSecond: 20 });
    const clients = [
      await Client.open(`${sim.binanceWsUrl}/stream?streams=btcusdt@trade`),
      await Client.open(`${sim.binanceWsUrl}/ws`),
      await Client.open(`${sim.okxWsUrl}/ws/v5/business`),
    ];
    sim.inject('binance', 'blackhole');
    sim.inject('okx', 'stallHandshake');
    const stalled = new Client(`${sim.okxWsUrl}/ws/v5/public`, { handshakeTimeout: 60_000 });
    clients.push(stalled);
    const raw = connect(Number(new URL(sim.okxRestUrl).port), '127.0.0.1');
    let rawClosed = false;
    raw.on('error', () => {});
    raw.on('close', () => (rawClosed = true));
    await (await fetch(`${sim.okxRestUrl}/api/v5/market/trades?instId=BTC-USDT`)).json();
    await waitFor(() => sim.liveSockets('okx') === 2 && sim.liveSockets('binance') === 2, 3000, 'all sockets up');
    const stopping = sim.stop();
    assert.equal(sim.stop(), stopping, 'idempotent');
    await stopping;
    assert.equal(sim.liveSockets('binance') + sim.liveSockets('okx'), 0);
    await waitFor(() => clients.every((c) => c.closed !== null || c.errors.length > 0) && rawClosed, 3000, 'every client socket saw its end');
    await assert.rejects(fetch(`${sim.binanceRestUrl}/api/v3/trades?symbol=BTCUSDT`), 'the server is closed');
    const frames = sim.stats().framesSent;
    await sleep(100);
    assert.deepEqual(sim.stats().framesSent, frames, 'no timer left sending');
  });
});
