/**
 * The shared connection lifecycle. One Connection serves one subscription set of one exchange through at most one
 * socket at a time; during a planned rotation a replacement overlaps it for a bounded time and the old one is closed
 * as soon as the replacement is live. Reconnects close (and if need be terminate) the old socket first.
 */
import type { ConnectionConfig } from '../config.ts';
import type { CollectorError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { ConnectionSnapshot, ConnectionStateName, ReconnectReason } from '../snapshots.ts';
import type { Tick, TickSink } from '../tick.ts';
import { Backoff } from './backoff.ts';
import { ConnectionCounters } from './counters.ts';
import type { Feed, FrameResult } from './feed.ts';
import { Link } from './link.ts';
import type { CloseMode, LinkEnd } from './link.ts';
import { describe, describeError } from '../describe-value.ts';
import { RateLimitedLog } from './rate-limited-log.ts';
import { shortUrl, SymbolRefusals } from './refusals.ts';
import { RejectLog } from './reject-log.ts';
import { Subscription } from './subscription.ts';
import { transition } from './state.ts';
import { Timers } from './timers.ts';

export interface ConnectionOptions {
  readonly connId: string;
  readonly feed: Feed;
  readonly symbols: readonly string[];
  readonly config: ConnectionConfig;
  readonly sink: TickSink;
  readonly logger: Logger;
  /** Randomness for backoff jitter; injectable for tests. */
  readonly random?: () => number;
  /**
   * The connection cannot work as configured (the exchange refused every symbol): it has stopped itself, and the
   * process should stop with a configuration error. Without a listener the connection just stays stopped.
   */
  readonly onFatal?: (err: CollectorError) => void;
}

/** Close codes of a clean, intended close: normal, going away (upgrade, restart), service restart. */
const CLEAN_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1001, 1012]);
/** A repeated failure cause is warned about at most this often (with the count suppressed meanwhile). */
const FAILURE_WARN_INTERVAL_MS = 60_000;
/** Rounds of resubscribing what a listing lacked, per socket, before we only report it. */
const MAX_RESUBSCRIBE_ROUNDS = 3;
/** Transitions of a failing reconnect loop are logged at debug: the failure itself gets one (rate-limited) warn line. */
const QUIET_STATES: ReadonlySet<ConnectionStateName> = new Set(['closing', 'backoff']);

/** Peers that are known dead get no close handshake: terminate at once. */
const TERMINATE_REASONS: ReadonlySet<ReconnectReason> = new Set(['silence', 'heartbeat', 'handshake_timeout', 'error', 'refused']);

export class Connection {
  readonly connId: string;
  readonly #feed: Feed;
  readonly #config: ConnectionConfig;
  readonly #sink: TickSink;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #counters = new ConnectionCounters();
  readonly #timers = new Timers();
  readonly #rejectLog: RejectLog;
  readonly #failureLog: RateLimitedLog;
  readonly #closing = new Set<Promise<void>>();
  readonly #onFatal: ((err: CollectorError) => void) | undefined;
  readonly #refusals: SymbolRefusals;
  readonly #resubscribeRounds = new WeakMap<Link, number>();
  #cause: string | null = null;
  #symbols: string[];
  /** The per-tick check: a tick of any other symbol is rejected as `unexpected_symbol`. */
  readonly #subscription: Subscription;
  #state: ConnectionStateName = 'idle';
  #link: Link | null = null;
  #standby: Link | null = null;
  #attempts = 0;
  #liveSince: number | null = null;
  #paused = false;
  #stopped: Promise<void> | null = null;
  #drainUnsubscribe: (() => void) | null = null;

