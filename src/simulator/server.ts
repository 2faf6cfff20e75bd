/**
 * One exchange's listening port: plain HTTP (REST, control) and WebSocket upgrades on the same server. It tracks every
 * TCP socket so stop() can destroy them all, applies the upgrade faults (stall, refuse 503/429) and the handshake
 * rate limit, and owns the sessions of the upgrades it accepted.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import { FaultQueue } from './faults.ts';
import type { HandshakeFault } from './faults.ts';
import type { SimSession } from './session.ts';
import type { SimExchange } from './types.ts';

/** Inbound frames larger than this close the socket with 1009 (the exchanges document no figure for requests). */
const MAX_INBOUND_PAYLOAD = 1024 * 1024;
const MAX_REQUEST_HEAD_BYTES = 64 * 1024;
/** A refused upgrade's socket is destroyed if the client has not closed it by then. */
const REFUSED_SOCKET_TIMEOUT_MS = 5_000;

export type UpgradeDecision<R> = { ok: true; route: R } | { ok: false; status: number; body: string; headers?: Record<string, string> };

export interface SimServerOptions<R> {
  readonly exchange: SimExchange;
  readonly logger: Logger;
  /** Handshake rate limit and path check, in that order; a refusal is answered with its HTTP status. */
  decide(req: IncomingMessage): UpgradeDecision<R>;
  /** `faults.partialSubscriptions`: the upgrade carried that handshake fault. */
  createSession(ws: WebSocket, socket: Duplex, req: IncomingMessage, route: R, faults: { partialSubscriptions?: boolean }): SimSession;
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  countFault(key: string): void;
  /** Answer WebSocket ping frames (Binance does; OKX answers only its text `ping`). */
  readonly autoPong: boolean;
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 414: 'URI Too Long', 429: 'Too Many Requests', 503: 'Service Unavailable' };

export class SimServer<R> {
  readonly handshakeFaults = new FaultQueue<HandshakeFault, { retryAfterSeconds: number }>();
  readonly sessions = new Set<SimSession>();
  handshakes = 0;
  readonly #opts: SimServerOptions<R>;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  /** Every TCP socket of this port. */
  readonly #sockets = new Set<Socket | Duplex>();
  /** Sockets that asked for an upgrade and are not closed yet (stalled, refused, live, black-holed). */
  readonly #upgrades = new Set<Duplex>();
  #stopping: Promise<void> | null = null;

  constructor(opts: SimServerOptions<R>) {
    this.#opts = opts;
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: MAX_INBOUND_PAYLOAD, autoPong: opts.autoPong });
    // Node refuses request heads over 16 KB by dropping the socket; the real servers answer long handshake URLs
    // (see binanceRoute), so let them through to be answered.
    this.#http = createServer({ maxHeaderSize: MAX_REQUEST_HEAD_BYTES }, (req, res) => {
      res.on('error', () => {});
      opts.onRequest(req, res);
    });
    this.#http.on('connection', (socket: Socket) => this.#track(socket));
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#http.on('clientError', (_err, socket: Duplex) => socket.destroy());
    this.#wss.on('error', () => {});
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(port, host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    return (this.#http.address() as AddressInfo).port;
  }

  /** Server-side sockets of upgrade requests not yet closed. */
  liveSockets(): number {
    return this.#upgrades.size;
  }

  /** Destroys every socket, closes the server; resolves when all sockets are closed. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.handshakeFaults.clear();
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    for (const s of this.sessions) s.destroy();
    for (const s of this.#sockets) s.destroy();
    this.#http.closeAllConnections();
    this.#wss.close();
    await closed;
    const deadline = Date.now() + 5_000;
    while (this.#sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  #track(socket: Socket | Duplex): void {
    if (this.#sockets.has(socket)) return;
    this.#sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#track(socket);
    this.#upgrades.add(socket);
    socket.once('close', () => this.#upgrades.delete(socket));
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    const fault = this.handshakeFaults.take();
    const partialSubscriptions = fault?.kind === 'partialSubscriptions';
    if (fault && !partialSubscriptions) {
      this.#opts.countFault(`${this.#opts.exchange}:${fault.kind}`);
      this.#opts.logger.info({ exchange: this.#opts.exchange, fault: fault.kind, url: req.url }, 'simulator: upgrade fault');
      if (fault.kind === 'stallHandshake') this.#stall(socket);
      else if (fault.kind === 'refuse503') this.#refuse(socket, 503, '{"code":"503","msg":"Service Unavailable"}');
      else this.#refuse(socket, 429, '{"code":"429","msg":"Too Many Requests"}', { 'Retry-After': String(fault.extra.retryAfterSeconds) });
      return;
    }
    const decision = this.#opts.decide(req);
    if (!decision.ok) {
      this.#refuse(socket, decision.status, decision.body, decision.headers ?? {});
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.handshakes += 1;
      const session = this.#opts.createSession(ws, socket, req, decision.route, { partialSubscriptions });
      this.sessions.add(session);
      session.onceGone(() => this.sessions.delete(session));
      if (this.#stopping) session.destroy();
      else session.start();
    });
  }

  /** Accept the TCP connection, never answer the upgrade; free it when the client gives up. */
  #stall(socket: Duplex): void {
    socket.on('data', () => {});
    socket.on('end', () => socket.destroy());
  }

  #refuse(socket: Duplex, status: number, body: string, headers: Record<string, string> = {}): void {
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
      'Connection: close',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.on('data', () => {});
    socket.on('end', () => socket.destroy());
    (socket as Socket).setTimeout?.(REFUSED_SOCKET_TIMEOUT_MS, () => socket.destroy());
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }
}
