/**
 * Binance spot market streams (protocols.md §A1-A5): `/ws/<stream>[/<stream>...]`, `/ws`, `/stream?streams=a/b`,
 * `/stream`; live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with the real ack and
 * error shapes (nested as servers send them, or flat as the docs print them); ping frames with a pong deadline (a
 * pong must echo a ping's payload); answers to the client's pings; at most N inbound messages per second (pings,
 * pongs and JSON requests all count) or close 1008; the connection age limit; handshake URLs longer than the real
 * servers' limit (8004 characters) refused; a session that silently lost some of its URL's streams
 * (`partialSubscriptions`: LIST_SUBSCRIPTIONS then lists fewer than were asked, and they get no data).
 */
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { SimSession } from './session.ts';
import type { SessionContext, TradeFrames } from './session.ts';
import { SlidingWindow } from './limits.ts';
import type { SimTrade } from './types.ts';

export const BINANCE_MAX_STREAMS = 1024;
const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY'];
/** Stream types the simulator knows; `trade` and `aggTrade` carry data, the others are accepted and stay silent. */
const STREAM_RE = /^([a-z0-9]{2,30})@(trade|aggTrade|bookTicker|avgPrice|ticker|miniTicker|depth(?:5|10|20)?(?:@100ms)?|kline_(?:1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M))$/;
const ID_STRING_RE = /^[A-Za-z0-9]{1,36}$/;

export interface BinanceWsOptions {
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly maxConnectionAgeMs: number;
  readonly inboundPerSecond: number;
  readonly errorShape: 'nested' | 'flat';
  /** Called with each session's inbound message count over the last second, after every inbound message. */
  readonly onInbound: (perSecond: number) => void;
}

/** What the simulator does to one session beyond its route (handshake-time faults). */
export interface BinanceSessionFaults {
  /** Drop every other stream of the URL (at least one) without telling the client. */
  readonly partialSubscriptions?: boolean;
}

export interface BinanceRoute {
  readonly combined: boolean;
  readonly streams: string[];
  readonly microseconds: boolean;
}

export type RouteResult<R> = { ok: true; route: R } | { ok: false; status: number; body: string };

function parseStream(name: string): { symbol: string; type: string } | null {
  const m = STREAM_RE.exec(name);
  return m ? { symbol: m[1]!.toUpperCase(), type: m[2]! } : null;
}

/** Maps an upgrade URL to a session shape, or the HTTP answer the upgrade gets. */
export function binanceRoute(rawUrl: string, maxUrlLength = Infinity): RouteResult<BinanceRoute> {
  if (rawUrl.length > maxUrlLength) return { ok: false, status: 414, body: `{"code":414,"msg":"URI Too Long: ${rawUrl.length} > ${maxUrlLength} characters"}` };
  const url = new URL(rawUrl, 'http://x');
  const path = url.pathname.replace(/\/+$/, '');
  let combined: boolean;
  let streams: string[];
  if (path === '/ws') {
    combined = false;
    streams = [];
  } else if (path.startsWith('/ws/')) {
    combined = false;
    streams = path.slice(4).split('/').filter((s) => s !== '');
  } else if (path === '/stream') {
    combined = true;
    streams = (url.searchParams.get('streams') ?? '').split('/').filter((s) => s !== '');
  } else {
    return { ok: false, status: 404, body: 'Not Found' };
  }
  for (const s of streams) if (!parseStream(s)) return { ok: false, status: 400, body: `Invalid stream name ${JSON.stringify(s)}` };
  if (streams.length > BINANCE_MAX_STREAMS) return { ok: false, status: 400, body: `More than ${BINANCE_MAX_STREAMS} streams` };
  const unit = url.searchParams.get('timeUnit');
  if (unit !== null && !/^(MICROSECOND|microsecond|MILLISECOND|millisecond)$/.test(unit)) {
    return { ok: false, status: 400, body: `Invalid timeUnit ${JSON.stringify(unit)}` };
  }
  return { ok: true, route: { combined, streams: [...new Set(streams)], microseconds: unit?.toLowerCase() === 'microsecond' } };
}

