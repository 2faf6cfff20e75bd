/**
 * ExchangeSimulator: a local Binance and OKX on two ports. One tape per symbol is the single source of truth; the
 * WebSocket pushes and the REST endpoints both serve it. Faults are injected on demand or on a schedule. Every timer
 * and socket it creates is cleared or destroyed in stop().
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { BinanceRest } from './binance-rest.ts';
import { BinanceSession, binanceRoute } from './binance-ws.ts';
import type { BinanceRoute } from './binance-ws.ts';
import { handleControl } from './control.ts';
import type { ControlTarget } from './control.ts';
import { FaultQueue, faultApplies, isFaultKind, isHandshakeFault, isRestFaultKind, restFaultApplies } from './faults.ts';
import { clientIp, sendJson } from './http-util.ts';
import { hostileFrames, isHostileKind } from './hostile.ts';
import type { HostileKind } from './hostile.ts';
import { KeyedWindows } from './limits.ts';
import { OkxRest } from './okx-rest.ts';
import { OkxSession, okxRoute } from './okx-ws.ts';
import type { OkxUrlKind } from './okx-ws.ts';
import { resolveOptions } from './options.ts';
import { mulberry32 } from './prng.ts';
import type { ResolvedOptions } from './options.ts';
import { SimServer } from './server.ts';
import type { UpgradeDecision } from './server.ts';
import { TradeFrames } from './session.ts';
import type { SessionContext, SimSession } from './session.ts';
import { Tape } from './tape.ts';
import { SIM_EXCHANGES } from './types.ts';
import type { FaultKind, RestFaultKind, SimExchange, SimStats, SimTrade, SimulatorOptions, TapeRange } from './types.ts';

/** The emitter wakes this often and sends every trade that fell due since its last run. */
const TICK_MS = 10;
const FIVE_MINUTES_MS = 5 * 60_000;

type RestFaults = FaultQueue<RestFaultKind, { retryAfterSeconds: number | undefined }>;

export class ExchangeSimulator implements ControlTarget {
  readonly #opts: ResolvedOptions;
  readonly #log: Logger;
  readonly #tapes: Record<SimExchange, Map<string, Tape>>;
  readonly #restFaults: Record<SimExchange, RestFaults> = { binance: new FaultQueue(), okx: new FaultQueue() };
  readonly #binance: SimServer<BinanceRoute>;
  readonly #okx: SimServer<OkxUrlKind>;
  readonly #stats: SimStats = { handshakes: { binance: 0, okx: 0 }, faultsInjected: {}, framesSent: { binance: 0, okx: 0 }, binanceInboundPeakPerSecond: 0 };
  #ports: Record<SimExchange, number> = { binance: 0, okx: 0 };
  #rate: number;
  #paused = false;
  #credit = 0;
  #lastTick = Date.now();
  #emitter: NodeJS.Timeout | null = null;
  #scheduler: NodeJS.Timeout | null = null;
  #scheduleIndex = 0;
  #stopped: Promise<void> | null = null;
  /** Per `exchange:symbol`, how many `backwardsId` trades were sent (each id below the tape's first). */
  readonly #backwards = new Map<string, number>();
  readonly #hostileRandom = mulberry32(0x5eed);

  /** Starts both servers (ports 0 = ephemeral) and the trade emitter. */
  static async start(opts: SimulatorOptions = {}): Promise<ExchangeSimulator> {
    const sim = new ExchangeSimulator(resolveOptions(opts));
    try {
      await sim.#listen();
    } catch (err) {
      await sim.stop();
      throw err;
    }
    sim.#startTimers();
    return sim;
  }

