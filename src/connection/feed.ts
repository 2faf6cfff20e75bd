/**
 * What an exchange must supply to the shared lifecycle: its URL, its subscribe messages, how to classify a frame,
 * and optional heartbeat / rotation policy. Everything else (sockets, timers, backoff, counters) is shared.
 */
import type { Exchange, Tick } from '../tick.ts';
import type { RejectKind } from '../snapshots.ts';

export interface Rejection {
  readonly kind: RejectKind;
  readonly detail: string;
}

export type FrameResult =
  /** Trade data: the valid ticks, plus the reasons any other trades of the same frame were refused. */
  | { readonly kind: 'ticks'; readonly ticks: readonly Tick[]; readonly rejects?: readonly Rejection[] }
  /** The exchange confirmed the subscription (Binance LIST_SUBSCRIPTIONS result, OKX subscribe ack). */
  | { readonly kind: 'ack' }
  /** An application-level heartbeat answer (OKX text `pong`). */
  | { readonly kind: 'heartbeat' }
  /** A planned disconnect announced by the exchange: rotate to a fresh socket. */
  | { readonly kind: 'notice'; readonly detail: string }
  /** The exchange refused one symbol (unknown instrument): never resubscribe it; the others keep flowing. */
  | { readonly kind: 'symbol_refused'; readonly symbol: string; readonly detail: string }
  /** Bad input: counted per kind, logged rate-limited with a truncated sample, never emitted as a tick. */
  | { readonly kind: 'rejected'; readonly reject: RejectKind; readonly detail: string }
  /** Known and harmless (e.g. an unsubscribe ack): counted as a frame, nothing else. */
  | { readonly kind: 'ignore' };

export interface HeartbeatPolicy {
  /** Send `payload` after this long without any inbound frame. */
  readonly idleMs: number;
  /** ...and treat the connection as dead if nothing answers within this long. */
  readonly timeoutMs: number;
  readonly payload: string;
}

export interface Feed {
  readonly exchange: Exchange;
  /** The full WebSocket URL for this symbol set (bases come from config; the feed adds the path). */
  url(symbols: readonly string[]): string;
  /** Text frames to send once the socket is open (may be empty). */
  subscribeMessages(symbols: readonly string[]): readonly string[];
  /** Classify one inbound text frame. Must be pure apart from the clock value passed in. Never throws. */
  classify(text: string, receivedAt: number): FrameResult;
  /** Application-level ping (OKX); Binance relies on the server's ping frames and the silence watchdog. */
  readonly heartbeat?: HeartbeatPolicy;
  /** Rotate to a fresh socket before the exchange's connection age limit (Binance 24 h). */
  readonly maxAgeMs?: number;
}
