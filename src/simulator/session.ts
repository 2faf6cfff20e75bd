/**
 * One server-side WebSocket of the simulator: the `ws` socket, its raw TCP socket, its timers, and the socket-level
 * faults (close 1001, RST, FIN without a close frame, black hole). Exchange sessions extend it with their protocol.
 */
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { WebSocket, RawData } from 'ws';
import type { Logger } from 'pino';
import { Timers } from '../connection/timers.ts';
import type { SimExchange, SimTrade } from './types.ts';

export interface SessionContext {
  readonly logger: Logger;
  readonly maxBufferedBytes: number;
  /** Counts one frame sent on `exchange`. */
  countFrame(exchange: SimExchange): void;
  /** Attribute an applied fault to the stats. */
  countFault(key: string): void;
  /** Symbols known on this exchange (others are refused / silently ignored as the exchange does). */
  readonly symbols: ReadonlySet<string>;
}

/** A trade being fanned out, with its wire frames built once and shared by every socket that wants that shape. */
export class TradeFrames {
  readonly trade: SimTrade;
  readonly #cache = new Map<string, string>();

  constructor(trade: SimTrade) {
    this.trade = trade;
  }

  get(key: string, build: (t: SimTrade) => string): string {
    let f = this.#cache.get(key);
    if (f === undefined) {
      f = build(this.trade);
      this.#cache.set(key, f);
    }
    return f;
  }
}

type Phase = 'open' | 'blackholed' | 'ending';

let nextSessionId = 1;

export abstract class SimSession {
  readonly id = nextSessionId++;
  abstract readonly exchange: SimExchange;
  readonly createdAt = Date.now();
  /** ms epoch of the last frame this socket sent / received (any kind, control frames included). */
  protected lastSentAt = this.createdAt;
  protected lastReceivedAt = this.createdAt;
  protected readonly ws: WebSocket;
  protected readonly socket: Duplex;
  protected readonly ctx: SessionContext;
  protected readonly timers = new Timers();
  #phase: Phase = 'open';
  #gone = false;
  #grace: NodeJS.Timeout | null = null;
  readonly #onGone: Array<() => void> = [];

  constructor(ws: WebSocket, socket: Duplex, ctx: SessionContext) {
    this.ws = ws;
    this.socket = socket;
    this.ctx = ctx;
    ws.on('error', () => {}); // a fault or a dying peer must never crash the simulator
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.lastReceivedAt = Date.now();
      if (this.#phase === 'open') this.onMessage(data, isBinary);
    });
    ws.on('ping', (data: Buffer) => {
      this.lastReceivedAt = Date.now();
      if (this.#phase === 'open') this.onPing(data);
    });
    ws.on('pong', (data: Buffer) => {
      this.lastReceivedAt = Date.now();
      if (this.#phase === 'open') this.onPong(data);
    });
    socket.once('close', () => this.#finish());
  }

  /** Open, not faulted, not closing: it gets data and answers requests. */
  get isOpen(): boolean {
    return this.#phase === 'open' && this.ws.readyState === this.ws.OPEN;
  }

  get isBlackholed(): boolean {
    return this.#phase === 'blackholed';
  }

  get isGone(): boolean {
    return this.#gone;
  }

  onceGone(fn: () => void): void {
    if (this.#gone) fn();
    else this.#onGone.push(fn);
  }

  /** Exchange-native symbols this socket currently receives trades for. */
  abstract symbols(): string[];
  /** Sends the trade if this socket is subscribed to it. */
  abstract deliver(frames: TradeFrames): void;
  /** Invalid frames, one of each bad kind the collector distinguishes. */
  abstract malformedFrames(): Array<string | Buffer>;
  /** One frame of about `bytes` bytes. */
  abstract oversizedFrame(bytes: number): string;
  /** An error answer in the exchange's shape, as if a request had failed. */
  abstract errorFrame(): void;
  /** Called once after the upgrade: arm heartbeats and limits. */
  abstract start(): void;
  protected abstract onMessage(data: RawData, isBinary: boolean): void;
  protected onPing(_data: Buffer): void {}
  protected onPong(_data: Buffer): void {}
  /** The unsent backlog grew past maxBufferedBytes. */
  protected abstract onOverflow(): void;

  /** Sends one frame; false if the socket is not open. Drops a socket whose backlog is too large. */
  send(frame: string | Buffer, binary = false): boolean {
    if (!this.isOpen) return false;
    this.ws.send(frame, { binary });
    this.lastSentAt = Date.now();
    this.ctx.countFrame(this.exchange);
    if (this.ws.bufferedAmount > this.ctx.maxBufferedBytes) this.onOverflow();
    return true;
  }

  /** Close frame with `code`; destroyed if the peer has not answered after `graceMs`. */
  close(code: number, reason: string, graceMs = 5_000): void {
    if (this.#phase !== 'open') return;
    this.#phase = 'ending';
    this.stopTimers();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, reason);
    this.#destroyAfter(graceMs);
  }

  /** TCP reset: the client sees ECONNRESET. */
  reset(): void {
    this.#phase = 'ending';
    this.stopTimers();
    const s = this.socket as Socket;
    if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s.destroy();
  }

  /** TCP FIN with no close frame: the client sees close code 1006. */
  fin(): void {
    if (this.#gone) return;
    this.#phase = 'ending';
    this.stopTimers();
    this.socket.end();
    this.#destroyAfter(5_000);
  }

  /**
   * Half-open peer: send nothing more, read and discard everything (no pongs, no close reply), never close. The
   * socket goes away only when the client closes its side (or stop()).
   */
  blackhole(): void {
    if (this.#phase !== 'open') return;
    this.#phase = 'blackholed';
    this.stopTimers();
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.socket.on('data', () => {});
    this.socket.on('end', () => this.socket.destroy());
  }

  destroy(): void {
    this.#phase = 'ending';
    this.stopTimers();
    this.socket.destroy();
  }

  /** Clears the protocol timers (heartbeats, idle, age). */
  protected stopTimers(): void {
    this.timers.clearAll();
  }

  #destroyAfter(ms: number): void {
    if (this.#grace || this.#gone) return;
    this.#grace = setTimeout(() => this.socket.destroy(), ms);
  }

  #finish(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#phase = 'ending';
    this.timers.clearAll();
    if (this.#grace) clearTimeout(this.#grace);
    this.#grace = null;
    for (const fn of this.#onGone.splice(0)) fn();
  }
}