  private constructor(opts: ResolvedOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'simulator' });
    this.#rate = opts.tradesPerSecond;
    const tapes = (exchange: SimExchange, symbols: string[]) =>
      new Map(symbols.map((s) => [s, new Tape(exchange, s, { seed: opts.seed, firstTradeId: opts.firstTradeId, retention: opts.tapeRetention })]));
    this.#tapes = { binance: tapes('binance', opts.binanceSymbols), okx: tapes('okx', opts.okxSymbols) };
    this.#binance = this.#binanceServer();
    this.#okx = this.#okxServer();
  }

  get binanceWsUrl(): string {
    return `ws://${this.#hostForUrl()}:${this.#ports.binance}`;
  }

  get okxWsUrl(): string {
    return `ws://${this.#hostForUrl()}:${this.#ports.okx}`;
  }

  get binanceRestUrl(): string {
    return `http://${this.#hostForUrl()}:${this.#ports.binance}`;
  }

  get okxRestUrl(): string {
    return `http://${this.#hostForUrl()}:${this.#ports.okx}`;
  }

  /**
   * Socket faults hit every live socket of `exchange` now; handshake faults (stallHandshake, refuse503, refuse429)
   * apply to its next `count` upgrades (default 1). `malformed` and `oversized` are sent `count` times.
   */
  inject(exchange: SimExchange, kind: FaultKind, opts: { count?: number } = {}): void {
    this.#checkExchange(exchange);
    if (!isFaultKind(kind)) throw new RangeError(`unknown fault kind ${String(kind)}`);
    if (!faultApplies(exchange, kind)) throw new RangeError(`fault ${kind} does not exist on ${exchange}`);
    const count = opts.count ?? 1;
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`fault count must be a positive integer, got ${count}`);
    const server = this.#server(exchange);
    if (isHandshakeFault(kind)) {
      server.handshakeFaults.push(kind, count, { retryAfterSeconds: this.#opts.retryAfterSeconds });
      this.#log.info({ exchange, kind, count }, 'simulator: upgrade fault armed');
      return;
    }
    let hit = 0;
    for (const session of [...server.sessions]) if (this.#applySocketFault(session, kind, count)) hit += 1;
    this.#log.info({ exchange, kind, sockets: hit }, 'simulator: fault injected');
  }

  /** Sends raw frames (Buffers as binary) to every open socket of `exchange`; returns how many sockets got them. */
  sendRaw(exchange: SimExchange, frames: ReadonlyArray<string | Buffer>): number {
    this.#checkExchange(exchange);
    let sockets = 0;
    for (const session of [...this.#server(exchange).sessions]) {
      if (!session.isOpen) continue;
      for (const f of frames) session.send(f, Buffer.isBuffer(f));
      sockets += 1;
    }
    this.#countFault(`${exchange}:raw`);
    return sockets;
  }

  /**
   * Sends `count` frames of one hostile class (hostile.ts) to every open socket of `exchange`. Returns the sockets
   * hit, the frames sent to each, and the trades sent that are new (`backwardsId`), which the collector should store.
   */
  injectHostile(exchange: SimExchange, kind: HostileKind, count = 1): { sockets: number; frames: number[]; newTrades: SimTrade[] } {
    this.#checkExchange(exchange);
    if (!isHostileKind(kind)) throw new RangeError(`unknown hostile kind ${String(kind)}`);
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
    const out = { sockets: 0, frames: [] as number[], newTrades: [] as SimTrade[] };
    for (const session of [...this.#server(exchange).sessions]) {
      const symbol = session.symbols()[0];
      if (!session.isOpen || symbol === undefined) continue;
      const tape = this.#tapes[exchange].get(symbol);
      const key = `${exchange}:${symbol}`;
      const batch = hostileFrames(kind, {
        exchange,
        combined: session instanceof BinanceSession && session.combined,
        symbol,
        trade: (id) => tape?.get(id),
        range: tape?.range(),
        nextBackwardsId: () => {
          const n = (this.#backwards.get(key) ?? 0) + 1;
          this.#backwards.set(key, n);
          return Math.max(1, this.#opts.firstTradeId - n);
        },
        random: this.#hostileRandom,
      }, count);
      for (const f of batch.frames) session.send(f);
      out.sockets += 1;
      out.frames.push(batch.frames.length);
      out.newTrades.push(...batch.newTrades);
    }
    this.#countFault(`${exchange}:hostile:${kind}`);
    return out;
  }

  /** The next `count` REST requests of `exchange` fail with HTTP 500 or 429 (+ Retry-After). */
  injectRest(exchange: SimExchange, kind: RestFaultKind, opts: { count?: number; retryAfterSeconds?: number } = {}): void {
    this.#checkExchange(exchange);
    if (!isRestFaultKind(kind)) throw new RangeError(`unknown REST fault kind ${String(kind)}`);
    if (!restFaultApplies(exchange, kind)) throw new RangeError(`REST fault ${kind} does not exist on ${exchange}`);
    const count = opts.count ?? 1;
    if (opts.retryAfterSeconds !== undefined && !(Number.isFinite(opts.retryAfterSeconds) && opts.retryAfterSeconds >= 0)) {
      throw new RangeError(`retryAfterSeconds must be >= 0, got ${opts.retryAfterSeconds}`);
    }
    const retryAfterSeconds = opts.retryAfterSeconds ?? (exchange === 'binance' ? this.#opts.retryAfterSeconds : undefined);
    this.#restFaults[exchange].push(kind, count, { retryAfterSeconds });
    this.#log.info({ exchange, kind, count }, 'simulator: REST fault armed');
  }

  /** Server-side sockets of `exchange` not yet fully closed (upgrades in progress and black-holed ones included). */
  liveSockets(exchange: SimExchange): number {
    this.#checkExchange(exchange);
    return this.#server(exchange).liveSockets();
  }

  /** Per open socket (oldest first), the exchange-native symbols it is subscribed to. */
  subscriptions(exchange: SimExchange): string[][] {
    this.#checkExchange(exchange);
    return [...this.#server(exchange).sessions].filter((s) => s.isOpen).sort((a, b) => a.id - b.id).map((s) => s.symbols());
  }

  tape(exchange: SimExchange, symbol: string): SimTrade[] {
    return this.#tapes[exchange]?.get(symbol)?.all() ?? [];
  }

  trade(exchange: SimExchange, symbol: string, id: number): SimTrade | undefined {
    return this.#tapes[exchange]?.get(symbol)?.get(id);
  }

  tapeRange(exchange: SimExchange, symbol: string): TapeRange | undefined {
    return this.#tapes[exchange]?.get(symbol)?.range();
  }

  /** Up to `limit` trades ascending from `fromId` (default: the oldest kept). */
  tapePage(exchange: SimExchange, symbol: string, fromId: number | undefined, limit: number): SimTrade[] {
    const tape = this.#tapes[exchange]?.get(symbol);
    if (!tape) return [];
    return tape.ascendingFrom(fromId ?? tape.range()?.first ?? 0, limit);
  }

  /** Trades per second per symbol, on both exchanges. */
  setRate(tradesPerSecond: number): void {
    if (!Number.isFinite(tradesPerSecond) || tradesPerSecond < 0) throw new RangeError(`tradesPerSecond must be >= 0, got ${tradesPerSecond}`);
    this.#rate = tradesPerSecond;
    this.#log.info({ tradesPerSecond }, 'simulator: rate set');
  }

  get rate(): number {
    return this.#rate;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** No new trades until resume(). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#credit = 0;
    this.#lastTick = Date.now();
  }

  /** Emits `n` trades per symbol now (also while paused). */
  step(n = 1): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`step count must be a non-negative integer, got ${n}`);
    if (this.#stopped) return;
    this.#emit(n);
  }

  stats(): SimStats {
    return {
      handshakes: { binance: this.#binance.handshakes, okx: this.#okx.handshakes },
      faultsInjected: { ...this.#stats.faultsInjected },
      framesSent: { ...this.#stats.framesSent },
      binanceInboundPeakPerSecond: this.#stats.binanceInboundPeakPerSecond,
    };
  }

  /** Everything /__sim/status shows. */
  status(): unknown {
    const tapes: Record<string, Record<string, TapeRange | null>> = {};
    for (const ex of SIM_EXCHANGES) tapes[ex] = Object.fromEntries([...this.#tapes[ex].keys()].map((s) => [s, this.tapeRange(ex, s) ?? null]));
    return {
      urls: { binanceWs: this.binanceWsUrl, okxWs: this.okxWsUrl, binanceRest: this.binanceRestUrl, okxRest: this.okxRestUrl },
      tradesPerSecond: this.#rate,
      paused: this.#paused,
      stats: this.stats(),
      liveSockets: { binance: this.liveSockets('binance'), okx: this.liveSockets('okx') },
      subscriptions: { binance: this.subscriptions('binance'), okx: this.subscriptions('okx') },
      tapes,
    };
  }

  /** Closes every socket and both servers and clears every timer; resolves when all are gone. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    if (this.#emitter) clearInterval(this.#emitter);
    if (this.#scheduler) clearInterval(this.#scheduler);
    this.#emitter = null;
    this.#scheduler = null;
    for (const q of Object.values(this.#restFaults)) q.clear();
    await Promise.all([this.#binance.stop(), this.#okx.stop()]);
    this.#log.info('simulator: stopped');
  }

  async #listen(): Promise<void> {
    this.#ports.binance = await this.#binance.listen(this.#opts.host, this.#opts.binancePort);
    this.#ports.okx = await this.#okx.listen(this.#opts.host, this.#opts.okxPort);
    this.#log.info({ binance: this.binanceWsUrl, okx: this.okxWsUrl }, 'simulator: listening');
  }

  #startTimers(): void {
    this.#lastTick = Date.now();
    this.#emitter = setInterval(() => this.#tick(), TICK_MS);
    const schedule = this.#opts.faultSchedule;
    if (schedule) this.#scheduler = setInterval(() => this.#scheduledFault(), schedule.everyMs);
  }

  #tick(): void {
    const now = Date.now();
    const elapsed = now - this.#lastTick;
    this.#lastTick = now;
    if (this.#paused || this.#rate === 0) {
      this.#credit = 0;
      return;
    }
    this.#credit += (elapsed * this.#rate) / 1000;
    let n = Math.floor(this.#credit);
    this.#credit -= n;
    // After a long stall send at most one second's worth at once: the tape records what was actually sent.
    const cap = Math.max(1, Math.ceil(this.#rate));
    if (n > cap) n = cap;
    if (n > 0) this.#emit(n);
  }

  /** n trades per symbol, each its own frame, to every subscribed open socket. */
  #emit(n: number): void {
    const now = Date.now();
    for (const exchange of SIM_EXCHANGES) {
      const sessions = [...this.#server(exchange).sessions].filter((s) => s.isOpen);
      for (const tape of this.#tapes[exchange].values()) {
        for (let i = 0; i < n; i++) {
          const frames = new TradeFrames(tape.emit(now));
          for (const s of sessions) s.deliver(frames);
        }
      }
    }
  }

  #scheduledFault(): void {
    const schedule = this.#opts.faultSchedule!;
    const kind = schedule.kinds[this.#scheduleIndex % schedule.kinds.length]!;
    this.#scheduleIndex += 1;
    for (const exchange of schedule.exchanges ?? SIM_EXCHANGES) {
      if (faultApplies(exchange, kind)) this.inject(exchange, kind);
    }
  }

  #applySocketFault(session: SimSession, kind: FaultKind, count: number): boolean {
    if (session.isGone) return false;
    const exchange = session.exchange;
    switch (kind) {
      case 'reset':
        session.reset();
        break;
      case 'fin':
        session.fin();
        break;
      case 'close1001':
        if (!session.isOpen) return false;
        session.close(1001, 'Going away');
        break;
      case 'blackhole':
        if (!session.isOpen) return false;
        session.blackhole();
        break;
      case 'serverShutdown':
        if (!(session instanceof BinanceSession) || !session.isOpen) return false;
        session.shutdownNotice(this.#opts.shutdownCloseDelayMs);
        break;
      case 'notice64008':
        if (!(session instanceof OkxSession) || !session.isOpen) return false;
        session.upgradeNotice(this.#opts.noticeCloseDelayMs);
        break;
      case 'malformed':
        if (!session.isOpen) return false;
        for (let i = 0; i < count; i++) for (const frame of session.malformedFrames()) session.send(frame, Buffer.isBuffer(frame));
        break;
      case 'oversized':
        if (!session.isOpen) return false;
        for (let i = 0; i < count; i++) session.send(session.oversizedFrame(this.#opts.oversizedBytes));
        break;
      case 'errorFrame':
        if (!session.isOpen) return false;
        for (let i = 0; i < count; i++) session.errorFrame();
        break;
      default:
        return false;
    }
    this.#countFault(`${exchange}:${kind}`);
    return true;
  }

  #countFault(key: string): void {
    this.#stats.faultsInjected[key] = (this.#stats.faultsInjected[key] ?? 0) + 1;
  }

  #context(exchange: SimExchange): SessionContext {
    return {
      logger: this.#log,
      maxBufferedBytes: this.#opts.maxBufferedBytes,
      countFrame: (ex) => (this.#stats.framesSent[ex] += 1),
      countFault: (key) => this.#countFault(key),
      symbols: new Set(this.#tapes[exchange].keys()),
    };
  }

  #binanceServer(): SimServer<BinanceRoute> {
    const o = this.#opts;
    const ctx = this.#context('binance');
    const handshakes = new KeyedWindows(FIVE_MINUTES_MS);
    const rest = new BinanceRest({
      tapes: this.#tapes.binance,
      faults: this.#restFaults.binance,
      retryAfterSeconds: o.retryAfterSeconds,
      weightPerWindow: o.binanceWeightPerMinute,
      weightWindowMs: o.binanceWeightWindowMs,
      banAfterRejections: o.binanceBanAfterRejections,
      symbolStates: o.symbolStates,
      countFault: (key) => this.#countFault(key),
    });
    const wsOpts = {
      pingIntervalMs: o.binancePingIntervalMs,
      pongTimeoutMs: o.binancePongTimeoutMs,
      maxConnectionAgeMs: o.binanceMaxConnectionAgeMs,
      inboundPerSecond: o.binanceInboundPerSecond,
      errorShape: o.binanceErrorShape,
      onInbound: (n: number) => {
        if (n > this.#stats.binanceInboundPeakPerSecond) this.#stats.binanceInboundPeakPerSecond = n;
      },
    };
    return new SimServer<BinanceRoute>({
      exchange: 'binance',
      logger: this.#log,
      autoPong: true,
      decide: (req) => limitHandshakes(handshakes, req, o.binanceHandshakesPer5Min) ?? toDecision(binanceRoute(req.url ?? '/', o.binanceMaxUrlLength)),
      createSession: (ws, socket, _req, route, faults) => new BinanceSession(ws, socket, ctx, route, wsOpts, faults),
      onRequest: (req, res) => this.#onHttp(req, res, (url) => rest.handle(req, url, res), true),
      countFault: (key) => this.#countFault(key),
    });
  }

  #okxServer(): SimServer<OkxUrlKind> {
    const o = this.#opts;
    const ctx = this.#context('okx');
    const handshakes = new KeyedWindows(1000);
    const rest = new OkxRest({
      tapes: this.#tapes.okx,
      faults: this.#restFaults.okx,
      historyRequestsPer2s: o.okxHistoryRequestsPer2s,
      tradesRequestsPer2s: o.okxTradesRequestsPer2s,
      numericCodes: o.okxNumericCodes,
      symbolStates: o.symbolStates,
      countFault: (key) => this.#countFault(key),
    });
    const wsOpts = {
      idleTimeoutMs: o.okxIdleTimeoutMs,
      idleActivity: o.okxIdleActivity,
      subscribesPerHour: o.okxSubscribesPerHour,
      tradesAllOn: o.okxTradesAllOn,
      numericCodes: o.okxNumericCodes,
    };
    return new SimServer<OkxUrlKind>({
      exchange: 'okx',
      logger: this.#log,
      autoPong: false,
      decide: (req) => limitHandshakes(handshakes, req, o.okxHandshakesPerSecond) ?? toDecision(okxRoute(req.url ?? '/')),
      createSession: (ws, socket, _req, kind) => new OkxSession(ws, socket, ctx, kind, wsOpts),
      onRequest: (req, res) => this.#onHttp(req, res, (url) => rest.handle(req, url, res), false),
      countFault: (key) => this.#countFault(key),
    });
  }

  #onHttp(req: IncomingMessage, res: ServerResponse, api: (url: URL) => boolean, control: boolean): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    if (control && url.pathname.startsWith('/__sim/')) {
      void handleControl(this, req, url, res);
      return;
    }
    if (!api(url)) sendJson(res, 404, { error: `not found: ${url.pathname}` });
  }

  #server(exchange: SimExchange): SimServer<BinanceRoute> | SimServer<OkxUrlKind> {
    return exchange === 'binance' ? this.#binance : this.#okx;
  }

  #checkExchange(exchange: SimExchange): void {
    if (!SIM_EXCHANGES.includes(exchange)) throw new RangeError(`unknown exchange ${String(exchange)}`);
  }

  #hostForUrl(): string {
    const h = this.#opts.host;
    if (h === '0.0.0.0' || h === '::') return '127.0.0.1';
    return h.includes(':') ? `[${h}]` : h;
  }
}

function limitHandshakes(windows: KeyedWindows, req: IncomingMessage, limit: number): UpgradeDecision<never> | undefined {
  const w = windows.get(clientIp(req));
  const now = Date.now();
  if (w.hit(now) <= limit) return undefined;
  const retryAfter = Math.max(1, Math.ceil(w.msUntilSlot(now) / 1000));
  return { ok: false, status: 429, body: '{"code":429,"msg":"Too many connection attempts"}', headers: { 'Retry-After': String(retryAfter) } };
}

function toDecision<R>(r: { ok: true; route: R } | { ok: false; status: number; body: string }): UpgradeDecision<R> {
  return r.ok ? r : { ok: false, status: r.status, body: r.body };
}
