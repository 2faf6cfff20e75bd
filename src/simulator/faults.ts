/** The fault catalogue: which kinds exist, which exchange each applies to, and the queues of pending faults. */
import type { FaultKind, RestFaultKind, SimExchange } from './types.ts';

/**
 * The catalogue (README "Simulator and demo" describes each kind's effect):
 *   socket faults, on every live socket now: close1001 (close frame 1001), reset (TCP RST), fin (TCP FIN without a
 *     close frame: 1006), blackhole (half-open: nothing sent or answered, the socket kept), serverShutdown (Binance:
 *     the event, then close 1001), notice64008 (OKX service upgrade: notice then close on /public, a plain close on
 *     /business), malformed (one frame of each bad kind), oversized (one frame over the client's limit),
 *     errorFrame (an error answer: Binance nested or flat per option, OKX event:error);
 *   handshake faults, on the next upgrade(s): stallHandshake (never answered), refuse503, refuse429 (+ Retry-After),
 *     partialSubscriptions (Binance: accepted, but every other stream of the URL silently dropped);
 *   REST faults, on the next request(s): fail500, rateLimit429 (+ Retry-After on Binance), rateLimit200 (OKX: code
 *     50011 "Rate limit reached" with HTTP 200).
 */
export const FAULT_KINDS: readonly FaultKind[] = [
  'close1001', 'reset', 'fin', 'blackhole', 'stallHandshake', 'refuse503', 'refuse429',
  'serverShutdown', 'notice64008', 'malformed', 'oversized', 'partialSubscriptions', 'errorFrame',
];
export const REST_FAULT_KINDS: readonly RestFaultKind[] = ['fail500', 'rateLimit429', 'rateLimit200'];

/** Faults that act on the next WebSocket upgrade(s) rather than on live sockets. */
export type HandshakeFault = Extract<FaultKind, 'stallHandshake' | 'refuse503' | 'refuse429' | 'partialSubscriptions'>;
export const HANDSHAKE_FAULTS: ReadonlySet<FaultKind> = new Set<FaultKind>(['stallHandshake', 'refuse503', 'refuse429', 'partialSubscriptions']);

export function isHandshakeFault(kind: FaultKind): kind is HandshakeFault {
  return HANDSHAKE_FAULTS.has(kind);
}

/** serverShutdown and partialSubscriptions are Binance's, notice 64008 OKX's; every other kind applies to both. */
export function faultApplies(exchange: SimExchange, kind: FaultKind): boolean {
  if (kind === 'serverShutdown' || kind === 'partialSubscriptions') return exchange === 'binance';
  if (kind === 'notice64008') return exchange === 'okx';
  return true;
}

/** rateLimit200 is OKX's (50011 with HTTP 200); the others apply to both. */
export function restFaultApplies(exchange: SimExchange, kind: RestFaultKind): boolean {
  return kind !== 'rateLimit200' || exchange === 'okx';
}

export function isFaultKind(v: unknown): v is FaultKind {
  return typeof v === 'string' && (FAULT_KINDS as readonly string[]).includes(v);
}

export function isRestFaultKind(v: unknown): v is RestFaultKind {
  return typeof v === 'string' && (REST_FAULT_KINDS as readonly string[]).includes(v);
}

/** A FIFO of faults, each to be applied to the next `remaining` requests; `take()` consumes one. */
export class FaultQueue<K extends string, X = undefined> {
  readonly #items: Array<{ kind: K; remaining: number; extra: X }> = [];

  push(kind: K, count: number, extra: X): void {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`fault count must be a positive integer, got ${count}`);
    this.#items.push({ kind, remaining: count, extra });
  }

  take(): { kind: K; extra: X } | undefined {
    const head = this.#items[0];
    if (!head) return undefined;
    head.remaining -= 1;
    if (head.remaining === 0) this.#items.shift();
    return { kind: head.kind, extra: head.extra };
  }

  get pending(): number {
    return this.#items.reduce((n, i) => n + i.remaining, 0);
  }

  clear(): void {
    this.#items.length = 0;
  }
}
