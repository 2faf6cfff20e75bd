/** The fault catalogue: which kinds exist, which exchange each applies to, and the queues of pending faults. */
import type { FaultKind, RestFaultKind, SimExchange } from './types.ts';

export const FAULT_KINDS: readonly FaultKind[] = [
  'close1001', 'reset', 'fin', 'blackhole', 'stallHandshake', 'refuse503', 'refuse429',
  'serverShutdown', 'notice64008', 'malformed', 'oversized',
];
export const REST_FAULT_KINDS: readonly RestFaultKind[] = ['fail500', 'rateLimit429'];

/** Faults that act on the next WebSocket upgrade(s) rather than on live sockets. */
export type HandshakeFault = Extract<FaultKind, 'stallHandshake' | 'refuse503' | 'refuse429'>;
export const HANDSHAKE_FAULTS: ReadonlySet<FaultKind> = new Set<FaultKind>(['stallHandshake', 'refuse503', 'refuse429']);

export function isHandshakeFault(kind: FaultKind): kind is HandshakeFault {
  return HANDSHAKE_FAULTS.has(kind);
}

/** serverShutdown is a Binance event, notice 64008 an OKX one; every other kind applies to both. */
export function faultApplies(exchange: SimExchange, kind: FaultKind): boolean {
  if (kind === 'serverShutdown') return exchange === 'binance';
  if (kind === 'notice64008') return exchange === 'okx';
  return true;
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