export function binanceStreamName(symbol: string, type = 'trade'): string {
  return `${symbol.toLowerCase()}@${type}`;
}

export function tradeEvent(t: SimTrade, micro: boolean): string {
  const time = micro ? t.time * 1000 : t.time;
  return `{"e":"trade","E":${time},"s":"${t.symbol}","t":${t.tradeId},"p":"${t.price}","q":"${t.qty}","T":${time},"m":${t.side === 'sell'},"M":true}`;
}

/** One aggregate trade per trade: the aggregate id equals the trade id, so `a`, `f` and `l` stay contiguous. */
function aggTradeEvent(t: SimTrade, micro: boolean): string {
  const time = micro ? t.time * 1000 : t.time;
  return `{"e":"aggTrade","E":${time},"s":"${t.symbol}","a":${t.tradeId},"p":"${t.price}","q":"${t.qty}","f":${t.tradeId},"l":${t.tradeId},"T":${time},"m":${t.side === 'sell'},"M":true}`;
}

type RequestId = number | string | null;

export class BinanceSession extends SimSession {
  readonly exchange = 'binance' as const;
  readonly #opts: BinanceWsOptions;
  readonly #micro: boolean;
  readonly #inbound = new SlidingWindow(1000);
  /** Outstanding ping payloads and when they were sent. */
  readonly #pings = new Map<string, number>();
  #combined: boolean;
  #streams: string[] = [];
  /** symbol -> the data stream types subscribed for it. */
  #wants = new Map<string, Set<string>>();
  #pingSeq = 0;

  constructor(ws: WebSocket, socket: Duplex, ctx: SessionContext, route: BinanceRoute, opts: BinanceWsOptions, faults: BinanceSessionFaults = {}) {
    super(ws, socket, ctx);
    this.#opts = opts;
    this.#combined = route.combined;
    this.#micro = route.microseconds;
    const streams = faults.partialSubscriptions ? route.streams.filter((_, i) => i % 2 === 1) : route.streams;
    if (faults.partialSubscriptions) ctx.countFault('binance:partialSubscriptions');
    this.#setStreams(streams);
  }

