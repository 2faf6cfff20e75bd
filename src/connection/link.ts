/**
 * One socket attempt: owns one `ws` client, its handshake / silence / heartbeat timers and its listeners.
 * It reports its end once (`onEnd`) and closes on request: close frame first, `terminate()` when the peer does not
 * answer within the grace, resolving only when the TCP socket is gone. Nothing of it outlives `close()`.
 */
import WebSocket from 'ws';
import type { RawData } from 'ws';
import type { IncomingMessage, ClientRequest } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseRetryAfter } from '../errors.ts';
import type { ReconnectReason } from '../snapshots.ts';
import type { HeartbeatPolicy } from './feed.ts';
import { Timers } from './timers.ts';

export interface LinkEnd {
  readonly reason: ReconnectReason;
  readonly detail: string;
  /** The close code when the peer (or ws on a protocol error) closed the connection. */
  readonly closeCode?: number;
  /** HTTP status of a refused upgrade. */
  readonly status?: number;
  /** The server's Retry-After on a refused upgrade, in ms. */
  readonly retryAfterMs?: number;
  /** True when ws refused a frame larger than maxPayload. */
  readonly oversized?: boolean;
  /** For a liveness detection (silence, heartbeat): ms from the last inbound frame to the detection. */
  readonly silentMs?: number;
}

export interface LinkOptions {
  readonly url: string;
  readonly handshakeTimeoutMs: number;
  readonly silenceTimeoutMs: number;
  readonly closeGraceMs: number;
  readonly maxPayloadBytes: number;
  readonly heartbeat?: HeartbeatPolicy;
  /** Least spacing of the frames queued with sendPaced(). */
  readonly controlIntervalMs?: number;
}

export interface LinkEvents {
  onOpen(link: Link): void;
  onText(link: Link, text: string, receivedAt: number): void;
  onBinary(link: Link, bytes: number): void;
  /** Called at most once: the socket failed or the peer closed it. Not called for a close we asked for. */
  onEnd(link: Link, end: LinkEnd): void;
}

export type CloseMode = 'graceful' | 'terminate';

/** Timers that watch the peer: suspended while paused, cleared on close. */
const WATCHDOGS = ['silence', 'heartbeat-idle', 'heartbeat-deadline'] as const;

export class Link {
  readonly id: number;
  readonly #opts: LinkOptions;
  readonly #events: LinkEvents;
  readonly #timers = new Timers();
  /** Control frames waiting for their turn (sendPaced); bounded by what the feed asks to send. */
  readonly #outbox: string[] = [];
  #ws: WebSocket | null = null;
  /** The TCP socket under #ws once upgraded: destroyed directly if ws never reports the close. */
  #raw: Duplex | null = null;
  #ended = false;
  #closeRequested = false;
  #paused = false;
  #gone!: Promise<void>;
  #markGone!: () => void;
  #isGone = false;
  /** When the last inbound frame of any kind (data, ping, pong) arrived: monotonic ms (performance.now()). */
  #lastInboundAt = 0;
  /** ms epoch of the last frame sent from the outbox (pings do not count: with a ping idle time shorter than the
   * spacing they would starve it; their own rate is one per idle time at most). */
  #lastPacedAt = 0;

  constructor(id: number, opts: LinkOptions, events: LinkEvents) {
    this.id = id;
    this.#opts = opts;
    this.#events = events;
    this.#gone = new Promise((resolve) => (this.#markGone = resolve));
  }