  constructor(opts: ConnectionOptions) {
    this.connId = opts.connId;
    this.#feed = opts.feed;
    this.#config = opts.config;
    this.#sink = opts.sink;
    this.#symbols = [...opts.symbols];
    this.#subscription = new Subscription(opts.symbols);
    this.#onFatal = opts.onFatal;
    this.#log = opts.logger.child({ component: 'connection', exchange: opts.feed.exchange, connId: opts.connId });
    this.#rejectLog = new RejectLog(this.#log);
    this.#failureLog = new RateLimitedLog(this.#log, FAILURE_WARN_INTERVAL_MS);
    this.#refusals = new SymbolRefusals({
      connId: opts.connId,
      feed: opts.feed,
      configured: [...opts.symbols],
      retryBaseMs: opts.config.refusedSymbolRetryMs,
      log: this.#log,
      retry: (symbol) => this.#subscribeAgain(symbol),
      allRefused: (err) => void this.stop().then(() => this.#onFatal?.(err)),
    });
    this.#backoff = new Backoff({
      baseMs: opts.config.backoffBaseMs,
      factor: opts.config.backoffFactor,
      maxMs: opts.config.backoffMaxMs,
      ...(opts.random ? { random: opts.random } : {}),
    });
  }

  get state(): ConnectionStateName {
    return this.#state;
  }

  get exchange(): Feed['exchange'] {
    return this.#feed.exchange;
  }

  start(): void {
    this.#to('connecting', 'start');
    this.#openLink('primary');
  }

  /** Idempotent: closes every socket, clears every timer, resolves once all are gone. */
  stop(): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#stopped = this.#stop();
    return this.#stopped;
  }

  /** Start a planned rotation now (what the 24 h limit and exchange notices do); used by operators and tests. */
  rotate(reason: 'rotation' | 'notice' = 'rotation'): boolean {
    return this.#rotate(reason, 'requested');
  }

  snapshot(): ConnectionSnapshot {
    const c = this.#counters;
    return {
      exchange: this.#feed.exchange,
      connId: this.connId,
      state: this.#state,
      liveSince: this.#liveSince,
      connects: c.connects,
      reconnects: c.reconnects,
      reconnectsByReason: { ...c.reconnectsByReason },
      closeCodes: { ...c.closeCodes },
      lastBackoffMs: c.lastBackoffMs,
      frames: c.frames,
      ticks: c.ticks,
      rejected: { ...c.rejected },
      symbols: [...this.#symbols],
      cause: this.#state === 'live' || this.#state === 'rotating' ? null : this.#cause,
      detections: { ...c.detections },
      resubscribed: c.resubscribed,
      refusedSymbols: this.#refusals.waiting,
    };
  }

  async #stop(): Promise<void> {
    this.#refusals.close();
    if (this.#state !== 'stopped') this.#to('stopping', 'stop');
    this.#timers.clearAll();
    this.#drainUnsubscribe?.();
    this.#drainUnsubscribe = null;
    for (const link of [this.#link, this.#standby]) if (link) this.#closeInBackground(link, 'graceful');
    this.#link = null;
    this.#standby = null;
    while (this.#closing.size > 0) await Promise.all([...this.#closing]);
    this.#to('stopped', 'sockets gone, timers cleared');
  }

  #to(next: ConnectionStateName, reason: string, extra?: Record<string, unknown>): void {
    const from = this.#state;
    if (from === next) return;
    this.#state = transition(from, next);
    if (next !== 'live' && next !== 'rotating') this.#liveSince = null;
    const quiet = QUIET_STATES.has(next) || (from === 'backoff' && next === 'connecting');
    this.#log[quiet ? 'debug' : 'info']({ from, to: next, reason, attempt: this.#attempts, ...extra }, 'connection state');
  }

  #openLink(role: 'primary' | 'standby'): void {
    this.#attempts += 1;
    const link = new Link(
      this.#attempts,
      {
        url: this.#feed.url(this.#symbols),
        handshakeTimeoutMs: this.#config.handshakeTimeoutMs,
        silenceTimeoutMs: this.#config.silenceTimeoutMs,
        closeGraceMs: this.#config.closeGraceMs,
        maxPayloadBytes: this.#config.maxPayloadBytes,
        ...(this.#feed.heartbeat ? { heartbeat: this.#feed.heartbeat } : {}),
        ...(this.#feed.controlIntervalMs !== undefined ? { controlIntervalMs: this.#feed.controlIntervalMs } : {}),
      },
      {
        onOpen: (l) => this.#onOpen(l),
        onText: (l, text, at) => this.#onText(l, text, at),
        onBinary: (l, bytes) => this.#onBinary(l, bytes),
        onEnd: (l, end) => this.#onEnd(l, end),
      },
    );
    if (role === 'primary') this.#link = link;
    else this.#standby = link;
    link.open();
    if (this.#paused) link.pause();
  }

  /** Late events from a socket we have already let go are no-ops. */
  #isCurrent(link: Link): boolean {
    return link === this.#link || link === this.#standby;
  }

  #onOpen(link: Link): void {
    if (!this.#isCurrent(link)) return;
    this.#counters.connects += 1;
    if (link === this.#link) this.#to('subscribing', 'socket open');
    link.sendPaced(this.#feed.subscribeMessages(this.#symbols));
  }

  #onText(link: Link, text: string, receivedAt: number): void {
    if (!this.#isCurrent(link)) return;
    this.#counters.frames += 1;
    // The second wall: classify() never throws, but if any handler does, only this frame is lost, counted and logged.
    // An exception escaping into ws's listener would stall that socket for good and reach uncaughtException.
    try {
      this.#handle(link, this.#feed.classify(text, receivedAt), text);
    } catch (err) {
      this.#reject(link, 'internal', `frame handler threw: ${describeError(err)}`, text, err);
    }
  }

  #onBinary(link: Link, bytes: number): void {
    if (!this.#isCurrent(link)) return;
    this.#counters.frames += 1;
    this.#reject(link, 'binary', `binary frame of ${bytes} bytes`, `<${bytes} bytes>`);
  }

  #handle(link: Link, result: FrameResult, text: string): void {
    switch (result.kind) {
      case 'ticks': {
        if (result.rejects) for (const r of result.rejects) this.#reject(link, r.kind, r.detail, text);
        const ticks = this.#subscription.allowsAll(result.ticks) ? result.ticks : this.#dropUnsubscribed(link, result.ticks, text);
        if (ticks.length === 0) return;
        this.#emit(ticks);
        this.#backoff.reset();
        this.#markLive(link, 'data');
        return;
      }
      case 'ack':
        this.#markLive(link, 'subscription acknowledged');
        return;
      case 'subscriptions':
        this.#markLive(link, 'subscriptions listed');
        this.#checkListing(link, result.symbols);
        return;
      case 'notice':
        this.#onNotice(link, result.detail);
        return;
      case 'symbol_refused':
        this.#refuseSymbol(result.symbol, result.detail, text);
        return;
      case 'rejected':
        this.#reject(link, result.reject, result.detail, text);
        return;
      case 'heartbeat':
      case 'ignore':
        return;
    }
  }

  #dropUnsubscribed(link: Link, ticks: readonly Tick[], text: string): readonly Tick[] {
    const { kept, refused } = this.#subscription.split(ticks);
    for (const t of refused) this.#reject(link, 'unexpected_symbol', `trade for ${describe(t.symbol)}, which this connection did not subscribe to`, text);
    return kept;
  }

  #emit(ticks: readonly Tick[]): void {
    this.#counters.ticks += ticks.length;
    let accepted = true;
    for (const tick of ticks) accepted = this.#sink.write(tick) && accepted;
    if (!accepted) this.#pauseForBackpressure();
  }

  #pauseForBackpressure(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#log.warn('sink applies backpressure: pausing socket reads until it drains');
    this.#link?.pause();
    this.#standby?.pause();
    this.#drainUnsubscribe = this.#sink.onDrain(() => {
      this.#drainUnsubscribe?.();
      this.#drainUnsubscribe = null;
      this.#paused = false;
      this.#log.info('sink drained: resuming socket reads');
      this.#link?.resume();
      this.#standby?.resume();
    });
  }

  #markLive(link: Link, why: string): void {
    if (link === this.#standby) {
      this.#promoteStandby();
      return;
    }
    if (this.#state !== 'subscribing') return;
    this.#to('live', why);
    this.#liveSince = Date.now();
    this.#cause = null;
    this.#armAgeLimit();
  }

  /** The exchange listed this socket's subscriptions: request again what it lacks (a bounded number of rounds). */
  #checkListing(link: Link, listed: readonly string[]): void {
    const have = new Set(listed);
    const missing = this.#symbols.filter((s) => !have.has(s));
    if (missing.length === 0 || !this.#feed.resubscribeMessages) return;
    const round = (this.#resubscribeRounds.get(link) ?? 0) + 1;
    this.#resubscribeRounds.set(link, round);
    const sample = missing.slice(0, 20);
    if (round > MAX_RESUBSCRIBE_ROUNDS) {
      if (round === MAX_RESUBSCRIBE_ROUNDS + 1) {
        this.#log.error({ missing: sample, count: missing.length }, `the exchange still lists ${missing.length} of our streams as not subscribed after ${MAX_RESUBSCRIBE_ROUNDS} requests; giving up on this socket`);
      }
      return;
    }
    this.#counters.resubscribed += missing.length;
    this.#log.warn({ missing: sample, count: missing.length, round }, `the exchange's subscription list lacks ${missing.length} of ${this.#symbols.length} streams: subscribing them again`);
    link.sendPaced(this.#feed.resubscribeMessages(missing));
  }

  #armAgeLimit(): void {
    const maxAge = this.#feed.maxAgeMs;
    if (maxAge !== undefined) this.#timers.set('age', maxAge, () => this.#rotate('rotation', `connection age reached ${maxAge} ms`));
  }

  #onNotice(link: Link, detail: string): void {
    this.#log.warn({ detail }, 'exchange announced a disconnect');
    if (link !== this.#link) return;
    if (this.#rotate('notice', detail)) return;
    // Not live yet (or already rotating): treat the notice as the end of this socket.
    if (this.#state === 'connecting' || this.#state === 'subscribing') this.#teardown({ reason: 'notice', detail });
  }

  /** live -> rotating: open a replacement; the old socket keeps serving until the replacement is live. */
  #rotate(reason: 'rotation' | 'notice', detail: string): boolean {
    if (this.#state !== 'live' || this.#standby) return false;
    this.#counters.countReconnect(reason);
    this.#to('rotating', `${reason}: ${detail}`);
    this.#openLink('standby');
    const overlapMs = this.#config.rotationOverlapMaxMs;
    this.#timers.set('rotation-overlap', overlapMs, () => this.#abandonStandby(`replacement not live within ${overlapMs} ms`));
    return true;
  }

  #promoteStandby(): void {
    const old = this.#link;
    this.#link = this.#standby;
    this.#standby = null;
    this.#timers.clear('rotation-overlap');
    if (old) this.#closeInBackground(old, 'graceful');
    this.#to('live', 'replacement live, old socket closing');
    this.#liveSince = Date.now();
    this.#armAgeLimit();
  }

  /** The replacement failed: stay on the old socket and try the rotation again after a backoff delay. */
  #abandonStandby(detail: string): void {
    const standby = this.#standby;
    if (!standby) return;
    this.#standby = null;
    this.#timers.clear('rotation-overlap');
    this.#closeInBackground(standby, 'terminate');
    const delay = this.#backoff.next();
    this.#counters.lastBackoffMs = delay;
    this.#log.warn({ detail, retryInMs: delay }, 'rotation replacement failed; staying on the current socket');
    if (this.#state === 'rotating') this.#to('live', `replacement failed: ${detail}`);
    this.#timers.set('age', delay, () => this.#rotate('rotation', 'retry after a failed replacement'));
  }

  #onEnd(link: Link, end: LinkEnd): void {
    if (!this.#isCurrent(link)) return;
    if (end.closeCode !== undefined && end.reason === 'close') this.#counters.countCloseCode(end.closeCode);
    if (end.reason === 'silence' || end.reason === 'heartbeat') {
      this.#counters.detections[end.reason] += 1;
      this.#log.warn({ reason: end.reason, detail: end.detail, silentMs: end.silentMs, standby: link === this.#standby }, `dead socket detected: ${end.detail} (nothing received for ${end.silentMs} ms); terminating it`);
    }
    if (end.oversized) this.#reject(link, 'oversized', end.detail, `<frame over ${this.#config.maxPayloadBytes} bytes>`);
    if (link === this.#standby) {
      this.#abandonStandby(`${end.reason}: ${end.detail}`);
      return;
    }
    if (this.#state === 'rotating' && this.#standby) {
      this.#handOverToStandby(link, end);
      return;
    }
    this.#teardown(end);
  }

  /** The old socket died mid-rotation: the replacement carries on from whatever phase it is in. */
  #handOverToStandby(old: Link, end: LinkEnd): void {
    const standby = this.#standby!;
    this.#link = standby;
    this.#standby = null;
    this.#timers.clear('rotation-overlap');
    this.#closeInBackground(old, TERMINATE_REASONS.has(end.reason) ? 'terminate' : 'graceful');
    this.#to(standby.isOpen ? 'subscribing' : 'connecting', `old socket ended during rotation (${end.reason}: ${end.detail})`);
  }

  /**
   * Close the failed socket, wait until it is gone, then back off and reconnect. A clean close of a socket that had
   * been live for PLANNED_CLOSE_MIN_LIVE_MS is a planned disconnect (an upgrade or restart, which on OKX /business
   * arrives without notice): reconnect at once, without backoff; backfill fills the hole as for any reconnect.
   */
  #teardown(end: LinkEnd): void {
    const link = this.#link;
    const wasLive = this.#state === 'live';
    const liveForMs = this.#liveSince === null ? 0 : Date.now() - this.#liveSince;
    const planned = end.reason === 'close' && end.closeCode !== undefined && CLEAN_CLOSE_CODES.has(end.closeCode) && wasLive && liveForMs >= this.#config.plannedCloseMinLiveMs;
    this.#link = null;
    this.#timers.clear('age');
    this.#counters.countReconnect(end.reason);
    this.#cause = end.detail;
    this.#to('closing', `${end.reason}: ${end.detail}`);
    const mode: CloseMode = TERMINATE_REASONS.has(end.reason) ? 'terminate' : 'graceful';
    const gone = link ? this.#closeInBackground(link, mode) : Promise.resolve();
    void gone.then(() => {
      if (this.#state !== 'closing') return;
      const ceilingMs = this.#backoff.ceiling();
      const delay = planned ? 0 : this.#backoff.next(end.retryAfterMs);
      this.#counters.lastBackoffMs = delay;
      this.#reportFailure(end, wasLive, link?.url ?? this.#feed.url(this.#symbols), planned ? 'planned' : delay);
      this.#to('backoff', planned ? `planned close after ${liveForMs} ms live: reconnect at once` : `reconnect in ${delay} ms`, { delayMs: delay, ceilingMs, retryAfterMs: end.retryAfterMs ?? null });
      this.#timers.set('backoff', delay, () => {
        this.#to('connecting', 'backoff elapsed');
        this.#openLink('primary');
      });
    });
  }

  /** One warn line per failing situation (the same cause again within a minute only counts as suppressed). */
  #reportFailure(end: LinkEnd, wasLive: boolean, url: string, retry: number | 'planned'): void {
    const where = shortUrl(url);
    const fields = { reason: end.reason, detail: end.detail, url: where, attempt: this.#attempts, retryInMs: retry === 'planned' ? 0 : retry, closeCode: end.closeCode ?? null, status: end.status ?? null };
    const name = `${this.#feed.exchange}/${this.connId}`;
    if (retry === 'planned') {
      this.#log.info(fields, `${name}: the exchange closed the connection cleanly (${end.detail}): reconnecting at once`);
      return;
    }
    const msg = wasLive ? `${name} lost its connection to ${where}: ${end.detail}; reconnecting in ${retry} ms` : `${name} cannot connect to ${where}: ${end.detail}; retrying in ${retry} ms`;
    this.#failureLog.warn(`${wasLive ? 'lost' : 'failed'}:${end.reason}:${end.detail}`, fields, msg);
  }

  #closeInBackground(link: Link, mode: CloseMode): Promise<void> {
    const gone = link.close(mode).finally(() => this.#closing.delete(gone));
    this.#closing.add(gone);
    return gone;
  }

  /** The exchange refused one symbol: out of the set; SymbolRefusals decides when it comes back (or that none can). */
  #refuseSymbol(symbol: string, detail: string, text: string): void {
    this.#counters.rejected.exchange_error += 1;
    if (!this.#symbols.includes(symbol)) return;
    this.#symbols = this.#symbols.filter((s) => s !== symbol);
    this.#subscription.delete(symbol);
    this.#refusals.refused(symbol, detail, text, this.#symbols.length);
  }

  #subscribeAgain(symbol: string): void {
    if (this.#stopped || this.#symbols.includes(symbol)) return;
    this.#symbols.push(symbol);
    this.#subscription.add(symbol);
    const link = this.#link;
    if (link?.isOpen && (this.#state === 'live' || this.#state === 'subscribing')) link.sendPaced((this.#feed.resubscribeMessages ?? this.#feed.subscribeMessages)([symbol]));
  }

  #reject(link: Link, kind: Parameters<RejectLog['report']>[0], detail: string, sample: string, err?: unknown): void {
    if (!this.#isCurrent(link)) return;
    this.#counters.rejected[kind] += 1;
    this.#rejectLog.report(kind, detail, sample, Date.now(), err);
  }
}

