/**
 * OKX v5 public market data (protocols.md §B1-B6): `/ws/v5/public` (`trades`, `tickers`) and `/ws/v5/business`
 * (`trades-all`); subscribe / unsubscribe with one ack per arg, error events with string codes (or numbers, as some
 * real answers carry them); 60018 "Wrong URL or channel:<channel>,instId:<id> doesn't exist" for an unknown
 * instrument and for a channel this URL does not serve (the other args of the request still succeed); 64001 for a
 * channel that moved to /business; text `ping` -> `pong` and no answer to WebSocket ping frames; the idle close 4004;
 * the per-connection subscribe budget (60014); the service upgrade: notice 64008 then a close on /public, a plain
 * close without notice on /business (protocols.md §B5, §D).
 */
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { SimSession } from './session.ts';
import type { SessionContext, TradeFrames } from './session.ts';
import { SlidingWindow } from './limits.ts';
import { rawText } from './binance-ws.ts';
import type { RouteResult } from './binance-ws.ts';
import type { OkxIdleActivity, SimTrade } from './types.ts';

export type OkxUrlKind = 'public' | 'business';
/** Where each URL serves what; `tradesAllOn: 'public'` emulates OKX moving trades-all (a wrong URL for us). */
function channels(tradesAllOn: OkxUrlKind): Record<OkxUrlKind, readonly string[]> {
  return tradesAllOn === 'business'
    ? { public: ['trades', 'tickers'], business: ['trades-all'] }
    : { public: ['trades', 'tickers', 'trades-all'], business: [] };
}
/** Channels OKX migrated from /public to /business: asked on /public they get 64001. */
const MIGRATED_TO_BUSINESS: ReadonlySet<string> = new Set(['trades-all']);
const MAX_ARGS_BYTES = 64 * 1024;
const ID_RE = /^[A-Za-z0-9]{1,32}$/;
const HOUR_MS = 3_600_000;

export interface OkxWsOptions {
  readonly idleTimeoutMs: number;
  readonly idleActivity: OkxIdleActivity;
  readonly subscribesPerHour: number;
  readonly tradesAllOn: OkxUrlKind;
  /** Error codes as JSON numbers (`"code":60018`) instead of strings. */
  readonly numericCodes: boolean;
}

export function okxRoute(rawUrl: string): RouteResult<OkxUrlKind> {
  const path = new URL(rawUrl, 'http://x').pathname.replace(/\/+$/, '');
  if (path === '/ws/v5/public') return { ok: true, route: 'public' };
  if (path === '/ws/v5/business') return { ok: true, route: 'business' };
  return { ok: false, status: 404, body: 'Not Found' };
}

export function tradesAllPush(t: SimTrade): string {
  return `{"arg":{"channel":"trades-all","instId":"${t.symbol}"},"data":[{"instId":"${t.symbol}","tradeId":"${t.tradeId}","px":"${t.price}","sz":"${t.qty}","side":"${t.side}","source":"0","ts":"${t.time}"}]}`;
}

/** `trades` aggregates per taker order; every simulated taker order fills once, so each push has count 1. */
function tradesPush(t: SimTrade): string {
  return `{"arg":{"channel":"trades","instId":"${t.symbol}"},"data":[{"instId":"${t.symbol}","tradeId":"${t.tradeId}","px":"${t.price}","sz":"${t.qty}","side":"${t.side}","ts":"${t.time}","count":"1","source":"0","seqId":${t.tradeId}}]}`;
}

interface Arg {
  channel: string;
  instId: string;
}

export class OkxSession extends SimSession {
  readonly exchange = 'okx' as const;
  readonly connId = randomBytes(4).toString('hex');
  readonly #kind: OkxUrlKind;
  readonly #opts: OkxWsOptions;
  readonly #subscribeWindow = new SlidingWindow(HOUR_MS);
  /** `${channel}:${instId}` -> arg */
  readonly #subs = new Map<string, Arg>();
  /** When the subscription set last became empty (connect time at first); null while subscribed. */
  #emptySince: number | null = Date.now();