  /** Opens the socket. Call once. */
  open(): void {
    const ws = new WebSocket(this.#opts.url, {
      perMessageDeflate: false,
      maxPayload: this.#opts.maxPayloadBytes,
      followRedirects: false,
      autoPong: true,
      // ws >= 8.20: bound its own close handshake (e.g. after a protocol error) by the same grace.
      closeTimeout: Math.max(1, this.#opts.closeGraceMs),
    } as WebSocket.ClientOptions);
    this.#ws = ws;
    ws.on('open', () => this.#onOpen());
    ws.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('ping', () => this.#onAlive());
    ws.on('pong', () => this.#onAlive());
    ws.on('unexpected-response', (req: ClientRequest, res: IncomingMessage) => this.#onRefused(req, res));
    // ws swallows errors of the TCP socket once open (a reset only shows as close 1006): watch the socket itself so a
    // reset is reported as an error. This listener runs before ws's own, which then destroys the socket.
    ws.on('upgrade', (res: IncomingMessage) => {
      this.#raw = res.socket;
      res.socket.on('error', (err: Error & { code?: string }) => this.#onError(err));
    });
    ws.on('error', (err: Error & { code?: string }) => this.#onError(err));
    ws.on('close', (code: number, reason: Buffer) => this.#onClose(code, reason));
    this.#timers.set('handshake', this.#opts.handshakeTimeoutMs, () =>
      this.#end({ reason: 'handshake_timeout', detail: `no upgrade within ${this.#opts.handshakeTimeoutMs} ms` }),
    );
  }

  get isOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  get isGone(): boolean {
    return this.#isGone;
  }

  get url(): string {
    return this.#opts.url;
  }

  /** Sends a text frame if the socket is open; returns whether it was sent. */
  send(text: string): boolean {
    if (!this.isOpen || this.#closeRequested) return false;
    this.#ws!.send(text);
    return true;
  }

  /**
   * Queues control frames, sent in order at least `controlIntervalMs` apart, so requests never crowd the exchange's
   * inbound message limit. Without an interval they go at once.
   */
  sendPaced(texts: readonly string[]): void {
    if (this.#closeRequested || this.#ended) return;
    this.#outbox.push(...texts);
    if (!this.#timers.has('outbox')) this.#drainOutbox();
  }

  #drainOutbox(): void {
    const spacing = this.#opts.controlIntervalMs ?? 0;
    while (this.#outbox.length > 0) {
      const wait = this.#lastPacedAt + spacing - Date.now();
      if (spacing > 0 && wait > 0) {
        this.#timers.set('outbox', wait, () => this.#drainOutbox());
        return;
      }
      if (!this.send(this.#outbox.shift()!)) {
        this.#outbox.length = 0; // not open any more: a new socket subscribes afresh
        return;
      }
      this.#lastPacedAt = Date.now();
      this.#expectAnswer('request');
    }
  }

  /** Stop reading (backpressure). Liveness timers are suspended while paused. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const name of WATCHDOGS) this.#timers.clear(name);
    this.#ws?.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#ws?.resume();
    if (this.isOpen) this.#onAlive();
  }

  /**
   * Closes the socket and resolves when its TCP socket is gone. `graceful` sends a close frame and terminates
   * after the grace if the peer does not answer; `terminate` destroys at once (dead or half-open peers).
   */
  close(mode: CloseMode): Promise<void> {
    const ws = this.#ws;
    this.#closeRequested = true;
    this.#timers.clear('handshake');
    this.#timers.clear('outbox');
    this.#outbox.length = 0;
    for (const name of WATCHDOGS) this.#timers.clear(name);
    if (!ws || this.#isGone) {
      this.#finish();
      return this.#gone;
    }
    if (mode === 'terminate' || ws.readyState === WebSocket.CONNECTING) {
      this.#terminate(ws);
    } else {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'client reconnect');
      if (!this.#timers.has('grace')) this.#timers.set('grace', this.#opts.closeGraceMs, () => this.#terminate(ws));
    }
    return this.#gone;
  }

  /**
   * Destroys the socket, and finishes on a timer if ws then stays silent: ws emits `close` only once its receiver has
   * drained, which never happens if a listener threw mid-frame, and close() must resolve whatever state ws is in.
   */
  #terminate(ws: WebSocket): void {
    ws.terminate();
    if (this.#isGone || this.#timers.has('gone')) return;
    this.#timers.set('gone', this.#opts.closeGraceMs, () => {
      this.#raw?.destroy();
      this.#finish();
    });
  }

  #onOpen(): void {
    this.#timers.clear('handshake');
    if (this.#closeRequested) return;
    this.#onAlive();
    this.#events.onOpen(this);
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closeRequested || this.#ended) return;
    const receivedAt = Date.now();
    this.#onAlive();
    if (isBinary) {
      this.#events.onBinary(this, byteLength(data));
      return;
    }
    this.#events.onText(this, rawToString(data), receivedAt);
  }

  /**
   * Any inbound frame proves the peer alive: it answers an outstanding ping. Per frame this only records the time
   * (monotonic): the silence watchdog and the heartbeat idle timer stay armed and, when they fire, compare with it and
   * re-arm for the rest of their delay if something arrived meanwhile (re-arming both on every frame was a measurable
   * share of the cost per tick).
   */
  #onAlive(): void {
    this.#lastInboundAt = performance.now();
    if (this.#paused || this.#closeRequested || this.#ended) return;
    const timers = this.#timers;
    if (timers.has('heartbeat-deadline')) timers.clear('heartbeat-deadline');
    if (!timers.has('silence')) this.#armSilence(this.#opts.silenceTimeoutMs);
    const hb = this.#opts.heartbeat;
    if (hb && !timers.has('heartbeat-idle')) this.#armIdle(hb, hb.idleMs);
  }

  #armSilence(ms: number): void {
    this.#timers.set('silence', ms, () => {
      const silence = this.#opts.silenceTimeoutMs;
      const quiet = performance.now() - this.#lastInboundAt;
      if (quiet < silence) this.#armSilence(silence - quiet);
      else this.#missed('silence', `no data and no heartbeat for ${silence} ms`);
    });
  }

  #armIdle(hb: HeartbeatPolicy, ms: number): void {
    this.#timers.set('heartbeat-idle', ms, () => {
      const quiet = performance.now() - this.#lastInboundAt;
      if (quiet < hb.idleMs) this.#armIdle(hb, hb.idleMs - quiet);
      else this.#sendHeartbeat(hb);
    });
  }

  /**
   * Idle: ping. Not while requests wait in the outbox: each of them gets an answer too (and arms the same deadline),
   * and a ping between them would only add to the exchange's inbound message count.
   */
  #sendHeartbeat(hb: HeartbeatPolicy): void {
    if (!this.isOpen || this.#closeRequested || this.#outbox.length > 0) return;
    if (hb.ping === 'frame') this.#ws!.ping();
    else this.#ws!.send(hb.ping.text);
    this.#expectAnswer(hb.ping === 'frame' ? 'ping frame' : JSON.stringify(hb.ping.text));
  }

  /** We sent something the peer answers: if nothing at all arrives within the heartbeat timeout, it is dead. */
  #expectAnswer(what: string): void {
    const hb = this.#opts.heartbeat;
    if (!hb || this.#timers.has('heartbeat-deadline')) return;
    this.#timers.set('heartbeat-deadline', hb.timeoutMs, () => this.#missed('heartbeat', `no answer to our ${what} within ${hb.timeoutMs} ms`));
  }

  /**
   * A liveness deadline fired. After an event-loop stall the timer can run before the poll phase reads frames that
   * arrived meanwhile, so decide one turn later (setImmediate runs after the poll phase): a frame read by then
   * proves the peer alive and has re-armed the watchdogs.
   */
  #missed(reason: 'silence' | 'heartbeat', detail: string): void {
    const lastBefore = this.#lastInboundAt;
    setImmediate(() => {
      if (this.#ended || this.#closeRequested || this.#lastInboundAt !== lastBefore) return;
      this.#end({ reason, detail, silentMs: Math.round(performance.now() - this.#lastInboundAt) });
    });
  }

  #onRefused(req: ClientRequest, res: IncomingMessage): void {
    const status = res.statusCode ?? 0;
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    res.resume();
    req.destroy();
    this.#end({ reason: 'refused', detail: `upgrade refused with HTTP ${status}`, status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
    this.#ws?.terminate();
  }