  start(): void {
    this.timers.set('ping', this.#opts.pingIntervalMs, () => this.#ping());
    this.timers.set('age', this.#opts.maxConnectionAgeMs, () => this.close(1001, 'Connection age limit reached'));
  }

  get streams(): readonly string[] {
    return this.#streams;
  }

  /** `/stream` (events wrapped as `{stream,data}`) rather than `/ws`. */
  get combined(): boolean {
    return this.#combined;
  }

  symbols(): string[] {
    return [...this.#wants.keys()];
  }

  deliver(frames: TradeFrames): void {
    const types = this.#wants.get(frames.trade.symbol);
    if (!types) return;
    for (const type of types) {
      const key = `${type}:${this.#combined ? 'c' : 'r'}:${this.#micro ? 'us' : 'ms'}`;
      const micro = this.#micro;
      const combined = this.#combined;
      this.send(frames.get(key, (t) => {
        const event = type === 'trade' ? tradeEvent(t, micro) : aggTradeEvent(t, micro);
        return combined ? `{"stream":"${binanceStreamName(t.symbol, type)}","data":${event}}` : event;
      }));
    }
  }

  /** `serverShutdown` (raw or combined form), then a close after `delayMs`. */
  shutdownNotice(delayMs: number): void {
    if (!this.isOpen) return;
    const event = `{"e":"serverShutdown","E":${Date.now()}}`;
    this.send(this.#combined ? `{"stream":"!serverShutdown","data":${event}}` : event);
    this.timers.set('shutdown', delayMs, () => this.close(1001, 'Server shutdown'));
  }

  malformedFrames(): Array<string | Buffer> {
    const symbol = this.symbols()[0] ?? 'BTCUSDT';
    const now = Date.now();
    const wrap = (type: string, event: string) => (this.#combined ? `{"stream":"${binanceStreamName(symbol, type)}","data":${event}}` : event);
    const trade = (fields: Record<string, unknown>) =>
      wrap('trade', JSON.stringify({ e: 'trade', E: now, s: symbol, t: 1, p: '1.00000000', q: '1.00000000', T: now, m: true, M: true, ...fields }));
    return [
      wrap('trade', `{"e":"trade","E":${now},"s":"${symbol}","t":1,"p":"1.0`), // invalid_json
      Buffer.from(trade({})), // binary
      trade({ p: undefined }), // missing_field
      trade({ p: 1.5 }), // bad_type
      trade({ p: 'abc' }), // bad_number (non-numeric price)
      trade({ q: '-1.50000000' }), // bad_number (negative qty)
      wrap('depth', JSON.stringify({ e: 'depthUpdate', E: now, s: symbol, U: 1, u: 2, b: [], a: [] })), // unknown_event
    ];
  }

  oversizedFrame(bytes: number): string {
    const symbol = this.symbols()[0] ?? 'BTCUSDT';
    const event = `{"e":"trade","E":${Date.now()},"s":"${symbol}","t":1,"p":"1.0","q":"1.0","T":${Date.now()},"m":true,"M":true,"pad":"${'x'.repeat(bytes)}"}`;
    return this.#combined ? `{"stream":"${binanceStreamName(symbol)}","data":${event}}` : event;
  }

  protected onOverflow(): void {
    this.ctx.logger.warn({ exchange: 'binance', session: this.id }, 'simulator: client too slow, dropping the socket');
    this.destroy();
  }

  protected override onPing(): void {
    this.#countInbound(); // ws answers with a pong echoing the payload (autoPong), as the real servers do
  }

  protected override onPong(data: Buffer): void {
    if (!this.#countInbound()) return;
    const sentAt = this.#pings.get(data.toString('utf8'));
    if (sentAt === undefined) return; // unsolicited pongs do not prevent disconnection
    for (const [payload, at] of this.#pings) if (at <= sentAt) this.#pings.delete(payload);
    this.timers.clear('pong-deadline');
    const oldest = Math.min(...this.#pings.values());
    if (Number.isFinite(oldest)) this.#armPongDeadline(oldest);
  }

  protected onMessage(data: RawData, isBinary: boolean): void {
    if (!this.#countInbound()) return;
    const text = isBinary ? '' : rawText(data);
    this.#handleRequest(text);
  }

  /** Counts one inbound message; over the limit the connection is closed with 1008 and false is returned. */
  #countInbound(): boolean {
    const perSecond = this.#inbound.hit(Date.now());
    this.#opts.onInbound(perSecond);
    if (perSecond <= this.#opts.inboundPerSecond) return true;
    this.ctx.logger.info({ exchange: 'binance', session: this.id }, 'simulator: inbound message limit exceeded, closing 1008');
    this.close(1008, 'Too many requests');
    return false;
  }

  #ping(): void {
    if (!this.isOpen) return;
    const payload = `${Date.now()}-${++this.#pingSeq}`;
    const now = Date.now();
    this.#pings.set(payload, now);
    this.ws.ping(payload);
    if (!this.timers.has('pong-deadline')) this.#armPongDeadline(now);
    this.timers.set('ping', this.#opts.pingIntervalMs, () => this.#ping());
  }

  #armPongDeadline(pingSentAt: number): void {
    const wait = Math.max(0, pingSentAt + this.#opts.pongTimeoutMs - Date.now());
    this.timers.set('pong-deadline', wait, () => {
      this.ctx.logger.info({ exchange: 'binance', session: this.id }, 'simulator: no pong within the deadline, disconnecting');
      this.destroy();
    });
  }

  #reply(body: Record<string, unknown>): void {
    this.send(JSON.stringify(body));
  }

  #error(id: RequestId, code: number, msg: string): void {
    this.#reply(this.#opts.errorShape === 'flat' ? { code, msg, id } : { error: { code, msg }, id });
  }

  /** The `errorFrame` fault: an error answer as if a request had failed (id null, as for a request we could not read). */
  errorFrame(): void {
    if (this.isOpen) this.#error(null, 2, 'Invalid request: invalid stream');
  }

  #handleRequest(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.#error(null, 3, `Invalid JSON: expected value at line 1 column ${Math.max(1, text.length)}`);
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.#error(null, 2, `Invalid request: missing field \`method\` at line 1 column ${text.length}`);
      return;
    }
    const req = msg as Record<string, unknown>;
    const id = req.id ?? null;
    if (!(id === null || (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && ID_STRING_RE.test(id)))) {
      this.#error(null, 2, 'Invalid request: request ID must be an unsigned integer');
      return;
    }
    const reqId = id as RequestId;
    if (!('method' in req)) {
      this.#error(reqId, 2, `Invalid request: missing field \`method\` at line 1 column ${text.length}`);
      return;
    }
    if (typeof req.method !== 'string' || !METHODS.includes(req.method)) {
      const variant = typeof req.method === 'string' ? req.method : String(req.method);
      this.#error(reqId, 2, `Invalid request: unknown variant \`${variant}\`, expected one of ${METHODS.map((m) => `\`${m}\``).join(', ')} at line 1 column ${text.length}`);
      return;
    }
    const params = req.params ?? [];
    if (!Array.isArray(params)) {
      this.#error(reqId, 2, 'Invalid request: params must be an array');
      return;
    }
    switch (req.method) {
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        this.#subscribe(reqId, req.method === 'SUBSCRIBE', params);
        return;
      case 'LIST_SUBSCRIPTIONS':
        this.#reply({ result: [...this.#streams], id: reqId });
        return;
      case 'SET_PROPERTY':
        this.#setProperty(reqId, params);
        return;
      case 'GET_PROPERTY':
        if (params.length > 1) this.#error(reqId, 2, 'Invalid request: too many parameters');
        else if (typeof params[0] !== 'string') this.#error(reqId, 2, 'Invalid request: property name must be a string');
        else if (params[0] !== 'combined') this.#error(reqId, 0, 'Unknown property');
        else this.#reply({ result: this.#combined, id: reqId });
        return;
    }
  }

  #subscribe(id: RequestId, add: boolean, params: unknown[]): void {
    for (const p of params) {
      if (typeof p !== 'string' || !parseStream(p)) {
        this.#error(id, 2, 'Invalid request: invalid stream');
        return;
      }
    }
    const names = params as string[];
    const next = add ? [...this.#streams, ...names.filter((n) => !this.#streams.includes(n))] : this.#streams.filter((s) => !names.includes(s));
    const unique = [...new Set(next)];
    if (unique.length > BINANCE_MAX_STREAMS) {
      this.#error(id, 2, `Invalid request: too many streams (max ${BINANCE_MAX_STREAMS})`);
      return;
    }
    this.#setStreams(unique);
    this.#reply({ result: null, id });
  }

  #setProperty(id: RequestId, params: unknown[]): void {
    if (params.length > 2) this.#error(id, 2, 'Invalid request: too many parameters');
    else if (typeof params[0] !== 'string') this.#error(id, 2, 'Invalid request: property name must be a string');
    else if (params[0] !== 'combined') this.#error(id, 0, 'Unknown property');
    else if (typeof params[1] !== 'boolean') this.#error(id, 1, 'Invalid value type: expected Boolean');
    else {
      this.#combined = params[1];
      this.#reply({ result: null, id });
    }
  }

  #setStreams(streams: string[]): void {
    this.#streams = streams;
    const wants = new Map<string, Set<string>>();
    for (const s of streams) {
      const parsed = parseStream(s)!;
      let set = wants.get(parsed.symbol);
      if (!set) wants.set(parsed.symbol, (set = new Set()));
      if (parsed.type === 'trade' || parsed.type === 'aggTrade') set.add(parsed.type);
    }
    this.#wants = wants;
  }
}

export function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