  constructor(ws: WebSocket, socket: Duplex, ctx: SessionContext, kind: OkxUrlKind, opts: OkxWsOptions) {
    super(ws, socket, ctx);
    this.#kind = kind;
    this.#opts = opts;
  }

  get dataChannel(): string {
    return this.#kind === 'business' ? 'trades-all' : 'trades';
  }

  start(): void {
    this.#armIdle();
  }

  symbols(): string[] {
    const out: string[] = [];
    for (const a of this.#subs.values()) if ((a.channel === 'trades' || a.channel === 'trades-all') && !out.includes(a.instId)) out.push(a.instId);
    return out;
  }

  deliver(frames: TradeFrames): void {
    const symbol = frames.trade.symbol;
    if (this.#subs.has(`trades-all:${symbol}`)) this.send(frames.get('okx:trades-all', tradesAllPush));
    if (this.#subs.has(`trades:${symbol}`)) this.send(frames.get('okx:trades', tradesPush));
  }

  /**
   * A service upgrade in `delayMs`: on /public the 64008 notice now, then the close; on /business only the close
   * (OKX supports the notice on /public and /private only).
   */
  upgradeNotice(delayMs: number): void {
    if (!this.isOpen) return;
    if (this.#kind === 'public') this.#event({ event: 'notice', code: this.#code('64008'), msg: 'The connection will soon be closed for a service upgrade. Please reconnect.' });
    this.timers.set('notice', delayMs, () => this.close(1001, 'Service upgrade'));
  }

  /** The `errorFrame` fault: an error event as if a request had been malformed. */
  errorFrame(): void {
    if (this.isOpen) this.#error(undefined, '60012', 'Invalid request: {"op":"subscribe","argss":[]}');
  }

  malformedFrames(): Array<string | Buffer> {
    const instId = this.symbols()[0] ?? 'BTC-USDT';
    const ts = String(Date.now());
    const push = (fields: Record<string, unknown>) =>
      JSON.stringify({ arg: { channel: this.dataChannel, instId }, data: [{ instId, tradeId: '1', px: '1.5', sz: '1', side: 'buy', source: '0', ts, ...fields }] });
    return [
      `{"arg":{"channel":"${this.dataChannel}","instId":"${instId}"},"data":[{"instId":"${instId}","tradeId":"1`, // invalid_json
      Buffer.from(push({})), // binary
      push({ px: undefined }), // missing_field
      push({ tradeId: 1 }), // bad_type
      push({ px: 'abc' }), // bad_number (non-numeric price)
      push({ sz: '-1.5' }), // bad_number (negative size)
      JSON.stringify({ event: 'mystery', code: '0', msg: '', connId: this.connId }), // unknown_event
    ];
  }

  oversizedFrame(bytes: number): string {
    const instId = this.symbols()[0] ?? 'BTC-USDT';
    return `{"arg":{"channel":"${this.dataChannel}","instId":"${instId}"},"data":[],"pad":"${'x'.repeat(bytes)}"}`;
  }

  protected onOverflow(): void {
    this.ctx.logger.warn({ exchange: 'okx', session: this.id }, 'simulator: client too slow, closing 4005');
    this.close(4005, 'Buffer is full, cannot write data', 1000);
  }

  protected onMessage(data: RawData, isBinary: boolean): void {
    const text = isBinary ? '' : rawText(data);
    if (text === 'ping') {
      this.send('pong');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.#error(undefined, '60012', `Invalid request: ${text.slice(0, 500)}`);
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg) || !('op' in msg)) {
      this.#error(undefined, '60012', `Invalid request: ${text.slice(0, 500)}`);
      return;
    }
    const req = msg as Record<string, unknown>;
    const id = typeof req.id === 'string' && ID_RE.test(req.id) ? req.id : undefined;
    if (req.id !== undefined && id === undefined) {
      this.#error(undefined, '60012', `Invalid request: ${text.slice(0, 500)}`);
      return;
    }
    if (req.op !== 'subscribe' && req.op !== 'unsubscribe') {
      this.#error(id, '60019', `Invalid op: ${String(req.op)}`);
      return;
    }
    if (this.#subscribeWindow.hit(Date.now()) > this.#opts.subscribesPerHour) {
      this.#error(id, '60014', 'Requests too frequent.');
      return;
    }
    if (!Array.isArray(req.args) || req.args.length === 0 || JSON.stringify(req.args).length > MAX_ARGS_BYTES) {
      this.#error(id, '60013', `Invalid args: ${text.slice(0, 500)}`);
      return;
    }
    for (const arg of req.args) this.#handleArg(id, req.op, arg);
  }

  #handleArg(id: string | undefined, op: 'subscribe' | 'unsubscribe', raw: unknown): void {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      this.#error(id, '60013', 'Invalid args');
      return;
    }
    const arg = raw as Record<string, unknown>;
    if (typeof arg.channel !== 'string' || arg.channel === '') {
      this.#error(id, '60027', 'Parameter channel can not be empty.');
      return;
    }
    const channel = arg.channel;
    const instId = typeof arg.instId === 'string' ? arg.instId : '';
    const served = channels(this.#opts.tradesAllOn);
    if (!served[this.#kind].includes(channel)) {
      if (this.#kind === 'public' && MIGRATED_TO_BUSINESS.has(channel) && served.business.includes(channel)) {
        this.#error(id, '64001', "This channel has been migrated to the '/business' URL. Please subscribe using the new URL. More details can refer to: https://www.okx.com/help-center/changes-to-v5-api-websocket-subscription-parameter-and-url");
      } else if (this.#kind === 'business' && served.public.includes(channel) && !MIGRATED_TO_BUSINESS.has(channel)) {
        this.#error(id, '64002', 'This channel is not supported by "/business" URL. Please use "/private" URL(for private channels), or "/public" URL(for public channels). More details can refer to: https://www.okx.com/help-center/changes-to-v5-api-websocket-subscription-parameter-and-url');
      } else {
        this.#unknown(id, channel, instId);
      }
      return;
    }
    if (instId === '') {
      this.#error(id, '60027', 'Parameter instId can not be empty.');
      return;
    }
    if (!this.ctx.symbols.has(instId)) {
      this.#unknown(id, channel, instId);
      return;
    }
    const key = `${channel}:${instId}`;
    if (op === 'subscribe') this.#subs.set(key, { channel, instId });
    else this.#subs.delete(key);
    this.#emptySince = this.#subs.size === 0 ? (this.#emptySince ?? Date.now()) : null;
    this.#event({ ...(id !== undefined ? { id } : {}), event: op, arg: { channel, instId } });
  }

  #unknown(id: string | undefined, channel: string, instId: string): void {
    this.#error(id, '60018', `Wrong URL or channel:${channel},instId:${instId} doesn't exist. Please use the correct URL, channel and parameters referring to API document.`);
  }

  #error(id: string | undefined, code: string, msg: string): void {
    this.#event({ ...(id !== undefined ? { id } : {}), event: 'error', code: this.#code(code), msg });
  }

  #code(code: string): string | number {
    return this.#opts.numericCodes ? Number(code) : code;
  }

  #event(body: Record<string, unknown>): void {
    this.send(JSON.stringify({ ...body, connId: this.connId }));
  }

  /** Close 4004 when the connection idles (by the configured activity rule) or stays unsubscribed for the timeout. */
  #armIdle(): void {
    const idle = this.#opts.idleTimeoutMs;
    const activity =
      this.#opts.idleActivity === 'client' ? this.lastReceivedAt
        : this.#opts.idleActivity === 'server' ? this.lastSentAt
          : Math.max(this.lastReceivedAt, this.lastSentAt);
    const deadline = Math.min(activity + idle, this.#emptySince === null ? Infinity : this.#emptySince + idle);
    const wait = deadline - Date.now();
    if (wait <= 0) {
      this.ctx.logger.info({ exchange: 'okx', session: this.id }, 'simulator: idle connection, closing 4004');
      this.close(4004, 'No data received in 30s');
      return;
    }
    this.timers.set('idle', wait, () => this.#armIdle());
  }
}