  #onError(err: Error & { code?: string }): void {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      this.#end({ reason: 'protocol', detail: err.message, closeCode: 1009, oversized: true });
    } else if (err.code?.startsWith('WS_ERR_')) {
      this.#end({ reason: 'protocol', detail: `${err.code}: ${err.message}` });
    } else {
      // Node's messages mostly name the code already ("getaddrinfo ENOTFOUND host", "connect ECONNREFUSED ...").
      const detail = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
      this.#end({ reason: 'error', detail });
    }
  }

  #onClose(code: number, reason: Buffer): void {
    const text = reason.toString('utf8');
    this.#end({ reason: 'close', detail: `closed by peer with ${code}${text ? ` ${text}` : ''}`, closeCode: code });
    this.#finish();
  }

  #end(end: LinkEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#timers.clear('handshake');
    this.#timers.clear('outbox');
    this.#outbox.length = 0;
    for (const name of WATCHDOGS) this.#timers.clear(name);
    if (!this.#closeRequested) this.#events.onEnd(this, end);
  }

  /** The TCP socket is gone: drop every timer and listener, keep a no-op error listener, resolve close(). */
  #finish(): void {
    if (this.#isGone) return;
    this.#isGone = true;
    this.#ended = true;
    this.#timers.clearAll();
    this.#outbox.length = 0;
    const ws = this.#ws;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => {});
    }
    this.#ws = null;
    this.#raw = null;
    this.#markGone();
  }
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function byteLength(data: RawData): number {
  if (Buffer.isBuffer(data)) return data.length;
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}
